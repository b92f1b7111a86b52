"""Plug-in registries: named callables found by name, failing loudly.

Allocation rules, clearing mechanisms and trading strategies are registered by name. An
unknown name raises :class:`KeyError` subclass :class:`UnknownPluginError` listing every
valid name, so a typo in a scenario file is caught at load time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "UnknownPluginError"]


class UnknownPluginError(KeyError, ValueError):
    """Raised when a plug-in name is not registered. Subclasses both KeyError and ValueError."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A mapping from names to plug-ins of one kind.

    Parameters
    ----------
    kind : str
        What the plug-ins are, e.g. ``"allocation rule"``; used in error messages.

    Examples
    --------
    >>> rules: Registry[int] = Registry("example rule")
    >>> @rules.register("one")
    ... def one() -> int:
    ...     return 1
    >>> rules.get("one")()
    1
    >>> rules.names()
    ['one']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator registering an object under ``name``.

        Registering an existing name raises ``ValueError`` unless ``replace=True``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def decorator(obj: T) -> T:
            if name in self._items and not replace:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pass replace=True to override"
                )
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the plug-in registered under ``name``.

        Raises
        ------
        UnknownPluginError
            If ``name`` is unknown; the message lists the valid names.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            valid = ", ".join(repr(n) for n in sorted(self._items)) or "(none registered)"
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}; valid names are: {valid}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

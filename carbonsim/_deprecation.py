"""Keywords kept for one release after their feature went away, with a warning."""

from __future__ import annotations

import warnings

from carbonsim._validation import describe

__all__ = ["check_deprecated_backend"]

_BACKENDS_REMOVED = ("numpy", "numba")


def check_deprecated_backend(backend: object, *, stacklevel: int = 3) -> None:
    """Warn that ``backend=`` is deprecated; refuse a value that was never valid.

    carbonsim has one engine, the vectorized numpy one: the compiled session loop
    (``backend="numba"``) is gone and gave the same results. ``None`` (the default) says
    nothing; ``"numpy"`` or ``"numba"`` warn with ``DeprecationWarning`` and run the one
    engine; anything else is a ``ValueError`` naming the value.
    """
    if backend is None:
        return
    if not isinstance(backend, str) or backend not in _BACKENDS_REMOVED:
        raise ValueError(
            f"backend: got {describe(backend)}; the keyword is deprecated (carbonsim has "
            "one engine) and accepts only 'numpy' or 'numba' until its removal: drop it"
        )
    warnings.warn(
        f"backend={backend!r} is deprecated and ignored: carbonsim has one engine "
        "(vectorized numpy); drop the keyword (it will be removed in the next release)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )

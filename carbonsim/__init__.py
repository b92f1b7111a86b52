"""carbonsim: fast, calibrated simulation of carbon emissions-trading markets.

Subpackages are imported lazily on first attribute access, so ``import carbonsim`` does no
work beyond reading package metadata.

>>> import carbonsim as cs
>>> isinstance(cs.__version__, str)
True
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("carbonsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]

_SUBPACKAGES: frozenset[str] = frozenset()


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"carbonsim.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'carbonsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The installed version of carbonsim, read once from the package metadata.

A leaf module: modules inside the package stamp results with :data:`__version__` from
here, never from the package façade ``carbonsim/__init__.py`` (which sits above every other
module and loads them lazily).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("carbonsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

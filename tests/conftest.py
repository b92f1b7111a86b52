"""Shared test configuration: hypothesis profiles, invariant checks, shared fixtures.

The ``ci`` profile (selected when the environment variable ``CI`` is set, or with
``HYPOTHESIS_PROFILE=ci``) disables the per-example deadline, because shared CI machines
have noisy timing, and derandomizes so a CI failure reproduces.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=100,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50)
# every simulation in the test suite checks its invariants after every event (ledger
# conservation, fills within orders, prices within bands, offsets within caps), including
# those run in worker processes, which inherit the environment
os.environ.setdefault("CARBONSIM_CHECK_INVARIANTS", "1")

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def registries_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plug-ins registered by a test are gone after it, and so are their modules."""
    from carbonsim.agents import STRATEGIES

    monkeypatch.setattr(STRATEGIES, "_items", dict(STRATEGIES._items))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("carbonsim_plugin_", "issue21_")):
            del sys.modules[name]

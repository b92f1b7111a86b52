"""Randomness enters carbonsim through one ``seed`` argument.

``seed`` may be ``None``, an int, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`. Replicates are spawned from one ``SeedSequence`` so that
replicate ``k`` gets the same stream whether it runs alone or in a batch, in any process.
The global numpy random state is never used.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SeedLike", "as_generator", "replicate_seeds"]

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

MAX_REPLICATES = 10_000_000


def _as_seed_sequence(seed: int | np.random.SeedSequence | None) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be None, a non-negative int or a SeedSequence, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.SeedSequence(int(seed))


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Normalise ``seed`` to a :class:`numpy.random.Generator` (a Generator passes through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(_as_seed_sequence(seed)))


def replicate_seeds(
    seed: int | np.random.SeedSequence | None, replicates: int
) -> list[np.random.SeedSequence]:
    """Spawn one child ``SeedSequence`` per replicate from ``seed``.

    Replicate ``k`` of a batch of any size receives the same child as replicate ``k`` of
    any other batch drawn from the same seed (children are spawned in order).
    """
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)):
        raise TypeError(f"replicates must be an int, got {replicates!r}")
    if not 1 <= replicates <= MAX_REPLICATES:
        raise ValueError(f"replicates must lie in [1, {MAX_REPLICATES}], got {replicates}")
    root = _as_seed_sequence(seed)
    # spawn() is stateful on the SeedSequence; derive from a fresh copy so repeated calls agree
    fresh = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key)
    return fresh.spawn(int(replicates))

"""Randomness enters carbonsim through one ``seed`` argument.

:class:`BatchRandom` gives R independent per-replicate streams that are drawn for all
replicates in one vectorized call and are *batch-invariant*: the numbers replicate ``k``
receives depend only on its own seed and on how many draws came before, never on how many
other replicates share the batch.

``seed`` may be ``None``, an int, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`. Replicates are spawned from one ``SeedSequence`` so that
replicate ``k`` gets the same stream whether it runs alone or in a batch, in any process.
The global numpy random state is never used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

__all__ = ["BatchRandom", "SeedLike", "as_generator", "replicate_seeds"]

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


#: Selection of a masked draw: a boolean mask, or the (rows, cols) pair of its nonzero cells.
Where = npt.NDArray[np.bool_] | tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0
#: Words hashed per block in full draws (256 KiB of uint64: two buffers stay in cache).
_BLOCK_WORDS = 32_768


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Stafford's variant 13), element-wise on uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


_MASK64 = (1 << 64) - 1


def _mix64_int(z: int) -> int:
    """:func:`_mix64` of one word as a Python int (the same wrapping uint64 arithmetic)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _mix64_inplace(z: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """:func:`_mix64` overwriting ``z`` (uint64), with one scratch array (``scratch``, of
    ``z``'s shape, or a new one) instead of six temporaries: the same bits, a third of the
    memory traffic on large draws."""
    t = np.right_shift(z, _S30, out=scratch)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _M1, out=z)
    np.right_shift(z, _S27, out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _M2, out=z)
    np.right_shift(z, _S31, out=t)
    np.bitwise_xor(z, t, out=z)
    return z


def _uniform_of(k: int) -> float:
    """The uniform number :meth:`BatchRandom.random` makes of the 53-bit integer ``k``."""
    return (float(k) + 0.5) * _INV_2_53


def _bits_top(p: float) -> int:
    """The 53-bit ``K`` of :func:`_bits_threshold` (-1: every word qualifies)."""
    if not p > 0.0:  # also nan: no uniform is below nan
        return 0
    top = 9007199254740992  # 2**53
    k = int(min(p * 9007199254740992.0, 9007199254740992.0))
    while k > 0 and (float(k - 1) + 0.5) * _INV_2_53 >= p:
        k -= 1
    while k < top and (float(k) + 0.5) * _INV_2_53 < p:
        k += 1
    return -1 if k >= top else k


def _bits_threshold(p: float) -> int | None:
    """The bound ``B`` with ``uniform(bits) < p`` exactly when ``bits < B``.

    ``uniform`` maps the top 53 bits ``k`` of a 64-bit word monotonically to (0, 1), so the
    words below some ``K << 11`` are exactly those whose uniform lies below ``p``; ``K`` is
    found by stepping from ``p * 2**53`` with the same float arithmetic
    (:func:`_bits_top`). ``None`` means every word qualifies.
    """
    k = _bits_top(p)
    return None if k < 0 else k << 11


#: Distinguishes the keys of :func:`_permute_grid` from the draw's element words.
_PERMUTATION_SALT = np.uint64(0xD1B54A32D192ED03)
_FEISTEL_ROUNDS = 4
#: Per-round key offsets of :func:`_permute_grid`: golden * (k + 1), wrapped to 64 bits.
_ROUND_OFFSETS = [np.uint64((0x9E3779B97F4A7C15 * (k + 1)) & ((1 << 64) - 1)) for k in range(4)]
_S32 = np.uint64(32)
#: Smallest side of the grid of :func:`_grid_shape` (at least 256 slots: a Feistel network
#: on tiny sides reaches too few permutations).
_MIN_SIDE = 16


def _grid_shape(n: int) -> tuple[int, int]:
    """Sides ``(a, b)`` of the smallest near-square grid with ``a * b >= n`` slots (fewer
    than ``a`` of them beyond ``n``), each side at least :data:`_MIN_SIDE`."""
    a = max(_MIN_SIDE, math.isqrt(max(n - 1, 0)) + 1)
    b = max(_MIN_SIDE, -(-n // a))
    return a, b


def _permute_grid(x: np.ndarray, keys: np.ndarray, a: int, b: int) -> np.ndarray:
    """A pseudo-random permutation of ``0 .. a*b - 1`` for each key (uint64 in, uint64
    out, ``a, b < 2**32``): the slot ``x = x0 * b + x1`` goes through a Feistel network
    on the mixed-radix pair ``(x0, x1)`` in ``Z_a x Z_b``, whose rounds alternately add to
    ``x0`` modulo ``a`` and to ``x1`` modulo ``b`` a hash of the other half (a bijection
    whatever the hash). The round function is a multiply-xorshift-multiply hash of the
    half and the round key ``key + golden * (k + 1)`` (SplitMix64's multipliers), scaled
    to ``[0, m)`` by a 32-bit multiply-high; :data:`_FEISTEL_ROUNDS` rounds."""
    halves = list(np.divmod(x, np.uint64(b)))
    sides = (np.uint64(a), np.uint64(b))
    f = np.empty_like(x)
    t = np.empty_like(x)
    for k, offset in enumerate(_ROUND_OFFSETS[:_FEISTEL_ROUNDS]):
        to, other = k % 2, 1 - k % 2
        m = sides[to]
        np.add(keys, offset, out=f)
        f ^= halves[other]
        f *= _M1
        np.right_shift(f, _S32, out=t)
        f ^= t
        f *= _M2
        f >>= _S32
        f *= m
        f >>= _S32  # in [0, m)
        f += halves[to]  # in [0, 2m): subtract m where it reaches m
        np.subtract(f, m, out=t)  # wraps around below m
        np.minimum(f, t, out=halves[to])
    out = halves[0]
    out *= np.uint64(b)
    out += halves[1]
    return out


def _prefix_cells(
    rows: list[npt.NDArray[np.intp]], counts: list[npt.NDArray[np.intp]], firsts: list[int]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
    """The (row, rank) pairs of rounds of prefixes: round ``j`` gives row ``rows[j][i]``
    the ranks ``firsts[j] .. firsts[j] + counts[j][i] - 1``."""
    if len(rows) == 1 and rows[0].size == 1:  # one replicate, one round: ranks 0..c-1
        count = int(counts[0][0])
        return np.full(count, rows[0][0], np.intp), np.arange(count, dtype=np.uint64)
    r_parts, k_parts = [], []
    for r, c, first in zip(rows, counts, firsts, strict=True):
        r_parts.append(np.repeat(r, c))
        # rank within each row's run: position minus the run's start, plus the round's first
        shift = np.cumsum(c)
        shift -= c
        shift -= first
        k = np.arange(int(c.sum()), dtype=np.uint64)
        k -= np.repeat(shift, c).astype(np.uint64)  # wrapping: the difference is >= 0
        k_parts.append(k)
    if len(r_parts) == 1:
        return r_parts[0], k_parts[0]
    return np.concatenate(r_parts), np.concatenate(k_parts)


#: Up to this many replicates a draw's per-replicate base is mixed in Python ints.
_SMALL_BATCH = 4


def _small_key_ints(keys: np.ndarray) -> list[int] | None:
    return [int(k) for k in keys] if len(keys) <= _SMALL_BATCH else None


class BatchRandom:
    """Counter-based random numbers for R replicates at once, batch-invariant.

    Element ``j`` of draw number ``c`` for replicate ``r`` is
    ``mix64(mix64(key_r ^ mix64(c)) + golden * (j + 1))`` where ``mix64`` is SplitMix64's
    finaliser and ``key_r`` a 64-bit key taken from the replicate's ``SeedSequence``. The
    value depends only on ``(key_r, c, j)``: replicate ``k`` of a batch of any size gets
    exactly the numbers it gets when run alone, and a draw costs a few vectorized integer
    operations over the whole ``(R, ...)`` block (no Python loop over replicates).

    Parameters
    ----------
    seeds : sequence of SeedSequence
        One per replicate, e.g. from :func:`replicate_seeds`.

    Examples
    --------
    >>> seeds = replicate_seeds(0, 3)
    >>> a = BatchRandom(seeds).random((3, 4))
    >>> b = BatchRandom(seeds[1:2]).random((1, 4))
    >>> bool((a[1] == b[0]).all())
    True
    """

    def __init__(self, seeds: list[np.random.SeedSequence]) -> None:
        if len(seeds) == 0:
            raise ValueError("BatchRandom needs at least one replicate seed")
        self._keys = np.array([s.generate_state(1, np.uint64)[0] for s in seeds], np.uint64)
        self._counter = 0
        self._offsets = np.zeros(0, np.uint64)  # golden * (j + 1), grown on demand
        self._key_ints = _small_key_ints(self._keys)

    @property
    def n_replicates(self) -> int:
        """Number of replicates R."""
        return int(self._keys.shape[0])

    @property
    def draws(self) -> int:
        """Number of draws made so far (the counter of the next draw)."""
        return self._counter

    def subset(self, replicates: npt.ArrayLike) -> BatchRandom:
        """Streams of some replicates only, at the current counter."""
        out = type(self).__new__(type(self))
        out._keys = self._keys[np.asarray(replicates, dtype=np.int64)]
        out._counter = self._counter
        out._offsets = self._offsets
        out._key_ints = _small_key_ints(out._keys)
        return out

    def _check_shape(self, shape: tuple[int, ...]) -> int:
        if len(shape) == 0 or shape[0] != self.n_replicates:
            raise ValueError(
                f"draw shape must start with the number of replicates {self.n_replicates}, "
                f"got {shape}"
            )
        return int(math.prod(shape[1:]))

    def _bit_blocks(self, shape: tuple[int, ...]) -> Iterator[tuple[int, int, np.ndarray]]:
        """The words of a full draw, a block of replicates at a time: ``(start, stop,
        words)`` with ``words`` of shape (stop - start, prod(shape[1:])).

        Blocks of about :data:`_BLOCK_WORDS` words are hashed in two reused buffers that stay
        in the processor's cache, instead of a dozen passes over fresh (R, N) arrays; the
        words equal those of :meth:`_bits`. The buffer is overwritten by the next block.
        """
        per = self._check_shape(shape)
        base = self._next_base()
        offsets = self._element_offsets(per)
        rows = max(1, _BLOCK_WORDS // max(per, 1))
        z = np.empty((min(rows, len(base)), per), np.uint64)
        t = np.empty_like(z)
        for start in range(0, len(base), rows):
            stop = min(start + rows, len(base))
            zz, tt = z[: stop - start], t[: stop - start]
            np.add(base[start:stop, None], offsets, out=zz)
            yield start, stop, _mix64_inplace(zz, tt)

    def _element_offsets(self, per: int) -> np.ndarray:
        """``golden * (j + 1)`` for ``j < per`` (uint64, wrapping), cached between draws."""
        if self._offsets.shape[0] < per:
            self._offsets = _GOLDEN * np.arange(1, per + 1, dtype=np.uint64)
        return self._offsets[:per]

    def _bits_where(self, shape: tuple[int, ...], where: Where, count: int = 1) -> np.ndarray:
        """The words of ``count`` consecutive draws at the cells ``where``: shape (K,) for
        one draw, (count, K) for several (row ``i`` the ``i``-th draw)."""
        per = self._check_shape(shape)
        if isinstance(where, tuple):
            if len(shape) != 2:
                raise ValueError("index pairs for where= need a 2-D draw shape (R, N)")
            r, j = (np.asarray(a, np.int64) for a in where)
            if j.size and not (int(j.min()) >= 0 and int(j.max()) < per):
                raise IndexError(f"where= columns must lie in [0, {per}) for shape {shape}")
        else:
            mask = np.asarray(where, bool)
            if tuple(mask.shape) != shape:
                raise ValueError(f"where must have the draw's shape {shape}, got {mask.shape}")
            r, j = np.nonzero(mask.reshape(shape[0], -1))
        offsets = self._element_offsets(per).take(j)
        if count == 1:
            base = self._next_base()[r]
            base += offsets
            return _mix64_inplace(base)
        bases = np.stack([self._next_base() for _ in range(count)])  # (count, R)
        words = bases[:, r]
        words += offsets
        return _mix64_inplace(words)

    def _next_base(self) -> np.ndarray:
        """``mix64(key_r ^ mix64(c))`` per replicate for the next draw ``c`` (R,), uint64;
        advances the counter."""
        c = _mix64_int(self._counter)
        self._counter += 1
        if self._key_ints is not None:  # few replicates: Python ints beat tiny arrays
            return np.array([_mix64_int(k ^ c) for k in self._key_ints], np.uint64)
        return _mix64(self._keys ^ np.uint64(c))

    @staticmethod
    def _uniform(
        bits: np.ndarray, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """``(top 53 bits + 0.5) / 2**53`` of each word, into ``out`` if given (``bits``
        is overwritten)."""
        np.right_shift(bits, _S11, out=bits)
        if out is None:
            out = bits.astype(np.float64)
        else:
            out[...] = bits  # exact: below 2**53
        out += 0.5
        out *= _INV_2_53
        return out

    def random(self, shape: tuple[int, ...], where: Where | None = None) -> npt.NDArray[np.float64]:
        """Uniform numbers in the open interval (0, 1), shape ``(R, ...)``.

        With ``where`` (a boolean array of ``shape``, or for a 2-D draw the index pair
        ``(rows, cols)`` that ``np.nonzero`` of such a mask gives) only the selected elements
        are computed and returned as a 1-D array in that order; each equals the element the
        full draw would have given, and the draw counter advances by one either way, so
        later draws are unaffected.
        """
        shape = tuple(int(s) for s in shape)
        if where is not None:
            return self._uniform(self._bits_where(shape, where))
        out = np.empty((shape[0], self._check_shape(shape)), np.float64)
        for start, stop, words in self._bit_blocks(shape):
            self._uniform(words, out=out[start:stop])
        return out.reshape(shape)

    def bernoulli(
        self, shape: tuple[int, ...], p: float, where: Where | None = None
    ) -> npt.NDArray[np.bool_]:
        """True with probability ``p``: exactly ``self.random(shape, where) < p``.

        The comparison is made on the raw 64-bit words against a precomputed bound, which
        skips the conversion to floats; the result (and the draw counter) are the same as
        those of :meth:`random` followed by ``< p``.

        Parameters
        ----------
        shape : tuple of int
            Draw shape ``(R, ...)``.
        p : float
            Probability; ``p <= 0`` (or nan) gives all False, ``p >= 1`` all True.
        where : optional
            As in :meth:`random`.

        Examples
        --------
        >>> seeds = replicate_seeds(0, 2)
        >>> a = BatchRandom(seeds).bernoulli((2, 5), 0.3)
        >>> b = BatchRandom(seeds).random((2, 5)) < 0.3
        >>> bool((a == b).all())
        True
        """
        shape = tuple(int(s) for s in shape)
        bound = _bits_threshold(float(p))
        if where is not None:
            bits = self._bits_where(shape, where)
            return np.ones(bits.shape, bool) if bound is None else bits < np.uint64(bound)
        out = np.empty((shape[0], self._check_shape(shape)), bool)
        for start, stop, words in self._bit_blocks(shape):
            if bound is None:
                out[start:stop] = True
            else:
                np.less(words, np.uint64(bound), out=out[start:stop])
        return out.reshape(shape)

    def random_draws(
        self, shape: tuple[int, ...], where: Where, count: int
    ) -> npt.NDArray[np.float64]:
        """``count`` consecutive masked draws of :meth:`random` at the same cells, stacked:
        shape (count, K), row ``i`` equal to the ``i``-th of ``count`` calls of
        ``self.random(shape, where)`` (the draw counter advances by ``count``), hashed in
        one pass.

        Examples
        --------
        >>> seeds = replicate_seeds(0, 2)
        >>> cells = (np.array([0, 1]), np.array([3, 1]))
        >>> a = BatchRandom(seeds).random_draws((2, 5), cells, 2)
        >>> b = BatchRandom(seeds)
        >>> bool((a[1] == [b.random((2, 5), cells), b.random((2, 5), cells)][1]).all())
        True
        """
        count = int(count)
        if count < 1:
            raise ValueError(f"random_draws: count must be >= 1, got {count}")
        return self._uniform(self._bits_where(tuple(int(x) for x in shape), where, count))

    def bernoulli_cells(
        self, shape: tuple[int, int], p: float
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The cells of a 2-D Bernoulli(``p``) draw that come out True, row-major.

        Cell ``j`` of replicate ``r`` is True when its uniform ``u_j < p``. The uniforms are
        never all made: their order statistics are, from the smallest up, until one passes
        ``p``, so the work is proportional to the True cells, ``R N p``, not to ``R N`` (the
        units that act in a session, not all units). The cells are the first ``N`` of
        ``D = 4**h >= N`` slots; with ``E_i`` exponential (element ``i`` of this draw), the
        ``k``-th smallest of the ``D`` slots' uniforms is below ``p`` exactly when
        ``sum_{i<=k} E_i / (D - i) < -log(1 - p)`` (Rényi's representation of uniform
        order statistics), and the slot that holds it is ``pi(k)``, a pseudo-random
        permutation of ``0..D-1`` (a Feistel network on the grid's two sides, keyed by the
        replicate and the draw); slots from ``N`` on hold no cell. Hence every cell is True with
        probability ``p`` independently of the others, the True cells at a smaller ``p``
        are a subset of those at a larger one (common random numbers: a calibration's
        objective moves smoothly with a rate), and replicate ``k`` of a batch gets exactly
        the cells it gets alone. The draw counter advances by one.

        Parameters
        ----------
        shape : tuple of int
            ``(R, N)``.
        p : float
            Probability of each cell; ``p <= 0`` (or nan) selects none, ``p >= 1`` all.

        Returns
        -------
        rows, cols : ndarray of intp, shape (K,)
            The True cells, ordered by row, then column.

        Examples
        --------
        >>> seeds = replicate_seeds(0, 3)
        >>> rows, cols = BatchRandom(seeds).bernoulli_cells((3, 50), 0.1)
        >>> alone = BatchRandom(seeds[2:]).bernoulli_cells((1, 50), 0.1)
        >>> bool((cols[rows == 2] == alone[1]).all())
        True
        >>> more = BatchRandom(seeds).bernoulli_cells((3, 50), 0.3)
        >>> set(zip(rows, cols)) <= set(zip(*more))
        True
        """
        if len(shape) != 2:
            raise ValueError(f"bernoulli_cells needs a 2-D draw shape (R, N), got {shape}")
        shape = (int(shape[0]), int(shape[1]))
        n = self._check_shape(shape)
        base = self._next_base()
        p = float(p)
        if not p > 0.0 or n == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        if p >= 1.0:
            rows_all, cols_all = np.divmod(np.arange(shape[0] * n, dtype=np.intp), n)
            return rows_all, cols_all
        threshold = -math.log1p(-p)
        side_a, side_b = _grid_shape(n)
        slots = side_a * side_b
        mean = slots * p
        # order statistics made per round: enough to pass p in most replicates at once
        width = int(mean + 3.0 * math.sqrt(mean) + 4.0)
        todo = np.arange(shape[0], dtype=np.intp)
        total = np.zeros(shape[0])
        rows: list[npt.NDArray[np.intp]] = []
        counts: list[npt.NDArray[np.intp]] = []
        firsts: list[int] = []
        start = 0
        while todo.size and start < slots:
            stop = min(start + width, slots)
            # (ranks, replicates): the running sums advance along axis 0 for all at once
            words = self._element_offsets(stop)[start:, None] + base[None, todo]
            e = self._uniform(_mix64_inplace(words))
            np.log(e, out=e)
            e /= np.arange(start - slots, stop - slots, dtype=np.float64)[:, None]
            np.cumsum(e, axis=0, out=e)  # E_i / (D - i), summed in rank order
            e += total[None, todo]
            below = e < threshold  # a prefix of each column
            rows.append(todo)
            counts.append(np.count_nonzero(below, axis=0))
            firsts.append(start)
            total[todo] = e[-1]
            todo = todo[below[-1]]
            start = stop
        r_all, k_all = _prefix_cells(rows, counts, firsts)
        perm_keys = _mix64(base ^ _PERMUTATION_SALT)
        slot = _permute_grid(k_all, perm_keys[r_all], side_a, side_b).astype(np.intp)
        flat = r_all * n
        flat += slot
        flat = flat[slot < n]  # slots from n on hold no cell
        flat.sort()
        rows_out, cols_out = np.divmod(flat, n)
        return rows_out, cols_out

    def standard_normal(
        self, shape: tuple[int, ...], where: Where | None = None
    ) -> npt.NDArray[np.float64]:
        """Standard normal numbers (inverse-CDF transform of :meth:`random`); ``where`` as
        in :meth:`random`."""
        from scipy.special import ndtri

        return np.asarray(ndtri(self.random(shape, where)), dtype=np.float64)

"""Which credits count, and how many a unit may use: eligibility masks and usage caps.

:func:`eligible` masks the projects whose credits may be surrendered (covered entities,
the 2024 relaunch, vintages, the scheme); :func:`usage_cap` (national ETS) and
:func:`beijing_usage_cap` / :func:`beijing_offset_use` (Beijing pilot) cap their use;
:func:`legacy_ccer_stock` distributes the legacy CCER stock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import (
    as_float_array,
    as_int_array,
    check_share,
    describe,
)
from carbonsim.market.offsets.conventions import ROUND_DECIMALS, DateLike, as_date
from carbonsim.market.offsets.projects import OffsetProjects

__all__ = [
    "LEGACY_CCER_FIRST_CYCLE_T",
    "RELAUNCH_DATE",
    "BeijingOffsetCap",
    "beijing_offset_use",
    "beijing_usage_cap",
    "eligible",
    "legacy_ccer_stock",
    "usage_cap",
]

#: Relaunch of the CCER market at the Beijing Green Exchange (docs/rules.md#ccer-relaunch:
#: "Relaunch 22 Jan 2024 at the Beijing Green Exchange").
RELAUNCH_DATE: np.datetime64 = np.datetime64("2024-01-22", "D")

#: CCER surrendered in the first compliance cycle, t CO2e (docs/rules.md#ccer-legacy-stock:
#: "About 32.7 Mt of CCER were surrendered in the first cycle"). Used as the default size of
#: the legacy (pre-2017) stock: the stock that remained is of the same order (conf. C).
LEGACY_CCER_FIRST_CYCLE_T: int = 32_700_000

_POST_RELAUNCH_ONLY_FROM: np.datetime64 = np.datetime64("2025-01-01", "D")


# --------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------


_SCHEMES = ("national", "beijing")


def eligible(
    projects: OffsetProjects,
    *,
    as_of: DateLike,
    relaunch_date: DateLike = RELAUNCH_DATE,
    require_post_relaunch: bool | None = None,
    exclude_covered: bool = True,
    vintage_range: tuple[int, int] | None = None,
    scheme: str = "national",
) -> npt.NDArray[np.bool_]:
    """Which projects' credits may be surrendered for compliance on ``as_of``.

    A project is eligible when all of these hold (docs/rules.md#ccer-eligibility):

    - it is registered on or before ``as_of``;
    - if ``require_post_relaunch``: it was registered on or after ``relaunch_date``
      ("from 2025 only credits registered after the 22 Jan 2024 relaunch"); the default
      ``None`` means True when ``as_of`` is in 2025 or later;
    - if ``exclude_covered``: it is not inside an ETS-covered unit ("not from projects whose
      emissions are covered by the ETS");
    - if ``vintage_range=(first, last)``: its crediting period overlaps the calendar years
      ``first..last`` (inclusive), i.e. it can hold credits of those vintages;
    - for ``scheme="national"``: its methodology is usable nationally (Beijing
      carbon-inclusive credits are not); ``scheme="beijing"`` accepts them
      (docs/rules.md#ccer-eligibility).

    Parameters
    ----------
    projects : OffsetProjects
        ``P`` projects.
    as_of : date
        Date of use (e.g. the surrender deadline).
    relaunch_date : date
        Relaunch of the CCER system, default 22 Jan 2024.
    require_post_relaunch : bool or None
        See above.
    exclude_covered : bool
        See above.
    vintage_range : (int, int), optional
        First and last acceptable vintage year.
    scheme : {"national", "beijing"}
        Which market's rules apply.

    Returns
    -------
    ndarray of bool, shape (P,)
    """
    if not isinstance(projects, OffsetProjects):
        raise TypeError(f"projects must be OffsetProjects, got {type(projects).__name__}")
    when = as_date("as_of", as_of)
    relaunch = as_date("relaunch_date", relaunch_date)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    if not isinstance(exclude_covered, (bool, np.bool_)):
        raise TypeError(f"exclude_covered must be a bool, got {describe(exclude_covered)}")
    if require_post_relaunch is None:
        require_post_relaunch = bool(when >= _POST_RELAUNCH_ONLY_FROM)
    elif not isinstance(require_post_relaunch, (bool, np.bool_)):
        raise TypeError(
            f"require_post_relaunch must be a bool or None, got {describe(require_post_relaunch)}"
        )

    ok = projects.registration <= when
    if require_post_relaunch:
        ok &= projects.registration >= relaunch
    if exclude_covered:
        ok &= ~projects.covered_entity
    if vintage_range is not None:
        if (
            not isinstance(vintage_range, tuple)
            or len(vintage_range) != 2
            or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vintage_range
            )
            or vintage_range[0] > vintage_range[1]
        ):
            raise ValueError(
                f"vintage_range must be a (first, last) pair of int years with first <= last, "
                f"got {describe(vintage_range)}"
            )
        first = np.datetime64(f"{int(vintage_range[0]):04d}-01-01", "D")
        after_last = np.datetime64(f"{int(vintage_range[1]) + 1:04d}-01-01", "D")
        ok &= (projects.crediting_start < after_last) & (projects.crediting_end > first)
    if scheme == "national":
        ok &= projects.attribute("national").astype(bool)
    return np.asarray(ok, dtype=bool)


# --------------------------------------------------------------------------------------
# Usage caps
# --------------------------------------------------------------------------------------


def _floor_tonnes(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.floor(np.round(x, ROUND_DECIMALS)).astype(np.int64)


def usage_cap(obligation: npt.ArrayLike, share: float = 0.05) -> npt.NDArray[np.int64]:
    """Most offsets a unit may surrender: ``floor(share x obligation)`` whole tonnes.

    Implements docs/rules.md#offset-limit: "Usage limit: at most 5% of the allowances to be
    surrendered, per year".

    Parameters
    ----------
    obligation : array_like of float, shape (..., N)
        Allowances to be surrendered (verified emissions, after any gap cap), t (>= 0).
    share : float
        Usage limit as a share of the obligation, in [0, 1]; default 0.05.

    Returns
    -------
    ndarray of int64, shape (..., N)
        Cap in whole tonnes (rounded down).

    Examples
    --------
    >>> usage_cap([1_000, 1_019]).tolist()
    [50, 50]
    """
    ob = as_float_array("obligation", obligation, ndim=None, nonnegative=True)
    s = check_share("share", share)
    return _floor_tonnes(ob * s)


@dataclass(frozen=True, eq=False)
class BeijingOffsetCap:
    """Beijing offset caps per unit.

    Attributes
    ----------
    total : ndarray of int64, shape (..., N)
        Most offsets (local and non-local) a unit may use, t.
    nonlocal_max : ndarray of int64, shape (..., N)
        Most offsets from projects outside Beijing, t.
    """

    total: npt.NDArray[np.int64]
    nonlocal_max: npt.NDArray[np.int64]


def beijing_usage_cap(
    allocation: npt.ArrayLike, *, share: float = 0.05, local_min_share: float = 0.5
) -> BeijingOffsetCap:
    """Beijing pilot offset caps: 5% of the annual allocation, at least half from Beijing.

    Implements docs/rules.md#beijing-offset-limit: "Offsets at most 5% of annual allocation,
    at least half from Beijing projects". The half-local requirement is a cap on non-local
    credits of ``(1 - local_min_share) x share`` of the allocation (2.5% with the defaults):

    ``total = floor(share x allocation)``,
    ``nonlocal_max = floor((1 - local_min_share) x share x allocation)``.

    Parameters
    ----------
    allocation : array_like of float, shape (..., N)
        Annual allowance allocation of each unit, t (>= 0).
    share : float
        Offset limit as a share of the allocation, in [0, 1].
    local_min_share : float
        Minimum share of the cap reserved for Beijing projects, in [0, 1].

    Returns
    -------
    BeijingOffsetCap
        ``total`` and ``nonlocal_max``, int64 t, shape (..., N).

    Examples
    --------
    >>> cap = beijing_usage_cap([100_000, 10_010])
    >>> cap.total.tolist(), cap.nonlocal_max.tolist()
    ([5000, 500], [2500, 250])
    """
    alloc = as_float_array("allocation", allocation, ndim=None, nonnegative=True)
    s = check_share("share", share)
    loc = check_share("local_min_share", local_min_share)
    return BeijingOffsetCap(
        total=_floor_tonnes(alloc * s),
        nonlocal_max=_floor_tonnes(alloc * (s * (1.0 - loc))),
    )


def beijing_offset_use(
    cap: BeijingOffsetCap,
    local_available: npt.ArrayLike,
    nonlocal_available: npt.ArrayLike,
    need: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Largest permitted use of local and non-local offsets under the Beijing caps.

    Local credits are used first, then non-local ones up to their own cap and the room
    left under the total cap: ``local = min(local_available, total, need)``,
    ``nonlocal = min(nonlocal_available, nonlocal_max, total - local, need - local)``. This
    maximises ``local + nonlocal`` subject to the caps of :func:`beijing_usage_cap`
    (docs/rules.md#beijing-offset-limit).

    Parameters
    ----------
    cap : BeijingOffsetCap
        Caps, shape (..., N).
    local_available, nonlocal_available : array_like of int, shape (..., N)
        Eligible credits held, t (>= 0).
    need : array_like of int, shape (..., N), optional
        Remaining obligation, t (>= 0); default no limit beyond the caps.

    Returns
    -------
    (local, nonlocal) : tuple of ndarray of int64, shape (..., N)
        Tonnes of each kind to surrender.
    """
    if not isinstance(cap, BeijingOffsetCap):
        raise TypeError(f"cap must be BeijingOffsetCap, got {type(cap).__name__}")
    la = as_int_array("local_available", local_available, ndim=None, nonnegative=True)
    na = as_int_array("nonlocal_available", nonlocal_available, ndim=None, nonnegative=True)
    total = cap.total
    if need is not None:
        total = np.minimum(total, as_int_array("need", need, ndim=None, nonnegative=True))
    local = np.minimum(la, total)
    nonlocal_ = np.minimum(np.minimum(na, cap.nonlocal_max), total - local)
    return local.astype(np.int64), nonlocal_.astype(np.int64)


def legacy_ccer_stock(
    weights: npt.ArrayLike, *, total: int = LEGACY_CCER_FIRST_CYCLE_T
) -> npt.NDArray[np.int64]:
    """Distribute a legacy (pre-2017) CCER stock over holders, exactly ``total`` tonnes.

    The default ``total`` is the 32.7 Mt surrendered in the first cycle
    (docs/rules.md#ccer-legacy-stock: "legacy credits were used"; "About 32.7 Mt of CCER
    were surrendered in the first cycle"), taken as the order of the legacy stock (conf. C:
    pass your own). Shares are proportional to ``weights`` and rounded by largest remainder
    (ties to the lower index) so the result sums exactly to ``total`` along the last axis.

    Parameters
    ----------
    weights : array_like of float, shape (..., N)
        Relative holdings, e.g. each unit's expected offset demand (>= 0, positive sum
        along the last axis).
    total : int
        Stock to distribute, t (>= 0).

    Returns
    -------
    ndarray of int64, shape (..., N)
        Legacy credits per holder, t; sums to ``total`` along the last axis.

    Examples
    --------
    >>> legacy_ccer_stock([1, 1, 1], total=10).tolist()
    [4, 3, 3]
    """
    w = as_float_array("weights", weights, ndim=None, nonnegative=True)
    if w.ndim == 0:
        raise ValueError(f"weights must have at least one axis, got shape {w.shape}")
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise ValueError(f"total must be a non-negative int (t), got {describe(total)}")
    sums = w.sum(axis=-1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("weights must have a positive sum along the last axis")
    exact = w / sums * float(total)
    base = np.floor(exact).astype(np.int64)
    short = int(total) - base.sum(axis=-1, keepdims=True)
    remainder = exact - base
    order = np.argsort(-remainder, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(w.shape[-1]), axis=-1)
    return base + (rank < short).astype(np.int64)

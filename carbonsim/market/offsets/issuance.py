"""Issuance of offset credits for a monitoring period, with lags and deferral.

:func:`issued_credits` turns each project's expected reductions in a period into whole
credits per replicate; :data:`FIRST_ISSUANCE` defers the first post-relaunch issuance
(docs/rules.md#ccer-issuance: "No new credits issued in 2024").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from carbonsim._random import SeedLike, as_generator
from carbonsim._validation import (
    describe,
)
from carbonsim.market.offsets.conventions import (
    ROUND_DECIMALS,
    DateLike,
    as_date,
    year_fraction,
)
from carbonsim.market.offsets.projects import OffsetProjects

__all__ = ["FIRST_ISSUANCE", "Issuance", "issued_credits"]

# the offsets' logger, named as before the offsets became a package
logger = logging.getLogger("carbonsim.market.offsets")

#: First issuance of post-relaunch credits (docs/rules.md#ccer-issuance: "No new credits
#: were issued in 2024 (first issuance March 2025)"). The rule gives the month only; the
#: first day of the month is used.
FIRST_ISSUANCE: np.datetime64 = np.datetime64("2025-03-01", "D")


# --------------------------------------------------------------------------------------
# Issuance
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Issuance:
    """Credits issued for one monitoring period.

    Attributes
    ----------
    credits : ndarray of int64, shape (R, P)
        Whole tonnes credited per replicate and project (>= 0).
    issue_date : ndarray of datetime64[D], shape (P,)
        Date the credits are issued (lag and deferral applied); the same in every
        replicate.
    expected : ndarray of float64, shape (P,)
        Expected reductions in the period, t CO2e (capacity x crediting-year fraction).
    vintage : int
        Calendar year of the period start (the credits' vintage).
    """

    credits: npt.NDArray[np.int64]
    issue_date: npt.NDArray[np.datetime64]
    expected: npt.NDArray[np.float64]
    vintage: int


def issued_credits(
    projects: OffsetProjects,
    period_start: DateLike,
    period_end: DateLike,
    *,
    rng: SeedLike | Sequence[SeedLike],
    replicates: int = 1,
    first_issuance: DateLike | None = None,
) -> Issuance:
    """Credits issued for reductions in the monitoring period ``[period_start, period_end)``.

    Realised reductions of project ``p`` in replicate ``r``::

        expected[p] = capacity[p] * year_fraction(overlap of the period and the crediting
                                                   period of p)
        realised[r, p] = expected[p] * exp(sigma[p] * z[r, p] - sigma[p]**2 / 2)

    with ``z`` standard normal (mean-one lognormal noise), and the credits are
    ``floor(realised)`` whole tonnes (a fractional tonne is not issued). Credits are issued
    on::

        issue_date[p] = max(period_end + issuance_lag[p], registration[p], first_issuance)

    so a lag can push issuance into the next year, and no credit is issued before
    registration or before ``first_issuance``. Pass ``first_issuance=FIRST_ISSUANCE`` to
    model the relaunch rule "no new credits were issued in 2024 (first issuance March
    2025)" (docs/rules.md#ccer-issuance).

    Parameters
    ----------
    projects : OffsetProjects
        ``P`` projects.
    period_start, period_end : date
        Monitoring period, ``period_end`` exclusive (``period_end > period_start``).
    rng : int, SeedSequence, Generator, None, or a sequence of these
        Randomness. One seed or generator draws the ``R x P`` standard normals in one call.
        A sequence (e.g. :func:`carbonsim._random.replicate_seeds` children) gives one
        stream per replicate, so replicate ``k`` gets the same credits alone or in a batch;
        ``R`` is then its length.
    replicates : int
        Number of replicates ``R`` (>= 1); with a sequence ``rng``, 1 or its length.
    first_issuance : date, optional
        Earliest issuance date; ``None`` applies no deferral.

    Returns
    -------
    Issuance
        ``credits`` (R, P) int64 t, ``issue_date`` (P,), ``expected`` (P,) t, ``vintage``.
    """
    if not isinstance(projects, OffsetProjects):
        raise TypeError(f"projects must be OffsetProjects, got {type(projects).__name__}")
    start = as_date("period_start", period_start)
    end = as_date("period_end", period_end)
    if end <= start:
        raise ValueError(f"period_end must be after period_start, got {start} to {end}")
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)):
        raise TypeError(f"replicates must be an int, got {describe(replicates)}")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    if isinstance(rng, (list, tuple)):
        if not rng:
            raise ValueError("rng must not be an empty sequence")
        if replicates not in (1, len(rng)):
            raise ValueError(
                f"replicates must be 1 or len(rng) = {len(rng)} when rng is a sequence, "
                f"got {replicates}"
            )
        gens = [as_generator(g) for g in rng]
        z = np.stack([g.standard_normal(len(projects)) for g in gens])
    else:
        gen = as_generator(cast(SeedLike, rng))
        z = gen.standard_normal((int(replicates), len(projects)))

    lo = np.maximum(projects.crediting_start, start)
    hi = np.minimum(projects.crediting_end, end)
    expected = projects.capacity * year_fraction(lo, hi)
    sig = projects.sigma
    realised = expected * np.exp(sig * z - 0.5 * sig**2)
    credits = np.floor(np.round(realised, ROUND_DECIMALS)).astype(np.int64)

    issue = np.maximum(end + projects.issuance_lag.astype("timedelta64[D]"), projects.registration)
    if first_issuance is not None:
        issue = np.maximum(issue, as_date("first_issuance", first_issuance))
    vintage = int(start.astype("datetime64[Y]").astype(np.int64)) + 1970
    logger.debug("issued %d t over %d projects for %s", int(credits.sum()), len(projects), start)
    return Issuance(
        credits=credits,
        issue_date=issue.astype("datetime64[D]"),
        expected=expected,
        vintage=vintage,
    )

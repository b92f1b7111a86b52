"""Types, errors and constants that the ledger's modules share.

Nothing here holds state: the type aliases of the state arrays, the vintage rule, the
operation error, the result of :meth:`~carbonsim.market.ledger.Ledger.allocate`, one line of
the journal, and the tolerance of the cash identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "CASH_ATOL",
    "CASH_RTOL",
    "AllocationResult",
    "FloatArray",
    "IntArray",
    "JournalEntry",
    "LedgerError",
    "VintageRule",
    "default_vintage_rule",
    "readonly_view",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: A vintage rule answers "may allowances of ``vintage`` be used for compliance year
#: ``year``?": ``rule(vintage, year) -> bool``.
VintageRule = Callable[[int, int], bool]

# Relative tolerance of the cash identity: cash is float64, so sums of many products may
# differ from the exact value by a few ulps of the gross money moved.
CASH_RTOL = 1e-9
CASH_ATOL = 1e-6


def default_vintage_rule(vintage: int, year: int) -> bool:
    """Allowances of any vintage up to the compliance year are valid (unrestricted banking).

    This is the China national ETS rule before the 2024-25 banking limit
    (docs/rules.md#banking: "Banking: unrestricted until 2023").
    """
    return vintage <= year


class LedgerError(ValueError):
    """An operation was refused: bad amounts, or a holding would go negative.

    The message names the operation, the replicate, the unit and the amounts. The ledger is
    unchanged when this is raised.
    """


class AllocationResult(NamedTuple):
    """What :meth:`Ledger.allocate` did, t, each of shape (R, N).

    Attributes
    ----------
    delivered : ndarray of int64
        Tonnes credited to each unit.
    repaid : ndarray of int64
        Tonnes withheld to repay earlier borrowing.
    deducted : ndarray of int64
        Tonnes withheld as a penalty deduction and retired.
    """

    delivered: IntArray
    repaid: IntArray
    deducted: IntArray


@dataclass
class JournalEntry:
    """Running totals of one operation name in the ledger's journal.

    Attributes
    ----------
    calls : int
        Times the operation ran.
    movements, tonnes : ndarray of int64, shape (R,)
        Non-zero unit-level entries moved, and tonnes moved, per replicate.
    cash : ndarray of float64, shape (R,)
        Money moved per replicate, currency.
    """

    calls: int
    movements: IntArray
    tonnes: IntArray
    cash: FloatArray


def readonly_view(arr: np.ndarray) -> Any:
    """A read-only view of ``arr`` (the array itself stays writeable)."""
    view = arr.view()
    view.flags.writeable = False
    return view

"""The registry ledger: every allowance, credit and cash movement, with proof of conservation.

The ledger is the single source of truth for holdings (``DESIGN.md``, "Architecture"). It
keeps integer tonnes (``int64``) so conservation is exact, with a leading replicate axis
``R`` so that Monte Carlo replicates advance in lockstep:

============================  ===========  ============================================
account                        shape        meaning
============================  ===========  ============================================
``allowances``                 (R, N, V)    allowances held by units, t, by vintage
``offsets``                    (R, N, K)    offset credits held by units, t, by class
``cash``                       (R, N)       units' money, currency
``government_allowances``      (R, V)       issued, not (yet) held by a unit: auction
                                            reserve, market stability reserve, bought back
``project_offsets``            (R, K)       credits issued to project owners, not yet sold
``government_cash``            (R,)         fines, auction revenue minus buy-back spending
``project_cash``               (R,)         money paid to project owners for credits
============================  ===========  ============================================

Flow accounts (cumulative, never decreasing) per replicate and vintage ``(R, V)``:
``issued``, ``carried_in``, ``surrendered``, ``cancelled``, ``expired``, ``deducted``,
``carried_out``; per replicate and offset class ``(R, K)``: ``offsets_issued``,
``offsets_surrendered``, ``offsets_cancelled``, ``offsets_expired``. Memo accounts that hold
no tonnes: ``pending_deductions`` and ``borrowed`` ``(R, N, V)``.

Conservation identities, checked by :meth:`Ledger.check` per replicate ``r`` and vintage
``v`` or class ``k``::

    issued + carried_in == government + sum_units(allowances)
                           + surrendered + cancelled + expired + deducted + carried_out
    offsets_issued == project_offsets + sum_units(offsets)
                      + offsets_surrendered + offsets_cancelled + offsets_expired
    sum_units(cash) + government_cash + project_cash == cash_deposited - cash_withdrawn

Operations (``from -> to``):

- allowances: :meth:`~Ledger.issue` (created -> government), :meth:`~Ledger.allocate`
  (government or created -> units, net of borrowing repayments and deductions),
  :meth:`~Ledger.claw_back` (units -> government), :meth:`~Ledger.sell` and
  :meth:`~Ledger.buy_back` (government <-> units, with cash), :meth:`~Ledger.transfer` and
  :meth:`~Ledger.settle_trades` (units <-> units, with cash), :meth:`~Ledger.surrender`,
  :meth:`~Ledger.cancel`, :meth:`~Ledger.cancel_government`, :meth:`~Ledger.expire`
  (-> retired), :meth:`~Ledger.carry` (vintage -> later vintage), :meth:`~Ledger.deduct`
  and :meth:`~Ledger.borrow` (memo accounts, netted at allocation);
- offsets: :meth:`~Ledger.issue_offsets`, :meth:`~Ledger.transfer_offsets` (project owners
  -> units, with cash), :meth:`~Ledger.settle_offset_trades`,
  :meth:`~Ledger.surrender_offsets`, :meth:`~Ledger.cancel_offsets`,
  :meth:`~Ledger.expire_offsets`;
- cash: :meth:`~Ledger.deposit`, :meth:`~Ledger.withdraw` (outside <-> units),
  :meth:`~Ledger.pay`, :meth:`~Ledger.receive` (units <-> government).

Every operation is vectorised over ``(R, N)`` (loops run over the few vintages only),
validates all its inputs and the resulting holdings *before* it changes anything (a failed
operation leaves the ledger exactly as it was) and adds one line per operation name to an
aggregate journal (calls, unit movements, tonnes and money per replicate), never one Python
object per movement.

Design choices
--------------
- **Vintages and banking.** Holdings keep their vintage. Banking is holding an older
  vintage that remains valid; which vintages count for a compliance year is a rule the
  caller gives (:meth:`Ledger.eligible_vintages`). :meth:`Ledger.expire` removes a vintage
  that is no longer valid; :meth:`Ledger.carry` re-denominates holdings into a later vintage
  (e.g. the 2024-25 carry-over into the 2025 vintage, ``ets-rules.md`` "Compliance
  flexibility and penalties", "Banking").
- **Delivery order.** Whenever a unit gives up allowances without naming a vintage
  (trades, surrender, cancellation, buy-back, carry) it delivers its **oldest** eligible
  vintage first.
- **Trade matching.** :meth:`Ledger.settle_trades` nets each unit's buys and sells; sellers
  deliver oldest first into a per-replicate pool, and the pool is split among buyers pro
  rata to their net purchases in whole tonnes: each buyer first receives
  ``floor(bought x pool_v / pool_total)`` of vintage ``v``; the few remaining tonnes (fewer
  than ``V`` per buyer, fewer than ``N`` per vintage) go out by a north-west-corner pass,
  buyers in unit order and vintages oldest first. Every buyer gets exactly what it bought,
  every delivered tonne goes to a buyer, and the per-vintage net flow balances.
- **Penalty deductions and borrowing** are netted at allocation.
  :meth:`Ledger.deduct` registers a deduction "from the next allocation" (``ets-rules.md``
  "Compliance flexibility and penalties", "Penalty"); :meth:`Ledger.allocate` of vintage
  ``v`` first repays outstanding borrowing against vintages ``<= v``, then applies pending
  deductions registered for vintages ``<= v`` (oldest first); whatever the allocation cannot
  cover stays pending for the next one. Deducted tonnes are retired into ``deducted`` (they
  settle the unit's past shortfall). :meth:`Ledger.borrow` allocates tonnes of a future
  vintage early and records the advance (``ets-rules.md``, "Borrowing: 2021-22 only").
- **Cash** is a money account in the ledger so that trades, fines and auctions conserve it.
  Units' cash may go negative by default (purchases and fines financed on credit); build the
  ledger with ``allow_negative_cash=False`` to enforce budgets. Government cash is not
  bounded. External money enters by :meth:`Ledger.deposit` and leaves by
  :meth:`Ledger.withdraw`.
- **Short positions.** With ``allow_negative=True`` a unit may deliver more than it holds;
  the missing tonnes are taken from the newest vintage it may deliver, which goes negative.
  Expiry removes only positive holdings, so a short position stays visible.

Examples
--------
>>> import numpy as np
>>> led = Ledger(1, ["a", "b"], [2023, 2024])
>>> led.issue(2023, 1_000)
>>> _ = led.allocate(2023, [[600, 400]])
>>> _ = led.settle_trades(buy_qty=[[0, 100]], sell_qty=[[100, 0]], price=60.0)
>>> led.allowances[0, :, 0].tolist(), led.cash[0].tolist()
([500, 500], [6000.0, -6000.0])
>>> int(led.surrender([[500, 450]], vintages=[2023]).sum())
950
>>> report = led.check()
>>> int(report.allowances_retired[0]), int(report.allowances_outstanding[0])
(950, 50)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._cells import run_starts, sum_cells
from carbonsim._validation import as_float_array, as_int_array, describe

__all__ = [
    "AllocationResult",
    "ConservationError",
    "Ledger",
    "LedgerError",
    "LedgerReport",
    "VintageRule",
    "default_vintage_rule",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: A vintage rule answers "may allowances of ``vintage`` be used for compliance year
#: ``year``?": ``rule(vintage, year) -> bool``.
VintageRule = Callable[[int, int], bool]

_ALLOWANCE_FLOWS = (
    "issued",
    "carried_in",
    "surrendered",
    "cancelled",
    "expired",
    "deducted",
    "carried_out",
)
_OFFSET_FLOWS = ("issued", "surrendered", "cancelled", "expired")

# Relative tolerance of the cash identity: cash is float64, so sums of many products may
# differ from the exact value by a few ulps of the gross money moved.
_CASH_RTOL = 1e-9
_CASH_ATOL = 1e-6


def default_vintage_rule(vintage: int, year: int) -> bool:
    """Allowances of any vintage up to the compliance year are valid (unrestricted banking).

    This is the China national ETS rule before the 2024-25 banking limit (``ets-rules.md``,
    "Compliance flexibility and penalties", "Banking: unrestricted until 2023").
    """
    return vintage <= year


class LedgerError(ValueError):
    """An operation was refused: bad amounts, or a holding would go negative.

    The message names the operation, the replicate, the unit and the amounts. The ledger is
    unchanged when this is raised.
    """


class ConservationError(RuntimeError):
    """A conservation identity of the ledger does not hold (an internal inconsistency)."""


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


@dataclass(frozen=True)
class LedgerReport:
    """Totals proving conservation, per replicate, returned by :meth:`Ledger.check`.

    Attributes
    ----------
    allowances_issued : ndarray of int64, shape (R,)
        All allowances ever issued, t (carry-overs excluded: they re-denominate tonnes).
    allowances_outstanding : ndarray of int64, shape (R,)
        Held by units and the government, t.
    allowances_retired : ndarray of int64, shape (R,)
        Surrendered, cancelled, expired and deducted, t.
    offsets_issued, offsets_outstanding, offsets_retired : ndarray of int64, shape (R,)
        The same for offset credits (outstanding includes project owners' accounts), t.
    cash_total : ndarray of float64, shape (R,)
        Units' plus government plus project owners' cash, currency.
    cash_error : float
        Largest absolute deviation of ``cash_total`` from deposits minus withdrawals.
    """

    allowances_issued: IntArray
    allowances_outstanding: IntArray
    allowances_retired: IntArray
    offsets_issued: IntArray
    offsets_outstanding: IntArray
    offsets_retired: IntArray
    cash_total: FloatArray
    cash_error: float


@dataclass
class _JournalEntry:
    calls: int
    movements: IntArray
    tonnes: IntArray
    cash: FloatArray


def _readonly(arr: np.ndarray) -> Any:
    view = arr.view()
    view.flags.writeable = False
    return view


def _draw_oldest(hold: IntArray, qty: IntArray, vidx: IntArray) -> tuple[IntArray, IntArray]:
    """Take ``qty`` from ``hold`` (R, M, V) over vintage indices ``vidx``, oldest first.

    Returns the tonnes taken per vintage (R, M, V) and what could not be covered (R, M).
    Only positive holdings are drawn on.
    """
    take = np.zeros_like(hold)
    rem = qty.copy()
    for v in vidx:
        t = np.minimum(rem, np.maximum(hold[:, :, v], 0))
        take[:, :, v] = t
        rem -= t
    return take, rem


def _split_pool(weights: IntArray, pool: IntArray) -> IntArray:
    """Split ``pool`` (R, V) among rows with ``weights`` (R, N), in whole tonnes.

    ``weights.sum(1) == pool.sum(1)`` is required. Returns ``X`` (R, N, V) with
    ``X.sum(2) == weights`` and ``X.sum(1) == pool``: the pro-rata floor, then the remainders
    by a north-west-corner pass (rows in order, vintages oldest first).
    """
    active = np.flatnonzero(weights.any(axis=0))
    if len(active) < weights.shape[1]:
        # only buyers take part; zero rows change neither the floor nor the corner pass,
        # so splitting over the active columns gives the identical result, faster
        out = np.zeros((*weights.shape, pool.shape[1]), np.int64)
        if len(active):
            out[:, active, :] = _split_pool(weights[:, active], pool)
        return out
    total = pool.sum(axis=1)
    safe = np.where(total > 0, total, 1)
    if int(weights.max(initial=0)) * int(pool.max(initial=0)) >= 2**62:
        prod = weights.astype(object)[:, :, None] * pool.astype(object)[:, None, :]
        base = (prod // safe.astype(object)[:, None, None]).astype(np.int64)
    else:
        base = weights[:, :, None] * pool[:, None, :] // safe[:, None, None]
    row = weights - base.sum(axis=2)
    col = pool - base.sum(axis=1)
    row_hi = np.cumsum(row, axis=1)
    col_hi = np.cumsum(col, axis=1)
    overlap = np.minimum(row_hi[:, :, None], col_hi[:, None, :]) - np.maximum(
        (row_hi - row)[:, :, None], (col_hi - col)[:, None, :]
    )
    return base + np.maximum(overlap, 0)


def _sum_by_replicate(rep: IntArray, values: IntArray, n_rep: int) -> IntArray:
    """Sum the rows of ``values`` (P, V) per replicate; ``rep`` (P,) sorted. (R, V), exact.

    ``np.add.reduceat`` over the runs of equal ``rep``: the integer result of
    ``np.add.at(out, rep, values)`` without its per-element cost.
    """
    out = np.zeros((n_rep, *values.shape[1:]), values.dtype)
    if len(rep):
        starts = np.flatnonzero(run_starts(rep))
        out[rep[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def _split_pool_cells(rep: IntArray, weights: IntArray, pool: IntArray) -> IntArray:
    """:func:`_split_pool` on participating cells only.

    ``rep`` (P,) is the replicate of each cell, cells sorted by replicate then unit;
    ``weights`` (P,) their purchases; ``pool`` (R, V). Returns (P, V): the same numbers
    :func:`_split_pool` gives those cells (zero-weight rows change nothing there).
    """
    n_rep = pool.shape[0]
    total = pool.sum(axis=1)
    safe = np.where(total > 0, total, 1)
    if int(weights.max(initial=0)) * int(pool.max(initial=0)) >= 2**62:
        prod = weights.astype(object)[:, None] * pool[rep].astype(object)
        base = (prod // safe[rep].astype(object)[:, None]).astype(np.int64)
    else:
        base = weights[:, None] * pool[rep] // safe[rep][:, None]
    row = weights - base.sum(axis=1)
    col = pool - _sum_by_replicate(rep, base, n_rep)
    # cumulative remainder of the rows within each replicate (cells sorted by replicate)
    csum = np.cumsum(row)
    first = np.searchsorted(rep, np.arange(n_rep))
    # cumulative sum before each replicate
    before = np.concatenate((np.zeros(1, csum.dtype), csum))[first]
    row_hi = csum - before[rep]
    col_hi = np.cumsum(col, axis=1)
    overlap = np.minimum(row_hi[:, None], col_hi[rep]) - np.maximum(
        (row_hi - row)[:, None], (col_hi - col)[rep]
    )
    return base + np.maximum(overlap, 0)


class Ledger:
    """Registry of allowances by vintage, offset credits by class, and cash.

    Parameters
    ----------
    n_replicates : int
        Number of replicates ``R`` (>= 1).
    unit_ids : pandas.Index or sequence of hashable
        Unique names of the ``N`` units (rows ``0..N-1``).
    vintages : sequence of int
        Allowance vintages (years), strictly increasing, e.g. ``range(2019, 2026)``.
    offset_classes : sequence of str
        Names of the ``K`` offset credit classes, e.g. ``("legacy CCER", "new CCER")``.
    allow_negative : bool
        Allow units' allowance and offset holdings to go negative (short positions).
    allow_negative_cash : bool
        Allow units' cash to go negative (default True: cash is an accounting of money
        spent and received; set False to enforce budgets).

    Notes
    -----
    All state arrays are exposed as read-only views; change them only through the
    operations. See the module docstring for the accounts and the conservation identities.
    """

    def __init__(
        self,
        n_replicates: int,
        unit_ids: pd.Index | Sequence[Hashable],
        vintages: Sequence[int] | npt.ArrayLike,
        offset_classes: Sequence[str] = (),
        *,
        allow_negative: bool = False,
        allow_negative_cash: bool = True,
    ) -> None:
        if isinstance(n_replicates, bool) or not isinstance(n_replicates, (int, np.integer)):
            raise TypeError(f"n_replicates must be an int, got {describe(n_replicates)}")
        if n_replicates < 1:
            raise ValueError(f"n_replicates must be >= 1, got {n_replicates}")
        if isinstance(unit_ids, pd.MultiIndex):
            raise TypeError("unit_ids must be a flat pandas Index or sequence, not a MultiIndex")
        ids = pd.Index(unit_ids).rename("unit")
        if len(ids) == 0:
            raise ValueError("unit_ids must name at least one unit, got an empty sequence")
        if not ids.is_unique:
            dup = ids[ids.duplicated()].unique().tolist()
            raise ValueError(f"unit_ids must be unique, got duplicates {describe(dup)}")
        vint = as_int_array("vintages", vintages, ndim=1)
        if vint.size == 0:
            raise ValueError("vintages must hold at least one year, got an empty sequence")
        if np.any(np.diff(vint) <= 0):
            raise ValueError(
                f"vintages must be strictly increasing years, got {describe(vint.tolist())}"
            )
        classes = tuple(offset_classes)
        for c in classes:
            if not isinstance(c, str) or not c:
                raise TypeError(f"offset_classes must be non-empty strings, got {c!r}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"offset_classes must be unique, got {classes!r}")
        for flag, value in (
            ("allow_negative", allow_negative),
            ("allow_negative_cash", allow_negative_cash),
        ):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{flag} must be a bool, got {describe(value)}")

        self._unit_ids = ids
        self._vintages = pd.Index(vint, name="vintage")
        self._classes = pd.Index(list(classes), name="offset_class", dtype=object)
        self._vpos = {int(y): i for i, y in enumerate(vint)}
        self._default_valid: dict[int, IntArray] = {}  # year -> valid vintage indices
        self._kpos = {c: i for i, c in enumerate(classes)}
        self.allow_negative = bool(allow_negative)
        self.allow_negative_cash = bool(allow_negative_cash)

        r, n, v, k = int(n_replicates), len(ids), len(vint), len(classes)
        self._allowances = np.zeros((r, n, v), np.int64)
        self._offsets = np.zeros((r, n, k), np.int64)
        self._cash = np.zeros((r, n), np.float64)
        self._government = np.zeros((r, v), np.int64)
        self._project_offsets = np.zeros((r, k), np.int64)
        self._government_cash = np.zeros(r, np.float64)
        self._project_cash = np.zeros(r, np.float64)
        self._flows = {name: np.zeros((r, v), np.int64) for name in _ALLOWANCE_FLOWS}
        self._oflows = {name: np.zeros((r, k), np.int64) for name in _OFFSET_FLOWS}
        self._pending = np.zeros((r, n, v), np.int64)
        self._borrowed = np.zeros((r, n, v), np.int64)
        self._cash_in = np.zeros(r, np.float64)
        self._cash_out = np.zeros(r, np.float64)
        self._cash_gross = np.zeros(r, np.float64)
        self._journal: dict[str, _JournalEntry] = {}

    # ------------------------------------------------------------------ dimensions, views

    @property
    def n_replicates(self) -> int:
        """Number of replicates ``R``."""
        return int(self._allowances.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units ``N``."""
        return int(self._allowances.shape[1])

    @property
    def unit_ids(self) -> pd.Index:
        """Unit names, a pandas Index named ``unit`` (row order)."""
        return self._unit_ids

    @property
    def vintages(self) -> pd.Index:
        """Allowance vintages (years), a pandas Index named ``vintage``."""
        return self._vintages

    @property
    def offset_classes(self) -> pd.Index:
        """Offset credit classes, a pandas Index named ``offset_class``."""
        return self._classes

    @property
    def allowances(self) -> IntArray:
        """Allowances held by units, t, shape (R, N, V), read-only."""
        return _readonly(self._allowances)

    @property
    def offsets(self) -> IntArray:
        """Offset credits held by units, t, shape (R, N, K), read-only."""
        return _readonly(self._offsets)

    @property
    def cash(self) -> FloatArray:
        """Units' cash, currency, shape (R, N), read-only."""
        return _readonly(self._cash)

    @property
    def government_allowances(self) -> IntArray:
        """Issued allowances held by the government, t, shape (R, V), read-only."""
        return _readonly(self._government)

    @property
    def project_offsets(self) -> IntArray:
        """Credits held by project owners (not yet sold to units), t, shape (R, K)."""
        return _readonly(self._project_offsets)

    @property
    def government_cash(self) -> FloatArray:
        """Government cash (fines and sales minus purchases), currency, shape (R,)."""
        return _readonly(self._government_cash)

    @property
    def project_cash(self) -> FloatArray:
        """Money paid to project owners for credits, currency, shape (R,)."""
        return _readonly(self._project_cash)

    @property
    def issued(self) -> IntArray:
        """Allowances issued, t, shape (R, V)."""
        return _readonly(self._flows["issued"])

    @property
    def carried_in(self) -> IntArray:
        """Allowances re-denominated into each vintage by :meth:`carry`, t, shape (R, V)."""
        return _readonly(self._flows["carried_in"])

    @property
    def carried_out(self) -> IntArray:
        """Allowances re-denominated out of each vintage by :meth:`carry`, t, shape (R, V)."""
        return _readonly(self._flows["carried_out"])

    @property
    def surrendered(self) -> IntArray:
        """Allowances surrendered for compliance, t, shape (R, V)."""
        return _readonly(self._flows["surrendered"])

    @property
    def cancelled(self) -> IntArray:
        """Allowances cancelled (voluntarily, banking limit, invalidation), t, shape (R, V)."""
        return _readonly(self._flows["cancelled"])

    @property
    def expired(self) -> IntArray:
        """Allowances removed by :meth:`expire`, t, shape (R, V)."""
        return _readonly(self._flows["expired"])

    @property
    def deducted(self) -> IntArray:
        """Allowances withheld from allocations as penalty deductions, t, shape (R, V)."""
        return _readonly(self._flows["deducted"])

    @property
    def offsets_issued(self) -> IntArray:
        """Offset credits issued, t, shape (R, K)."""
        return _readonly(self._oflows["issued"])

    @property
    def offsets_surrendered(self) -> IntArray:
        """Offset credits surrendered, t, shape (R, K)."""
        return _readonly(self._oflows["surrendered"])

    @property
    def offsets_cancelled(self) -> IntArray:
        """Offset credits cancelled, t, shape (R, K)."""
        return _readonly(self._oflows["cancelled"])

    @property
    def offsets_expired(self) -> IntArray:
        """Offset credits removed by :meth:`expire_offsets`, t, shape (R, K)."""
        return _readonly(self._oflows["expired"])

    @property
    def pending_deductions(self) -> IntArray:
        """Deductions registered but not yet applied, t, shape (R, N, V), by the vintage
        from whose allocation they are due."""
        return _readonly(self._pending)

    @property
    def borrowed(self) -> IntArray:
        """Outstanding advances, t, shape (R, N, V), by the vintage they were borrowed from."""
        return _readonly(self._borrowed)

    @property
    def cash_deposited(self) -> FloatArray:
        """Money that entered units' accounts from outside, currency, shape (R,)."""
        return _readonly(self._cash_in)

    @property
    def cash_withdrawn(self) -> FloatArray:
        """Money that left units' accounts to outside, currency, shape (R,)."""
        return _readonly(self._cash_out)

    def __repr__(self) -> str:
        return (
            f"Ledger(n_replicates={self.n_replicates}, n_units={self.n_units}, "
            f"vintages={self._vintages.tolist()}, offset_classes={self._classes.tolist()}, "
            f"allow_negative={self.allow_negative})"
        )

    def copy(self) -> Ledger:
        """An independent deep copy (for snapshots and what-if runs)."""
        return copy.deepcopy(self)

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of every state array, keyed by account name (for recorders and tests)."""
        out: dict[str, np.ndarray] = {
            "allowances": self._allowances.copy(),
            "offsets": self._offsets.copy(),
            "cash": self._cash.copy(),
            "government_allowances": self._government.copy(),
            "project_offsets": self._project_offsets.copy(),
            "government_cash": self._government_cash.copy(),
            "project_cash": self._project_cash.copy(),
            "pending_deductions": self._pending.copy(),
            "borrowed": self._borrowed.copy(),
            "cash_deposited": self._cash_in.copy(),
            "cash_withdrawn": self._cash_out.copy(),
        }
        out.update({name: a.copy() for name, a in self._flows.items()})
        out.update({f"offsets_{name}": a.copy() for name, a in self._oflows.items()})
        return out

    # ------------------------------------------------------------------ lookups

    def vintage_index(self, vintage: int, *, op: str = "ledger") -> int:
        """Position of ``vintage`` on the vintage axis; ``ValueError`` if unknown."""
        if isinstance(vintage, (bool, np.bool_)) or not isinstance(vintage, (int, np.integer)):
            raise TypeError(f"{op}: vintage must be an int year, got {describe(vintage)}")
        try:
            return self._vpos[int(vintage)]
        except KeyError:
            raise ValueError(
                f"{op}: vintage {int(vintage)} is not in the ledger; valid vintages are "
                f"{self._vintages.tolist()}"
            ) from None

    def offset_class_index(self, offset_class: str, *, op: str = "ledger") -> int:
        """Position of ``offset_class`` on the class axis; ``ValueError`` if unknown."""
        try:
            return self._kpos[offset_class]
        except (KeyError, TypeError):
            raise ValueError(
                f"{op}: offset class {offset_class!r} is not in the ledger; valid classes "
                f"are {self._classes.tolist()}"
            ) from None

    def _vintage_indices(self, op: str, vintages: int | Iterable[int] | None) -> IntArray:
        if vintages is None:
            return np.arange(len(self._vintages), dtype=np.int64)
        if isinstance(vintages, (int, np.integer)):
            return np.array([self.vintage_index(vintages, op=op)], dtype=np.int64)
        idx = sorted({self.vintage_index(v, op=op) for v in vintages})
        return np.asarray(idx, dtype=np.int64)

    def _valid_vintage_indices(self, year: int, rule: VintageRule | None) -> IntArray:
        """Indices of :meth:`eligible_vintages`; cached per year for the default rule (the
        vintage axis never changes), which the session loop asks for several times a
        session."""
        if rule is None and type(year) is int:
            idx = self._default_valid.get(year)
            if idx is None:
                idx = self._vintage_indices("valid_holdings", self.eligible_vintages(year))
                idx.setflags(write=False)
                self._default_valid[year] = idx
            return idx
        return self._vintage_indices("valid_holdings", self.eligible_vintages(year, rule))

    def eligible_vintages(self, year: int, rule: VintageRule | None = None) -> list[int]:
        """Vintages valid for compliance year ``year`` under ``rule``, oldest first.

        Parameters
        ----------
        year : int
            Compliance year.
        rule : callable ``(vintage, year) -> bool``, optional
            Default :func:`default_vintage_rule` (any vintage up to ``year``).
        """
        if isinstance(year, bool) or not isinstance(year, (int, np.integer)):
            raise TypeError(f"year must be an int, got {describe(year)}")
        rule = default_vintage_rule if rule is None else rule
        return [int(v) for v in self._vintages if rule(int(v), int(year))]

    # ------------------------------------------------------------------ input validation

    def _unit_label(self, n: int) -> str:
        return repr(self._unit_ids[n])

    def _per_unit(
        self, op: str, name: str, value: npt.ArrayLike, *, signed: bool = False
    ) -> IntArray:
        arr = as_int_array(f"{op}: {name}", value, ndim=None)
        shape = (self.n_replicates, self.n_units)
        if arr.shape != shape:
            raise ValueError(f"{op}: {name} must have shape (R, N) = {shape}, got {arr.shape}")
        if not signed and (arr < 0).any():
            r, n = (int(i) for i in np.argwhere(arr < 0)[0])
            raise LedgerError(
                f"{op}: {name} must be >= 0 t, got {int(arr[r, n])} for unit "
                f"{self._unit_label(n)} in replicate {r}"
            )
        return arr

    def _per_unit_class(self, op: str, name: str, value: npt.ArrayLike) -> IntArray:
        arr = as_int_array(f"{op}: {name}", value, ndim=None)
        shape = self._offsets.shape
        if arr.shape != shape:
            raise ValueError(f"{op}: {name} must have shape (R, N, K) = {shape}, got {arr.shape}")
        if (arr < 0).any():
            r, n, k = (int(i) for i in np.argwhere(arr < 0)[0])
            raise LedgerError(
                f"{op}: {name} must be >= 0 t, got {int(arr[r, n, k])} of class "
                f"{self._classes[k]!r} for unit {self._unit_label(n)} in replicate {r}"
            )
        return arr

    def _per_replicate(self, op: str, name: str, value: npt.ArrayLike) -> IntArray:
        arr = as_int_array(f"{op}: {name}", value, ndim=None)
        r_ = self.n_replicates
        if arr.ndim == 0:
            arr = np.full(r_, int(arr), dtype=np.int64)
        if arr.shape != (r_,):
            raise ValueError(
                f"{op}: {name} must be a scalar or have shape (R,) = ({r_},), got {arr.shape}"
            )
        if (arr < 0).any():
            r = int(np.argmax(arr < 0))
            raise LedgerError(f"{op}: {name} must be >= 0 t, got {int(arr[r])} in replicate {r}")
        return arr

    def _money(self, op: str, name: str, value: npt.ArrayLike) -> FloatArray:
        arr = as_float_array(f"{op}: {name}", value, ndim=None, nonnegative=True)
        shape = (self.n_replicates, self.n_units)
        if arr.shape != shape:
            raise ValueError(f"{op}: {name} must have shape (R, N) = {shape}, got {arr.shape}")
        return arr

    def _price(self, op: str, value: npt.ArrayLike) -> FloatArray:
        arr = as_float_array(f"{op}: price", value, ndim=None, nonnegative=True)
        r_, n_ = self.n_replicates, self.n_units
        if arr.ndim == 0:
            return np.full((r_, n_), float(arr))
        if arr.shape == (r_,):
            return np.repeat(arr[:, None], n_, axis=1)
        if arr.shape == (r_, n_):
            return arr
        raise ValueError(
            f"{op}: price must be a scalar or have shape (R,) = ({r_},) or (R, N) = "
            f"({r_}, {n_}), got {arr.shape}"
        )

    def _short_error(self, op: str, unmet: IntArray, qty: IntArray, vidx: IntArray) -> LedgerError:
        r, n = (int(i) for i in np.argwhere(unmet > 0)[0])
        years = [int(self._vintages[i]) for i in vidx]
        need = int(qty[r, n])
        return LedgerError(
            f"{op}: unit {self._unit_label(n)} in replicate {r} must deliver {need} t from "
            f"vintages {years} but holds only {need - int(unmet[r, n])} t there (short by "
            f"{int(unmet[r, n])} t); holdings cannot go negative unless the Ledger is built "
            f"with allow_negative=True"
        )

    def _draw(self, op: str, qty: IntArray, vidx: IntArray) -> IntArray:
        """Tonnes each unit delivers per vintage, oldest first (R, N, V); validated."""
        take, unmet = _draw_oldest(self._allowances, qty, vidx)
        if unmet.any():
            if not self.allow_negative or vidx.size == 0:
                raise self._short_error(op, unmet, qty, vidx)
            take[:, :, vidx[-1]] += unmet
        return take

    def _check_government(self, op: str, v: int, need: IntArray) -> None:
        short = need > self._government[:, v]
        if short.any():
            r = int(np.argmax(short))
            raise LedgerError(
                f"{op}: the government account in replicate {r} holds "
                f"{int(self._government[r, v])} t of vintage {int(self._vintages[v])} but "
                f"{int(need[r])} t are needed"
            )

    def _check_offsets_left(self, op: str, new: IntArray, k: int | None = None) -> None:
        """``new`` is units' offsets after the op, (R, N, K) or (R, N) for class ``k``."""
        if self.allow_negative or not (new < 0).any():
            return
        pos = tuple(int(i) for i in np.argwhere(new < 0)[0])
        r, n = pos[0], pos[1]
        kk = pos[2] if k is None else k
        before = int(self._offsets[r, n, kk])
        raise LedgerError(
            f"{op}: unit {self._unit_label(n)} in replicate {r} holds {before} t of offset "
            f"class {self._classes[kk]!r} but must deliver {before - int(new[pos])} t; "
            f"holdings cannot go negative unless the Ledger is built with allow_negative=True"
        )

    def _check_cash(self, op: str, new_cash: FloatArray) -> None:
        if self.allow_negative_cash:
            return
        bad = new_cash < 0
        if bad.any():
            r, n = (int(i) for i in np.argwhere(bad)[0])
            raise LedgerError(
                f"{op}: unit {self._unit_label(n)} in replicate {r} has cash "
                f"{float(self._cash[r, n])!r} but would pay "
                f"{float(self._cash[r, n] - new_cash[r, n])!r}; cash cannot go negative when "
                f"the Ledger is built with allow_negative_cash=False"
            )

    # ------------------------------------------------------------------ journal

    def _journal_entry(self, op: str) -> _JournalEntry:
        """The journal's running totals of ``op``, created (empty, last in the order of
        first use) if the operation has not run yet."""
        entry = self._journal.get(op)
        if entry is None:
            r_ = self.n_replicates
            entry = _JournalEntry(
                0, np.zeros(r_, np.int64), np.zeros(r_, np.int64), np.zeros(r_, np.float64)
            )
            self._journal[op] = entry
        return entry

    def _record(
        self,
        op: str,
        tonnes: npt.ArrayLike,
        movements: npt.ArrayLike,
        cash: npt.ArrayLike | None = None,
    ) -> None:
        entry = self._journal_entry(op)
        entry.calls += 1
        # in-place adds broadcast a scalar or a (1,) array over the (R,) totals
        entry.tonnes += np.asarray(tonnes, dtype=np.int64)
        entry.movements += np.asarray(movements, dtype=np.int64)
        if cash is not None:
            c = np.asarray(cash, dtype=np.float64)
            entry.cash += c
            self._cash_gross += np.abs(c)

    @staticmethod
    def _count(a: np.ndarray) -> IntArray:
        return np.count_nonzero(a.reshape(a.shape[0], -1), axis=1).astype(np.int64)

    def journal(self) -> pd.DataFrame:
        """Aggregate operation journal for audits.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``op``, ``replicate``), operations in order of first use, with
            columns ``calls`` (times the operation ran), ``movements`` (non-zero unit-level
            entries it moved), ``tonnes`` (t moved; for trades the net tonnes delivered) and
            ``cash`` (money moved, currency).
        """
        r_ = self.n_replicates
        ops = list(self._journal)
        index = pd.MultiIndex.from_product([ops, range(r_)], names=["op", "replicate"])
        if not ops:
            return pd.DataFrame(
                {
                    "calls": pd.Series([], dtype=np.int64),
                    "movements": pd.Series([], dtype=np.int64),
                    "tonnes": pd.Series([], dtype=np.int64),
                    "cash": pd.Series([], dtype=np.float64),
                },
                index=index,
            )
        entries = [self._journal[o] for o in ops]
        frame = pd.DataFrame(
            {
                "calls": np.repeat([e.calls for e in entries], r_).astype(np.int64),
                "movements": np.concatenate([e.movements for e in entries]),
                "tonnes": np.concatenate([e.tonnes for e in entries]),
                "cash": np.concatenate([e.cash for e in entries]),
            },
            index=index,
        )
        frame.attrs["units"] = {"tonnes": "t CO2e", "cash": "currency"}
        return frame

    # ------------------------------------------------------------------ allowances

    def issue(self, vintage: int, qty: npt.ArrayLike) -> None:
        """Create allowances of ``vintage`` in the government account.

        Parameters
        ----------
        vintage : int
            Vintage year.
        qty : int or array_like of int, shape (R,)
            Tonnes to create per replicate (>= 0).
        """
        op = "issue"
        v = self.vintage_index(vintage, op=op)
        q = self._per_replicate(op, "qty", qty)
        self._flows["issued"][:, v] += q
        self._government[:, v] += q
        self._record(op, q, (q > 0).astype(np.int64))

    def allocate(
        self, vintage: int, qty: npt.ArrayLike, *, issue: bool = False
    ) -> AllocationResult:
        """Allocate allowances of ``vintage`` from the government account to units.

        Outstanding borrowing against vintages ``<= vintage`` is repaid first, then pending
        penalty deductions registered for vintages ``<= vintage`` are applied (oldest first);
        the unit receives the rest. Deducted tonnes are retired into ``deducted``
        (``ets-rules.md``, "Compliance flexibility and penalties": "the shortfall deducted
        from the next allocation"). What the allocation cannot cover stays outstanding for
        the next allocation.

        Parameters
        ----------
        vintage : int
            Vintage year allocated.
        qty : array_like of int, shape (R, N)
            Allocation before netting, t (>= 0).
        issue : bool
            If True, create the tonnes as they are allocated (intensity-based systems with
            no fixed cap, such as China's national ETS); otherwise draw them from the
            government account, which must hold them. Use the same mode for
            :meth:`borrow`.

        Returns
        -------
        AllocationResult
            ``delivered``, ``repaid`` and ``deducted`` tonnes, each (R, N).
        """
        op = "allocate"
        v = self.vintage_index(vintage, op=op)
        q = self._per_unit(op, "qty", qty)
        upto = np.arange(v + 1, dtype=np.int64)
        repay_by_v, _ = _draw_oldest(self._borrowed, q, upto)
        repaid = repay_by_v.sum(axis=2)
        ded_by_v, _ = _draw_oldest(self._pending, q - repaid, upto)
        deducted = ded_by_v.sum(axis=2)
        delivered = q - repaid - deducted
        out_of_gov = (delivered + deducted).sum(axis=1)
        if not issue:
            self._check_government(op, v, out_of_gov)
        # validated: mutate
        if issue:
            self._flows["issued"][:, v] += out_of_gov
        else:
            self._government[:, v] -= out_of_gov
        self._allowances[:, :, v] += delivered
        self._flows["deducted"][:, v] += deducted.sum(axis=1)
        self._borrowed -= repay_by_v
        self._pending -= ded_by_v
        self._record(op, delivered.sum(axis=1), self._count(delivered))
        if repaid.any():
            self._record("repay_borrowing", repaid.sum(axis=1), self._count(repaid))
        if deducted.any():
            self._record("apply_deduction", deducted.sum(axis=1), self._count(deducted))
        return AllocationResult(delivered, repaid, deducted)

    def claw_back(self, vintage: int, qty: npt.ArrayLike) -> None:
        """Return allowances of ``vintage`` from units to the government account.

        Used when a true-up allocation falls below the pre-allocation already given, or a
        unit closes. ``qty`` (R, N) t >= 0; each unit must hold it in that vintage.
        """
        op = "claw_back"
        v = self.vintage_index(vintage, op=op)
        q = self._per_unit(op, "qty", qty)
        take = self._draw(op, q, np.array([v], dtype=np.int64))
        self._allowances -= take
        self._government[:, v] += q.sum(axis=1)
        self._record(op, q.sum(axis=1), self._count(q))

    def sell(self, vintage: int, qty: npt.ArrayLike, price: npt.ArrayLike) -> None:
        """Government sale (paid allocation, auction): allowances to units, cash to government.

        Parameters
        ----------
        vintage : int
            Vintage sold; the government account must hold it.
        qty : array_like of int, shape (R, N)
            Tonnes each unit buys (>= 0).
        price : float or array_like, shape (R,) or (R, N)
            Price paid, currency/t (e.g. the uniform auction clearing price).
        """
        op = "sell"
        v = self.vintage_index(vintage, op=op)
        q = self._per_unit(op, "qty", qty)
        p = self._price(op, price)
        total = q.sum(axis=1)
        self._check_government(op, v, total)
        payment = p * q
        new_cash = self._cash - payment
        self._check_cash(op, new_cash)
        self._government[:, v] -= total
        self._allowances[:, :, v] += q
        self._cash[...] = new_cash
        self._government_cash += payment.sum(axis=1)
        self._record(op, total, self._count(q), payment.sum(axis=1))

    def buy_back(
        self,
        qty: npt.ArrayLike,
        price: npt.ArrayLike,
        *,
        vintages: int | Iterable[int] | None = None,
    ) -> IntArray:
        """Government purchase (e.g. Beijing's price-band buy-back): allowances to government.

        Units deliver their oldest ``vintages`` first (default any vintage); the government
        pays ``price`` per tonne (``ets-rules.md``, "Beijing pilot": "buy-back").

        Returns
        -------
        ndarray of int64, shape (R, N, V)
            Tonnes delivered per vintage.
        """
        op = "buy_back"
        q = self._per_unit(op, "qty", qty)
        p = self._price(op, price)
        vidx = self._vintage_indices(op, vintages)
        take = self._draw(op, q, vidx)
        payment = p * q
        self._allowances -= take
        self._government += take.sum(axis=1)
        self._cash += payment
        self._government_cash -= payment.sum(axis=1)
        self._record(op, q.sum(axis=1), self._count(q), payment.sum(axis=1))
        return take

    def transfer(
        self, vintage: int, delta: npt.ArrayLike, price: npt.ArrayLike | None = None
    ) -> None:
        """Move allowances of one vintage between units (bilateral or block transfer).

        Parameters
        ----------
        vintage : int
            Vintage moved.
        delta : array_like of int, shape (R, N)
            Signed change of each unit's holding, t: positive receives, negative delivers;
            must sum to zero per replicate.
        price : float or array_like, shape (R,) or (R, N), optional
            If given, receivers pay and deliverers receive ``price x |delta|``; with (R, N)
            prices the payments must balance per replicate.
        """
        op = "transfer"
        v = self.vintage_index(vintage, op=op)
        d = self._per_unit(op, "delta", delta, signed=True)
        bal = d.sum(axis=1)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: delta must sum to 0 t per replicate, got {int(bal[r])} t in replicate {r}"
            )
        new = self._allowances[:, :, v] + d
        if not self.allow_negative and (new < 0).any():
            r, n = (int(i) for i in np.argwhere(new < 0)[0])
            raise LedgerError(
                f"{op}: unit {self._unit_label(n)} in replicate {r} holds "
                f"{int(self._allowances[r, n, v])} t of vintage {int(vintage)} but must "
                f"deliver {-int(d[r, n])} t; holdings cannot go negative unless the Ledger "
                f"is built with allow_negative=True"
            )
        paid = None
        if price is not None:
            p = self._price(op, price)
            flow = -p * d
            self._check_balanced(op, p, np.maximum(d, 0), np.maximum(-d, 0))
            new_cash = self._cash + flow
            self._check_cash(op, new_cash)
            self._cash[...] = new_cash
            paid = (p * np.maximum(d, 0)).sum(axis=1)
        self._allowances[:, :, v] = new
        self._record(op, np.maximum(d, 0).sum(axis=1), self._count(d), paid)

    @staticmethod
    def _check_balanced(op: str, p: FloatArray, bought: IntArray, sold: IntArray) -> None:
        paid = (p * bought).sum(axis=1)
        got = (p * sold).sum(axis=1)
        tol = _CASH_RTOL * np.maximum(paid, got) + _CASH_ATOL
        bad = np.abs(paid - got) > tol
        if bad.any():
            r = int(np.argmax(bad))
            raise LedgerError(
                f"{op}: buyers pay {float(paid[r])!r} but sellers receive {float(got[r])!r} "
                f"in replicate {r}; per-unit prices must balance the money per replicate"
            )

    def _settle_core(
        self,
        op: str,
        rep: IntArray,
        unit: IntArray,
        net_buy: IntArray,
        net_sell: IntArray,
        price: FloatArray,
        vidx: IntArray,
        *,
        want_flow: bool = False,
    ) -> IntArray | None:
        """Settle netted trades of unique cells sorted by (replicate, unit).

        A cell either buys or sells (trades are netted). Sellers deliver oldest vintages
        first; the pool of delivered vintages is split among buyers by
        :func:`_split_pool_cells`. Only sellers' holdings are read and only the vintage
        columns that move are written (work ~ cells x moving vintages). Returns the (P, V)
        allowance flow when ``want_flow``. Raises before changing anything.
        """
        n_v = self._allowances.shape[2]
        allow = self._allowances.reshape(-1)  # C order: cell (r, n), vintage v at (r*N+n)*V+v
        flat = rep * self.n_units + unit
        sell = np.flatnonzero(net_sell > 0)
        buy = np.flatnonzero(net_buy > 0)
        base_s = flat[sell] * n_v
        rem = net_sell[sell].copy()
        taken: dict[int, IntArray] = {}  # vintage index -> tonnes each seller delivers
        for v in vidx:
            if not rem.any():
                break
            t = np.minimum(rem, np.maximum(allow.take(base_s + v), 0))
            taken[int(v)] = t
            rem -= t
        if rem.any():
            if not self.allow_negative or vidx.size == 0:
                full_unmet = np.zeros((self.n_replicates, self.n_units), np.int64)
                full_unmet[rep[sell], unit[sell]] = rem
                full_qty = np.zeros_like(full_unmet)
                full_qty[rep, unit] = net_sell
                raise self._short_error(op, full_unmet, full_qty, vidx)
            last = int(vidx[-1])
            taken[last] = taken.get(last, np.zeros_like(rem)) + rem
        moving = sorted(taken)
        delivered = np.empty((len(sell), len(moving)), np.int64)
        for j, v in enumerate(moving):
            delivered[:, j] = taken[v]
        # pool of each replicate per moving vintage; zero columns would receive nothing
        pool = _sum_by_replicate(rep[sell], delivered, self.n_replicates)
        received = _split_pool_cells(rep[buy], net_buy[buy], pool)
        cash = self._cash.reshape(-1)
        new_cash = cash[flat] + price * (net_sell - net_buy)
        if not self.allow_negative_cash and (new_cash < 0).any():
            full = self._cash.copy()
            full[rep, unit] = new_cash
            self._check_cash(op, full)
        base_b = flat[buy] * n_v
        for j, v in enumerate(moving):  # cells are unique: plain fancy updates
            allow[base_s + v] -= delivered[:, j]
            allow[base_b + v] += received[:, j]
        cash[flat] = new_cash
        r_ = self.n_replicates
        moved = np.bincount(rep[sell][delivered.sum(axis=1) != 0], minlength=r_) + np.bincount(
            rep[buy][received.sum(axis=1) != 0], minlength=r_
        )
        tonnes = np.bincount(rep, weights=net_sell, minlength=r_).astype(np.int64)
        paid = np.bincount(rep, weights=price * net_buy, minlength=r_)
        self._record(op, tonnes, moved, paid)
        if not want_flow:
            return None
        flow = np.zeros((len(rep), n_v), np.int64)
        cols = np.asarray(moving, np.int64)
        flow[np.ix_(sell, cols)] -= delivered
        flow[np.ix_(buy, cols)] += received
        return flow

    def settle_cells(
        self,
        replicate: npt.ArrayLike,
        unit: npt.ArrayLike,
        buy_qty: npt.ArrayLike,
        sell_qty: npt.ArrayLike,
        price: npt.ArrayLike,
        *,
        vintages: int | Iterable[int] | None = None,
    ) -> None:
        """:meth:`settle_trades` for the cells that traded only (the fast path).

        Same rules and results as :meth:`settle_trades`, with the trades given per
        (replicate, unit) cell instead of as dense (R, N) arrays, so a session costs time
        in proportion to the units that traded.

        Parameters
        ----------
        replicate, unit : array_like of int, shape (P,)
            Cells that traded, unique and sorted by replicate, then unit.
        buy_qty, sell_qty : array_like of int, shape (P,)
            Tonnes each cell bought and sold (>= 0); totals must match per replicate.
        price : float or array_like, shape (R,)
            Clearing price per replicate, currency/t.
        vintages : int or iterable of int, optional
            Vintages sellers may deliver (default all).
        """
        op = "settle_cells"
        r_, n_ = self.n_replicates, self.n_units
        rep = as_int_array(f"{op}: replicate", replicate, lo=0, hi=r_ - 1)
        uni = as_int_array(f"{op}: unit", unit, lo=0, hi=n_ - 1)
        b = as_int_array(f"{op}: buy_qty", buy_qty, nonnegative=True)
        s = as_int_array(f"{op}: sell_qty", sell_qty, nonnegative=True)
        if not (len(rep) == len(uni) == len(b) == len(s)):
            raise ValueError(
                f"{op}: replicate, unit, buy_qty and sell_qty must have equal lengths, got "
                f"{len(rep)}, {len(uni)}, {len(b)}, {len(s)}"
            )
        key = rep * n_ + uni
        if len(key) > 1 and not (np.diff(key) > 0).all():
            raise ValueError(f"{op}: cells must be unique and sorted by (replicate, unit)")
        bal = np.bincount(rep, weights=b, minlength=r_) - np.bincount(rep, weights=s, minlength=r_)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: buys total {int(b[rep == r].sum())} t but sells total "
                f"{int(s[rep == r].sum())} t in replicate {r}; they must be equal"
            )
        pr = as_float_array(f"{op}: price", price, ndim=None, nonnegative=True)
        pr = np.full(r_, float(pr)) if pr.ndim == 0 else pr
        if pr.shape != (r_,):
            raise ValueError(f"{op}: price must be a scalar or have shape (R,) = ({r_},)")
        self._settle_cells_trusted(rep, uni, b, s, pr, self._vintage_indices(op, vintages))

    def _settle_cells_trusted(
        self,
        rep: IntArray,
        unit: IntArray,
        buy_qty: IntArray,
        sell_qty: IntArray,
        price: FloatArray,
        vidx: IntArray | None = None,
    ) -> None:
        """:meth:`settle_cells` after its checks: int64 cells, unique and sorted, balanced
        per replicate, ``price`` of shape (R,), ``vidx`` vintage indices (None: all).

        For callers that build valid input themselves: the engine's session loop, which
        runs the checked method instead when invariant checks are on.
        """
        if vidx is None:
            vidx = np.arange(len(self._vintages), dtype=np.int64)
        net_buy = np.maximum(buy_qty - sell_qty, 0)
        net_sell = np.maximum(sell_qty - buy_qty, 0)
        keep = np.flatnonzero((net_buy + net_sell) > 0)
        rep = rep[keep]
        self._settle_core(
            "settle_cells",
            rep,
            unit[keep],
            net_buy[keep],
            net_sell[keep],
            price[rep],
            vidx,
        )

    def settle_trades(
        self,
        buy_qty: npt.ArrayLike,
        sell_qty: npt.ArrayLike,
        price: npt.ArrayLike,
        *,
        vintages: int | Iterable[int] | None = None,
        return_flow: bool = True,
    ) -> IntArray | None:
        """Settle a trading session: allowances from sellers to buyers, cash back.

        Each unit's buys and sells are netted. Sellers deliver their oldest ``vintages``
        first into a per-replicate pool; the pool is split among buyers pro rata to their
        net purchases in whole tonnes (floor, then a north-west-corner pass for the
        remainders; see the module docstring). Cash moves ``price x (sell - buy)``.

        Parameters
        ----------
        buy_qty, sell_qty : array_like of int, shape (R, N)
            Tonnes each unit bought and sold (>= 0); totals must match per replicate.
        price : float or array_like, shape (R,) or (R, N)
            Price, currency/t: the session's clearing price (R,), or each unit's average
            execution price (R, N), in which case money paid must equal money received per
            replicate.
        vintages : int or iterable of int, optional
            Vintages sellers may deliver (default all).
        return_flow : bool
            Return the (R, N, V) flow; pass False in hot loops to skip building it.

        Returns
        -------
        ndarray of int64, shape (R, N, V), or None
            Signed change of holdings per vintage; sums to zero over units per vintage.
            None when ``return_flow`` is False.
        """
        op = "settle_trades"
        b = self._per_unit(op, "buy_qty", buy_qty)
        s = self._per_unit(op, "sell_qty", sell_qty)
        bal = b.sum(axis=1) - s.sum(axis=1)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: buys total {int(b[r].sum())} t but sells total {int(s[r].sum())} t "
                f"in replicate {r}; they must be equal"
            )
        p = self._price(op, price)
        vidx = self._vintage_indices(op, vintages)
        net_buy = np.maximum(b - s, 0)
        net_sell = np.maximum(s - b, 0)
        self._check_balanced(op, p, net_buy, net_sell)
        # only the (replicate, unit) cells that trade take part: the same numbers as
        # working on the whole (R, N, V) block, at the cost of the trading cells alone
        rep, unit = np.nonzero(net_buy + net_sell)
        flow_c = self._settle_core(
            op,
            rep,
            unit,
            net_buy[rep, unit],
            net_sell[rep, unit],
            p[rep, unit],
            vidx,
            want_flow=return_flow,
        )
        if flow_c is None:
            return None
        flow = np.zeros_like(self._allowances)
        flow[rep, unit, :] = flow_c
        return flow

    def surrender(
        self, qty: npt.ArrayLike, vintages: int | Iterable[int] | None = None
    ) -> IntArray:
        """Surrender allowances for compliance, oldest eligible vintage first.

        Parameters
        ----------
        qty : array_like of int, shape (R, N)
            Tonnes each unit surrenders (>= 0).
        vintages : int or iterable of int, optional
            Vintages eligible for this surrender (default all; see
            :meth:`eligible_vintages`).

        Returns
        -------
        ndarray of int64, shape (R, N, V)
            Tonnes surrendered per vintage.
        """
        return self._retire("surrender", "surrendered", qty, vintages)

    def cancel(self, qty: npt.ArrayLike, vintages: int | Iterable[int] | None = None) -> IntArray:
        """Cancel units' allowances (voluntary cancellation, banking-limit excess), oldest first.

        Same arguments and return as :meth:`surrender`; the tonnes go to ``cancelled``.
        """
        return self._retire("cancel", "cancelled", qty, vintages)

    def _retire(
        self, op: str, account: str, qty: npt.ArrayLike, vintages: int | Iterable[int] | None
    ) -> IntArray:
        q = self._per_unit(op, "qty", qty)
        vidx = self._vintage_indices(op, vintages)
        take = self._draw(op, q, vidx)
        self._allowances -= take
        self._flows[account] += take.sum(axis=1)
        self._record(op, q.sum(axis=1), self._count(q))
        return take

    def cancel_government(
        self, qty: npt.ArrayLike, vintages: int | Iterable[int] | None = None
    ) -> IntArray:
        """Cancel allowances held by the government (e.g. reserve invalidation), oldest first.

        Parameters
        ----------
        qty : int or array_like of int, shape (R,)
            Tonnes to cancel per replicate.
        vintages : int or iterable of int, optional
            Vintages that may be cancelled (default all).

        Returns
        -------
        ndarray of int64, shape (R, V)
        """
        op = "cancel_government"
        q = self._per_replicate(op, "qty", qty)
        vidx = self._vintage_indices(op, vintages)
        take, unmet = _draw_oldest(self._government[:, None, :], q[:, None], vidx)
        if unmet.any():
            r = int(np.argmax(unmet[:, 0] > 0))
            raise LedgerError(
                f"{op}: the government account in replicate {r} holds "
                f"{int(q[r] - unmet[r, 0])} t in vintages "
                f"{[int(self._vintages[i]) for i in vidx]} but {int(q[r])} t must be cancelled"
            )
        out = take[:, 0, :]
        self._government -= out
        self._flows["cancelled"] += out
        self._record(op, q, (q > 0).astype(np.int64))
        return out

    def expire(self, vintage: int) -> IntArray:
        """Remove all (positive) holdings of ``vintage`` that is no longer valid.

        Units' and the government's holdings go to ``expired``. Negative holdings (short
        positions, only with ``allow_negative``) are left in place.

        Returns
        -------
        ndarray of int64, shape (R, N)
            Tonnes expired per unit.
        """
        op = "expire"
        v = self.vintage_index(vintage, op=op)
        units = np.maximum(self._allowances[:, :, v], 0)
        gov = self._government[:, v].copy()
        self._allowances[:, :, v] -= units
        self._government[:, v] = 0
        self._flows["expired"][:, v] += units.sum(axis=1) + gov
        self._record(op, units.sum(axis=1) + gov, self._count(units))
        return units

    def carry(
        self,
        qty: npt.ArrayLike,
        from_vintages: int | Iterable[int],
        to_vintage: int,
    ) -> IntArray:
        """Re-denominate units' holdings of older vintages into ``to_vintage``, oldest first.

        Models carrying banked allowances into a later vintage (``ets-rules.md``,
        "Compliance flexibility and penalties", "Banking": "may be carried into the 2025
        vintage"). The tonnes leave ``from_vintages`` (``carried_out``) and enter
        ``to_vintage`` (``carried_in``).

        Parameters
        ----------
        qty : array_like of int, shape (R, N)
            Tonnes each unit carries (>= 0).
        from_vintages : int or iterable of int
            Vintages the tonnes come from; must not include ``to_vintage``.
        to_vintage : int
            Vintage the tonnes become.

        Returns
        -------
        ndarray of int64, shape (R, N, V)
            Tonnes taken per source vintage.
        """
        op = "carry"
        q = self._per_unit(op, "qty", qty)
        vidx = self._vintage_indices(op, from_vintages)
        t = self.vintage_index(to_vintage, op=op)
        if t in set(vidx.tolist()):
            raise ValueError(f"{op}: from_vintages must not include to_vintage {to_vintage}")
        take = self._draw(op, q, vidx)
        self._allowances -= take
        self._allowances[:, :, t] += q
        self._flows["carried_out"] += take.sum(axis=1)
        self._flows["carried_in"][:, t] += q.sum(axis=1)
        self._record(op, q.sum(axis=1), self._count(q))
        return take

    def deduct(self, qty: npt.ArrayLike, vintage: int) -> None:
        """Register a penalty deduction from the allocation of ``vintage`` (or later).

        Nothing moves now: the next :meth:`allocate` of ``vintage`` or a later vintage
        withholds the amount and retires it into ``deducted`` (``ets-rules.md``,
        "Compliance flexibility and penalties": "the shortfall deducted from the next
        allocation").

        Parameters
        ----------
        qty : array_like of int, shape (R, N)
            Tonnes to deduct (>= 0).
        vintage : int
            Vintage whose allocation is reduced first.
        """
        op = "deduct"
        v = self.vintage_index(vintage, op=op)
        q = self._per_unit(op, "qty", qty)
        self._pending[:, :, v] += q
        self._record(op, q.sum(axis=1), self._count(q))

    def borrow(self, qty: npt.ArrayLike, from_vintage: int, *, issue: bool = True) -> None:
        """Allocate allowances of a future vintage early (borrowing) and record the advance.

        The borrowed tonnes are of ``from_vintage``; the caller's vintage rule must accept
        them for the compliance year they serve (at the 2021-22 deadline only borrowers
        hold 2023 allowances). The next :meth:`allocate` of ``from_vintage`` is reduced by
        the advance (``ets-rules.md``, "Compliance flexibility and penalties", "Borrowing").

        Parameters
        ----------
        qty : array_like of int, shape (R, N)
            Tonnes borrowed (>= 0).
        from_vintage : int
            Vintage borrowed from.
        issue : bool
            Create the tonnes (default, matching ``allocate(..., issue=True)``) or draw them
            from the government account.
        """
        op = "borrow"
        v = self.vintage_index(from_vintage, op=op)
        q = self._per_unit(op, "qty", qty)
        total = q.sum(axis=1)
        if not issue:
            self._check_government(op, v, total)
            self._government[:, v] -= total
        else:
            self._flows["issued"][:, v] += total
        self._allowances[:, :, v] += q
        self._borrowed[:, :, v] += q
        self._record(op, total, self._count(q))

    # ------------------------------------------------------------------ offsets

    def issue_offsets(
        self,
        offset_class: str,
        qty: npt.ArrayLike,
        *,
        account: Literal["projects", "units"] = "projects",
    ) -> None:
        """Issue offset credits of ``offset_class``.

        Parameters
        ----------
        offset_class : str
            Credit class.
        qty : int or array_like of int
            Shape (R,) (or a scalar) for ``account="projects"``: credits issued to project
            owners, sold to units later with :meth:`transfer_offsets`; shape (R, N) for
            ``account="units"``: credits issued straight into units' accounts.
        account : {"projects", "units"}
            Where the credits are created.
        """
        op = "issue_offsets"
        k = self.offset_class_index(offset_class, op=op)
        if account == "projects":
            q = self._per_replicate(op, "qty", qty)
            self._project_offsets[:, k] += q
            self._oflows["issued"][:, k] += q
            self._record(op, q, (q > 0).astype(np.int64))
        elif account == "units":
            qu = self._per_unit(op, "qty", qty)
            self._offsets[:, :, k] += qu
            self._oflows["issued"][:, k] += qu.sum(axis=1)
            self._record(op, qu.sum(axis=1), self._count(qu))
        else:
            raise ValueError(f"{op}: account must be 'projects' or 'units', got {account!r}")

    def transfer_offsets(
        self, offset_class: str, qty: npt.ArrayLike, price: npt.ArrayLike = 0.0
    ) -> None:
        """Sell credits from project owners to units; units pay ``price`` to project owners.

        Parameters
        ----------
        offset_class : str
            Credit class.
        qty : array_like of int, shape (R, N)
            Credits each unit receives (>= 0); project owners must hold the total.
        price : float or array_like, shape (R,) or (R, N)
            Offset price, currency/t (default 0: a free transfer).
        """
        op = "transfer_offsets"
        k = self.offset_class_index(offset_class, op=op)
        q = self._per_unit(op, "qty", qty)
        p = self._price(op, price)
        total = q.sum(axis=1)
        short = total > self._project_offsets[:, k]
        if short.any():
            r = int(np.argmax(short))
            raise LedgerError(
                f"{op}: project owners in replicate {r} hold "
                f"{int(self._project_offsets[r, k])} t of class {offset_class!r} but "
                f"{int(total[r])} t are sold"
            )
        payment = p * q
        new_cash = self._cash - payment
        self._check_cash(op, new_cash)
        self._project_offsets[:, k] -= total
        self._offsets[:, :, k] += q
        self._cash[...] = new_cash
        self._project_cash += payment.sum(axis=1)
        self._record(op, total, self._count(q), payment.sum(axis=1))

    def settle_offset_trades(
        self,
        offset_class: str,
        buy_qty: npt.ArrayLike,
        sell_qty: npt.ArrayLike,
        price: npt.ArrayLike,
    ) -> None:
        """Settle trades of one credit class between units (netted per unit).

        Parameters
        ----------
        offset_class : str
            Credit class traded.
        buy_qty, sell_qty : array_like of int, shape (R, N)
            Credits bought and sold (>= 0); totals must match per replicate.
        price : float or array_like, shape (R,) or (R, N)
            Offset price, currency/t.
        """
        op = "settle_offset_trades"
        k = self.offset_class_index(offset_class, op=op)
        b = self._per_unit(op, "buy_qty", buy_qty)
        s = self._per_unit(op, "sell_qty", sell_qty)
        bal = b.sum(axis=1) - s.sum(axis=1)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: buys total {int(b[r].sum())} t but sells total {int(s[r].sum())} t "
                f"in replicate {r}; they must be equal"
            )
        p = self._price(op, price)
        net = b - s
        new = self._offsets[:, :, k] + net
        self._check_offsets_left(op, new, k)
        self._check_balanced(op, p, np.maximum(net, 0), np.maximum(-net, 0))
        new_cash = self._cash - p * net
        self._check_cash(op, new_cash)
        self._offsets[:, :, k] = new
        self._cash[...] = new_cash
        self._record(
            op,
            np.maximum(-net, 0).sum(axis=1),
            self._count(net),
            (p * np.maximum(net, 0)).sum(axis=1),
        )

    def surrender_offsets(self, qty: npt.ArrayLike) -> None:
        """Surrender offset credits for compliance; ``qty`` (R, N, K) t >= 0."""
        self._retire_offsets("surrender_offsets", "surrendered", qty)

    def cancel_offsets(self, qty: npt.ArrayLike) -> None:
        """Cancel units' offset credits (voluntary retirement); ``qty`` (R, N, K) t >= 0."""
        self._retire_offsets("cancel_offsets", "cancelled", qty)

    def _retire_offsets(self, op: str, account: str, qty: npt.ArrayLike) -> None:
        q = self._per_unit_class(op, "qty", qty)
        new = self._offsets - q
        self._check_offsets_left(op, new)
        self._offsets[...] = new
        self._oflows[account] += q.sum(axis=1)
        self._record(op, q.sum(axis=(1, 2)), self._count(q))

    def expire_offsets(self, offset_class: str) -> IntArray:
        """Remove all (positive) holdings of a credit class that is no longer eligible.

        E.g. legacy CCER from 2025 (``ets-rules.md``, "Offsets (CCER)": "from 2025 only
        credits registered after the 22 Jan 2024 relaunch"). Units' and project owners'
        credits go to ``offsets_expired``.

        Returns
        -------
        ndarray of int64, shape (R, N)
            Credits expired per unit.
        """
        op = "expire_offsets"
        k = self.offset_class_index(offset_class, op=op)
        units = np.maximum(self._offsets[:, :, k], 0)
        proj = self._project_offsets[:, k].copy()
        self._offsets[:, :, k] -= units
        self._project_offsets[:, k] = 0
        self._oflows["expired"][:, k] += units.sum(axis=1) + proj
        self._record(op, units.sum(axis=1) + proj, self._count(units))
        return units

    # ------------------------------------------------------------------ cash

    def deposit(self, amount: npt.ArrayLike) -> None:
        """Money entering units' accounts from outside (endowment, revenue); (R, N) >= 0."""
        op = "deposit"
        a = self._money(op, "amount", amount)
        self._cash += a
        self._cash_in += a.sum(axis=1)
        self._record(op, 0, self._count(a), a.sum(axis=1))

    def withdraw(self, amount: npt.ArrayLike) -> None:
        """Money leaving units' accounts to outside (e.g. abatement spending); (R, N) >= 0."""
        op = "withdraw"
        a = self._money(op, "amount", amount)
        new_cash = self._cash - a
        self._check_cash(op, new_cash)
        self._cash[...] = new_cash
        self._cash_out += a.sum(axis=1)
        self._record(op, 0, self._count(a), a.sum(axis=1))

    def pay(self, amount: npt.ArrayLike) -> None:
        """Units pay the government (fines, auction payments); ``amount`` (R, N) >= 0."""
        op = "pay"
        a = self._money(op, "amount", amount)
        new_cash = self._cash - a
        self._check_cash(op, new_cash)
        self._cash[...] = new_cash
        self._government_cash += a.sum(axis=1)
        self._record(op, 0, self._count(a), a.sum(axis=1))

    def receive(self, amount: npt.ArrayLike) -> None:
        """The government pays units (refunds, revenue recycling); ``amount`` (R, N) >= 0."""
        op = "receive"
        a = self._money(op, "amount", amount)
        self._cash += a
        self._government_cash -= a.sum(axis=1)
        self._record(op, 0, self._count(a), a.sum(axis=1))

    # ------------------------------------------------------------------ audit

    def check(self) -> LedgerReport:
        """Prove conservation now; raise :class:`ConservationError` if it fails.

        Checks, per replicate and vintage (class): the allowance and offset identities of
        the module docstring exactly (integers), the cash identity to a relative tolerance
        of 1e-9 of the money moved, no negative holdings (unless ``allow_negative``), no
        negative government or project-owner holdings, flow or memo accounts, and no negative
        cash when ``allow_negative_cash=False``. Cost O(R N (V + K)), numpy only.

        Returns
        -------
        LedgerReport
        """
        f = self._flows
        held = self._allowances.sum(axis=1)
        lhs = f["issued"] + f["carried_in"]
        retired = f["surrendered"] + f["cancelled"] + f["expired"] + f["deducted"]
        rhs = self._government + held + retired + f["carried_out"]
        if (lhs != rhs).any():
            r, v = (int(i) for i in np.argwhere(lhs != rhs)[0])
            raise ConservationError(
                f"allowances of vintage {int(self._vintages[v])} in replicate {r}: issued "
                f"{int(f['issued'][r, v])} + carried in {int(f['carried_in'][r, v])} = "
                f"{int(lhs[r, v])} t, but government {int(self._government[r, v])} + units "
                f"{int(held[r, v])} + surrendered {int(f['surrendered'][r, v])} + cancelled "
                f"{int(f['cancelled'][r, v])} + expired {int(f['expired'][r, v])} + deducted "
                f"{int(f['deducted'][r, v])} + carried out {int(f['carried_out'][r, v])} = "
                f"{int(rhs[r, v])} t (difference {int(lhs[r, v] - rhs[r, v])} t)"
            )
        o = self._oflows
        oheld = self._offsets.sum(axis=1)
        oretired = o["surrendered"] + o["cancelled"] + o["expired"]
        orhs = self._project_offsets + oheld + oretired
        if (o["issued"] != orhs).any():
            r, k = (int(i) for i in np.argwhere(o["issued"] != orhs)[0])
            raise ConservationError(
                f"offsets of class {self._classes[k]!r} in replicate {r}: issued "
                f"{int(o['issued'][r, k])} t, but project owners "
                f"{int(self._project_offsets[r, k])} + units {int(oheld[r, k])} + "
                f"surrendered {int(o['surrendered'][r, k])} + cancelled "
                f"{int(o['cancelled'][r, k])} + expired {int(o['expired'][r, k])} = "
                f"{int(orhs[r, k])} t"
            )
        total_cash = self._cash.sum(axis=1) + self._government_cash + self._project_cash
        expected = self._cash_in - self._cash_out
        err = np.abs(total_cash - expected)
        tol = _CASH_RTOL * (self._cash_gross + self._cash_in + self._cash_out) + _CASH_ATOL
        if (err > tol).any():
            r = int(np.argmax(err > tol))
            raise ConservationError(
                f"cash in replicate {r}: units {float(self._cash[r].sum())!r} + government "
                f"{float(self._government_cash[r])!r} + project owners "
                f"{float(self._project_cash[r])!r} = {float(total_cash[r])!r}, but deposits "
                f"minus withdrawals = {float(expected[r])!r}"
            )
        self._check_signs()
        report = LedgerReport(
            allowances_issued=f["issued"].sum(axis=1),
            allowances_outstanding=(self._government + held).sum(axis=1),
            allowances_retired=retired.sum(axis=1),
            offsets_issued=o["issued"].sum(axis=1),
            offsets_outstanding=(self._project_offsets + oheld).sum(axis=1),
            offsets_retired=oretired.sum(axis=1),
            cash_total=total_cash,
            cash_error=float(err.max(initial=0.0)),
        )
        logger.debug("ledger check passed: %s", report)
        return report

    def _check_signs(self) -> None:
        named: list[tuple[str, np.ndarray]] = [
            ("government_allowances", self._government),
            ("project_offsets", self._project_offsets),
            ("pending_deductions", self._pending),
            ("borrowed", self._borrowed),
        ]
        named += [(name, a) for name, a in self._flows.items()]
        named += [(f"offsets_{name}", a) for name, a in self._oflows.items()]
        if not self.allow_negative:
            named += [("allowances", self._allowances), ("offsets", self._offsets)]
        if not self.allow_negative_cash:
            named.append(("cash", self._cash))
        for name, arr in named:
            if (arr < 0).any():
                pos = tuple(int(i) for i in np.argwhere(arr < 0)[0])
                where = f"replicate {pos[0]}"
                if arr.ndim == 3 or name in ("cash",):
                    where += f", unit {self._unit_label(pos[1])}"
                raise ConservationError(
                    f"{name} is negative at {where} (index {pos}): {arr[pos].item()!r}"
                )

    # ------------------------------------------------------------------ tidy views

    def _replicates(self, replicate: int | None) -> list[int]:
        if replicate is None:
            return list(range(self.n_replicates))
        if isinstance(replicate, bool) or not isinstance(replicate, (int, np.integer)):
            raise TypeError(f"replicate must be an int or None, got {describe(replicate)}")
        if not 0 <= replicate < self.n_replicates:
            raise ValueError(f"replicate must lie in [0, {self.n_replicates - 1}], got {replicate}")
        return [int(replicate)]

    def holdings_frame(
        self, replicate: int | None = None, *, nonzero: bool = False
    ) -> pd.DataFrame:
        """Allowance holdings as a tidy table.

        Parameters
        ----------
        replicate : int, optional
            One replicate (default all).
        nonzero : bool
            Drop rows with zero holdings.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``replicate``, ``unit``, ``vintage``); column ``allowances`` (t).
        """
        reps = self._replicates(replicate)
        index = pd.MultiIndex.from_product(
            [pd.Index(reps, name="replicate"), self._unit_ids, self._vintages]
        )
        frame = pd.DataFrame({"allowances": self._allowances[reps].reshape(-1)}, index=index)
        if nonzero:
            frame = frame[frame["allowances"] != 0]
        frame.attrs["units"] = {"allowances": "t CO2e"}
        return frame

    def offsets_frame(self, replicate: int | None = None, *, nonzero: bool = False) -> pd.DataFrame:
        """Offset holdings as a tidy table indexed by (``replicate``, ``unit``,
        ``offset_class``), column ``offsets`` (t)."""
        reps = self._replicates(replicate)
        index = pd.MultiIndex.from_product(
            [pd.Index(reps, name="replicate"), self._unit_ids, self._classes]
        )
        frame = pd.DataFrame({"offsets": self._offsets[reps].reshape(-1)}, index=index)
        if nonzero:
            frame = frame[frame["offsets"] != 0]
        frame.attrs["units"] = {"offsets": "t CO2e"}
        return frame

    def accounts_frame(self) -> pd.DataFrame:
        """Allowance accounts per (``replicate``, ``vintage``): the conservation identity's
        terms as columns (t): ``issued``, ``carried_in``, ``government``, ``units``,
        ``surrendered``, ``cancelled``, ``expired``, ``deducted``, ``carried_out``."""
        index = pd.MultiIndex.from_product(
            [pd.Index(range(self.n_replicates), name="replicate"), self._vintages]
        )
        cols = {
            "issued": self._flows["issued"],
            "carried_in": self._flows["carried_in"],
            "government": self._government,
            "units": self._allowances.sum(axis=1),
        }
        cols.update(
            {
                name: self._flows[name]
                for name in ("surrendered", "cancelled", "expired", "deducted", "carried_out")
            }
        )
        frame = pd.DataFrame({k: a.reshape(-1) for k, a in cols.items()}, index=index)
        frame.attrs["units"] = dict.fromkeys(cols, "t CO2e")
        return frame

    def valid_holdings(self, year: int, rule: VintageRule | None = None) -> IntArray:
        """Allowances each unit holds in vintages valid for compliance year ``year``.

        Parameters
        ----------
        year : int
            Compliance year.
        rule : callable ``(vintage, year) -> bool``, optional
            Vintage rule (default :func:`default_vintage_rule`).

        Returns
        -------
        ndarray of int64, shape (R, N)
        """
        idx = self._valid_vintage_indices(year, rule)
        if len(idx) and (np.diff(idx) == 1).all():  # a contiguous range: no copy
            view = self._allowances[:, :, idx[0] : idx[-1] + 1]
            out = view[:, :, 0].copy()
            for k in range(1, view.shape[2]):
                out += view[:, :, k]
            return out
        return self._allowances[:, :, idx].sum(axis=2)

    def valid_holdings_at(
        self,
        year: int,
        replicates: npt.ArrayLike,
        units: npt.ArrayLike,
        rule: VintageRule | None = None,
    ) -> IntArray:
        """:meth:`valid_holdings` at some cells only: ``valid_holdings(year)[replicates,
        units]``, with work proportional to the number of cells.

        Parameters
        ----------
        year : int
            Compliance year.
        replicates, units : array_like of int, shape (M,)
            The cells, as index pairs.
        rule : callable ``(vintage, year) -> bool``, optional
            Vintage rule (default :func:`default_vintage_rule`).

        Returns
        -------
        ndarray of int64, shape (M,)
        """
        idx = self._valid_vintage_indices(year, rule)
        rows = np.asarray(replicates, np.intp)
        cols = np.asarray(units, np.intp)
        if rows.shape != cols.shape:
            raise ValueError(
                f"valid_holdings_at: replicates and units must have one shape, got "
                f"{rows.shape} and {cols.shape}"
            )
        if rows.size and not (
            rows.min() >= 0
            and rows.max() < self.n_replicates
            and cols.min() >= 0
            and cols.max() < self.n_units
        ):
            raise IndexError(
                f"valid_holdings_at: cells must lie in [0, {self.n_replicates}) x "
                f"[0, {self.n_units})"
            )
        return sum_cells(self._allowances, rows, cols, idx)

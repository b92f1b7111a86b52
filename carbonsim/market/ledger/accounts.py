"""The ledger's accounts: state arrays, read-only views, lookups and input checks.

:class:`LedgerAccounts` builds the state of a :class:`~carbonsim.market.ledger.Ledger` (the
accounts listed in the package docstring), exposes every array as a read-only view, finds
vintages and offset classes on their axes, answers which holdings are valid for a
compliance year, and validates the quantities, prices and money amounts that the
operations take, before they change anything.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._validation import as_float_array, as_int_array, describe
from carbonsim.market.ledger.common import (
    CASH_ATOL,
    CASH_RTOL,
    FloatArray,
    IntArray,
    JournalEntry,
    LedgerError,
    VintageRule,
    default_vintage_rule,
    readonly_view,
)

__all__ = ["LedgerAccounts"]

#: Most (year, vintage rule) pairs whose valid holdings are kept (a period reads one or two).
_VALID_CACHE_SIZE = 4

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


class LedgerAccounts:
    """State, views, lookups and input validation of a
    :class:`~carbonsim.market.ledger.Ledger` (see its docstring for the parameters)."""

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
        # valid holdings per (year, vintage rule), (R, N): kept current by settlement,
        # dropped by every other change of the units' allowances
        self._valid_cache: dict[tuple[int, VintageRule | None], IntArray] = {}
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
        self._journal: dict[str, JournalEntry] = {}

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
        return readonly_view(self._allowances)

    @property
    def offsets(self) -> IntArray:
        """Offset credits held by units, t, shape (R, N, K), read-only."""
        return readonly_view(self._offsets)

    @property
    def cash(self) -> FloatArray:
        """Units' cash, currency, shape (R, N), read-only."""
        return readonly_view(self._cash)

    @property
    def government_allowances(self) -> IntArray:
        """Issued allowances held by the government, t, shape (R, V), read-only."""
        return readonly_view(self._government)

    @property
    def project_offsets(self) -> IntArray:
        """Credits held by project owners (not yet sold to units), t, shape (R, K)."""
        return readonly_view(self._project_offsets)

    @property
    def government_cash(self) -> FloatArray:
        """Government cash (fines and sales minus purchases), currency, shape (R,)."""
        return readonly_view(self._government_cash)

    @property
    def project_cash(self) -> FloatArray:
        """Money paid to project owners for credits, currency, shape (R,)."""
        return readonly_view(self._project_cash)

    @property
    def issued(self) -> IntArray:
        """Allowances issued, t, shape (R, V)."""
        return readonly_view(self._flows["issued"])

    @property
    def carried_in(self) -> IntArray:
        """Allowances re-denominated into each vintage by :meth:`carry`, t, shape (R, V)."""
        return readonly_view(self._flows["carried_in"])

    @property
    def carried_out(self) -> IntArray:
        """Allowances re-denominated out of each vintage by :meth:`carry`, t, shape (R, V)."""
        return readonly_view(self._flows["carried_out"])

    @property
    def surrendered(self) -> IntArray:
        """Allowances surrendered for compliance, t, shape (R, V)."""
        return readonly_view(self._flows["surrendered"])

    @property
    def cancelled(self) -> IntArray:
        """Allowances cancelled (voluntarily, banking limit, invalidation), t, shape (R, V)."""
        return readonly_view(self._flows["cancelled"])

    @property
    def expired(self) -> IntArray:
        """Allowances removed by :meth:`expire`, t, shape (R, V)."""
        return readonly_view(self._flows["expired"])

    @property
    def deducted(self) -> IntArray:
        """Allowances withheld from allocations as penalty deductions, t, shape (R, V)."""
        return readonly_view(self._flows["deducted"])

    @property
    def offsets_issued(self) -> IntArray:
        """Offset credits issued, t, shape (R, K)."""
        return readonly_view(self._oflows["issued"])

    @property
    def offsets_surrendered(self) -> IntArray:
        """Offset credits surrendered, t, shape (R, K)."""
        return readonly_view(self._oflows["surrendered"])

    @property
    def offsets_cancelled(self) -> IntArray:
        """Offset credits cancelled, t, shape (R, K)."""
        return readonly_view(self._oflows["cancelled"])

    @property
    def offsets_expired(self) -> IntArray:
        """Offset credits removed by :meth:`expire_offsets`, t, shape (R, K)."""
        return readonly_view(self._oflows["expired"])

    @property
    def pending_deductions(self) -> IntArray:
        """Deductions registered but not yet applied, t, shape (R, N, V), by the vintage
        from whose allocation they are due."""
        return readonly_view(self._pending)

    @property
    def borrowed(self) -> IntArray:
        """Outstanding advances, t, shape (R, N, V), by the vintage they were borrowed from."""
        return readonly_view(self._borrowed)

    @property
    def cash_deposited(self) -> FloatArray:
        """Money that entered units' accounts from outside, currency, shape (R,)."""
        return readonly_view(self._cash_in)

    @property
    def cash_withdrawn(self) -> FloatArray:
        """Money that left units' accounts to outside, currency, shape (R,)."""
        return readonly_view(self._cash_out)

    def __repr__(self) -> str:
        return (
            f"Ledger(n_replicates={self.n_replicates}, n_units={self.n_units}, "
            f"vintages={self._vintages.tolist()}, offset_classes={self._classes.tolist()}, "
            f"allow_negative={self.allow_negative})"
        )

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

    def _balanced_trades(
        self, op: str, buy_qty: npt.ArrayLike, sell_qty: npt.ArrayLike
    ) -> tuple[IntArray, IntArray]:
        """Per-unit buys and sells (R, N) whose totals balance in every replicate."""
        b = self._per_unit(op, "buy_qty", buy_qty)
        s = self._per_unit(op, "sell_qty", sell_qty)
        bal = b.sum(axis=1) - s.sum(axis=1)
        if bal.any():
            r = int(np.argmax(bal != 0))
            raise LedgerError(
                f"{op}: buys total {int(b[r].sum())} t but sells total {int(s[r].sum())} t "
                f"in replicate {r}; they must be equal"
            )
        return b, s

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

    @staticmethod
    def _check_balanced(op: str, p: FloatArray, bought: IntArray, sold: IntArray) -> None:
        paid = (p * bought).sum(axis=1)
        got = (p * sold).sum(axis=1)
        tol = CASH_RTOL * np.maximum(paid, got) + CASH_ATOL
        bad = np.abs(paid - got) > tol
        if bad.any():
            r = int(np.argmax(bad))
            raise LedgerError(
                f"{op}: buyers pay {float(paid[r])!r} but sellers receive {float(got[r])!r} "
                f"in replicate {r}; per-unit prices must balance the money per replicate"
            )

    # ------------------------------------------------------------------ valid holdings

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
            A new array.
        """
        return self._valid(year, rule).copy()

    def _valid(self, year: int, rule: VintageRule | None) -> IntArray:
        """The cached valid holdings of ``(year, rule)`` (R, N), computed when missing.

        Settlement keeps every cached array current at the cells it moves; any other
        change of the units' allowances drops the cache (:meth:`_holdings_changed`).
        """
        key = (int(year), rule)
        cached = self._valid_cache.get(key)
        if cached is not None:
            return cached
        idx = self._valid_vintage_indices(year, rule)
        if len(idx) and (np.diff(idx) == 1).all():  # a contiguous range: no copy
            view = self._allowances[:, :, idx[0] : idx[-1] + 1]
            out = view[:, :, 0].copy()
            for k in range(1, view.shape[2]):
                out += view[:, :, k]
        else:
            out = self._allowances[:, :, idx].sum(axis=2)
        if len(self._valid_cache) >= _VALID_CACHE_SIZE:
            self._valid_cache.clear()
        self._valid_cache[key] = out
        return out

    def _holdings_changed(self) -> None:
        """Forget the cached valid holdings: the units' allowances changed."""
        self._valid_cache.clear()

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
        return self._valid(year, rule).reshape(-1).take(rows * self.n_units + cols)

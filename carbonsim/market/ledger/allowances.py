"""Operations on allowances: issue, allocate, sell, transfer, retire, carry, borrow.

Every operation validates its inputs and the resulting holdings before it changes anything
and delivers a unit's allowances oldest vintage first when no vintage is named (see the
package docstring of :mod:`carbonsim.market.ledger` for the accounts and the design
choices). Trading sessions settle through :mod:`carbonsim.market.ledger.settlement`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from carbonsim.market.ledger.common import AllocationResult, IntArray, LedgerError
from carbonsim.market.ledger.delivery import draw_oldest
from carbonsim.market.ledger.journal import LedgerJournal

__all__ = ["AllowanceOperations"]


def _draw_owed(
    owed: IntArray, qty: IntArray, v: int
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """:func:`draw_oldest` of ``qty`` (R, N) from ``owed`` (R, N, V) over the vintages up
    to index ``v``, on the units that owe anything there.

    A unit that owes nothing in those vintages draws nothing (only positive amounts are
    drawn on and ``qty >= 0``), so drawing on the owing units alone gives the numbers of
    the draw over all units, without its (R, N, V) arrays (few units owe anything).

    Returns
    -------
    rows, cols : ndarray of intp, shape (K,)
        Replicate and unit of each owing unit.
    take : ndarray of int64, shape (K, v + 1)
        Tonnes drawn from each of them per vintage, oldest first.
    drawn : ndarray of int64, shape (R, N)
        Tonnes drawn per unit.
    """
    owing = owed[:, :, 0] > 0
    for i in range(1, v + 1):  # one (R, N) slice at a time: no (R, N, V) temporary
        owing |= owed[:, :, i] > 0
    rows, cols = np.nonzero(owing)
    take, _ = draw_oldest(owed[rows, cols, : v + 1][None], qty[rows, cols][None], np.arange(v + 1))
    drawn = np.zeros_like(qty)
    drawn[rows, cols] = take[0].sum(axis=1)
    return rows, cols, take[0], drawn


class AllowanceOperations(LedgerJournal):
    """Allowance operations of a :class:`~carbonsim.market.ledger.Ledger`."""

    def _draw(self, op: str, qty: IntArray, vidx: IntArray) -> IntArray:
        """Tonnes each unit delivers per vintage, oldest first (R, N, V); validated."""
        take, unmet = draw_oldest(self._allowances, qty, vidx)
        if unmet.any():
            if not self.allow_negative or vidx.size == 0:
                raise self._short_error(op, unmet, qty, vidx)
            take[:, :, vidx[-1]] += unmet
        return take

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
        (docs/rules.md#penalty-deduction: "the shortfall deducted from the next
        allocation"). What the allocation cannot cover stays outstanding for the next
        allocation.

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
        repay_r, repay_n, repay_by_v, repaid = _draw_owed(self._borrowed, q, v)
        ded_r, ded_n, ded_by_v, deducted = _draw_owed(self._pending, q - repaid, v)
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
        self._holdings_changed()
        self._flows["deducted"][:, v] += deducted.sum(axis=1)
        self._borrowed[repay_r, repay_n, : v + 1] -= repay_by_v
        self._pending[ded_r, ded_n, : v + 1] -= ded_by_v
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
        self._holdings_changed()
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
        self._holdings_changed()
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
        pays ``price`` per tonne (docs/rules.md#beijing-band: "buy-back").

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
        self._holdings_changed()
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
        self._holdings_changed()
        self._record(op, np.maximum(d, 0).sum(axis=1), self._count(d), paid)

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
        self._holdings_changed()
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
        take, unmet = draw_oldest(self._government[:, None, :], q[:, None], vidx)
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
        self._holdings_changed()
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

        Models carrying banked allowances into a later vintage (docs/rules.md#banking-limit:
        "may be carried into the 2025 vintage"). The tonnes leave ``from_vintages``
        (``carried_out``) and enter ``to_vintage`` (``carried_in``).

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
        self._holdings_changed()
        self._flows["carried_out"] += take.sum(axis=1)
        self._flows["carried_in"][:, t] += q.sum(axis=1)
        self._record(op, q.sum(axis=1), self._count(q))
        return take

    def deduct(self, qty: npt.ArrayLike, vintage: int) -> None:
        """Register a penalty deduction from the allocation of ``vintage`` (or later).

        Nothing moves now: the next :meth:`allocate` of ``vintage`` or a later vintage
        withholds the amount and retires it into ``deducted``
        (docs/rules.md#penalty-deduction: "the shortfall deducted from the next
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
        the advance (docs/rules.md#borrowing).

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
        self._holdings_changed()
        self._borrowed[:, :, v] += q
        self._record(op, total, self._count(q))

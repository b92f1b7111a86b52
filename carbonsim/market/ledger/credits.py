"""Operations on offset credits: issue, sell to units, trade, surrender, cancel, expire.

Credits are held by class (``K`` classes): project owners hold what is issued to them until
they sell it to units (:meth:`OffsetCreditOperations.transfer_offsets`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from carbonsim.market.ledger.common import IntArray, LedgerError
from carbonsim.market.ledger.journal import LedgerJournal

__all__ = ["OffsetCreditOperations"]


class OffsetCreditOperations(LedgerJournal):
    """Offset credit operations of a :class:`~carbonsim.market.ledger.Ledger`."""

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
        b, s = self._balanced_trades(op, buy_qty, sell_qty)
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

        E.g. legacy CCER from 2025 (docs/rules.md#ccer-eligibility: "from 2025 only credits
        registered after the 22 Jan 2024 relaunch"). Units' and project owners' credits go
        to ``offsets_expired``.

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

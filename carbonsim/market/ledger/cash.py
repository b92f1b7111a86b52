"""Cash operations: money in and out of units' accounts, and to and from the government.

Cash is a money account of the ledger so that trades, fines and auctions conserve it;
external money enters by :meth:`CashOperations.deposit` and leaves by
:meth:`CashOperations.withdraw`.
"""

from __future__ import annotations

import numpy.typing as npt

from carbonsim.market.ledger.journal import LedgerJournal

__all__ = ["CashOperations"]


class CashOperations(LedgerJournal):
    """Cash operations of a :class:`~carbonsim.market.ledger.Ledger`."""

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

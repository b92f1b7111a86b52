"""Tidy views of the ledger: snapshots of the state and pandas tables of holdings.

The tables are indexed by ``replicate`` and the unit, vintage or class axis; their
``attrs["units"]`` name the units of each column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbonsim._validation import describe
from carbonsim.market.ledger.accounts import LedgerAccounts

__all__ = ["LedgerFrames"]


class LedgerFrames(LedgerAccounts):
    """Snapshots and tidy tables of a :class:`~carbonsim.market.ledger.Ledger`."""

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

"""The ledger's aggregate journal: one line per operation name, never one per movement.

Every operation of a :class:`~carbonsim.market.ledger.Ledger` adds its calls, unit
movements, tonnes and money per replicate to the running totals of its name;
:meth:`LedgerJournal.journal` shows them as a table for audits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim.market.ledger.accounts import LedgerAccounts
from carbonsim.market.ledger.common import IntArray, JournalEntry

__all__ = ["LedgerJournal"]


class LedgerJournal(LedgerAccounts):
    """The journal of a :class:`~carbonsim.market.ledger.Ledger`."""

    def _journal_entry(self, op: str) -> JournalEntry:
        """The journal's running totals of ``op``, created (empty, last in the order of
        first use) if the operation has not run yet."""
        entry = self._journal.get(op)
        if entry is None:
            r_ = self.n_replicates
            entry = JournalEntry(
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

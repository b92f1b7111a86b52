"""The audit: proof that the ledger conserves allowances, credits and cash.

:meth:`LedgerChecks.check` verifies the conservation identities of the package docstring
of :mod:`carbonsim.market.ledger` and the signs of every account, and returns a
:class:`LedgerReport`; a failure raises :class:`ConservationError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from carbonsim.market.ledger.accounts import LedgerAccounts
from carbonsim.market.ledger.common import CASH_ATOL, CASH_RTOL, FloatArray, IntArray

__all__ = ["ConservationError", "LedgerChecks", "LedgerReport"]

# the ledger's logger, named as before the ledger became a package
logger = logging.getLogger("carbonsim.market.ledger")


class ConservationError(RuntimeError):
    """A conservation identity of the ledger does not hold (an internal inconsistency)."""


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


class LedgerChecks(LedgerAccounts):
    """The conservation audit of a :class:`~carbonsim.market.ledger.Ledger`."""

    def check(self) -> LedgerReport:
        """Prove conservation now; raise :class:`ConservationError` if it fails.

        Checks, per replicate and vintage (class): the allowance and offset identities of
        the package docstring exactly (integers), the cash identity to a relative tolerance
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
        tol = CASH_RTOL * (self._cash_gross + self._cash_in + self._cash_out) + CASH_ATOL
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

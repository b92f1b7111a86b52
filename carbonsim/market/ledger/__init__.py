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
  (e.g. the 2024-25 carry-over into the 2025 vintage, docs/rules.md#banking-limit).
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
  :meth:`Ledger.deduct` registers a deduction "from the next allocation"
  (docs/rules.md#penalty-deduction); :meth:`Ledger.allocate` of vintage ``v`` first repays
  outstanding borrowing against vintages ``<= v``, then applies pending deductions
  registered for vintages ``<= v`` (oldest first); whatever the allocation cannot cover
  stays pending for the next one. Deducted tonnes are retired into ``deducted`` (they
  settle the unit's past shortfall). :meth:`Ledger.borrow` allocates tonnes of a future
  vintage early and records the advance (docs/rules.md#borrowing: "2021-22 only").
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

from carbonsim.market.ledger.allowances import AllowanceOperations
from carbonsim.market.ledger.cash import CashOperations
from carbonsim.market.ledger.checks import ConservationError, LedgerChecks, LedgerReport
from carbonsim.market.ledger.common import (
    AllocationResult,
    LedgerError,
    VintageRule,
    default_vintage_rule,
)
from carbonsim.market.ledger.credits import OffsetCreditOperations
from carbonsim.market.ledger.frames import LedgerFrames
from carbonsim.market.ledger.settlement import TradeSettlement

__all__ = [
    "AllocationResult",
    "ConservationError",
    "Ledger",
    "LedgerError",
    "LedgerReport",
    "VintageRule",
    "default_vintage_rule",
]


class Ledger(
    AllowanceOperations,
    TradeSettlement,
    OffsetCreditOperations,
    CashOperations,
    LedgerChecks,
    LedgerFrames,
):
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
    operations. See the package docstring for the accounts and the conservation identities.
    The operations are grouped by concept in the modules of this package: accounts
    (state, views, lookups, input checks), journal, allowances, settlement, credits, cash,
    checks and frames.
    """

    def copy(self) -> Ledger:
        """An independent deep copy (for snapshots and what-if runs)."""
        return copy.deepcopy(self)

"""Ledger invariants under random operation sequences (hypothesis).

A random sequence of issue/allocate/claw-back/trade/surrender/cancel/expire/carry/deduct/
borrow/offset/cash operations is run against the ledger and against an independent
reference: a plain-Python model with loops over units and vintages that implements the
documented rules. After every step ``check()`` must pass and every account must equal the
reference; an operation the reference finds infeasible must raise ``LedgerError`` and leave
the ledger unchanged (atomicity).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from carbonsim.market.ledger import Ledger, LedgerError

R, N, V, K = 2, 3, 3, 2
VINTAGES = [2021, 2022, 2023]
CLASSES = ("legacy CCER", "new CCER")

qty_matrix = st.lists(st.lists(st.integers(0, 40), min_size=N, max_size=N), min_size=R, max_size=R)
vintage = st.sampled_from(VINTAGES)
vintage_set = st.sets(st.sampled_from(VINTAGES), min_size=1)
price = st.floats(0.0, 200.0, allow_nan=False, allow_infinity=False)
# trades as (replicate, seller, buyer, tonnes) tuples: balanced by construction
trade_list = st.lists(
    st.tuples(
        st.integers(0, R - 1), st.integers(0, N - 1), st.integers(0, N - 1), st.integers(0, 15)
    ),
    max_size=6,
)


def zeros(*shape: int) -> Any:
    if len(shape) == 1:
        return [0] * shape[0]
    return [zeros(*shape[1:]) for _ in range(shape[0])]


def reference_split(net_b: list[int], pool: list[int]) -> list[list[int]]:
    """Buyers' vintages: pro-rata floor, then a north-west-corner pass over the remainders."""
    total = sum(pool)
    got = [[(b * p) // total if total else 0 for p in pool] for b in net_b]
    row = [b - sum(g) for b, g in zip(net_b, got, strict=True)]
    col = [p - sum(g[v] for g in got) for v, p in enumerate(pool)]
    i = j = 0
    while i < len(row) and j < len(col):
        if row[i] == 0:
            i += 1
        elif col[j] == 0:
            j += 1
        else:
            m = min(row[i], col[j])
            got[i][j] += m
            row[i] -= m
            col[j] -= m
    return got


class Infeasible(Exception):
    """The reference model refuses the operation."""


class Reference:
    """Plain-Python ledger: nested lists and loops, written from the documented rules."""

    def __init__(self) -> None:
        self.hold = zeros(R, N, V)
        self.gov = zeros(R, V)
        self.flows = {
            k: zeros(R, V)
            for k in (
                "issued",
                "carried_in",
                "surrendered",
                "cancelled",
                "expired",
                "deducted",
                "carried_out",
            )
        }
        self.pending = zeros(R, N, V)
        self.borrowed = zeros(R, N, V)
        self.offs = zeros(R, N, K)
        self.proj = zeros(R, K)
        self.oissued = zeros(R, K)
        self.osurr = zeros(R, K)
        self.cash = [[0.0] * N for _ in range(R)]
        self.gcash = [0.0] * R
        self.pcash = [0.0] * R

    def draw(self, r: int, n: int, qty: int, vs: list[int]) -> list[int]:
        take = [0] * V
        for v in sorted(vs):
            t = min(qty, max(self.hold[r][n][v], 0))
            take[v] = t
            qty -= t
        if qty > 0:
            raise Infeasible
        return take

    def issue(self, v: int, q: list[int]) -> None:
        for r in range(R):
            self.flows["issued"][r][v] += q[r]
            self.gov[r][v] += q[r]

    def allocate(self, v: int, q: list[list[int]], issue: bool) -> None:
        for r in range(R):
            need = 0
            for n in range(N):
                left = q[r][n]
                for w in range(v + 1):  # repay borrowing first, oldest first
                    t = min(left, self.borrowed[r][n][w])
                    self.borrowed[r][n][w] -= t
                    left -= t
                for w in range(v + 1):  # then pending deductions
                    t = min(left, self.pending[r][n][w])
                    self.pending[r][n][w] -= t
                    self.flows["deducted"][r][v] += t
                    left -= t
                    need += t
                self.hold[r][n][v] += left
                need += left
            if issue:
                self.flows["issued"][r][v] += need
            else:
                if self.gov[r][v] < need:
                    raise Infeasible
                self.gov[r][v] -= need

    def claw_back(self, v: int, q: list[list[int]]) -> None:
        for r in range(R):
            for n in range(N):
                take = self.draw(r, n, q[r][n], [v])
                self.hold[r][n][v] -= take[v]
                self.gov[r][v] += take[v]

    def trade(self, trades: list[tuple[int, int, int, int]], p: list[float]) -> None:
        buy, sell = zeros(R, N), zeros(R, N)
        for r, s, b, q in trades:
            sell[r][s] += q
            buy[r][b] += q
        for r in range(R):
            net_b = [max(buy[r][n] - sell[r][n], 0) for n in range(N)]
            net_s = [max(sell[r][n] - buy[r][n], 0) for n in range(N)]
            pool = [0] * V
            takes = [self.draw(r, n, net_s[n], list(range(V))) for n in range(N)]
            for n in range(N):
                for v in range(V):
                    self.hold[r][n][v] -= takes[n][v]
                    pool[v] += takes[n][v]
            got = reference_split(net_b, pool)
            for n in range(N):
                for v in range(V):
                    self.hold[r][n][v] += got[n][v]
                self.cash[r][n] += p[r] * (net_s[n] - net_b[n])

    def retire(self, account: str, q: list[list[int]], vs: list[int]) -> None:
        for r in range(R):
            for n in range(N):
                take = self.draw(r, n, q[r][n], vs)
                for v in range(V):
                    self.hold[r][n][v] -= take[v]
                    self.flows[account][r][v] += take[v]

    def expire(self, v: int) -> None:
        for r in range(R):
            for n in range(N):
                x = max(self.hold[r][n][v], 0)
                self.hold[r][n][v] -= x
                self.flows["expired"][r][v] += x
            self.flows["expired"][r][v] += self.gov[r][v]
            self.gov[r][v] = 0

    def carry(self, q: list[list[int]], vs: list[int], to: int) -> None:
        for r in range(R):
            for n in range(N):
                take = self.draw(r, n, q[r][n], vs)
                for v in range(V):
                    self.hold[r][n][v] -= take[v]
                    self.flows["carried_out"][r][v] += take[v]
                self.hold[r][n][to] += q[r][n]
                self.flows["carried_in"][r][to] += q[r][n]

    def deduct(self, q: list[list[int]], v: int) -> None:
        for r in range(R):
            for n in range(N):
                self.pending[r][n][v] += q[r][n]

    def borrow(self, q: list[list[int]], v: int, issue: bool) -> None:
        for r in range(R):
            total = sum(q[r])
            if issue:
                self.flows["issued"][r][v] += total
            else:
                if self.gov[r][v] < total:
                    raise Infeasible
                self.gov[r][v] -= total
            for n in range(N):
                self.hold[r][n][v] += q[r][n]
                self.borrowed[r][n][v] += q[r][n]

    def issue_offsets(self, k: int, q: list[int]) -> None:
        for r in range(R):
            self.proj[r][k] += q[r]
            self.oissued[r][k] += q[r]

    def transfer_offsets(self, k: int, q: list[list[int]], p: float) -> None:
        for r in range(R):
            if sum(q[r]) > self.proj[r][k]:
                raise Infeasible
            self.proj[r][k] -= sum(q[r])
            for n in range(N):
                self.offs[r][n][k] += q[r][n]
                self.cash[r][n] -= p * q[r][n]
                self.pcash[r] += p * q[r][n]

    def surrender_offsets(self, k: int, q: list[list[int]]) -> None:
        for r in range(R):
            for n in range(N):
                if q[r][n] > self.offs[r][n][k]:
                    raise Infeasible
                self.offs[r][n][k] -= q[r][n]
                self.osurr[r][k] += q[r][n]

    def pay(self, amounts: list[list[int]]) -> None:
        for r in range(R):
            for n in range(N):
                self.cash[r][n] -= amounts[r][n]
                self.gcash[r] += amounts[r][n]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(R, ["u0", "u1", "u2"], VINTAGES, CLASSES)
        self.ref = Reference()

    def apply(self, ledger_op: Any, ref_op: Any) -> None:
        """Run an op on a scratch copy of the reference; mirror success or refusal."""
        scratch = copy.deepcopy(self.ref)
        try:
            ref_op(scratch)
        except Infeasible:
            event("refused")
            before = self.ledger.snapshot()
            journal = self.ledger.journal()
            with pytest.raises(LedgerError):
                ledger_op(self.ledger)
            after = self.ledger.snapshot()
            for name, arr in before.items():
                np.testing.assert_array_equal(arr, after[name], err_msg=name)
            assert journal.equals(self.ledger.journal())
            return
        event("applied")
        ledger_op(self.ledger)
        self.ref = scratch

    @rule(v=vintage, q=st.lists(st.integers(0, 200), min_size=R, max_size=R))
    def issue(self, v: int, q: list[int]) -> None:
        i = VINTAGES.index(v)
        self.apply(lambda led: led.issue(v, q), lambda ref: ref.issue(i, q))

    @rule(v=vintage, q=qty_matrix, issue=st.booleans())
    def allocate(self, v: int, q: list[list[int]], issue: bool) -> None:
        i = VINTAGES.index(v)
        self.apply(
            lambda led: led.allocate(v, q, issue=issue), lambda ref: ref.allocate(i, q, issue)
        )

    @rule(v=vintage, q=qty_matrix)
    def claw_back(self, v: int, q: list[list[int]]) -> None:
        i = VINTAGES.index(v)
        self.apply(lambda led: led.claw_back(v, q), lambda ref: ref.claw_back(i, q))

    @rule(trades=trade_list, p=st.lists(price, min_size=R, max_size=R))
    def trade(self, trades: list[tuple[int, int, int, int]], p: list[float]) -> None:
        buy, sell = np.zeros((R, N), np.int64), np.zeros((R, N), np.int64)
        for r, s, b, q in trades:
            sell[r, s] += q
            buy[r, b] += q
        self.apply(lambda led: led.settle_trades(buy, sell, p), lambda ref: ref.trade(trades, p))

    @rule(q=qty_matrix, vs=vintage_set)
    def surrender(self, q: list[list[int]], vs: set[int]) -> None:
        idx = [VINTAGES.index(v) for v in vs]
        self.apply(lambda led: led.surrender(q, vs), lambda ref: ref.retire("surrendered", q, idx))

    @rule(q=qty_matrix, vs=vintage_set)
    def cancel(self, q: list[list[int]], vs: set[int]) -> None:
        idx = [VINTAGES.index(v) for v in vs]
        self.apply(lambda led: led.cancel(q, vs), lambda ref: ref.retire("cancelled", q, idx))

    @rule(v=vintage)
    def expire(self, v: int) -> None:
        i = VINTAGES.index(v)
        self.apply(lambda led: led.expire(v), lambda ref: ref.expire(i))

    @rule(q=qty_matrix, to=vintage, vs=vintage_set)
    def carry(self, q: list[list[int]], to: int, vs: set[int]) -> None:
        src = sorted(vs - {to})
        if not src:
            return
        idx = [VINTAGES.index(v) for v in src]
        t = VINTAGES.index(to)
        self.apply(lambda led: led.carry(q, src, to), lambda ref: ref.carry(q, idx, t))

    @rule(q=qty_matrix, v=vintage)
    def deduct(self, q: list[list[int]], v: int) -> None:
        i = VINTAGES.index(v)
        self.apply(lambda led: led.deduct(q, v), lambda ref: ref.deduct(q, i))

    @rule(q=qty_matrix, v=vintage, issue=st.booleans())
    def borrow(self, q: list[list[int]], v: int, issue: bool) -> None:
        i = VINTAGES.index(v)
        self.apply(lambda led: led.borrow(q, v, issue=issue), lambda ref: ref.borrow(q, i, issue))

    @rule(k=st.integers(0, K - 1), q=st.lists(st.integers(0, 100), min_size=R, max_size=R))
    def issue_offsets(self, k: int, q: list[int]) -> None:
        self.apply(
            lambda led: led.issue_offsets(CLASSES[k], q), lambda ref: ref.issue_offsets(k, q)
        )

    @rule(k=st.integers(0, K - 1), q=qty_matrix, p=price)
    def transfer_offsets(self, k: int, q: list[list[int]], p: float) -> None:
        self.apply(
            lambda led: led.transfer_offsets(CLASSES[k], q, p),
            lambda ref: ref.transfer_offsets(k, q, p),
        )

    @rule(k=st.integers(0, K - 1), q=qty_matrix)
    def surrender_offsets(self, k: int, q: list[list[int]]) -> None:
        full = np.zeros((R, N, K), np.int64)
        full[:, :, k] = q
        self.apply(lambda led: led.surrender_offsets(full), lambda ref: ref.surrender_offsets(k, q))

    @rule(q=qty_matrix)
    def pay(self, q: list[list[int]]) -> None:
        self.apply(lambda led: led.pay(np.asarray(q, float)), lambda ref: ref.pay(q))

    @invariant()
    def conserved_and_matches_reference(self) -> None:
        report = self.ledger.check()
        led, ref = self.ledger, self.ref
        np.testing.assert_array_equal(led.allowances, ref.hold)
        # valid holdings, read through the ledger's cache (kept current by settlement,
        # dropped by every other change), equal the sums over the valid vintages
        for year in VINTAGES:
            valid = [i for i, v in enumerate(VINTAGES) if v <= year]
            want = np.asarray(ref.hold)[:, :, valid].sum(axis=2)
            np.testing.assert_array_equal(led.valid_holdings(year), want)
            rows, cols = np.nonzero(np.ones(want.shape, bool))
            np.testing.assert_array_equal(led.valid_holdings_at(year, rows, cols), want.ravel())
        np.testing.assert_array_equal(led.government_allowances, ref.gov)
        for name, arr in ref.flows.items():
            np.testing.assert_array_equal(getattr(led, name), arr, err_msg=name)
        np.testing.assert_array_equal(led.pending_deductions, ref.pending)
        np.testing.assert_array_equal(led.borrowed, ref.borrowed)
        np.testing.assert_array_equal(led.offsets, ref.offs)
        np.testing.assert_array_equal(led.project_offsets, ref.proj)
        np.testing.assert_array_equal(led.offsets_issued, ref.oissued)
        np.testing.assert_array_equal(led.offsets_surrendered, ref.osurr)
        np.testing.assert_allclose(led.cash, ref.cash, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(led.government_cash, ref.gcash, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(led.project_cash, ref.pcash, rtol=1e-9, atol=1e-6)
        assert (led.allowances >= 0).all()
        assert (led.offsets >= 0).all()
        # independent recount of the totals from the reference's own accounts
        issued = sum(sum(row) for row in ref.flows["issued"])
        outstanding = sum(map(sum, ref.gov)) + sum(sum(map(sum, u)) for u in ref.hold)
        retired = sum(
            sum(map(sum, ref.flows[k])) for k in ("surrendered", "cancelled", "expired", "deducted")
        )
        assert int(report.allowances_issued.sum()) == issued
        assert int(report.allowances_outstanding.sum()) == outstanding
        assert int(report.allowances_retired.sum()) == retired
        assert issued == outstanding + retired  # carry-overs net out across vintages


LedgerMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=20, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase


# ------------------------------------------------------------------ trade settlement


@st.composite
def holdings_and_trades(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = draw(st.integers(1, 3))
    n = draw(st.integers(2, 6))
    v = draw(st.integers(1, 4))
    hold = np.array(
        draw(st.lists(st.integers(0, 10**6), min_size=r * n * v, max_size=r * n * v)),
        dtype=np.int64,
    ).reshape(r, n, v)
    buy = np.zeros((r, n), np.int64)
    sell = np.zeros((r, n), np.int64)
    for rep in range(r):
        for _ in range(draw(st.integers(0, 8))):
            s = draw(st.integers(0, n - 1))
            b = draw(st.integers(0, n - 1))
            cap = int(hold[rep, s].sum() - max(sell[rep, s] - buy[rep, s], 0))
            q = draw(st.integers(0, max(cap, 0)))
            sell[rep, s] += q
            buy[rep, b] += q
    return hold, buy, sell


def _ledger_with(hold: np.ndarray) -> Ledger:
    r, n, v = hold.shape
    led = Ledger(r, [f"u{i}" for i in range(n)], list(range(2020, 2020 + v)))
    for i, year in enumerate(led.vintages):
        led.allocate(int(year), hold[:, :, i], issue=True)
    return led


@settings(deadline=None)
@given(holdings_and_trades(), st.floats(0.0, 500.0))
def test_settlement_balances_and_is_pro_rata(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], p: float
) -> None:
    hold, buy, sell = case
    led = _ledger_with(hold)
    flow = led.settle_trades(buy, sell, p)
    # per replicate and vintage the flows balance; each unit moves exactly its net trade
    assert (flow.sum(axis=1) == 0).all()
    np.testing.assert_array_equal(flow.sum(axis=2), buy - sell)
    net_buy = np.maximum(buy - sell, 0)
    net_sell = np.maximum(sell - buy, 0)
    delivered = np.maximum(-flow, 0)
    received = np.maximum(flow, 0)
    # buyers never deliver, sellers never receive
    assert (delivered[net_buy > 0] == 0).all()
    assert (received[net_sell > 0] == 0).all()
    # sellers deliver oldest first: a vintage is touched only once all older ones are empty
    after = led.allowances
    for v in range(1, hold.shape[2]):
        touched = delivered[:, :, v] > 0
        assert (after[:, :, :v][touched] == 0).all()
    # buyers' vintage mix is pro rata: within (-1, V) tonnes of the exact share
    pool = delivered.sum(axis=1)
    total = pool.sum(axis=1)
    for r in np.flatnonzero(total):
        exact = net_buy[r][:, None] * pool[r][None, :] / total[r]
        dev = received[r] - exact
        assert (dev > -1).all()
        assert (dev < hold.shape[2]).all()
    led.check()


@settings(deadline=None)
@given(holdings_and_trades())
def test_settlement_matches_reference_split(
    case: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    hold, buy, sell = case
    led = _ledger_with(hold)
    flow = led.settle_trades(buy, sell, 1.0)
    received = np.maximum(flow, 0)
    pool = np.maximum(-flow, 0).sum(axis=1)
    for r in range(hold.shape[0]):
        net_b = np.maximum(buy[r] - sell[r], 0).tolist()
        assert received[r].tolist() == reference_split(net_b, pool[r].tolist())


@settings(deadline=None)
@given(
    holdings_and_trades(),
    st.lists(st.floats(0.0, 1_000.0), min_size=1, max_size=4),
)
def test_cash_is_conserved_under_random_sessions(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], prices: list[float]
) -> None:
    hold, buy, sell = case
    led = _ledger_with(hold)
    r = hold.shape[0]
    led.deposit(np.full(buy.shape, 1_000.0))
    expected = np.full(buy.shape, 1_000.0)
    for p in prices:
        # the same session at several prices, alternating direction so holdings suffice
        led.settle_trades(buy, sell, np.full(r, p))
        expected += p * (sell - buy)
        led.settle_trades(sell, buy, np.full(r, p / 2))
        expected += p / 2 * (buy - sell)
    np.testing.assert_allclose(led.cash, expected, rtol=1e-9, atol=1e-6)
    report = led.check()
    np.testing.assert_allclose(report.cash_total, 1_000.0 * buy.shape[1], rtol=1e-9)
    np.testing.assert_array_equal(led.allowances.sum(axis=2), hold.sum(axis=2))


@settings(deadline=None)
@given(holdings_and_trades(), st.integers(1, 10**6))
def test_overdrawing_seller_raises_and_changes_nothing(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], extra: int
) -> None:
    hold, buy, sell = case
    led = _ledger_with(hold)
    # unit 0 sells everything it holds plus `extra` to unit 1, in replicate 0
    buy, sell = buy * 0, sell * 0
    sell[0, 0] = int(hold[0, 0].sum()) + extra
    buy[0, 1] = sell[0, 0]
    before = led.snapshot()
    with pytest.raises(LedgerError, match=r"settle_trades: unit 'u0' in replicate 0"):
        led.settle_trades(buy, sell, 10.0)
    for name, arr in before.items():
        np.testing.assert_array_equal(arr, led.snapshot()[name], err_msg=name)


@settings(deadline=None)
@given(holdings_and_trades(), st.integers(0, 50))
def test_short_selling_ledger_still_conserves(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], extra: int
) -> None:
    hold, buy, sell = case
    r, n, v = hold.shape
    led = Ledger(r, [f"u{i}" for i in range(n)], list(range(2020, 2020 + v)), allow_negative=True)
    for i, year in enumerate(led.vintages):
        led.allocate(int(year), hold[:, :, i], issue=True)
    sell = sell.copy()
    buy = buy.copy()
    sell[:, 0] += extra
    buy[:, 1] += extra
    flow = led.settle_trades(buy, sell, 5.0)
    assert (flow.sum(axis=1) == 0).all()
    np.testing.assert_array_equal(led.allowances.sum(axis=2), hold.sum(axis=2) + buy - sell)
    led.check()


@given(data=st.data())
@settings(max_examples=50)
def test_settle_cells_equals_settle_trades(data: st.DataObject) -> None:
    """The sparse entry point leaves the ledger exactly as the dense one does."""
    r, n = 2, 5
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dense = Ledger(r, [f"u{i}" for i in range(n)], [2023, 2024])
    for v in (2023, 2024):
        dense.allocate(v, rng.integers(0, 1_000, (r, n)), issue=True)
    sparse = dense.copy()
    hold = dense.allowances.sum(axis=2)
    sell = np.minimum(rng.integers(0, 400, (r, n)), hold) * (rng.random((r, n)) < 0.5)
    total = sell.sum(axis=1)
    buy = np.zeros((r, n), np.int64)
    for k in range(r):  # spread each replicate's sold total over random buyers
        w = rng.random(n)
        share = np.floor(total[k] * w / w.sum()).astype(np.int64)
        share[0] += total[k] - share.sum()
        buy[k] = share
    price = rng.uniform(10, 100, r)
    dense.settle_trades(buy, sell, price)
    rep, unit = np.nonzero(buy + sell)
    sparse.settle_cells(rep, unit, buy[rep, unit], sell[rep, unit], price)
    for name, arr in dense.snapshot().items():
        np.testing.assert_array_equal(arr, sparse.snapshot()[name], err_msg=name)
    sparse.check()

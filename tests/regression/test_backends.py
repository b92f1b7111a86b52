"""``backend="numba"`` changes the speed of a run, never its result.

Whole runs of every built-in tiny scenario (and policy variants that exercise the price
limits) give the same digests, journals and trades with the compiled session kernels as
with numpy, with invariant checks off (every kernel runs) and on (settlement then goes
through the checked ledger method).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from carbonsim.agents.base import BLOCK, LISTED, MarketView, Orders
from carbonsim.engine import Simulation, simulate
from carbonsim.engine.backends import BACKENDS, check_backend, session_kernels
from carbonsim.scenario import list_scenarios, load_scenario
from carbonsim.scenario.loader import with_overrides
from carbonsim.testing import result_digest

TINY = [n for n in list_scenarios() if n.endswith("-tiny")]


def test_backend_names_are_checked() -> None:
    assert BACKENDS == ("numpy", "numba")
    assert check_backend("numba") == "numba"
    with pytest.raises(ValueError, match=r"backend must be one of 'numpy', 'numba', got 'cuda'"):
        Simulation(load_scenario("china-national-tiny"), backend="cuda")


def test_numba_backend_without_numba_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonsim import _random_numba
    from carbonsim.clearing import _session_numba
    from carbonsim.market import _ledger_numba

    for mod in (_session_numba, _random_numba, _ledger_numba):
        monkeypatch.setattr(mod, "_compiled", {})  # forget compiled kernels
    monkeypatch.setitem(sys.modules, "numba", None)  # and make `import numba` fail
    with pytest.raises(ModuleNotFoundError, match=r"backend='numba' needs the optional numba"):
        session_kernels("numba")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'carbonsim\[fast\]'"):
        simulate("china-national-tiny", backend="numba")


@pytest.mark.parametrize("check", [False, True])
@pytest.mark.parametrize("name", TINY)
def test_numba_backend_gives_identical_runs(name: str, check: bool) -> None:
    pytest.importorskip("numba")
    kw = {"seed": 4, "replicates": 3, "check_invariants": check, "record_trades": True}
    a = Simulation(load_scenario(name), backend="numpy", **kw)
    b = Simulation(load_scenario(name), backend="numba", **kw)
    ra, rb = a.run(), b.run()
    assert result_digest(ra) == result_digest(rb)
    assert a.ledger.journal().equals(b.ledger.journal())
    assert ra.trades.equals(rb.trades)
    assert a.ledger.allowances.tobytes() == b.ledger.allowances.tobytes()
    assert a.ledger.cash.tobytes() == b.ledger.cash.tobytes()


@pytest.mark.parametrize(
    "overrides",
    [
        {"policy.price_floor": 30.0},
        {"policy.price_ceiling": 45.0},
        {"trading.listed_band": 0.02, "trading.block_min_size": 5000},
    ],
)
def test_numba_backend_identical_under_price_limits(overrides: dict[str, float]) -> None:
    pytest.importorskip("numba")
    sc = with_overrides(load_scenario("china-national-tiny"), overrides)
    kw = {"seed": 2, "replicates": 2, "check_invariants": False}
    a, b = simulate(sc, backend="numpy", **kw), simulate(sc, backend="numba", **kw)
    assert result_digest(a) == result_digest(b)
    assert np.isfinite(a.market["price"]).all()


def test_numba_replicate_k_of_a_batch_equals_a_numpy_run_alone() -> None:
    pytest.importorskip("numba")
    sc = load_scenario("china-national-tiny")
    batch = simulate(sc, seed=9, replicates=3, backend="numba", check_invariants=False)
    alone = simulate(sc, seed=9, first_replicate=2, backend="numpy")
    got = batch.market.xs(2, level="replicate")
    want = alone.market.xs(2, level="replicate")
    assert got.to_numpy().tobytes() == want.to_numpy().tobytes()


class _Crosscheck(Simulation):
    """A numpy run that also asks the compiled view reads and routing every session and
    records whether they agree with numpy's bit for bit."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.compared = {"holdings": 0, "obligation": 0, "verified": 0, "route": 0}
        self.mismatches: list[str] = []

    def _view(self, t, p):  # type: ignore[no-untyped-def]
        from carbonsim.engine._view_numba import CompiledPeriodView
        from carbonsim.engine.simulation import _PeriodView

        view = super()._view(t, p)
        if p is not None:
            c = self._view_source.c  # type: ignore[union-attr]
            a, b = _PeriodView(self.ledger, p, c), CompiledPeriodView(self.ledger, p, c)
            rng = np.random.default_rng(self.session_index)
            r = rng.integers(0, self.n_replicates, 40)
            u = rng.integers(0, self.units.n_units, 40)
            for what in ("holdings", "obligation"):
                if getattr(a, what)((r, u)).tobytes() != getattr(b, what)((r, u)).tobytes():
                    self.mismatches.append(f"{what} at session {self.session_index}")
                self.compared[what] += 1
            self.compared["verified"] += p.verified_known
            outside = (np.array([0]), np.array([self.units.n_units]))
            for what in ("holdings", "obligation"):  # a cell out of range: numpy's error
                for src in (a, b):
                    with pytest.raises(IndexError):
                        getattr(src, what)(outside)
        return view

    def _exchange(self, orders, view, p):  # type: ignore[no-untyped-def]
        from carbonsim.engine._exchange_numba import exchange_compiled
        from carbonsim.engine._view_numba import route_compiled

        tr = self.scenario.trading
        want = super()._exchange(orders, view, p)  # the numpy steps
        got = route_compiled(
            orders, view, self.units.n_units, tr.block_min_size, tr.listed_max_size
        )
        # the fused exchange step: routing, bands, repricing, both call auctions
        fused = exchange_compiled(
            orders, view, self.ledger, None if p is None else p.last_year, tr,
            self.last_close, self._floor, self._ceiling, self.scenario.behaviour.choke_price,
        )  # fmt: skip
        for routed, label in ((got, "route"), (fused[0], "exchange")):
            for f in ("replicate", "unit", "is_buy", "price", "qty", "segment"):
                if getattr(want[0], f).tobytes() != getattr(routed, f).tobytes():
                    self.mismatches.append(f"{label} {f} at session {self.session_index}")
        for name, a, b in zip(
            ("lo", "hi", "price", "volume", "fill"), want[1:], fused[1:], strict=True
        ):
            if a.tobytes() != b.tobytes():
                self.mismatches.append(f"exchange {name} at session {self.session_index}")
        self.compared["route"] += 1
        return want


@pytest.mark.parametrize("name", ["china-national-tiny", "eu-ets-tiny"])
def test_compiled_view_reads_and_routing_equal_numpy_every_session(name: str) -> None:
    pytest.importorskip("numba")
    session_kernels("numba")
    sim = _Crosscheck(load_scenario(name), seed=1, replicates=2, check_invariants=False)
    sim.run()
    assert sim.mismatches == []
    # both branches of the obligation (before and after verification) were compared
    assert sim.compared["verified"] > 0
    assert sim.compared["obligation"] > sim.compared["verified"]
    assert sim.compared["route"] == len(sim.days)


def _view(holdings: np.ndarray) -> MarketView:
    r, n = holdings.shape
    return MarketView(
        session=0,
        sessions_to_deadline=10,
        sessions_in_cycle=100,
        holdings=holdings,
        expected_obligation=np.zeros((r, n)),
        obligation_certainty=1.0,
        last_close=np.full(r, 50.0),
        expected_price=np.full(r, 50.0),
        unit_size=np.full(n, 1e4),
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_routing_scales_offers_to_holdings_and_refuses_foreign_cells(backend: str) -> None:
    if backend == "numba":
        pytest.importorskip("numba")
    if backend == "numba":
        from carbonsim.engine._view_numba import route_compiled as route

        session_kernels("numba")
    else:
        from carbonsim.engine.simulation import route_orders as route
    view = _view(np.array([[10.0, 0.0, 7.0]]))
    orders = Orders(
        replicate=np.zeros(4, np.int64),
        unit=np.array([0, 0, 2, 1]),
        is_buy=np.array([False, False, False, True]),
        price=np.full(4, 50.0),
        qty=np.array([8.0, 12.0, 5.0, 200.0]),
        segment=np.array([LISTED, LISTED, LISTED, BLOCK]),
    )
    out = route(orders, view, 3, 100.0, 150.0)
    # unit 0 offers 20 t but holds 10: both offers halved; unit 2 keeps 5 t; the 200 t
    # block bid stays in the block segment
    assert out.qty.tolist() == [4.0, 6.0, 5.0, 200.0]
    assert out.segment.tolist() == [LISTED, LISTED, LISTED, BLOCK]
    small_block = route(orders, view, 3, 500.0, 150.0)  # below the block minimum: listed,
    assert small_block.segment.tolist() == [LISTED] * 4  # then capped below the listed max
    assert small_block.qty.tolist() == [4.0, 6.0, 5.0, 149.0]
    bad = Orders(
        replicate=np.zeros(2, np.int64),
        unit=np.array([1, 3]),
        is_buy=np.array([True, True]),
        price=np.full(2, 50.0),
        qty=np.full(2, 5.0),
    )
    with pytest.raises(ValueError, match=r"orders: unit index 3 of order 1 is outside \[0, 3\)"):
        route(bad, view, 3, 100.0, 150.0)


def test_numba_backend_runs_a_strategy_subclass_own_orders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("numba")
    from dataclasses import dataclass

    from carbonsim.agents import ComplianceTrader
    from carbonsim.engine import simulation as engine

    @dataclass(frozen=True)
    class Quiet(ComplianceTrader):
        """Compliance traders that never trade (overriding ``orders``)."""

        def orders(self, view: MarketView, rng: object) -> Orders:  # type: ignore[override]
            return Orders.empty()

    make = engine.make_strategy

    def quiet_compliance(name: str, params: dict[str, object]) -> object:
        return Quiet(**params) if name == "compliance" else make(name, params)

    monkeypatch.setattr(engine, "make_strategy", quiet_compliance)
    sc = load_scenario("china-national-tiny")
    kw = {"seed": 3, "check_invariants": False}
    quiet = simulate(sc, backend="numba", **kw)
    assert result_digest(quiet) == result_digest(simulate(sc, backend="numpy", **kw))
    monkeypatch.undo()
    assert result_digest(quiet) != result_digest(simulate(sc, backend="numba", **kw))


def test_exchange_step_hands_fractional_books_to_numpy_and_names_bad_orders() -> None:
    pytest.importorskip("numba")
    from carbonsim.clearing.batch import clear_session
    from carbonsim.engine._exchange_numba import exchange_compiled
    from carbonsim.engine.simulation import session_bands
    from carbonsim.market.ledger import Ledger

    session_kernels("numba")
    ledger = Ledger(1, ["a", "b"], [2021, 2022])
    ledger.allocate(2021, np.array([[50, 0]]), issue=True)
    tr = load_scenario("china-national-tiny").trading
    close = np.array([50.0])
    orders = Orders(
        replicate=np.zeros(3, np.int64),
        unit=np.array([0, 1, 1]),
        is_buy=np.array([False, True, True]),
        price=np.array([49.0, 51.0, 50.5]),
        qty=np.array([30.0, 10.5, 7.25]),  # fractional bids: the clearing kernel declines
        segment=np.full(3, LISTED),
    )
    routed, lo, hi, price, volume, fill = exchange_compiled(
        orders, None, ledger, 2021, tr, close, None, None, 1e6
    )
    want_lo, want_hi = session_bands(close, tr.listed_band, tr.block_band, tr.tick, None, None)
    market = routed.replicate + (routed.segment == BLOCK)
    repriced = np.where(
        routed.is_buy,
        np.minimum(routed.price, want_hi[market]),
        np.maximum(routed.price, want_lo[market]),
    )
    want = clear_session(
        market, routed.is_buy, repriced, routed.qty, n_markets=2, tick=tr.tick,
        reference_price=np.concatenate([close, close]), band=(want_lo, want_hi),
    )  # fmt: skip
    assert lo.tobytes() == want_lo.tobytes()
    assert hi.tobytes() == want_hi.tobytes()
    for a, b in zip(want, (price, volume, fill), strict=True):
        assert a.tobytes() == b.tobytes()
    assert volume[0] == 17.75  # both fractional bids fill against the 30 t offer
    bad = Orders(
        replicate=np.zeros(1, np.int64),
        unit=np.array([2]),
        is_buy=np.array([True]),
        price=np.array([50.0]),
        qty=np.array([5.0]),
    )
    with pytest.raises(ValueError, match=r"orders: unit index 2 of order 0 is outside \[0, 2\)"):
        exchange_compiled(bad, None, ledger, 2021, tr, close, None, None, 1e6)

"""Runs of sessions in one compiled call (``backend="numba"``) change nothing in a run.

The numba backend runs the sessions between two events of the schedule in one call
(:mod:`carbonsim.engine._sessions_numba`). Whole runs of every tiny scenario give the
numpy backend's digests, journals and accounts bit for bit, whichever length the runs are
cut into, and where a run stops early (the exchange step declines a session, the ledger
refuses a settlement part-way) the engine's step-by-step session takes over with the same
result. Runs the runner cannot make (invariant checks, recorded trades, the band
trigger, strategy subclasses, a Simulation subclass that overrides a session step) go
session by session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsim._random import BatchRandom, replicate_seeds
from carbonsim.agents import ComplianceTrader
from carbonsim.engine import Simulation
from carbonsim.results import Result
from carbonsim.scenario import list_scenarios, load_scenario
from carbonsim.scenario.loader import with_overrides
from carbonsim.testing import result_digest

numba = pytest.importorskip("numba")

from carbonsim._random_numba import CompiledBatchRandom  # noqa: E402
from carbonsim.engine import _sessions_numba  # noqa: E402
from carbonsim.engine._sessions_numba import SessionRunner  # noqa: E402

TINY = [n for n in list_scenarios() if n.endswith("-tiny")]
KW: dict[str, Any] = {"seed": 5, "replicates": 2, "check_invariants": False}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Records ``(i, end, next)`` of every :meth:`SessionRunner.run` call."""
    seen: list[tuple[int, int, int]] = []
    run = SessionRunner.run

    def spy(self: SessionRunner, i: int, end: int) -> int:
        nxt = run(self, i, end)
        seen.append((i, end, nxt))
        return nxt

    monkeypatch.setattr(SessionRunner, "run", spy)
    return seen


def _same_run(a: Simulation, b: Simulation, ra: Result | None = None) -> None:
    """Run ``b`` and ``a`` (unless its result ``ra`` is given) and compare results,
    accounts, journals and draws."""
    ra = a.run() if ra is None else ra
    rb = b.run()
    assert result_digest(ra) == result_digest(rb)
    assert ra.market.to_numpy().tobytes() == rb.market.to_numpy().tobytes()
    assert a.ledger.journal().equals(b.ledger.journal())
    assert a.ledger.allowances.tobytes() == b.ledger.allowances.tobytes()
    assert a.ledger.cash.tobytes() == b.ledger.cash.tobytes()
    assert a.ledger.offsets.tobytes() == b.ledger.offsets.tobytes()
    assert a.rng.draws == b.rng.draws
    for pa, pb in zip(a.periods, b.periods, strict=True):
        assert pa.bought.tobytes() == pb.bought.tobytes()
        assert pa.sold.tobytes() == pb.sold.tobytes()


@pytest.mark.parametrize("name", TINY)
def test_session_runs_give_the_numpy_run(name: str, calls: list[tuple[int, int, int]]) -> None:
    sc = load_scenario(name)
    a = Simulation(sc, backend="numpy", **KW)
    b = Simulation(sc, backend="numba", **KW)
    _same_run(a, b)
    if sc.policy.band_trigger is None:
        assert calls, "the runner was not used"
        # consecutive calls cover the sessions they say they ran
        assert all(i < nxt <= end for i, end, nxt in calls)
        assert sum(nxt - i for i, _, nxt in calls) > len(b.days) // 2
    else:  # the band trigger may act after any session: step by step
        assert not calls


@pytest.mark.parametrize("max_run", [1, 2, 3, 7])
@pytest.mark.parametrize("name", ["china-national-tiny", "eu-ets-tiny", "ccer-2024-tiny"])
def test_runs_cut_into_pieces_of_any_length_agree(
    name: str, max_run: int, monkeypatch: pytest.MonkeyPatch, calls: list[Any]
) -> None:
    sc = load_scenario(name)
    whole = Simulation(sc, backend="numba", **KW)
    whole_result = whole.run()
    n_whole = len(calls)
    monkeypatch.setattr(SessionRunner, "max_run", max_run)
    cut = Simulation(sc, backend="numba", **KW)
    _same_run(whole, cut, whole_result)
    assert max(nxt - i for i, _, nxt in calls[n_whole:]) <= max_run
    if max_run == 1:
        assert len(calls) - n_whole > n_whole


@pytest.mark.parametrize("stop", [(0, 0), (2, 0), (0, 1), (1, 2), (3, 2)])
@pytest.mark.parametrize("name", ["china-national-tiny", "ccer-2024-tiny"])
def test_a_run_stopped_by_a_kernel_hands_the_session_to_numpy(
    name: str, stop: tuple[int, int], monkeypatch: pytest.MonkeyPatch, calls: list[Any]
) -> None:
    # the kernel acts as if session `stop[0]` of every run met input outside its case:
    # the exchange step declined it (kind 0) or the ledger refused segment kind - 1
    monkeypatch.setattr(SessionRunner, "_stop", stop)
    sc = load_scenario(name)
    a = Simulation(sc, backend="numpy", **KW)
    b = Simulation(sc, backend="numba", **KW)
    _same_run(a, b)
    assert any(nxt == i + stop[0] + 1 and end > nxt for i, end, nxt in calls)


def test_a_refused_settlement_raises_the_ledgers_error() -> None:
    class Budgeted(Simulation):
        """Units may not spend cash they do not have (they start with none)."""

        def _setup(self) -> None:
            super()._setup()
            self.ledger.allow_negative_cash = False

    sc = load_scenario("china-national-tiny")
    errors = []
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match="allow_negative_cash") as info:
            Budgeted(sc, backend=backend, **KW).run()
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_runs_are_left_to_the_session_where_a_step_is_per_session(calls: list[Any]) -> None:
    sc = load_scenario("china-national-tiny")
    Simulation(sc, backend="numba", seed=1, check_invariants=True).run()
    Simulation(sc, backend="numba", seed=1, check_invariants=False, record_trades=True).run()

    class Watched(Simulation):
        def _exchange(self, orders, view, p):  # type: ignore[no-untyped-def]
            return super()._exchange(orders, view, p)

    Watched(sc, backend="numba", seed=1, check_invariants=False).run()
    assert not calls
    Simulation(sc, backend="numba", seed=1, check_invariants=False).run()
    assert calls


def test_a_strategy_subclass_keeps_the_run_step_by_step() -> None:
    class Cautious(ComplianceTrader):
        pass

    sim = Simulation(load_scenario("china-national-tiny"), backend="numba", **KW)
    sim._setup()
    assert _sessions_numba.session_runner(sim) is not None
    sim.strategies[0] = Cautious()
    assert _sessions_numba.session_runner(sim) is None


def test_progress_bar_counts_every_session(capsys: pytest.CaptureFixture[str]) -> None:
    sc = load_scenario("china-national-tiny")
    a = Simulation(sc, backend="numpy", **KW).run()
    sim = Simulation(sc, backend="numba", progress=True, **KW)
    b = sim.run()
    assert result_digest(a) == result_digest(b)
    err = capsys.readouterr().err
    assert f"{len(sim.days)}/{len(sim.days)}" in err


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    r=st.integers(1, 3),
    n=st.integers(1, 40),
    counter=st.integers(0, 10**6),
    kinds=st.lists(st.sampled_from([0, 1]), min_size=1, max_size=3),
    probs=st.lists(st.sampled_from([0.0, 0.01, 0.3, 0.999, 1.0]), min_size=4, max_size=4),
)
def test_drawn_cells_are_the_strategies_draws(
    seed: int, r: int, n: int, counter: int, kinds: list[int], probs: list[float]
) -> None:
    _sessions_numba.compile_kernels()
    n_draws = np.array([2 if k == 0 else 3 for k in kinds], np.int64)
    offset = np.concatenate([[0], np.cumsum(1 + n_draws)[:-1]]).astype(np.int64)
    per_session = int((1 + n_draws).sum())
    n_sess = 2
    n_strat = len(kinds)
    p = np.array([[probs[(s * n_strat + t) % 4] for t in range(n_strat)] for s in range(n_sess)])
    seeds = replicate_seeds(seed, r)
    ref = BatchRandom(seeds)
    ref._counter = counter
    rows, cols, u, start = _sessions_numba._compiled["draw_cells"](
        ref._keys, counter + per_session * np.arange(n_sess + 1), offset, n_draws, p, n
    )
    for s in range(n_sess):
        for t in range(n_strat):
            k = s * n_strat + t
            a, b = start[k], start[k + 1]
            rr, cc = ref.bernoulli_cells((r, n), float(p[s, t]))
            assert rows[a:b].tolist() == rr.tolist()
            assert cols[a:b].tolist() == cc.tolist()
            for d in range(n_draws[t]):
                want = ref.random((r, n), where=(rr, cc))
                assert u[d, a:b].tobytes() == want.tobytes()
            assert (u[n_draws[t] :, a:b] == 0.5).all()
    assert ref.draws == counter + n_sess * per_session
    fast = CompiledBatchRandom(seeds)
    fast._counter = counter
    assert fast.bernoulli_cells((r, n), float(p[0, 0]))[0].tolist() == rows[: start[1]].tolist()


@pytest.mark.parametrize("max_run", [None, 1, 4])
@pytest.mark.parametrize("stop", [(-1, 0), (1, 0), (2, 1)])
def test_runs_cross_idle_offset_sessions(
    max_run: int | None, stop: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # an offset session where no replicate has credits on offer only draws (its bidders'
    # numbers, and the first time the offer noise): runs go on across it, and the draws
    # it makes are counted where a step-by-step session makes them
    seen: list[tuple[int, int]] = []
    counters = SessionRunner._counters

    def spy(self: SessionRunner, sess: Any, *args: Any) -> Any:
        out = counters(self, sess, *args)
        seen.append((int(out[0][-1] - out[0][0] - self.per_session * len(sess)), out[1]))
        return out

    monkeypatch.setattr(SessionRunner, "_counters", spy)
    monkeypatch.setattr(SessionRunner, "max_run", max_run)
    monkeypatch.setattr(SessionRunner, "_stop", stop)
    # no legacy credits: the market opens empty and stays idle until projects issue
    sc = with_overrides(load_scenario("ccer-2024-tiny"), {"offsets.legacy_stock": 0})
    a = Simulation(sc, backend="numpy", **KW)
    b = Simulation(sc, backend="numba", **KW)
    _same_run(a, b)
    assert any(extra > 0 for extra, _ in seen), "no run crossed an idle offset session"
    assert any(offer >= 0 for _, offer in seen), "no run drew the offer noise"
    assert b.offer_noise is not None
    assert b.offer_noise.tobytes() == a.offer_noise.tobytes()  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["china-national-tiny", "ccer-2024-tiny"])
def test_offset_sessions_that_clear_run_inside_the_runs(
    name: str, monkeypatch: pytest.MonkeyPatch, calls: list[Any]
) -> None:
    # once the offer noise is drawn, an offset session whose market trades no longer ends
    # a run: the runs span several of them, and credits change hands all the same
    inline: list[bool] = []
    offsets_inline = SessionRunner.offsets_inline

    def spy(self: SessionRunner, p: Any) -> bool:
        out = offsets_inline(self, p)
        inline.append(out)
        return out

    monkeypatch.setattr(SessionRunner, "offsets_inline", spy)
    sc = load_scenario(name)
    a = Simulation(sc, backend="numpy", **KW)
    b = Simulation(sc, backend="numba", **KW)
    ra = a.run()
    _same_run(a, b, ra)
    assert any(inline)
    interval = sc.offsets.session_interval
    assert any(len([s for s in range(i, nxt) if s % interval == 0]) > 1 for i, _, nxt in calls)
    assert np.nansum(ra.market["offset_volume"].to_numpy()) > 0
    assert "transfer_offsets" in list(b.ledger.journal().index.get_level_values("op"))


def test_an_offset_session_left_by_the_kernel_runs_in_numpy(
    monkeypatch: pytest.MonkeyPatch, calls: list[Any]
) -> None:
    # the kernel acts as if the offset session after session `position` of every run could
    # not be cleared in compiled code: the run ends there and numpy clears it
    sc = load_scenario("china-national-tiny")
    a = Simulation(sc, backend="numpy", **KW)
    ra = a.run()
    stopped = []
    for position in range(5):
        monkeypatch.setattr(SessionRunner, "_stop", (position, 3))
        calls.clear()
        _same_run(a, Simulation(sc, backend="numba", **KW), ra)
        stopped += [(i, nxt) for i, end, nxt in calls if nxt == i + position + 1 < end]
    assert stopped, "no run left an offset session to numpy"
    interval = sc.offsets.session_interval
    assert all((nxt - 1) % interval == 0 for _, nxt in stopped)

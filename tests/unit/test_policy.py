"""Policy instruments: price limits, Beijing band trigger, EU MSR, holding limits."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.clearing.call_auction import call_auction
from carbonsim.market.policy import (
    BEIJING_BAND,
    BandTriggerState,
    apply_holding_limit,
    apply_price_limits,
    band_trigger_init,
    ceiling_release,
    excess_demand,
    floor_purchase,
    msr_intake,
    msr_invalidation,
    tnac,
    update_band_trigger,
)

# ------------------------------------------------------------------ floor and ceiling


def test_apply_price_limits_clips_and_broadcasts() -> None:
    p = np.array([[10.0, 80.0, 200.0], [19.99, 150.0, 150.01]])
    got = apply_price_limits(p, floor=20.0, ceiling=150.0)
    np.testing.assert_array_equal(got, [[20.0, 80.0, 150.0], [20.0, 150.0, 150.0]])
    # per-replicate limits, shape (R, 1)
    got = apply_price_limits(p, ceiling=np.array([[100.0], [160.0]]))
    np.testing.assert_array_equal(got, [[10.0, 80.0, 100.0], [19.99, 150.0, 150.01]])
    np.testing.assert_array_equal(apply_price_limits(p), p)


def test_apply_price_limits_validation() -> None:
    with pytest.raises(ValueError, match=r"floor must be <= ceiling, got floor 200.0 > ceiling"):
        apply_price_limits([1.0], floor=200.0, ceiling=150.0)
    with pytest.raises(ValueError, match=r"price must be finite"):
        apply_price_limits([np.nan])
    with pytest.raises(ValueError, match=r"ceiling must be >= 0"):
        apply_price_limits([1.0], ceiling=-1.0)
    with pytest.raises(ValueError, match="broadcast"):
        apply_price_limits([1.0, 2.0], floor=[1.0, 2.0, 3.0])


# book used below: bids 160 x 5, 150 x 3, 140 x 9; asks 100 x 2, 149 x 1, 155 x 4
BID_P, BID_Q = [160.0, 150.0, 140.0], [5, 3, 9]
ASK_P, ASK_Q = [100.0, 149.0, 155.0], [2, 1, 4]


def test_excess_demand_hand_worked() -> None:
    # at 150: demand 5 + 3 = 8, supply 2 + 1 = 3
    assert int(excess_demand(BID_P, BID_Q, ASK_P, ASK_Q, 150.0)) == 5
    # at 140: demand 17, supply 2 (the ask at 149 is above); at 160: demand 5, supply 7
    # one book evaluated at several prices (price axes broadcast against the book's)
    assert excess_demand(BID_P, BID_Q, ASK_P, ASK_Q, [140.0, 160.0]).tolist() == [15, -2]
    books = excess_demand(
        np.array([BID_P, BID_P]),
        np.array([BID_Q, BID_Q]),
        np.array([ASK_P, ASK_P]),
        np.array([ASK_Q, ASK_Q]),
        np.array([140.0, 160.0]),
    )
    assert books.tolist() == [15, -2]
    # prices compared in ticks: 149.999 rounds to 150.00
    assert int(excess_demand(BID_P, BID_Q, ASK_P, ASK_Q, 149.999)) == 5


def test_excess_demand_validation() -> None:
    with pytest.raises(ValueError, match="same shape"):
        excess_demand([1.0, 2.0], [1], [1.0], [1], 1.0)
    with pytest.raises(TypeError, match="bid_qty must hold whole numbers"):
        excess_demand([1.0], [1.5], [1.0], [1], 1.0)
    with pytest.raises(ValueError, match="tick"):
        excess_demand([1.0], [1], [1.0], [1], 1.0, tick=0.0)


def test_ceiling_release_and_floor_purchase() -> None:
    assert ceiling_release([-5, 40, 400], 100).tolist() == [0, 40, 100]
    assert floor_purchase([-3, 7, 70], capacity=50).tolist() == [0, 7, 50]
    assert floor_purchase([70]).tolist() == [70]
    with pytest.raises(ValueError, match="reserve_available must be >= 0"):
        ceiling_release([1], -1)


def test_binding_ceiling_holds_after_release() -> None:
    ceiling = 150.0
    x = int(excess_demand(BID_P, BID_Q, ASK_P, ASK_Q, ceiling))
    release = int(ceiling_release(x, 1_000))
    assert release == 5
    # the government's ask at the ceiling closes the gap: the market clears at the ceiling
    after = excess_demand(BID_P, BID_Q, [*ASK_P, ceiling], [*ASK_Q, release], ceiling)
    assert int(after) == 0
    # a short reserve cannot hold it: demand still exceeds supply at the ceiling
    short = int(ceiling_release(x, 2))
    assert int(excess_demand(BID_P, BID_Q, [*ASK_P, ceiling], [*ASK_Q, short], ceiling)) == 3


def test_binding_ceiling_holds_in_the_call_auction() -> None:
    # without intervention the book clears at 155 (above the ceiling)
    assert call_auction(BID_P, BID_Q, ASK_P, ASK_Q).price == 155.0
    # with the release of 5 t at 150: D(150) = 8 = S(150); 150 is the only maximum-volume
    # price, so the auction clears at the ceiling with 8 t, 5 of them from the reserve
    res = call_auction(BID_P, BID_Q, [*ASK_P, 150.0], [*ASK_Q, 5])
    assert (res.price, res.volume) == (150.0, 8.0)
    assert res.ask_fill.tolist() == [2.0, 1.0, 0.0, 5.0]
    assert apply_price_limits(res.price, ceiling=150.0).item() == 150.0


def test_binding_floor_holds_after_purchase() -> None:
    floor = 150.0
    bid_p, bid_q = [160.0, 140.0], [2, 9]
    ask_p, ask_q = [120.0, 150.0, 155.0], [6, 4, 4]
    x = -int(excess_demand(bid_p, bid_q, ask_p, ask_q, floor))  # supply 10 - demand 2
    buy = int(floor_purchase(x))
    assert buy == 8
    assert int(excess_demand([*bid_p, floor], [*bid_q, buy], ask_p, ask_q, floor)) == 0
    assert call_auction(bid_p, bid_q, ask_p, ask_q).price < floor
    res = call_auction([*bid_p, floor], [*bid_q, buy], ask_p, ask_q)
    assert (res.price, res.volume) == (150.0, 10.0)
    assert res.bid_fill.tolist() == [2.0, 0.0, 8.0]


# ------------------------------------------------------------------ Beijing band trigger


def run_band(
    prices: list[list[float]], *, window: int = 1, min_days: int = 3, quantity: int = 0
) -> tuple[np.ndarray, np.ndarray, BandTriggerState]:
    """Feed days (each a list over replicates); return actions (D, R) and quantities."""
    state = band_trigger_init(len(prices[0]), window=window)
    actions, qty = [], []
    for day in prices:
        upd = update_band_trigger(state, day, min_days=min_days, quantity=quantity)
        state = upd.state
        actions.append(upd.action)
        qty.append(upd.quantity)
    return np.array(actions), np.array(qty), state


def test_band_auction_after_sustained_high_prices() -> None:
    actions, qty, state = run_band([[160.0]] * 6, quantity=5_000)
    assert actions[:, 0].tolist() == [0, 0, 1, 0, 0, 1]  # counter restarts after an action
    assert qty[:, 0].tolist() == [0, 0, 5_000, 0, 0, 5_000]
    assert state.above.tolist() == [0]


def test_band_interruption_resets_the_count() -> None:
    actions, _, _ = run_band([[160.0], [160.0], [100.0], [160.0], [160.0], [160.0]])
    assert actions[:, 0].tolist() == [0, 0, 0, 0, 0, 1]


def test_band_buy_back_below_and_edges_inside() -> None:
    actions, _, _ = run_band([[10.0], [19.99], [5.0]])
    assert actions[:, 0].tolist() == [0, 0, -1]
    lo, hi = BEIJING_BAND
    assert (lo, hi) == (20.0, 150.0)
    actions, _, _ = run_band([[hi], [hi], [hi], [lo], [lo], [lo]])
    assert (actions == 0).all()


def test_band_moving_average_window_and_replicates() -> None:
    # window 3, 2 days: replicate 0 MA = 100, 100, 153.3, 153.3 -> fires on day 4;
    # replicate 1 stays at 100 (MA inside the band)
    days = [[100.0, 100.0], [100.0, 100.0], [260.0, 100.0], [100.0, 100.0]]
    actions, _, state = run_band(days, window=3, min_days=2)
    assert actions.tolist() == [[0, 0], [0, 0], [0, 0], [1, 0]]
    np.testing.assert_array_equal(state.closes, [[100.0, 260.0, 100.0], [100.0, 100.0, 100.0]])
    # during warm-up the average is over the closes seen so far
    upd = update_band_trigger(band_trigger_init(1, window=5), [200.0], min_days=1)
    assert upd.moving_average.tolist() == [200.0]
    assert upd.action.tolist() == [1]


def test_band_validation() -> None:
    state = band_trigger_init(2, window=2)
    with pytest.raises(ValueError, match=r"price must have shape \(2,\)"):
        update_band_trigger(state, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="band must satisfy lower <= upper"):
        update_band_trigger(state, [1.0, 2.0], band=(150.0, 20.0))
    with pytest.raises(ValueError, match="min_days must be an int >= 1"):
        update_band_trigger(state, [1.0, 2.0], min_days=0)
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        band_trigger_init(2, window=0)
    with pytest.raises(ValueError, match=r"BandTriggerState.above must have shape \(2,\)"):
        BandTriggerState(closes=np.zeros((2, 1)), above=np.zeros(3), below=np.zeros(2))


# ------------------------------------------------------------------ EU MSR


@pytest.mark.parametrize(
    ("tnac_mt", "intake_mt", "release_mt"),
    [
        (1_200, 288, 0),  # 24% of 1,200 Mt
        (900, 67, 0),  # between 833 and 1,096: 900 - 833
        (600, 0, 0),
        (350, 0, 100),  # below 400 Mt: 100 Mt released
        (833, 0, 0),  # at the threshold: nothing
        (1_096, 263, 0),  # 1,096 - 833
        (400, 0, 0),
    ],
)
def test_msr_intake_and_release(tnac_mt: int, intake_mt: int, release_mt: int) -> None:
    flow = msr_intake(tnac_mt * 1e6)
    assert flow.intake.item() == intake_mt * 1_000_000
    assert flow.release.item() == release_mt * 1_000_000
    assert flow.net.item() == (intake_mt - release_mt) * 1_000_000


def test_msr_vectorised_and_release_capped_by_holdings() -> None:
    flow = msr_intake(np.array([[1_200e6, 350e6], [350e6, 350e6]]), msr_holdings=[30e6, 500e6])
    assert flow.intake.tolist() == [[288_000_000, 0], [0, 0]]
    assert flow.release.tolist() == [[0, 100_000_000], [30_000_000, 100_000_000]]


def test_msr_parameter_validation() -> None:
    with pytest.raises(ValueError, match="buffer_upper must lie in"):
        msr_intake(1e9, buffer_upper=1_200e6)
    with pytest.raises(ValueError, match="lower must lie in"):
        msr_intake(1e9, lower=900e6)
    with pytest.raises(ValueError, match="tnac must be >= 0"):
        msr_intake(-1.0)


def test_msr_invalidation_and_tnac() -> None:
    assert msr_invalidation([350e6, 400e6, 1_000e6]).tolist() == [0, 0, 600_000_000]
    assert msr_invalidation(1_000e6, threshold=0.0).item() == 1_000_000_000
    assert tnac(2_000e6, 800e6, 300e6).item() == 900e6
    np.testing.assert_array_equal(tnac([2e9, 3e9], [1e9, 1e9], 0.0), [1e9, 2e9])
    with pytest.raises(ValueError, match="supply - emissions - msr_holdings must be >= 0"):
        tnac(1e9, 2e9, 0.0)


# ------------------------------------------------------------------ holding limits


def test_holding_limit() -> None:
    assert apply_holding_limit([0, 90, 120, 100], [50, 50, 50, 0], 100).tolist() == [50, 10, 0, 0]
    got = apply_holding_limit([[0, 90], [10, 10]], [[50, 50], [5, 200]], [[60, 100]])
    assert got.tolist() == [[50, 10], [5, 90]]
    with pytest.raises(ValueError, match="buy_qty must be >= 0"):
        apply_holding_limit([0], [-1], 10)

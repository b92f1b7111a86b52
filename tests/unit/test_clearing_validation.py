"""Bad input to the clearing kernels raises errors that name the argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from carbonsim._registry import UnknownPluginError
from carbonsim.clearing import (
    band_from_reference,
    call_auction,
    call_auction_batch,
    price_to_ticks,
    sealed_bid_auction,
    ticks_to_price,
)

GOOD: dict[str, Any] = {
    "bid_price": [50.0, 49.0],
    "bid_qty": [1.0, 2.0],
    "ask_price": [48.0],
    "ask_qty": [3.0],
}


def _auction(**overrides: Any) -> None:
    args = {**GOOD, **overrides}
    kwargs = {k: v for k, v in args.items() if k not in GOOD}
    call_auction(args["bid_price"], args["bid_qty"], args["ask_price"], args["ask_qty"], **kwargs)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"bid_price": [np.nan, 49.0]}, ValueError, r"bid_price must be finite"),
        ({"ask_price": [np.inf]}, ValueError, r"ask_price must be finite"),
        ({"bid_qty": [-1.0, 2.0]}, ValueError, r"bid_qty must be >= 0"),
        ({"ask_qty": [np.nan]}, ValueError, r"ask_qty must be finite"),
        ({"ask_qty": [np.inf]}, ValueError, r"ask_qty must be finite"),
        ({"bid_qty": [1.0]}, ValueError, r"bid_price=2, bid_qty=1"),
        ({"ask_price": [48.0, 47.0]}, ValueError, r"ask_price=2, ask_qty=1"),
        ({"bid_price": ["50", "49"]}, TypeError, r"bid_price must be an array of real"),
        ({"bid_price": np.array([50, 49], dtype=object)}, TypeError, r"bid_price"),
        ({"ask_price": [True]}, TypeError, r"ask_price must be an array of real"),
        ({"bid_qty": [True, False]}, TypeError, r"bid_qty"),
        ({"bid_price": [[50.0, 49.0]]}, ValueError, r"bid_price must be 1-dimensional"),
        ({"tick": 0.0}, ValueError, r"tick must be > 0"),
        ({"tick": -0.01}, ValueError, r"tick must be > 0"),
        ({"tick": np.nan}, ValueError, r"tick must be finite"),
        ({"tick": "0.01"}, TypeError, r"tick must be a real number"),
        ({"allocation": "fifo"}, UnknownPluginError, r"allocation rule 'fifo'.*'pro_rata'"),
        ({"band_mode": "drop"}, ValueError, r"band_mode must be one of 'reject', 'clip'"),
        ({"price_band": (55.0, 45.0)}, ValueError, r"price_band must satisfy lo <= hi"),
        ({"price_band": (50.001, 50.009)}, ValueError, r"price_band.*contains no price"),
        ({"price_band": (45.0,)}, ValueError, r"price_band must have exactly two"),
        ({"price_band": 45.0}, TypeError, r"price_band must be a pair"),
        ({"price_band": (np.nan, 55.0)}, ValueError, r"price_band\[0\] must be finite"),
        ({"price_band": (45.0, "x")}, TypeError, r"price_band\[1\]"),
        ({"reference_price": np.nan}, ValueError, r"reference_price must be finite"),
        ({"reference_price": "50"}, TypeError, r"reference_price must be a real number"),
        ({"bid_price": [1e300, 49.0]}, ValueError, r"bid_price is too large"),
    ],
)
def test_call_auction_rejects(overrides: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _auction(**overrides)


def test_unknown_allocation_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="valid names are: 'price_time', 'pro_rata'"):
        _auction(allocation="fifo")


BATCH: dict[str, Any] = {
    "market": [0, 1],
    "side": [True, False],
    "price": [50.0, 49.0],
    "qty": [1.0, 1.0],
    "n_markets": 2,
}


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"market": [0, 2]}, ValueError, r"market must be <= 1"),
        ({"market": [-1, 0]}, ValueError, r"market must be >= 0"),
        ({"market": [0.5, 1.0]}, TypeError, r"market must hold whole numbers"),
        ({"market": ["a", "b"]}, TypeError, r"market must be an array of integers"),
        ({"market": [0]}, ValueError, r"market=1, side=2"),
        ({"side": [1, 0]}, ValueError, r"side must hold \+1 \(bid\) or -1 \(ask\)"),
        ({"side": [1.0, -1.0]}, TypeError, r"side must be boolean"),
        ({"side": [True]}, ValueError, r"side=1"),
        ({"price": [50.0, np.nan]}, ValueError, r"price must be finite"),
        ({"price": [True, False]}, TypeError, r"price must be an array of real"),
        ({"qty": [1.0, -2.0]}, ValueError, r"qty must be >= 0"),
        ({"n_markets": 2.0}, TypeError, r"n_markets must be an int"),
        ({"n_markets": True}, TypeError, r"n_markets must be an int"),
        ({"n_markets": -1}, ValueError, r"n_markets must be >= 0"),
        ({"reference_price": [50.0]}, ValueError, r"reference_price must be a scalar or"),
        ({"reference_price": [50.0, np.inf]}, ValueError, r"reference_price must be finite"),
        ({"reference_price": ["a", "b"]}, TypeError, r"reference_price"),
        ({"price_band": ([45.0, 45.0], [55.0])}, ValueError, r"price_band\[1\] must be a"),
        ({"price_band": ([45.0, 56.0], 55.0)}, ValueError, r"lo <= hi.*for market 1"),
        ({"tick": 0}, ValueError, r"tick must be > 0"),
        ({"allocation": "random"}, UnknownPluginError, r"allocation rule 'random'"),
        ({"band_mode": None}, ValueError, r"band_mode"),
    ],
)
def test_call_auction_batch_rejects(overrides: dict[str, Any], error: type, match: str) -> None:
    args = {**BATCH, **overrides}
    with pytest.raises(error, match=match):
        call_auction_batch(
            args.pop("market"), args.pop("side"), args.pop("price"), args.pop("qty"), **args
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bid_price": [np.nan]}, ValueError, r"bid_price must be finite"),
        ({"bid_qty": [-5.0]}, ValueError, r"bid_qty must be >= 0"),
        ({"bid_qty": [1.0, 2.0]}, ValueError, r"bid_price=1, bid_qty=2"),
        ({"supply": -1.0}, ValueError, r"supply must lie in \[0.0, inf\]"),
        ({"supply": np.inf}, ValueError, r"supply must be finite"),
        ({"supply": "10"}, TypeError, r"supply must be a real number"),
        ({"reserve_price": np.nan}, ValueError, r"reserve_price must be finite"),
        ({"reserve_price": None}, TypeError, r"reserve_price must be a real number"),
        ({"tick": -1.0}, ValueError, r"tick must be > 0"),
        ({"allocation": "lottery"}, UnknownPluginError, r"allocation rule 'lottery'"),
    ],
)
def test_sealed_bid_rejects(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {
        "bid_price": [101.0],
        "bid_qty": [1.0],
        "supply": 10.0,
        "reserve_price": 100.0,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        sealed_bid_auction(args.pop("bid_price"), args.pop("bid_qty"), **args)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0.0, 0.1), {}, ValueError, r"reference_price must be > 0"),
        ((50.0, 1.5), {}, ValueError, r"fraction must lie in \[0.0, 1.0\]"),
        ((50.0, -0.1), {}, ValueError, r"fraction must lie"),
        ((np.nan, 0.1), {}, ValueError, r"reference_price must be finite"),
        ((50.0, 0.1), {"tick": 0.0}, ValueError, r"tick must be > 0"),
        ((0.001, 0.1), {}, ValueError, r"contains no price on the tick grid"),
    ],
)
def test_band_from_reference_rejects(
    args: tuple[float, float], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        band_from_reference(*args, **kwargs)


def test_tick_helpers_reject() -> None:
    with pytest.raises(ValueError, match="price must be finite"):
        price_to_ticks([np.nan])
    with pytest.raises(TypeError, match="offer must be an array of real"):
        price_to_ticks(["1"], name="offer")
    with pytest.raises(ValueError, match="tick must be > 0"):
        ticks_to_price([1], 0.0)

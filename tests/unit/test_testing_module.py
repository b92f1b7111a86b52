"""carbonsim.testing: assertion helpers catch each broken invariant, digests, lazy strategies."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import carbonsim.testing as ct
from carbonsim.clearing import call_auction, call_auction_batch
from carbonsim.market.ledger import Ledger
from carbonsim.results import Result
from carbonsim.testing import (
    assert_batch_clearing_invariants,
    assert_clearing_invariants,
    assert_ledger_conserved,
    assert_results_equal,
    regenerate,
    result_digest,
    table_digest,
)

# ------------------------------------------------------------------------------ clearing

# Two bids, one ask: price 50, the bid at 52 fills in full, the bid at 50 is rationed.
PRIORITY = {"bid_price": [52.0, 50.0], "bid_qty": [10, 10], "ask_price": [50.0], "ask_qty": [15]}
# One bid, two asks; the ask at 51 is above the price and must not fill.
THROUGH = {"bid_price": [50.0], "bid_qty": [10], "ask_price": [49.0, 51.0], "ask_qty": [10, 5]}


def _tampered(book: dict[str, list[float]], **changes: object) -> object:
    res = call_auction(**book)
    return dataclasses.replace(res, **changes)


@pytest.mark.parametrize("book", [PRIORITY, THROUGH])
def test_real_results_pass(book: dict[str, list[float]]) -> None:
    for allocation in ("pro_rata", "price_time"):
        assert_clearing_invariants(call_auction(**book, allocation=allocation), **book)


def test_band_modes_pass() -> None:
    book = {"bid_price": [50.0, 60.0], "bid_qty": [10, 10], "ask_price": [49.0, 62.0]}
    book["ask_qty"] = [10, 10]
    for mode in ("reject", "clip"):
        kw = {"price_band": (49.5, 55.0), "band_mode": mode}
        assert_clearing_invariants(call_auction(**book, **kw), **book, **kw)


def test_no_trade_passes() -> None:
    book = {"bid_price": [49.0], "bid_qty": [10], "ask_price": [51.0], "ask_qty": [10]}
    assert_clearing_invariants(call_auction(**book, reference_price=50.0), **book)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bid_fill": np.array([11.0, 4.0])}, r"0 <= fill <= qty.*bid_fill\[0\] = 11\.0"),
        ({"bid_fill": np.array([-1.0, 16.0])}, r"0 <= fill <= qty"),
        ({"bid_fill": np.array([10.0, 4.0])}, r"fills sum to volume.*bid fills sum to 14\.0"),
        ({"bid_fill": np.array([5.0, 10.0])}, r"price priority.*bid 0 at tick 5200"),
        ({"imbalance": 0.0}, r"imbalance.*demand - supply at tick 5000 = 5\.0"),
        ({"executable": False}, r"executable"),
        (
            {"volume": 10.0, "bid_fill": np.array([10.0, 0.0]), "ask_fill": np.array([10.0])},
            r"maximum volume.*15\.0 t can trade",
        ),
        ({"price_tick": 5100}, r"no fill through a limit|price priority|volume at the price"),
        ({"bid_rejected": np.array([True, False])}, r"band rejection"),
    ],
)
def test_each_broken_invariant_is_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_clearing_invariants(_tampered(PRIORITY, **changes), **PRIORITY)  # type: ignore[arg-type]


def test_fill_through_a_limit_is_named() -> None:
    # move 5 t from the ask at 49 to the ask at 51: the sums still match the volume
    bad = _tampered(THROUGH, ask_fill=np.array([5.0, 5.0]))
    with pytest.raises(
        AssertionError, match=r"no fill through a limit.*ask 1 with limit tick 5100"
    ):
        assert_clearing_invariants(bad, **THROUGH)  # type: ignore[arg-type]


def test_reject_band_flags_are_checked() -> None:
    book = {"bid_price": [50.0, 60.0], "bid_qty": [10, 10], "ask_price": [49.0], "ask_qty": [5]}
    kw = {"price_band": (45.0, 55.0), "band_mode": "reject"}
    res = call_auction(**book, **kw)
    assert_clearing_invariants(res, **book, **kw)
    unflagged = dataclasses.replace(res, bid_rejected=np.array([False, False]))
    with pytest.raises(AssertionError, match=r"band rejection.*bid 1"):
        assert_clearing_invariants(unflagged, **book, **kw)


def test_fractional_quantities_use_a_relative_tolerance() -> None:
    book = {"bid_price": [50.0] * 3, "bid_qty": [0.1, 0.2, 0.3], "ask_price": [49.0]}
    book["ask_qty"] = [0.45]
    assert_clearing_invariants(call_auction(**book), **book)


BATCH = {
    "market": [0, 0, 1, 1, 1],
    "side": [1, -1, 1, 1, -1],
    "price": [50.0, 49.0, 20.0, 21.0, 20.0],
    "qty": [10, 10, 5, 5, 8],
    "n_markets": 2,
}


def test_batch_passes_and_a_broken_market_is_named() -> None:
    res = call_auction_batch(**BATCH)
    assert_batch_clearing_invariants(res, **BATCH)
    assert res.fill[2:4].tolist() == [3.0, 5.0]  # the bid at 20 rationed, at 21 in full
    fill = res.fill.copy()
    fill[2], fill[3] = 5.0, 3.0  # the better bid at 21 now rationed: priority broken
    with pytest.raises(AssertionError, match=r"price priority\): market 1: bid 1 at tick 2100"):
        assert_batch_clearing_invariants(dataclasses.replace(res, fill=fill), **BATCH)


# ------------------------------------------------------------------------------ ledger


def _ledger() -> Ledger:
    led = Ledger(2, ["a", "b", "c"], [2023, 2024], offset_classes=("ccer",))
    led.issue(2023, [1000, 1000])
    led.allocate(2023, [[300, 300, 300], [100, 200, 300]])
    led.settle_trades([[0, 50, 0], [10, 0, 0]], [[50, 0, 0], [0, 0, 10]], price=[60.0, 55.0])
    led.issue_offsets("ccer", [100, 100])
    led.transfer_offsets("ccer", [[10, 0, 5], [0, 0, 0]], price=[20.0, 20.0])
    led.surrender([[100, 100, 100], [50, 50, 50]], vintages=[2023])
    return led


def test_a_real_ledger_is_conserved() -> None:
    report = assert_ledger_conserved(_ledger())
    assert report.allowances_issued.tolist() == [1000, 1000]


@pytest.mark.parametrize(
    ("account", "index", "message"),
    [
        ("_allowances", (1, 2, 0), r"allowances not conserved in replicate 1, vintage 2023"),
        ("_offsets", (0, 0, 0), r"offsets not conserved in replicate 0, class 'ccer'"),
        ("_cash", (0, 1), r"cash not conserved in replicate 0"),
        ("_government", (0, 1), r"allowances not conserved in replicate 0, vintage 2024"),
    ],
)
def test_a_broken_ledger_is_named(account: str, index: tuple[int, ...], message: str) -> None:
    led = _ledger()
    getattr(led, account)[index] += 7
    with pytest.raises(AssertionError, match=message):
        assert_ledger_conserved(led)


def test_a_negative_holding_is_named() -> None:
    led = _ledger()
    led._allowances[0, 0, 0] -= 1000  # move tonnes from unit a to unit b: sums still agree
    led._allowances[0, 1, 0] += 1000
    with pytest.raises(AssertionError, match=r"allowances is negative at \(0, 0, 0\)"):
        assert_ledger_conserved(led)


# ------------------------------------------------------------------------------ results


def _result(seed: int = 0) -> Result:
    idx = pd.MultiIndex.from_product(
        [[0, 1], pd.date_range("2021-07-16", periods=3, name="date")],
        names=["replicate", "date"],
    )
    rng = np.random.default_rng(seed)
    market = pd.DataFrame(
        {"price": rng.normal(50, 1, 6), "volume": np.arange(6.0), "vwap": [np.nan] * 6},
        index=idx,
    )
    uidx = pd.MultiIndex.from_product(
        [[0, 1], ["u1", "u2"], [2020]], names=["replicate", "unit", "year"]
    )
    units = pd.DataFrame({"sector": ["power", "steel"] * 2, "emissions": [1.0, 2.0, 3, 4]}, uidx)
    return Result(market=market, units=units, provenance={"seed": seed})


def test_identical_results_pass() -> None:
    assert_results_equal(_result(), _result())


def test_one_ulp_is_a_difference() -> None:
    b = _result()
    b.market.iloc[4, 0] = np.nextafter(b.market.iloc[4, 0], np.inf)
    with pytest.raises(
        AssertionError, match=r"market\['price'\] at row 4 \(\(1, Timestamp\('2021-07-17"
    ):
        assert_results_equal(_result(), b)


def test_negative_zero_differs_and_nan_equals_nan() -> None:
    a, b = _result(), _result()
    a.market.iloc[0, 1], b.market.iloc[0, 1] = 0.0, -0.0
    with pytest.raises(AssertionError, match=r"market\['volume'\] at row 0"):
        assert_results_equal(a, b)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.market.drop(columns="vwap"), r"market has shape"),
        (lambda r: r.market[["volume", "price", "vwap"]], r"market columns"),
        (lambda r: r.market.astype({"volume": "float32"}), r"dtype float64 vs float32"),
        (lambda r: r.market.rename(index={0: 5}, level="replicate"), r"index level 'replicate'"),
    ],
)
def test_table_differences_are_named(change: object, message: str) -> None:
    b = _result()
    b = Result(market=change(b), units=b.units)  # type: ignore[operator]
    with pytest.raises(AssertionError, match=message):
        assert_results_equal(_result(), b)


def test_text_columns_are_compared() -> None:
    b = _result()
    b.units.iloc[3, 0] = "cement"
    with pytest.raises(AssertionError, match=r"units\['sector'\] at row 3"):
        assert_results_equal(_result(), b)


def test_trades_and_provenance() -> None:
    a = _result()
    trades = pd.DataFrame({"qty": [1.0]})
    b = dataclasses.replace(a, trades=trades)
    with pytest.raises(AssertionError, match="trades is absent in a and present in b"):
        assert_results_equal(a, b)
    assert_results_equal(a, _result(seed=0))
    c = _result()
    c = dataclasses.replace(c, provenance={"seed": 7})
    assert_results_equal(a, c)  # provenance ignored by default
    with pytest.raises(AssertionError, match="provenance seed: 0 vs 7"):
        assert_results_equal(a, c, check_provenance=True)


# ------------------------------------------------------------------------------ digests


def test_digest_is_stable_and_sensitive() -> None:
    a, b = _result(), _result()
    assert result_digest(a) == result_digest(b)
    assert set(result_digest(a)) == {"market", "units"}
    b.market.iloc[2, 0] = np.nextafter(b.market.iloc[2, 0], 0)
    assert result_digest(b)["market"] != result_digest(a)["market"]
    assert result_digest(b)["units"] == result_digest(a)["units"]
    renamed = a.market.rename(columns={"vwap": "VWAP"})
    assert table_digest(renamed) != table_digest(a.market)


def test_digest_ignores_representation_details() -> None:
    """Datetime resolution, string storage and byte order do not change the digest."""
    frame = _result().market
    coarse = frame.copy()
    coarse.index = coarse.index.set_levels(coarse.index.levels[1].as_unit("s"), level="date")
    assert table_digest(coarse) == table_digest(frame)
    units = _result().units
    as_object = units.astype({"sector": object})
    assert table_digest(as_object) == table_digest(units)
    swapped = frame.copy()
    swapped["volume"] = frame["volume"].to_numpy().astype(">f8")
    assert table_digest(swapped) == table_digest(frame)
    nan2 = frame.copy()
    nan2["vwap"] = np.frombuffer(np.full(6, 0x7FF8000000000001, "<u8").tobytes(), "<f8")
    assert table_digest(nan2) == table_digest(frame)  # every NaN is one NaN


def test_digest_pins_this_serialisation() -> None:
    """The serialisation itself is pinned, so a refactor cannot silently change every pin."""
    frame = pd.DataFrame(
        {"x": [1.5, np.nan], "n": np.array([1, 2], dtype=np.int64), "s": ["a", "é"]},
        index=pd.Index([10, 20], name="i"),
    )
    assert table_digest(frame) == (
        "77611142d7d8206e707f0841fa1215081d936daa4e3f68bfa8af8f734fd77cad"
    )


# ------------------------------------------------------------------------------ strategies


def test_strategies_load_lazily() -> None:
    from carbonsim.testing import strategies

    assert ct.order_books is strategies.order_books
    assert "unit_tables" in dir(ct)
    assert "order_books" not in ct.__all__
    with pytest.raises(AttributeError, match="no_such_helper"):
        ct.no_such_helper


def test_without_hypothesis_assertions_work_and_strategies_name_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if hypothesis were not installed
        import carbonsim.testing as ct
        from carbonsim.clearing import call_auction
        book = dict(bid_price=[50.0], bid_qty=[1], ask_price=[49.0], ask_qty=[1])
        ct.assert_clearing_invariants(call_auction(**book), **book)
        for access in (lambda: ct.order_books, lambda: __import__("carbonsim.testing.strategies")):
            try:
                access()
            except ImportError as exc:
                assert "carbonsim[dev]" in str(exc), exc
            else:
                raise SystemExit("no ImportError")
        try:
            from carbonsim.testing import unit_tables
        except ImportError as exc:
            assert "hypothesis" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ct.order_books(min_orders=3, max_orders=1), "minimum 3 exceeds the maximum 1"),
        (lambda: ct.order_books(tick=-0.01), "tick must be a positive number"),
        (lambda: ct.order_books(mid_price=(50.0, 10.0)), "low <= high"),
        (lambda: ct.batched_books(min_markets=0), "markets minimum must be >= 1"),
        (lambda: ct.order_streams(max_qty=0), "max_qty must be >= 1"),
        (lambda: ct.unit_tables(sectors=["power", "fishing"]), "'fishing'"),
        (lambda: ct.scenario_documents(base="nowhere"), "china-national-tiny"),
    ],
)
def test_strategy_arguments_are_validated(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


# ------------------------------------------------------------------------------ regenerate


def test_regenerate_prints_and_updates_the_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert regenerate.main([]) == 0
    block = capsys.readouterr().out
    assert block.startswith("PINNED_DIGESTS = {\n")
    assert "PINNED_SUMMARY = {" in block
    target = tmp_path / "test_pins.py"
    target.write_text("x = 1\n# BEGIN PINNED\nPINNED_DIGESTS = {}\n# END PINNED\ny = 2\n")
    assert regenerate.main(["--update", str(target)]) == 0
    assert target.read_text() == "x = 1\n# BEGIN PINNED\n" + block + "# END PINNED\ny = 2\n"
    target.write_text("no markers here\n")
    with pytest.raises(SystemExit):
        regenerate.main(["--update", str(target)])
    assert target.read_text() == "no markers here\n"


def test_regenerate_add_keeps_other_cpu_families_and_update_drops_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    family = regenerate.float_kernels()
    assert family in ("avx512f", "baseline")
    other = "baseline" if family == "avx512f" else "avx512f"
    stale = {family: {"market": "0" * 64, "units": "0" * 64}, other: {"units": "1" * 64}}
    target = tmp_path / "test_pins.py"
    target.write_text(f"# BEGIN PINNED\nPINNED_DIGESTS = {stale!r}\n# END PINNED\n")
    assert regenerate.main(["--add", str(target)]) == 0
    ns: dict[str, object] = {}
    exec(target.read_text(), ns)
    pins = ns["PINNED_DIGESTS"]
    assert isinstance(pins, dict)
    assert pins[other] == {"units": "1" * 64}  # kept as it was
    assert pins[family] == result_digest(regenerate.pinned_result())  # replaced
    assert regenerate.main(["--update", str(target)]) == 0
    ns = {}
    exec(target.read_text(), ns)
    assert ns["PINNED_DIGESTS"] == {family: pins[family]}
    capsys.readouterr()

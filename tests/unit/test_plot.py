"""Figures: axes, lines, labels and plotted values; PNG files; the accessor and the CLI flag.

A small hand-made Result gives exact expected values; one run of the tiny scenario checks
the figures on real output (deadlines from the built-in scenario, fan charts).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib", reason="the plot tests need the 'plot' extra")

from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.dates import date2num
from matplotlib.figure import Figure

import carbonsim as cs
from carbonsim import plot
from carbonsim.cli import EXIT_OK, EXIT_USAGE, _targets_inside, main
from carbonsim.results import MARKET_COLUMNS, UNIT_COLUMNS, Result

TINY = "china-national-tiny"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATES = pd.DatetimeIndex(["2021-07-16", "2021-07-19", "2021-07-20"])


def _synthetic() -> Result:
    """2 replicates x 3 dates; 2 sectors x 1 year; numbers chosen to be checked by hand."""
    idx = pd.MultiIndex.from_product([[0, 1], DATES], names=["replicate", "date"])
    market = pd.DataFrame(0.0, index=idx, columns=list(MARKET_COLUMNS))
    market["price"] = [50.0, 51.0, 49.0, 60.0, 62.0, 58.0]
    market["band_low"] = market["price"] * 0.9
    market["band_high"] = market["price"] * 1.1
    market["listed_volume"] = [1e6, 2e6, 0.0, 3e6, 0.0, 1e6]
    market["block_volume"] = [0.0, 1e6, 2e6, 0.0, 0.0, 0.0]
    market["volume"] = market["listed_volume"] + market["block_volume"]
    market["turnover"] = market["volume"] * market["price"]
    uidx = pd.MultiIndex.from_product(
        [[0, 1], ["a", "b", "c"], [2020]], names=["replicate", "unit", "year"]
    )
    units = pd.DataFrame(0.0, index=uidx, columns=[c for c in UNIT_COLUMNS if c != "sector"])
    units.insert(0, "sector", ["power", "power", "steel"] * 2)
    units["shortfall"] = [10.0, 20.0, 0.0, 30.0, 0.0, 4.0]
    units["penalty"] = [1000.0, 2000.0, 0.0, 3000.0, 0.0, 400.0]
    units["offsets_surrendered"] = [5.0, 0.0, 2.0, 7.0, 0.0, 0.0]
    units["emissions"] = [100.0, 100.0, 50.0, 100.0, 100.0, 50.0]
    return Result(market=market, units=units, provenance={"scenario": "synthetic"})


@pytest.fixture(scope="module")
def synthetic() -> Result:
    return _synthetic()


@pytest.fixture(scope="module")
def tiny() -> Result:
    return cs.simulate(TINY, seed=0, replicates=3)


def _line(ax: Axes, label: str) -> np.ndarray:
    lines = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return np.asarray(lines[0].get_ydata(), dtype=float)


def _bars(ax: Axes, label: str) -> np.ndarray:
    containers = [c for c in ax.containers if c.get_label() == label]
    assert len(containers) == 1
    assert isinstance(containers[0], BarContainer)
    return np.array([p.get_height() for p in containers[0].patches])


def _labels(ax: Axes) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def test_import_does_not_load_matplotlib_or_pyplot() -> None:
    code = (
        "import sys; import carbonsim.plot as p; assert 'matplotlib' not in sys.modules; "
        "from carbonsim.results import Result, MARKET_COLUMNS; import pandas as pd; "
        "idx = pd.MultiIndex.from_product([[0], pd.to_datetime(['2021-07-16', '2021-07-19'])], "
        "names=['replicate', 'date']); "
        "m = pd.DataFrame(1.0, index=idx, columns=list(MARKET_COLUMNS)); "
        "u = pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []], "
        "names=['replicate', 'unit', 'year'])); "
        "p.price(Result(market=m, units=u)); assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_price_line_band_and_labels(synthetic: Result) -> None:
    fig = plot.price(synthetic, replicate=1, deadlines=["2021-07-19"])
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    np.testing.assert_array_equal(_line(ax, "closing price"), [60.0, 62.0, 58.0])
    bands = [c for c in ax.collections if c.get_label() == "listed band"]
    assert len(bands) == 1
    assert isinstance(bands[0], PolyCollection)
    vertices = bands[0].get_paths()[0].vertices[:, 1]
    assert vertices.min() == pytest.approx(58.0 * 0.9)
    assert vertices.max() == pytest.approx(62.0 * 1.1)
    deadline = _line(ax, "compliance deadline")  # axvline: x is the date, y spans the axes
    assert len(deadline) == 2
    (marked,) = [ln for ln in ax.get_lines() if ln.get_label() == "compliance deadline"]
    assert marked.get_xdata()[0] == pytest.approx(date2num(dt.date(2021, 7, 19)))
    assert ax.get_ylabel() == "price (currency/t)"
    assert "replicate 1" in ax.get_title()
    assert _labels(ax) == ["listed band", "closing price", "compliance deadline"]


def test_price_default_replicate_and_no_deadlines(synthetic: Result) -> None:
    ax = plot.price(synthetic).axes[0]
    np.testing.assert_array_equal(_line(ax, "closing price"), [50.0, 51.0, 49.0])
    assert "compliance deadline" not in _labels(ax)  # synthetic scenario: none known


def test_deadlines_outside_the_dates_are_not_drawn(synthetic: Result) -> None:
    ax = plot.price(synthetic, deadlines=["2030-01-01"]).axes[0]
    assert "compliance deadline" not in _labels(ax)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"replicate": 7}, ValueError, "replicate 7 is not in the result; replicates are 0..1"),
        ({"replicate": 1.0}, TypeError, "replicate must be an int"),
        ({"deadlines": "2021-07-19"}, TypeError, "deadlines must be a sequence"),
    ],
)
def test_price_rejects_bad_arguments(
    synthetic: Result, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plot.price(synthetic, **kwargs)  # type: ignore[arg-type]


def test_volume_bars_split_by_segment(synthetic: Result) -> None:
    ax = plot.volume(synthetic).axes[0]
    np.testing.assert_array_equal(_bars(ax, "listed"), [1.0, 2.0, 0.0])  # Mt
    np.testing.assert_array_equal(_bars(ax, "block"), [0.0, 1.0, 2.0])
    block = next(c for c in ax.containers if c.get_label() == "block")
    np.testing.assert_array_equal([p.get_y() for p in block.patches], [1.0, 2.0, 0.0])
    assert ax.get_ylabel() == "daily volume (Mt)"


def test_cumulative_volume_turnover_and_targets(synthetic: Result) -> None:
    targets = pd.DataFrame(
        {
            "date": ["2021-07-19", "2021-07-20", "2021-07-20"],
            "value": [2.5e6, 4.0e6, 2.0e8],
            "metric": ["cumulative_volume", "cumulative_volume", "cumulative_turnover"],
        }
    )
    fig = plot.cumulative(synthetic, targets=targets)
    left, right = fig.axes
    np.testing.assert_array_equal(_line(left, "cumulative volume"), [1.0, 4.0, 6.0])  # Mt
    # turnover 50e6, 150e6 + 51e6 ... : cumulative 50, 203, 301 million
    np.testing.assert_allclose(_line(right, "cumulative turnover"), [50.0, 203.0, 301.0])
    np.testing.assert_array_equal(_line(left, "target volume"), [2.5, 4.0])
    np.testing.assert_array_equal(_line(right, "target turnover"), [200.0])
    assert left.get_ylabel() == "cumulative volume (Mt)"
    assert right.get_ylabel() == "cumulative turnover (million currency)"
    assert _labels(left) == ["cumulative volume", "target volume"]
    legend = left.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "cumulative volume",
        "target volume",
        "cumulative turnover",
        "target turnover",
    ]


def test_targets_by_unit_column(synthetic: Result) -> None:
    targets = pd.DataFrame({"date": ["2021-07-20"], "value": [3e6], "unit": ["t"]})
    left, right = plot.cumulative(synthetic, targets=targets).axes
    np.testing.assert_array_equal(_line(left, "target volume"), [3.0])
    assert "target turnover" not in _labels(right)


def test_targets_need_date_and_value(synthetic: Result) -> None:
    with pytest.raises(ValueError, match=r"targets needs columns 'date' and 'value'"):
        plot.cumulative(synthetic, targets=pd.DataFrame({"value": [1.0]}))


def test_no_targets_unless_passed(synthetic: Result) -> None:
    # plot sits below carbonsim.calibration and never looks targets up by itself
    left, right = plot.cumulative(synthetic).axes
    assert "target volume" not in _labels(left)
    assert "target turnover" not in _labels(right)


def test_compliance_by_sector_is_the_mean_over_replicates(synthetic: Result) -> None:
    left, right = plot.compliance(synthetic).axes
    # power: replicate 0 -> 30 t, replicate 1 -> 30 t; steel: 0 and 4 t -> mean 2 t
    np.testing.assert_array_equal(_bars(left, "shortfall"), [30.0, 2.0])
    # penalties: power 3000 and 3000 -> 3.0 thousand; steel 0 and 400 -> 0.2 thousand
    np.testing.assert_allclose(_bars(right, "penalties"), [3.0, 0.2])
    assert [t.get_text() for t in left.get_xticklabels()] == ["power\n2020", "steel\n2020"]
    assert left.get_ylabel() == "shortfall at the deadline (t)"
    assert right.get_ylabel() == "penalties (thousand currency)"


def test_offsets_bars_and_share(synthetic: Result) -> None:
    left, right = plot.offsets(synthetic).axes
    # power: (5 + 7) / 2 = 6 t of 200 t emitted -> 3%; steel: (2 + 0) / 2 = 1 t of 50 t -> 2%
    np.testing.assert_array_equal(_bars(left, "offsets surrendered"), [6.0, 1.0])
    np.testing.assert_allclose(_line(right, "share of emissions"), [3.0, 2.0])
    assert "usage limit" not in _labels(right)  # no scenario known
    assert right.get_ylabel() == "share of verified emissions (%)"


def test_units_figures_need_a_completed_period(synthetic: Result) -> None:
    empty = Result(
        market=synthetic.market.copy(),
        units=pd.DataFrame(
            index=pd.MultiIndex.from_arrays([[], [], []], names=["replicate", "unit", "year"])
        ),
    )
    with pytest.raises(ValueError, match="no completed compliance period"):
        plot.compliance(empty)


def test_fan_percentiles_over_replicates(synthetic: Result) -> None:
    ax = plot.fan(synthetic, "price").axes[0]
    np.testing.assert_array_equal(_line(ax, "median"), [55.0, 56.5, 53.5])
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["5-95%", "25-75%"]
    outer = ax.collections[0].get_paths()[0].vertices[:, 1]
    # 5th and 95th percentiles of (50, 60): 50.5 and 59.5 on the first date
    assert outer.min() == pytest.approx(np.percentile([49.0, 58.0], 5))
    assert outer.max() == pytest.approx(np.percentile([51.0, 62.0], 95))
    assert ax.get_ylabel() == "price (currency/t)"


def test_fan_cumulative_volume(synthetic: Result) -> None:
    ax = plot.fan(synthetic, "cumulative_volume").axes[0]
    # cumulative volumes: replicate 0 -> 1, 4, 6 Mt; replicate 1 -> 3, 3, 4 Mt
    np.testing.assert_array_equal(_line(ax, "median"), [2.0, 3.5, 5.0])
    assert ax.get_ylabel() == "cumulative volume (Mt)"


def test_fan_unknown_quantity_lists_valid_ones(synthetic: Result) -> None:
    with pytest.raises(ValueError, match=r"unknown quantity 'prices'.*'cumulative_volume'"):
        plot.fan(synthetic, "prices")


def test_drawing_on_a_given_axes_returns_its_root_figure(synthetic: Result) -> None:
    fig = Figure()
    sub = fig.subfigures(1, 2)[1]
    ax = sub.add_subplot()
    assert plot.volume(synthetic, ax=ax) is fig
    assert ax.containers
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plot.cumulative(synthetic, ax=ax2) is fig2
    assert len(fig2.axes) == 2  # the twin for turnover


def test_missing_matplotlib_names_the_extra(
    synthetic: Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'carbonsim\[plot\]'"):
        plot.price(synthetic)


def test_tiny_scenario_figures(tiny: Result) -> None:
    market0 = tiny.market.xs(0, level="replicate")
    ax = tiny.plot.price().axes[0]
    np.testing.assert_array_equal(_line(ax, "closing price"), market0["price"].to_numpy())
    assert ax.get_ylabel() == "price (yuan/t)"  # currency of the built-in scenario
    (deadline,) = [ln for ln in ax.get_lines() if ln.get_label() == "compliance deadline"]
    assert deadline.get_xdata()[0] == pytest.approx(date2num(dt.date(2021, 12, 31)))
    left, right = tiny.plot.offsets().axes
    np.testing.assert_array_equal(_line(right, "usage limit"), [5.0])
    assert [t.get_text() for t in left.get_xticklabels()] == ["power\n2020"]
    fan_ax = tiny.plot.fan("cumulative_volume").axes[0]
    final = tiny.market["volume"].groupby(level="replicate").sum().median()
    factor = {"t": 1.0, "kt": 1e3, "Mt": 1e6}[fan_ax.get_ylabel().split("(")[1].rstrip(")")]
    assert _line(fan_ax, "median")[-1] * factor == pytest.approx(final)


def test_save_all_writes_pngs_atomically(tiny: Result, tmp_path: Path) -> None:
    paths = plot.save_all(tiny, tmp_path / "figs", dpi=40)
    names = [p.name for p in paths]
    assert names == [
        "price.png",
        "volume.png",
        "cumulative.png",
        "compliance.png",
        "offsets.png",
        "price_fan.png",
        "cumulative_volume_fan.png",
    ]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 1000
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(names)  # no .tmp


def test_save_all_one_replicate_has_no_fans(synthetic: Result, tmp_path: Path) -> None:
    one = Result(
        market=synthetic.market.loc[[0]].copy(),
        units=synthetic.units.loc[[0]].copy(),
        provenance={"scenario": "synthetic"},
    )
    names = [p.name for p in one.plot.save_all(tmp_path, dpi=30)]
    assert names == ["price.png", "volume.png", "cumulative.png", "compliance.png", "offsets.png"]


def test_accessor_repr_and_methods(synthetic: Result) -> None:
    acc = synthetic.plot
    assert isinstance(acc, plot.PlotAccessor)
    assert "2 replicate(s)" in repr(acc)
    for name in ("price", "volume", "cumulative", "compliance", "offsets", "fan"):
        assert isinstance(getattr(acc, name)(), Figure)


# ---------------------------------------------------------------------------- CLI
def test_run_plot_writes_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["run", TINY, "--out", str(tmp_path), "--plot", "--quiet"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["compliance.png", "cumulative.png", "offsets.png", "price.png", "volume.png"]
    assert str(tmp_path / "price.png") in out.splitlines()
    assert (tmp_path / "market.csv").is_file()


def test_run_plot_targets_are_the_calibration_targets_inside_the_run(
    synthetic: Result,
) -> None:
    from carbonsim.calibration import targets

    assert _targets_inside(synthetic, "synthetic") is None  # a scenario without targets
    assert _targets_inside(synthetic, "china-national").empty  # all dated after July 2021
    market = synthetic.market.rename(index={DATES[-1]: pd.Timestamp("2024-12-31")})
    long = Result(market=market, units=synthetic.units, provenance=synthetic.provenance)
    inside = _targets_inside(long, "china-national")
    assert inside is not None
    expected = targets("china-national")
    expected = expected[pd.to_datetime(expected["date"]) <= pd.Timestamp("2024-12-31")]
    assert list(inside.index) == list(expected.index)
    assert len(inside) > 0


def test_run_plot_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", TINY, "--plot"]) == EXIT_USAGE
    assert "--plot needs --out" in capsys.readouterr().err


def test_run_plot_without_matplotlib_names_the_extra(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["run", TINY, "--out", str(tmp_path), "--plot"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "carbonsim[plot]" in err
    assert list(tmp_path.iterdir()) == []  # refused before running


# ---------------------------------------------------------------- #21 item 12


def _data_boxes(ax: Axes) -> list[object]:
    """Display-space boxes of the plotted data of ``ax`` and its twins (lines and bars)."""
    from matplotlib.transforms import Bbox

    boxes = []
    for a in [ax, *ax.get_shared_x_axes().get_siblings(ax)]:
        for line in a.get_lines():
            xy = line.get_xydata()
            if len(xy):
                pts = a.transData.transform(xy)
                boxes.append(Bbox.from_extents(*pts.min(axis=0), *pts.max(axis=0)))
        for patch in a.patches:
            boxes.append(patch.get_window_extent())
    return boxes


@pytest.mark.parametrize("kind", ["cumulative", "compliance", "offsets"])
def test_legends_do_not_cover_the_data(kind: str) -> None:
    res = cs.simulate(TINY, seed=0, replicates=2)
    fig = getattr(res.plot, kind)()
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent()
    axes_box = ax.get_window_extent()
    assert box.y1 <= axes_box.y0 + 1  # under the axes, where no data is drawn
    assert not any(box.overlaps(b) for b in _data_boxes(ax) if b.width and b.height)


def test_every_figure_title_names_the_scenario() -> None:
    res = cs.simulate(TINY, seed=0)
    for kind in ("price", "volume", "cumulative", "compliance", "offsets"):
        fig = getattr(res.plot, kind)()
        assert fig.axes[0].get_title().startswith(f"{TINY}: "), kind


def test_a_file_scenario_draws_its_deadlines(tmp_path: Path) -> None:
    # a scenario from a file (its hash is no built-in's): the run records its deadlines
    sc = cs.with_overrides(cs.load_scenario(TINY), {"name": "my-market"})
    res = cs.simulate(sc, seed=0)
    assert res.provenance["deadlines"] == ["2021-12-31"]
    ax = res.plot.price().axes[0]
    marked = [line for line in ax.get_lines() if line.get_label() == "compliance deadline"]
    assert len(marked) == 1
    assert date2num(pd.Timestamp("2021-12-31")) == pytest.approx(marked[0].get_xdata()[0])

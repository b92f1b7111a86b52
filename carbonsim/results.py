"""Simulation results: immutable, tidy pandas tables with named indexes and provenance.

A :class:`Result` holds

``market``
    one row per (``replicate``, ``date``) trading session, columns in :data:`MARKET_COLUMNS`;
``units``
    one row per (``replicate``, ``unit``, ``year``) compliance period, columns in
    :data:`UNIT_COLUMNS`; ``year`` is the last emission year of the period (the
    2019-2020 period's row is ``year`` 2020 and holds both years' emissions);
``trades``
    optionally, one row per executed order (large; off by default).

Every table carries ``attrs["units"]`` (the unit of each column), ``attrs["descriptions"]``
and ``attrs["provenance"]`` (carbonsim version, scenario name and hash, seed, replicates),
and exported files carry the same provenance (a JSON side file for CSV, schema metadata for
parquet).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from carbonsim._io import atomic_directory

if TYPE_CHECKING:
    from carbonsim.plot import PlotAccessor

__all__ = ["MARKET_COLUMNS", "SUMMARY_METRICS", "UNIT_COLUMNS", "Result"]

#: Columns of :attr:`Result.market`: name -> (unit, description).
MARKET_COLUMNS: dict[str, tuple[str, str]] = {
    "price": ("currency/t", "closing price: VWAP of the day's listed trades, else previous close"),
    "vwap": ("currency/t", "volume-weighted average price of all the day's trades (NaN if none)"),
    "volume": ("t", "allowances traded, listed plus block"),
    "turnover": ("currency", "value traded, listed plus block"),
    "listed_volume": ("t", "allowances traded in the listed segment (call auction, +/- band)"),
    "block_volume": ("t", "allowances traded in the block segment (wider band, minimum size)"),
    "offset_price": ("currency/t", "offset-credit (CCER) clearing price (NaN if no trade)"),
    "offset_volume": ("t", "offset credits traded"),
    "band_low": ("currency/t", "lower limit of the listed price band that session"),
    "band_high": ("currency/t", "upper limit of the listed price band that session"),
    "expected_price": ("currency/t", "market-wide expected price after the session"),
    "fundamental_price": (
        "currency/t",
        "competitive price with banking implied by expected scarcity and abatement costs",
    ),
    "auction_price": (
        "currency/t",
        "clearing price of the government allowance auction after the session (NaN if none)",
    ),
    "auction_volume": (
        "t",
        "allowances sold in government auctions after the session (paid allocation, "
        "remainder and band-trigger auctions)",
    ),
    "intervention_volume": (
        "t",
        "allowances the price-band trigger added by auction (+) or bought back (-)",
    ),
    "msr_holdings": ("t", "allowances held in the market stability reserve (0 without one)"),
}

#: Columns of :attr:`Result.units`: name -> (unit, description).
UNIT_COLUMNS: dict[str, tuple[str, str]] = {
    "sector": ("", "sector of the unit"),
    "allocated": (
        "t",
        "allowances allocated for the compliance period (free and auctioned, after true-up)",
    ),
    "emissions": (
        "t",
        "verified emissions of the period's emission years, after abatement (index 'year': "
        "the period's last emission year, 2020 for 2019-2020)",
    ),
    "abated": ("t", "emissions avoided by abatement over the period's emission years"),
    "abatement_cost": ("currency", "cost of that abatement"),
    "surrendered": ("t", "allowances surrendered for the compliance period"),
    "offsets_surrendered": ("t", "offset credits surrendered for the compliance period"),
    "shortfall": ("t", "obligation not covered at the period's deadline"),
    "penalty": ("currency", "fines for the compliance period"),
    "bought": ("t", "allowances bought during the compliance period"),
    "sold": ("t", "allowances sold during the compliance period"),
    "banked": ("t", "valid allowances held after the period's deadline, carried forward"),
    "so2_avoided": ("kg", "SO2 emissions avoided by the period's abatement (co-benefit)"),
    "nox_avoided": ("kg", "NOx emissions avoided by the period's abatement (co-benefit)"),
    "pm_avoided": ("kg", "particulate emissions avoided by the period's abatement (co-benefit)"),
}

#: Metrics of :meth:`Result.summary`: name -> (unit, description).
SUMMARY_METRICS: dict[str, tuple[str, str]] = {
    "cumulative_volume": ("t", "allowances traded over the window"),
    "cumulative_turnover": ("currency", "value traded over the window"),
    "average_price": ("currency/t", "turnover divided by volume"),
    "final_price": ("currency/t", "closing price of the last session in the window"),
    "trading_days": ("days", "sessions in the window"),
    "compliance_rate": (
        "share",
        "share of (unit, compliance period) rows surrendered in full by the deadline",
    ),
    "abatement": ("t", "emissions avoided by abatement"),
    "penalties": ("currency", "fines levied"),
    "offsets_used": ("t", "offset credits surrendered"),
}


def _with_attrs(
    frame: pd.DataFrame, columns: Mapping[str, tuple[str, str]], provenance: Mapping[str, Any]
) -> pd.DataFrame:
    frame.attrs["units"] = {c: columns[c][0] for c in frame.columns if c in columns}
    frame.attrs["descriptions"] = {c: columns[c][1] for c in frame.columns if c in columns}
    frame.attrs["provenance"] = dict(provenance)
    return frame


@dataclass(frozen=True)
class Result:
    """The outcome of :func:`carbonsim.simulate`.

    Attributes
    ----------
    market : pandas.DataFrame
        Index (``replicate``, ``date``); columns :data:`MARKET_COLUMNS`.
    units : pandas.DataFrame
        Index (``replicate``, ``unit``, ``year``), one row per compliance period, ``year``
        its last emission year; columns :data:`UNIT_COLUMNS`.
    trades : pandas.DataFrame or None
        One row per filled order when requested, else None.
    provenance : dict
        carbonsim version, scenario name and hash, seed, replicates.
    """

    market: pd.DataFrame
    units: pd.DataFrame
    trades: pd.DataFrame | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if list(self.market.index.names) != ["replicate", "date"]:
            raise ValueError(
                f"market must be indexed by (replicate, date), got {self.market.index.names}"
            )
        if list(self.units.index.names) != ["replicate", "unit", "year"]:
            raise ValueError(
                f"units must be indexed by (replicate, unit, year), got {self.units.index.names}"
            )
        _with_attrs(self.market, MARKET_COLUMNS, self.provenance)
        _with_attrs(self.units, UNIT_COLUMNS, self.provenance)

    @property
    def plot(self) -> PlotAccessor:
        """Figures of this result (``result.plot.price()``, ...; needs matplotlib).

        See :mod:`carbonsim.plot`; :meth:`~carbonsim.plot.PlotAccessor.save_all` writes
        them all as PNG files.
        """
        # The one upward import of the package (carbonsim.plot sits above this module and
        # imports it): deferred to first use, so importing results never loads plot. Listed
        # with its reason in tests/unit/test_architecture.py.
        from carbonsim.plot import PlotAccessor

        return PlotAccessor(self)

    @property
    def n_replicates(self) -> int:
        """Number of replicates in the result."""
        return int(self.market.index.get_level_values("replicate").nunique())

    def summary_by_replicate(
        self, until: str | pd.Timestamp | None = None, since: str | pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Summary metrics per replicate (rows) over an optional date window.

        Parameters
        ----------
        until, since : date-like, optional
            Inclusive window on trading dates for the market metrics, and on compliance
            years (``year <= until.year``) for the unit metrics.

        Returns
        -------
        pandas.DataFrame
            Index ``replicate``; columns :data:`SUMMARY_METRICS`.
        """
        market = self.market
        dates = market.index.get_level_values("date")
        keep = np.ones(len(market), bool)
        if since is not None:
            keep &= dates >= pd.Timestamp(since)
        if until is not None:
            keep &= dates <= pd.Timestamp(until)
        m = market[keep]
        g = m.groupby(level="replicate")
        volume = g["volume"].sum()
        turnover = g["turnover"].sum()
        out = pd.DataFrame(
            {
                "cumulative_volume": volume,
                "cumulative_turnover": turnover,
                "average_price": turnover / volume.where(volume > 0),
                "final_price": g["price"].last(),
                "trading_days": g.size().astype(float),
            }
        )
        units = self.units
        if until is not None:
            units = units[units.index.get_level_values("year") <= pd.Timestamp(until).year]
        if since is not None:
            units = units[units.index.get_level_values("year") >= pd.Timestamp(since).year]
        ug = units.groupby(level="replicate")
        out["compliance_rate"] = (units["shortfall"] <= 0).groupby(level="replicate").mean()
        out["abatement"] = ug["abated"].sum()
        out["penalties"] = ug["penalty"].sum()
        out["offsets_used"] = ug["offsets_surrendered"].sum()
        out.index.name = "replicate"
        out = out.reindex(sorted(set(self.market.index.get_level_values("replicate"))))
        return _with_attrs(out, SUMMARY_METRICS, self.provenance)

    def summary(
        self, until: str | pd.Timestamp | None = None, since: str | pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Headline metrics across replicates: mean and 5/50/95 percentiles.

        Returns
        -------
        pandas.DataFrame
            Index ``metric``; columns ``unit``, ``mean``, ``p05``, ``p50``, ``p95``.
        """
        per = self.summary_by_replicate(until=until, since=since)
        table = pd.DataFrame(
            {
                "unit": [SUMMARY_METRICS[c][0] for c in per.columns],
                "mean": per.mean(),
                "p05": per.quantile(0.05),
                "p50": per.quantile(0.50),
                "p95": per.quantile(0.95),
            }
        )
        table.index.name = "metric"
        table.attrs["provenance"] = dict(self.provenance)
        return table

    # ------------------------------------------------------------------ export
    def _tables(self) -> dict[str, pd.DataFrame]:
        tables = {"market": self.market, "units": self.units}
        if self.trades is not None:
            tables["trades"] = self.trades
        return tables

    def _metadata(self) -> dict[str, Any]:
        return {
            "provenance": {k: _jsonable(v) for k, v in self.provenance.items()},
            "columns": {
                "market": {
                    k: {"unit": u, "description": d} for k, (u, d) in MARKET_COLUMNS.items()
                },
                "units": {k: {"unit": u, "description": d} for k, (u, d) in UNIT_COLUMNS.items()},
            },
        }

    def export(
        self,
        directory: str | Path,
        *,
        format: str = "csv",
        extra: Callable[[Path], Sequence[str | Path]] | None = None,
    ) -> list[Path]:
        """Write the tables into ``directory`` as one unit, replacing an earlier export.

        Files: ``market``, ``units`` (and ``trades``) as ``.csv`` or ``.parquet``, and
        ``metadata.json`` (provenance, column units and descriptions, and the list of files
        written). Everything is written into a temporary sibling directory, which then
        replaces ``directory`` in one step: an interrupted export (even ``kill -9``) leaves
        the earlier export whole, two exports into one directory never mix, and no file of
        an earlier export survives (a ``trades.csv`` without ``trades``). A directory that
        holds files carbonsim did not write (not listed in its ``metadata.json``) is refused
        before anything is written. Files get the modes the umask gives.

        Parameters
        ----------
        directory : str or path-like
            The output directory (created with its parents if missing).
        format : {"csv", "parquet"}
            Table format; parquet needs the ``parquet`` extra (pyarrow) and also stores the
            metadata in each file's schema metadata under the key ``carbonsim``.
        extra : callable, optional
            ``extra(tmp)`` writes more files into the temporary directory ``tmp`` and
            returns their paths (e.g. ``functools.partial(carbonsim.plot.save_all,
            result)``); they become part of the unit.

        Returns
        -------
        list of pathlib.Path
            The files written, under ``directory``: the tables, ``metadata.json``, then
            those of ``extra``.

        Raises
        ------
        FileExistsError
            ``directory`` holds files carbonsim did not write, or is a file.
        """
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
        if format == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "parquet export needs pyarrow: pip install 'carbonsim[parquet]'"
                ) from exc
        out = Path(directory)
        meta = self._metadata()
        names: list[Path] = []
        with atomic_directory(out, metadata={**meta, "format": format}) as tmp:
            for name, table in self._tables().items():
                path = tmp / f"{name}.{format}"
                if format == "csv":
                    _write_csv(table, path)
                else:
                    _write_parquet(table, path, meta)
                names.append(path.relative_to(tmp))
            names.append(Path("metadata.json"))  # written last, by atomic_directory
            if extra is not None:
                names += [Path(p).relative_to(tmp) for p in extra(tmp)]
        return [out / n for n in names]

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``market.csv``, ``units.csv`` (and ``trades.csv``) plus ``metadata.json``.

        The directory is written as one unit: see :meth:`export`.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        return self.export(directory, format="csv")

    def to_parquet(self, directory: str | Path) -> list[Path]:
        """Write ``market.parquet``, ``units.parquet`` (and ``trades.parquet``) as one unit.

        Provenance and column units are stored in the parquet schema metadata under the key
        ``carbonsim`` (and in ``metadata.json``). Needs the ``parquet`` extra (pyarrow). The
        directory is written as one unit: see :meth:`export`.
        """
        return self.export(directory, format="parquet")


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path)


def _write_parquet(table: pd.DataFrame, path: Path, meta: Mapping[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = table.copy()
    frame.attrs = {}
    arrow = pa.Table.from_pandas(frame)
    encoded = json.dumps(meta, sort_keys=True).encode()
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"carbonsim": encoded})
    pq.write_table(arrow, path)


def _column_docs(columns: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {k: {"unit": u, "description": d} for k, (u, d) in columns.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

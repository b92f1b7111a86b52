"""The recorder: market, units and trades tables of a run, with provenance."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._version import __version__
from carbonsim.engine.state import EngineState
from carbonsim.results import Result

__all__ = ["MARKET_COLUMNS", "POLICY_COLUMNS", "TRADING_COLUMNS", "Recorder"]

#: Market-table columns of the trading sessions (every scenario).
TRADING_COLUMNS: tuple[str, ...] = (
    "price",
    "vwap",
    "volume",
    "turnover",
    "listed_volume",
    "block_volume",
    "offset_price",
    "offset_volume",
    "band_low",
    "band_high",
    "expected_price",
    "fundamental_price",
)
#: Market-table columns of government auctions, interventions and the reserve.
POLICY_COLUMNS: tuple[str, ...] = (
    "auction_price",
    "auction_volume",
    "intervention_volume",
    "msr_holdings",
)
#: Every column of the market table, in order.
MARKET_COLUMNS: tuple[str, ...] = TRADING_COLUMNS + POLICY_COLUMNS


def empty_market_table(n_replicates: int, n_sessions: int) -> dict[str, npt.NDArray[np.float64]]:
    """The market table's columns before the run, (R, sessions) each: prices NaN (no
    trade yet), quantities zero; the auction price too is NaN only where set."""
    return {
        name: np.full(
            (n_replicates, n_sessions),
            np.nan if ("price" in name and name != "auction_price") or "vwap" in name else 0.0,
        )
        for name in MARKET_COLUMNS
    }


def _float_frame(
    block: npt.NDArray[np.float64], columns: list[str], index: pd.Index
) -> pd.DataFrame:
    """A frame whose float columns are the rows of ``block`` (columns, rows), kept as its
    one block without a copy (a frame built from a dict of columns copies them into one)."""
    return pd.DataFrame(block.T, index=index, columns=columns, copy=False)


class Recorder(EngineState):
    """Builds the :class:`~carbonsim.results.Result`: the market table (one row per
    replicate and session), the units table (one row per replicate, unit and period) and
    the optional trades."""

    def _unit_table(self, reps: range) -> pd.DataFrame:
        """One row per (replicate, unit, compliance year) of the periods done, ordered by
        replicate, then year, then unit, indexed ``(replicate, unit, year)``.

        The index is built from its levels and codes (the unit names factorized once for
        all periods) rather than by concatenating one frame per period and sorting.
        """
        done = sorted((p for p in self.periods if p.done), key=lambda p: p.last_year)
        names = ["replicate", "unit", "year"]
        if not done:
            return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], [], []], names=names))
        r, n, n_p = len(reps), self.units.n_units, len(done)
        unit_codes, unit_level = pd.factorize(self.units.names, sort=True)
        years, year_codes = np.unique([p.last_year for p in done], return_inverse=True)
        year_level = pd.Index(years)
        levels: list[Any] = [pd.Index(np.asarray(reps, np.int64)), unit_level, year_level]
        codes: list[Any] = [
            np.repeat(np.arange(r), n_p * n),
            np.tile(unit_codes, r * n_p),
            np.tile(np.repeat(year_codes, n), r),
        ]
        index = pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)
        keys = list(done[0].rows)
        # the float columns written once into the (column, row) block pandas keeps, rows
        # of replicate 0 (each period in turn), then replicate 1, ...
        block = np.empty((len(keys), r, n_p, n), np.float64)
        for j, p in enumerate(done):
            for k, key in enumerate(keys):
                block[k, :, j, :] = p.rows[key]
        frame = _float_frame(block.reshape(len(keys), -1), keys, index)
        # the sector of each unit converted to pandas strings once, then repeated
        sector = pd.array(self.units.sector_labels(), dtype="str")
        frame.insert(0, "sector", sector.take(np.tile(np.arange(n), r * n_p)))
        return frame

    def _result(self) -> Result:
        r = self.n_replicates
        reps = range(self.first_replicate, self.first_replicate + r)
        idx = pd.MultiIndex.from_product([reps, self.days], names=["replicate", "date"])
        block = np.stack([v.reshape(-1) for v in self.market.values()])
        market = _float_frame(block, list(self.market), idx)
        units = self._unit_table(reps)
        trades = None
        if self.record_trades:
            trades = (
                pd.concat(self.trades, ignore_index=True)
                if self.trades
                else pd.DataFrame(
                    columns=[
                        "replicate",
                        "date",
                        "unit",
                        "side",
                        "segment",
                        "limit_price",
                        "price",
                        "qty",
                    ]
                )
            )
        provenance = {
            "carbonsim_version": __version__,
            "scenario": self.scenario.name,
            "scenario_hash": self.scenario.content_hash(),
            "seed": self.seed if isinstance(self.seed, (int, type(None))) else str(self.seed),
            "replicates": r,
            "first_replicate": self.first_replicate,
            "units": self.units.n_units,
            # the compliance deadlines (final and staged), ISO dates: plots mark them
            # whether the scenario is a built-in or a file
            "deadlines": sorted(
                {p.spec.deadline.isoformat() for p in self.periods}
                | {s.date.isoformat() for p in self.periods for s in p.spec.stages}
            ),
        }
        return Result(market=market, units=units, trades=trades, provenance=provenance)

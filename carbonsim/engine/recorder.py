"""The recorder: market, units and trades tables of a run, with provenance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from carbonsim import __version__
from carbonsim.engine.state import EngineState
from carbonsim.results import Result

__all__ = ["Recorder"]


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
        data: dict[str, Any] = {"sector": np.tile(self.units.sector_labels(), r * n_p)}
        for key in done[0].rows:
            # (P, R, N) -> rows of replicate 0 (each period in turn), then replicate 1, ...
            stacked = np.stack([np.asarray(p.rows[key], np.float64) for p in done])
            data[key] = stacked.reshape(n_p, r, n).transpose(1, 0, 2).reshape(-1)
        return pd.DataFrame(data, index=index)

    def _result(self) -> Result:
        r = self.n_replicates
        reps = range(self.first_replicate, self.first_replicate + r)
        idx = pd.MultiIndex.from_product([reps, self.days], names=["replicate", "date"])
        market = pd.DataFrame({k: v.reshape(-1) for k, v in self.market.items()}, index=idx)
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
        }
        return Result(market=market, units=units, trades=trades, provenance=provenance)

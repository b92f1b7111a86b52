"""Every compliance rule field is live: switching it where it applies changes results.

``periods.*.borrowing`` (the 2021-22 borrowing rule) and ``periods.*.banking_limit`` (the
2024-25 banking limit) were accepted and documented but never read; these tests switch each
on a scenario where it binds and show what changes, and that the ledger stays balanced.
"""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.engine import Simulation
from carbonsim.scenario import load_scenario
from carbonsim.scenario.loader import with_overrides

TINY = "china-national-tiny"
# compliance traders that never trade: short units stay short by their allocation gap
IDLE = [
    {"name": "compliance", "params": {"base_rate": 0.0, "deadline_rate": 0.0}},
    {"name": "noise", "params": {"activity": 0.0}},
]


def _run(overrides: dict[str, object]) -> Simulation:
    sc = with_overrides(load_scenario(TINY), overrides)
    sim = Simulation(sc, seed=3, replicates=2, check_invariants=True)
    sim.result = sim.run()  # type: ignore[attr-defined]
    return sim


def test_borrowing_lends_short_units_half_their_gap_from_the_next_vintage() -> None:
    # benchmarks 12% tighter: many units' allocation gap passes 10% of their allocation
    base = {
        "behaviour.strategies": IDLE,
        "periods.0.allocation_params": {"benchmark_scale": 0.88},
    }
    off = _run({**base, "periods.*.borrowing": False})
    on = _run({**base, "periods.*.borrowing": True})
    short_off = off.result.units["shortfall"].sum()  # type: ignore[attr-defined]
    short_on = on.result.units["shortfall"].sum()  # type: ignore[attr-defined]
    borrowed = on.ledger.borrowed.sum()
    assert borrowed > 0
    assert off.ledger.borrowed.sum() == 0
    # every borrowed tonne was surrendered in place of a missing one
    assert short_on == pytest.approx(short_off - borrowed)
    # only units whose allocation gap exceeds 10% of their allocation borrowed, at most
    # half of that gap
    p = on.periods[0]
    gap = np.maximum(p.obligation - p.allocated.astype(np.int64), 0)
    took = on.ledger.borrowed.sum(axis=2)
    assert (took[took > 0] <= gap[took > 0] // 2).all()
    assert (gap[took > 0] * 10 > p.allocated[took > 0]).all()


def test_borrowing_needs_a_next_vintage_and_a_shortfall() -> None:
    # traders that do trade leave few units short, none with a gap above 10%: nothing
    # is borrowed, and the results equal those without the rule
    on = _run({"periods.*.borrowing": True})
    off = _run({"periods.*.borrowing": False})
    assert on.ledger.borrowed.sum() == 0
    assert on.result.units.equals(off.result.units)  # type: ignore[attr-defined]


def test_banking_limit_cancels_surplus_above_the_cap() -> None:
    off = _run({"periods.*.banking_limit": False})
    on = _run({"periods.*.banking_limit": True})
    units_off = off.result.units  # type: ignore[attr-defined]
    units_on = on.result.units  # type: ignore[attr-defined]
    cancelled = on.ledger.cancelled.sum()
    assert cancelled > 0
    assert off.ledger.cancelled.sum() == 0
    assert units_on["banked"].sum() == pytest.approx(units_off["banked"].sum() - cancelled)
    # each unit keeps at most 10,000 t + 1.5 x its net sales over the period
    net_sales = (units_on["sold"] - units_on["bought"]).clip(lower=0)
    assert (units_on["banked"] <= 10_000 + np.floor(1.5 * net_sales) + 1e-9).all()
    # what is kept is carried into the next vintage; older vintages are emptied
    vintages = list(on.ledger.vintages)
    older = [i for i, v in enumerate(vintages) if v <= on.periods[0].last_year]
    assert on.ledger.allowances[:, :, older].sum() == 0

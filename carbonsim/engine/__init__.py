"""The simpy side of carbonsim: trading calendar, processes, Simulation, recorder.

This is the only subpackage that imports simpy. Economics lives in pure numpy functions in
:mod:`carbonsim.clearing` and :mod:`carbonsim.market`; the engine orders them in time.
"""

from carbonsim.engine.calendar import CALENDARS, trading_days
from carbonsim.engine.simulation import InvariantError, Simulation, build_units, simulate

__all__ = ["CALENDARS", "InvariantError", "Simulation", "build_units", "simulate", "trading_days"]

"""The simpy side of carbonsim: trading calendar, processes, Simulation, recorder.

This is the only subpackage that imports simpy. Economics lives in pure numpy functions in
:mod:`carbonsim.clearing` and :mod:`carbonsim.market`; the engine orders them in time.
"""

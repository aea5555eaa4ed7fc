"""The runner: the one path from a question to its numbers.

Callers describe what they want in a :class:`Request` (scenarios simulated with one
seed, runs, engine, workers); :func:`run` chooses the engine, splits a team into reps,
shares work between variants, runs worker processes and seeds, and returns a
:class:`Simulation` of outcomes that no quota has judged yet; :mod:`sim.runner.results`
judges them. :func:`inflow_thresholds` is the same for the magic number's curve, and
:mod:`sim.runner.memo` remembers answers for a long-lived caller.
"""

from sim.runner.execute import (
    choose_engine,
    critical_inflows,
    independent_deals,
    inflow_thresholds,
    run,
    simulate,
    simulate_team,
    simulate_variants,
    start_workers,
)
from sim.runner.memo import remember
from sim.runner.request import ENGINES, MAX_RUNS, Engine, Request
from sim.runner.results import InflowThresholds, Simulation, SimulationResult, TeamResult

__all__ = [
    "ENGINES",
    "MAX_RUNS",
    "Engine",
    "InflowThresholds",
    "Request",
    "Simulation",
    "SimulationResult",
    "TeamResult",
    "choose_engine",
    "critical_inflows",
    "independent_deals",
    "inflow_thresholds",
    "remember",
    "run",
    "simulate",
    "simulate_team",
    "simulate_variants",
    "start_workers",
]

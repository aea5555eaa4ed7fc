"""The runner: the one path from a question to its numbers.

It chooses the engine, splits a team into reps, shares work between variants, runs
worker processes, seeds, and wraps the outcomes in results (:mod:`sim.runner.results`).
"""

from sim.runner.results import SimulationResult, TeamResult
from sim.runner.run import (
    ENGINES,
    MAX_RUNS,
    Engine,
    InflowThresholds,
    choose_engine,
    critical_inflows,
    independent_deals,
    inflow_thresholds,
    simulate,
    simulate_team,
    simulate_variants,
)

__all__ = [
    "ENGINES",
    "MAX_RUNS",
    "Engine",
    "InflowThresholds",
    "SimulationResult",
    "TeamResult",
    "choose_engine",
    "critical_inflows",
    "independent_deals",
    "inflow_thresholds",
    "simulate",
    "simulate_team",
    "simulate_variants",
]

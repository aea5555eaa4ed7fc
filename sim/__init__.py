"""funnel-sim: Monte Carlo odds of hitting quota, and the weekly opportunities it takes.

The public API::

    from sim import load_scenario, simulate
    result = simulate(load_scenario("scenarios/reference_quarter.toml"), runs=10_000, seed=0)
    result.summary()["p_hit"]
"""

from sim.model.scenario import Scenario, ScenarioError, load_scenario
from sim.runner import SimulationResult, simulate

__all__ = ["Scenario", "ScenarioError", "SimulationResult", "load_scenario", "simulate"]

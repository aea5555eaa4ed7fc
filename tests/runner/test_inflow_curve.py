"""The whole P(hit)-by-inflow curve from one simulation: each replication's critical inflow.

With common random numbers a deal's path does not depend on the inflow, only its
arrival day does (unit-rate time over the rate), so each replication hits the quota
from one inflow on: its critical inflow. The curve must match, point for point and
exactly, separate simulations at those inflows with the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import load_scenario, simulate
from sim.questions.magic_number import solve_magic_number
from sim.runner import critical_inflows
from tests.conftest import ROOT, make_scenario

SCENARIOS = {
    "reference quarter (Beta rates, revenue quota, open pipeline)": load_scenario(
        ROOT / "scenarios" / "reference_quarter.toml"
    ),
    "deals quota, fixed inflow, gamma and triangular stages": make_scenario(
        quota={"deals": 12},
        inflow={"per_week": 6, "process": "fixed"},
        stages=[
            {"name": "A", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 6, "sd": 3}, "open": 4},
            {"name": "B", "conversion": 0.6, "duration": {"dist": "triangular", "low": 1, "mode": 3, "high": 9}},
        ],
    ),
    "seasonal inflow": make_scenario(
        horizon_days=70,
        inflow={"per_week": 8, "multipliers": [0.5, 0.5, 1, 1, 2, 2, 1, 1, 0.5, 0.5]},
        quota={"revenue": 150_000},
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_the_curve_equals_separate_simulations(scenario):
    runs, seed, top = 1_500, 4, 3.0 * scenario.inflow.per_week
    critical = critical_inflows(scenario, runs=runs, seed=seed, max_per_week=top)
    assert critical.shape == (runs,)
    for per_week in np.linspace(0.0, top, 7):
        direct = simulate(scenario.with_inflow(per_week), runs=runs, seed=seed, engine="vectorized").hit
        np.testing.assert_array_equal(critical <= per_week, direct, err_msg=f"at {per_week:.3f} a week")


def test_the_curve_is_the_same_on_two_workers():
    scenario = SCENARIOS["reference quarter (Beta rates, revenue quota, open pipeline)"]
    one = critical_inflows(scenario, runs=1_200, seed=2, max_per_week=40.0)
    two = critical_inflows(scenario, runs=1_200, seed=2, max_per_week=40.0, jobs=2)
    np.testing.assert_array_equal(one, two)


def test_the_magic_number_is_a_quantile_of_the_critical_inflows_and_hits_the_target():
    scenario = SCENARIOS["reference quarter (Beta rates, revenue quota, open pipeline)"]
    runs, seed = 2_000, 0
    magic = solve_magic_number(scenario, 0.8, runs=runs, seed=seed)
    assert magic.evaluations <= 4
    at = simulate(scenario.with_inflow(magic.weekly_opportunities), runs=runs, seed=seed, engine="vectorized")
    assert at.p_hit >= 0.8 and magic.p_hit_at_solution == at.p_hit
    # A hair less and fewer than 80% of the runs hit: the smallest such inflow.
    below = simulate(scenario.with_inflow(magic.weekly_opportunities * 0.999), runs=runs, seed=seed)
    assert below.p_hit < 0.8

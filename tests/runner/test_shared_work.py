"""Work shared between questions: variants simulated together, inflow thresholds extended and reused.

A scenario and its levers read the same random numbers, so they are simulated in one
pass (:func:`sim.runner.simulate_variants`); the inflow thresholds behind the magic
number do not depend on the quota, so one simulation answers every quota, and a
further inflow simulates only the deals beyond (:class:`sim.runner.InflowThresholds`).
Every check here is exact: shared work must give the very numbers of separate
simulations, bit for bit. Only the team's magic number is new: exact where the root
finder was within its tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import load_scenario, simulate
from sim.engines import vectorized
from sim.model.scenario import Quota, scenario_from_dict
from sim.questions.magic_number import Unreachable, _Limits, _solve_by_root_finding, solve_magic_number
from sim.questions.sensitivity import levers, paired_difference, sensitivity
from sim.runner import Request, critical_inflows, inflow_thresholds, simulate_variants
from tests.conftest import ROOT, document, make_scenario
from tests.engines.test_vectorized import assert_identical

TOUCHES = {"dist": "empirical", "values": [1, 2, 3, 5, 8]}
EVERY_KEY = scenario_from_dict(
    document(
        horizon_days=84,
        inflow={"per_week": 30},
        stages=[
            {
                "name": "Follow-up",
                "conversion": {"mean": 0.5, "concentration": 30},
                "duration": {"dist": "exponential", "mean": 3},
                "touches_needed": TOUCHES,
                "max_touches": 3,
                "touch_interval_days": 2,
                "open": 5,
            },
            {
                "name": "Meeting",
                "conversion": 0.7,
                "duration": {"dist": "gamma", "mean": 7, "sd": 3},
                "no_show": 0.3,
                "reschedule": 0.5,
                "lost_after_reschedule": 0.4,
                "open": 3,
            },
            {
                "name": "Proposal",
                "conversion": 0.4,
                "duration": {"dist": "lognormal", "mean": 14, "sd": 8},
                "lost_duration": {"dist": "lognormal", "mean": 20, "sd": 10},
                "stale_after_days": 30,
                "open": 2,
            },
        ],
        open_deals=[
            {"stage": "Follow-up", "age_days": 2},
            {"stage": "Meeting", "age_days": 4, "amount": 5000},
            {"stage": "Proposal", "age_days": 20},
        ],
    )
)
SEASONAL_FIXED = make_scenario(
    inflow={"per_week": 9, "process": "fixed", "multipliers": [0.5, 0.5, 1, 1, 2, 2, 1, 1, 0.5, 0.5]},
    quota={"deals": 6},
    stages=[
        {"name": "A", "conversion": 0.6, "duration": {"dist": "triangular", "low": 1, "mode": 3, "high": 9}, "open": 7},
        {
            "name": "B",
            "conversion": {"mean": 0.5, "concentration": 10},
            "duration": {"dist": "uniform", "low": 1, "high": 5},
        },
    ],
)
SHIPPED = {
    path.stem: load_scenario(path)
    for path in sorted((ROOT / "scenarios").glob("*.toml"))
    # Segments have their own checks of shared work (tests/questions/test_segment_questions.py).
    if not load_scenario(path).has_capacity_limits and not load_scenario(path).segments
}
SCENARIOS = {**SHIPPED, "every behaviour key, listed deals": EVERY_KEY, "seasonal fixed inflow": SEASONAL_FIXED}


def with_levers(scenario, step=0.2):
    return [scenario, *(variant for _, variant in levers(scenario, step))]


# --- variants simulated together ------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_variants_simulated_together_are_the_separate_simulations(scenario):
    variants = with_levers(scenario)
    together = simulate_variants(variants, runs=600, seed=3)
    for variant, shared in zip(variants, together, strict=True):
        alone = simulate(variant, runs=600, seed=3)
        assert shared.engine == alone.engine == "vectorized"
        assert_identical(alone.outcomes, shared.outcomes)


def test_variants_on_two_workers_are_the_same():
    variants = with_levers(SCENARIOS["every behaviour key, listed deals"])
    one, two = simulate_variants(variants, runs=1_100, seed=5), simulate_variants(variants, runs=1_100, seed=5, jobs=2)
    for a, b in zip(one, two, strict=True):
        assert_identical(a.outcomes, b.outcomes)


def test_variants_that_cannot_share_their_draws_are_simulated_one_by_one():
    base = SCENARIOS["reference_quarter"]
    other = base.model_copy(update={"horizon_weeks": 10.0})  # another horizon: other arrivals read
    assert not vectorized.shares_draws(base, other)
    for variants, engine in (([base, other], "auto"), ([base], "simpy")):
        for shared, variant in zip(simulate_variants(variants, runs=40, seed=2, engine=engine), variants, strict=True):
            assert_identical(simulate(variant, runs=40, seed=2, engine=engine).outcomes, shared.outcomes)


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_a_stage_time_left_out_where_it_cannot_matter_changes_nothing(monkeypatch, scenario):
    # A deal surely out of a stage by the horizon, and going no further, is counted without
    # its time in the stage (vectorized._stay_bound). With no deal sure, every time is worked out.
    variants = with_levers(scenario)
    shortcut = simulate_variants(variants, runs=520, seed=8)
    monkeypatch.setattr(vectorized, "STAY_BOUND_QUANTILE", 0.0)
    vectorized._stay_bound.cache_clear()
    try:
        for variant, short in zip(variants, shortcut, strict=True):
            assert_identical(simulate(variant, runs=520, seed=8).outcomes, short.outcomes)
    finally:
        vectorized._stay_bound.cache_clear()


def test_sensitivity_simulated_together_is_lever_by_lever():
    scenario = SCENARIOS["outbound_sdr"]
    together = sensitivity(scenario, step=0.1, runs=700, seed=4)
    base = simulate(scenario, 700, 4)  # each lever against its own separate simulation
    for description, variant in levers(scenario, 0.1):
        row = next(r for r in together["levers"] if r["lever"] == description["lever"])
        alone = simulate(variant, 700, 4)
        assert (row["p_hit_change"], row["p_hit_change_se"]) == paired_difference(alone.hit, base.hit)
        assert row["revenue_change"] == paired_difference(alone.outcomes.revenue, base.outcomes.revenue)[0]
    assert sensitivity(scenario, step=0.1, runs=700, seed=4, jobs=2) == together


# --- inflow thresholds --------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_thresholds_extended_or_read_part_way_are_a_simulation_that_far(scenario):
    runs, seed, x = 700, 6, 1.5 * scenario.inflow.per_week
    fresh = critical_inflows(scenario, runs=runs, seed=seed, max_per_week=x)
    short = inflow_thresholds(Request.of(scenario, runs=runs, seed=seed), max_per_week=0.4 * x)
    extended = short.extended(x)
    quota = scenario.quota
    np.testing.assert_array_equal(extended.critical_inflows(quota), fresh)
    np.testing.assert_array_equal(extended.extended(2 * x).critical_inflows(quota, max_per_week=x), fresh)
    np.testing.assert_array_equal(short.critical_inflows(quota), critical_inflows(scenario, runs, seed, 0.4 * x))
    assert short.max_per_week == 0.4 * x  # extending made new thresholds, the old ones are as they were


@pytest.mark.parametrize("name", ["reference_quarter", "outbound_sdr", "team_quarter"])
def test_one_simulation_of_thresholds_answers_every_quota(name):
    scenario, runs, seed = SCENARIOS[name], 600, 1
    thresholds = inflow_thresholds(Request.of(scenario, runs=runs, seed=seed), 2 * scenario.inflow.per_week)
    for factor in (0.5, 1.0, 1.3):
        quota = scenario.quota.model_copy(update={scenario.quota.unit: round(factor * scenario.quota.target)})
        other = scenario.model_copy(update={"quota": quota})
        np.testing.assert_array_equal(
            thresholds.critical_inflows(quota), critical_inflows(other, runs, seed, thresholds.max_per_week)
        )


TEAM = SCENARIOS["team_quarter"]
TEAM_BY_DEALS = TEAM.model_copy(
    update={"quota": Quota(deals=40), "team": TEAM.team.model_copy(update={"rep_quota": 5})}
)


@pytest.mark.parametrize("team", [TEAM, TEAM_BY_DEALS], ids=["revenue", "deals"])
def test_a_team_hits_exactly_from_its_critical_inflow(team):
    runs, seed, top = 800, 4, 3.0 * team.inflow.per_week
    critical = critical_inflows(team, runs=runs, seed=seed, max_per_week=top)
    for per_week in np.linspace(0.0, top, 8):
        direct = simulate(team.with_inflow(per_week), runs=runs, seed=seed).hit
        np.testing.assert_array_equal(critical <= per_week, direct, err_msg=f"at {per_week:.3f} a week")


@pytest.mark.parametrize("team", [TEAM, TEAM_BY_DEALS], ids=["revenue", "deals"])
def test_the_team_magic_number_is_exact_where_the_root_finder_was_close(team):
    runs, seed, tolerance = 800, 2, 1e-3
    magic = solve_magic_number(team, 0.8, runs=runs, seed=seed)
    at = simulate(team.with_inflow(magic.weekly_opportunities), runs=runs, seed=seed)
    below = simulate(team.with_inflow(magic.weekly_opportunities * 0.999), runs=runs, seed=seed)
    assert at.p_hit == magic.p_hit_at_solution >= 0.8 > below.p_hit
    assert magic.evaluations <= 3 and len(magic.curve) > 60
    # The root finder on the same simulations lands on the hitting side, within its tolerance.
    limits = _Limits.of(team, 0.8, runs)
    found, p_found, _, _ = _solve_by_root_finding(team, limits, Request.of(team, runs=runs, seed=seed), tolerance)
    assert p_found >= 0.8 and magic.weekly_opportunities <= found
    assert found - magic.weekly_opportunities <= 2 * tolerance * found


def test_a_revenue_quota_no_new_deal_can_reach_is_refused():
    # No deal converts at the last stage: no win anywhere in a block, which must not break the count.
    closed = make_scenario(stages=[{"name": "Only", "conversion": 0.0, "duration": 3.0}])
    with pytest.raises(Unreachable, match="no new opportunity can be won"):
        solve_magic_number(closed, 0.8, runs=300)
    assert np.isinf(critical_inflows(closed, runs=300, max_per_week=50.0)).all()

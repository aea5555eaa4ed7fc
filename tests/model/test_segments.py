"""Segments: an organisation of independent funnels sharing a horizon.

Closed form: with a fixed conversion rate, Poisson inflow and fixed durations, a
segment's won deals are Poisson (thinned arrivals), so the total of two identical
segments is Poisson with twice the mean and P(total >= quota) is a Poisson tail.
Tolerances are z * SE with z = 4 (tests/conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sim import simulate
from sim.cli import main
from sim.engines.streams import segment_seed
from sim.model.average_math import average_math, team_inflow_reps
from sim.model.scenario import DAYS_PER_MONTH, ScenarioError, scenario_from_dict, scenario_from_toml, scenario_to_toml
from sim.model.segments import cost_of_reps, plan_on_averages, segment_scenarios
from sim.model.team import team_cost
from sim.runner import simulate_team, simulate_variants
from tests.conftest import document, fixed_stages, within, within_proportion, write_toml

HORIZON = 70.0
WEEKLY = 7.0
RATES = ((0.6, 2.0), (0.5, 3.0))
"""Two stages of fixed rate and days: a deal arriving by day 65 is decided within the horizon."""


def poisson_funnel(**changes) -> dict:
    """Deals quota, Poisson inflow, fixed rates and durations: won deals are Poisson."""
    defaults = {"quota": {"deals": 40}, "inflow": {"per_week": WEEKLY}, "stages": fixed_stages(*RATES)}
    return document(**{**defaults, **changes})


def won_mean() -> float:
    """Expected wins of one segment: arrivals early enough to be decided, times the rates."""
    decided_by = HORIZON - sum(days for _, days in RATES)
    return WEEKLY / 7 * decided_by * np.prod([rate for rate, _ in RATES])


def organisation(segments: list[dict], **changes) -> dict:
    return poisson_funnel(segments=segments, **changes)


def test_two_identical_segments_total_is_the_poisson_tail_of_the_sum():
    scenario = scenario_from_dict(organisation([{"name": "North"}, {"name": "South"}], quota={"deals": 47}))
    result = simulate(scenario, runs=20_000, seed=11)
    exact = float(stats.poisson.sf(46, 2 * won_mean()))  # P(total >= 47)
    within_proportion(result.hit, exact)
    # And the total's mean is twice a segment's closed form.
    wins = result.outcomes.won_deals
    within(float(wins.mean()), 2 * won_mean(), float(wins.std(ddof=1) / np.sqrt(len(wins))))


def test_the_total_equals_one_funnel_with_double_inflow_within_se():
    doubled = scenario_from_dict(poisson_funnel(quota={"deals": 47}, inflow={"per_week": 2 * WEEKLY}))
    two = scenario_from_dict(organisation([{"name": "North"}, {"name": "South"}], quota={"deals": 47}))
    a = simulate(doubled, runs=20_000, seed=1).hit.mean()
    b = simulate(two, runs=20_000, seed=2).hit.mean()
    se = np.sqrt(a * (1 - a) / 20_000 + b * (1 - b) / 20_000)
    within(float(b), float(a), float(se))


SEGMENTS = [
    {"name": "East", "quota": {"deals": 20}},
    {"name": "West", "inflow": {"per_week": 10}},
    {
        "name": "Partners",
        "team": {"reps": 3, "rep_quota": 8, "rate_concentration": 30, "new_reps": 1, "ramp_months": 1},
    },
    {"name": "Inside", "capacity": {"reps": 1}, "stages": [{"name": "Call", "conversion": 0.4, "duration": 3,
                                                            "per_rep": 2}]},
]  # fmt: skip


@pytest.mark.parametrize("engine", ["auto", "simpy"])
def test_each_segment_gives_what_it_gives_alone_with_its_own_seed(engine):
    runs = 600 if engine == "auto" else 120
    scenario = scenario_from_dict(organisation(SEGMENTS))
    together = simulate(scenario, runs=runs, seed=5, engine=engine)
    for i, funnel in enumerate(segment_scenarios(scenario)):
        alone = simulate(funnel, runs=runs, seed=segment_seed(5, i), engine=engine)
        mine = together.segment_totals()[i]
        assert np.array_equal(alone.outcomes.won_deals, mine.outcomes.won_deals), funnel.name
        assert np.array_equal(alone.outcomes.revenue, mine.outcomes.revenue), funnel.name
    parts = sum(s.outcomes.revenue for s in together.segment_totals())
    assert np.array_equal(parts, together.outcomes.revenue)


def test_adding_a_segment_leaves_the_others_as_they_were():
    two = scenario_from_dict(organisation(SEGMENTS[:2]))
    three = scenario_from_dict(organisation(SEGMENTS[:3]))
    a, b = simulate_variants([two, three], runs=512, seed=9)
    for i in range(2):
        assert np.array_equal(a.segment_totals()[i].outcomes.revenue, b.segment_totals()[i].outcomes.revenue)


def test_summary_gives_each_segment_and_spread_shares_add_up():
    scenario = scenario_from_dict(organisation(SEGMENTS, quota={"deals": 60}))
    result = simulate(scenario, runs=2_000, seed=3)
    summary = result.summary()
    names = [s["name"] for s in summary["segments"]]
    assert names == ["East", "West", "Partners", "Inside"]
    east, west = summary["segments"][:2]
    assert east["has_quota"] and east["quota"] == {"unit": "deals", "target": 20.0}
    assert east["p_hit"] == pytest.approx(float((result.segment_totals()[0].outcomes.won_deals >= 20).mean()))
    assert west["p_hit"] is None and west["quota"] is None
    assert sum(s["spread_share"] for s in summary["segments"]) == pytest.approx(1.0)
    assert summary["p_hit"] == pytest.approx(float((result.outcomes.won_deals >= 60).mean()))
    assert summary["reps"] == 3 + 1  # the team's reps and Inside's capacity
    table = result.table()
    assert list(table.columns[-2:]) == ["won_deals[Inside]", "revenue[Inside]"]
    assert (table[[f"won_deals[{n}]" for n in names]].sum(axis=1) == table["won_deals"]).all()


def test_average_math_of_segments_is_the_sum_of_theirs():
    scenario = scenario_from_dict(organisation(SEGMENTS[:2]))
    plans = [average_math(s) for s in segment_scenarios(scenario)]
    assert plan_on_averages(scenario)["won_deals"] == pytest.approx(sum(p["won_deals"] for p in plans))


def test_segments_round_trip_through_toml():
    scenario = scenario_from_dict(organisation(SEGMENTS))
    assert scenario_from_toml(scenario_to_toml(scenario)) == scenario


@pytest.mark.parametrize(
    ("segments", "changes", "problem"),
    [
        ([{"name": "A"}, {"name": "A"}], {}, "segments: names must be unique, repeated: A"),
        ([{"name": "A", "stages": [{"name": "S", "conversion": 1.5, "duration": 1}]}], {},
         "segments[0].stages[0].conversion: must be between 0 and 1, got 1.5"),
        ([{"name": "A", "capacity": {"reps": 2}, "team": {"reps": 2, "rep_quota": 5, "rate_concentration": 9}}], {},
         "segments[0].team: cannot be combined with [capacity]"),
        ([{"name": "A", "inflow": {"per_week": 1, "multipliers": [1, 2]}}], {},
         "segments[0].inflow.multipliers: give one per week (10) or one per month (3)"),
        ([{"name": "A"}], {"open_deals": [{"stage": "S0"}]}, "open_deals: with segments, list each segment's"),
        ([{"name": "A", "colour": "red"}], {}, "segments[0].colour: unknown key"),
    ],
)  # fmt: skip
def test_bad_segments_are_named_by_path(segments, changes, problem):
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(organisation(segments, **changes))
    assert any(line.startswith(problem) for line in error.value.problems), error.value.problems


def test_new_reps_hired_later_bring_the_closed_form_share_and_cost():
    team = {"reps": 4, "rep_quota": 8, "rate_concentration": 1e9, "new_reps": 2, "ramp_months": 1,
            "hire_month": 1, "cost_per_year": 120_000}  # fmt: skip
    scenario = scenario_from_dict(poisson_funnel(team=team, horizon_days=120))
    ramp, start = DAYS_PER_MONTH, DAYS_PER_MONTH
    after = 120 - start
    assert team_inflow_reps(scenario) == pytest.approx(2 + 2 * (after - ramp / 2) / 120)
    assert team_cost(scenario) == pytest.approx(120_000 * (2 * 120 + 2 * after) / 365.25)
    org = scenario_from_dict(organisation([{"name": "A", "team": team}, {"name": "B"}], horizon_days=120))
    assert cost_of_reps(org) == pytest.approx(team_cost(scenario))


def test_a_new_rep_hired_later_enters_nothing_before_the_hire():
    team = {"reps": 1, "rep_quota": 8, "rate_concentration": 1e9, "new_reps": 1, "ramp_months": 1, "hire_month": 2}
    scenario = scenario_from_dict(poisson_funnel(team=team, horizon_days=120))
    rep = simulate_team(scenario, runs=4_000, seed=2).reps[0]
    entered = rep.outcomes.entered[:, 0]
    expected = WEEKLY / 7 * (120 - 2 * DAYS_PER_MONTH - DAYS_PER_MONTH / 2)
    within(float(entered.mean()), expected, float(np.sqrt(expected / len(entered))))
    assert rep.scenario.stages[0].open == 0


def test_run_prints_and_writes_each_segment(tmp_path, capsys):
    path = write_toml(tmp_path, organisation(SEGMENTS[:3], quota={"deals": 50}))
    assert main(["run", str(path), "--runs", "500"]) == 0
    out = capsys.readouterr().out
    assert "East" in out and "Partners" in out and "The biggest risk is" in out
    assert main(["run", str(path), "--runs", "500", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in payload["segments"]] == ["East", "West", "Partners"]
    assert payload["segments"][0]["p_hit"] is not None and payload["segments"][1]["p_hit"] is None

"""The questions on a scenario with segments: each segment's magic number, levers and realistic quota."""

from __future__ import annotations

import numpy as np
import pytest

from sim import simulate
from sim.model.scenario import scenario_from_dict
from sim.model.segments import segment_scenarios
from sim.questions.magic_number import solve_magic_number, solve_segment_magic_numbers
from sim.questions.quota import realistic_quota, realistic_segment_quotas
from sim.questions.sensitivity import levers, sensitivity
from sim.runner import Request, run
from tests.conftest import document, fixed_stages

RUNS = 1_000


def organisation(**changes):
    team = {"reps": 2, "rep_quota": 6, "rate_concentration": 30}
    segments = [
        {"name": "East"},
        {"name": "West", "inflow": {"per_week": 10}, "quota": {"deals": 15}},
        {"name": "Partners", "team": team, "inflow": {"per_week": 4}},
    ]
    doc = {
        "quota": {"deals": 45},
        "inflow": {"per_week": 7},
        "stages": fixed_stages((0.6, 2.0), (0.5, 3.0)),
        "segments": segments,
        **changes,
    }
    return scenario_from_dict(document(**doc))


def test_each_segment_magic_number_is_where_the_whole_scenario_reaches_the_target():
    scenario = organisation()
    answers = solve_segment_magic_numbers(scenario, 0.8, runs=RUNS, seed=4)
    assert [a["name"] for a in answers] == ["East", "West", "Partners"]
    for i, (answer, funnel) in enumerate(zip(answers, segment_scenarios(scenario), strict=True)):
        assert answer["reachable"], answer
        x = answer["weekly_opportunities"]
        whole = scenario.with_segment(i, funnel.with_inflow(x))
        result = simulate(whole, runs=RUNS, seed=4)
        assert result.p_hit == answer["p_hit_at_solution"] >= 0.8  # common random numbers: the same runs
        below = simulate(scenario.with_segment(i, funnel.with_inflow(0.99 * x)), runs=RUNS, seed=4)
        assert below.p_hit < 0.8
    assert answers[2]["per_rep"] and not answers[0]["per_rep"]


def test_a_segment_whose_deals_cannot_close_in_time_says_why():
    scenario = organisation()
    stages = scenario_from_dict(document(stages=fixed_stages((0.6, 80.0)))).stages  # longer than the horizon
    slow = scenario.segments[0].model_copy(update={"stages": stages})
    scenario = scenario.model_copy(update={"segments": (slow, *scenario.segments[1:])})
    east, west, _ = solve_segment_magic_numbers(scenario, 0.95, runs=200, seed=1)
    assert not east["reachable"] and "no new opportunity can be won within the horizon" in east["reason"]
    assert west["reachable"]
    east, _, _ = solve_segment_magic_numbers(scenario, 0.5, runs=200, seed=1)
    assert "the other segments (and this one's open pipeline) already reach" in east["reason"]


def test_the_one_funnel_magic_number_refuses_segments():
    with pytest.raises(ValueError, match="segments: each segment has its own inflow"):
        solve_magic_number(organisation(), 0.8, runs=100)


def test_levers_come_per_segment_and_leave_the_other_segments_alone():
    scenario = organisation()
    described = levers(scenario, 0.1)
    assert {d["segment"] for d, _ in described} == {"East", "West", "Partners"}
    assert described[0][0]["lever"].startswith("East: ")
    variants = [v for _, v in described]
    request = Request((scenario, *variants), runs=RUNS, seed=2)
    simulation = run(request)
    base = simulation.result(scenario, request.seed)
    for k, ((what, _), result) in enumerate(zip(described, variants, strict=True)):
        judged = simulation.result(result, request.seed, k + 1)
        for j, segment in enumerate(scenario.segments):
            if segment.name != what["segment"]:
                a, b = base.segment_totals()[j].outcomes, judged.segment_totals()[j].outcomes
                assert np.array_equal(a.won_deals, b.won_deals), (what["lever"], segment.name)
    answer = sensitivity(scenario, runs=RUNS, seed=2)
    assert len(answer["levers"]) == len(described)
    inflow = next(r for r in answer["levers"] if r["lever"] == "West: inflow per week")
    assert inflow["p_hit_change"] >= 0


def test_segment_quotas_add_up_to_less_than_the_total_one():
    result = simulate(organisation(), runs=RUNS, seed=3)
    parts = realistic_segment_quotas(result, 0.7)
    total = realistic_quota(result, 0.7)["quota"]
    assert sum(p["quota"] for p in parts) < total
    west = parts[1]
    assert west["own_quota"] == 15 and west["p_hit_at_own_quota"] == result.summary()["segments"][1]["p_hit"]
    assert parts[0]["own_quota"] is None and parts[0]["p_hit_at_quota"] >= 0.7

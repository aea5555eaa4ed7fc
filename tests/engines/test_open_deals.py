"""Listed open deals with ages and amounts, lost durations, and seasonal inflow.

Closed forms: a listed deal of age a in a stage with exponential durations converts
with P = p e^(-a/m_w) / (p e^(-a/m_w) + (1 - p) e^(-a/m_l)) and, being memoryless,
then needs Exp(m_w) more days; arrivals under weekly multipliers are Poisson with mean
rate * sum(multiplier * days) in each week. Every check runs on both engines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import simulate
from sim.model.funnel import ListedDeals, p_won_given_age
from sim.model.scenario import ScenarioError, scenario_from_dict, scenario_from_toml, scenario_to_toml
from tests.conftest import ENGINES, document, within

RUNS = {"vectorized": 20_000, "simpy": 4_000}


def listed_world(deals: list[dict], *, conversion=0.3, won_mean=20.0, lost_mean=60.0, horizon=14.0) -> dict:
    """One stage with exponential durations, no new inflow, only listed deals."""
    return document(
        horizon_days=horizon,
        inflow={"per_week": 0.0},
        quota={"deals": 1},
        deal_value=1000.0,
        stages=[
            {
                "name": "Open",
                "conversion": conversion,
                "duration": {"dist": "exponential", "mean": won_mean},
                "lost_duration": {"dist": "exponential", "mean": lost_mean},
            }
        ],
        open_deals=deals,
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("age", [0.0, 30.0, 90.0])
def test_an_aged_deal_wins_with_the_bayes_probability(engine, age):
    p, won_mean, lost_mean, horizon, n = 0.3, 20.0, 60.0, 14.0, 25
    scenario = scenario_from_dict(listed_world([{"stage": "Open", "age_days": age}] * n))
    survive_won, survive_lost = math.exp(-age / won_mean), math.exp(-age / lost_mean)
    q = p * survive_won / (p * survive_won + (1 - p) * survive_lost)
    win = q * (1 - math.exp(-horizon / won_mean))  # memoryless: Exp(m_w) days still to go
    result = simulate(scenario, runs=RUNS[engine], seed=3, engine=engine)
    wins = result.outcomes.won_deals
    within(wins.mean(), n * win, math.sqrt(n * win * (1 - win) / len(wins)))
    # Older deals are likelier losers here (deals that will be lost linger longer).
    assert q <= p + 1e-12


@pytest.mark.parametrize("engine", ENGINES)
def test_deals_of_different_ages_each_win_with_their_own_probability(engine):
    # Lognormal durations (not memoryless): each deal's chance is its Bayes conversion times
    # P(remaining time <= horizon), computed here from scipy directly.
    p, horizon, ages = 0.4, 21.0, [0.0, 5.0, 12.0, 30.0, 60.0, 120.0]
    doc = listed_world([{"stage": "Open", "age_days": a} for a in ages], conversion=p, horizon=horizon)
    doc["stages"][0]["duration"] = {"dist": "lognormal", "mean": 25, "sd": 15}
    doc["stages"][0]["lost_duration"] = {"dist": "gamma", "mean": 40, "sd": 30}
    scenario = scenario_from_dict(doc)
    won, lost = scenario.stages[0].duration.scipy(), scenario.stages[0].lost_duration.scipy()
    chances = []
    for a in ages:
        q = p * won.sf(a) / (p * won.sf(a) + (1 - p) * lost.sf(a))
        chances.append(q * (won.cdf(a + horizon) - won.cdf(a)) / won.sf(a))
    chances = np.array(chances)
    result = simulate(scenario, runs=RUNS[engine], seed=6, engine=engine)
    wins = result.outcomes.won_deals
    within(wins.mean(), chances.sum(), math.sqrt((chances * (1 - chances)).sum() / len(wins)))


@pytest.mark.parametrize("engine", ENGINES)
def test_zombie_deals_do_not_win(engine):
    # Sixty deals open for 400 days where won deals take 10 +- 3 days: they have outlived
    # every deal that converts, so none of them is won.
    doc = listed_world([{"stage": "Open", "age_days": 400.0}] * 60, horizon=90.0)
    doc["stages"][0]["duration"] = {"dist": "lognormal", "mean": 10, "sd": 3}
    scenario = scenario_from_dict(doc)
    assert float(ListedDeals.of(scenario).conversion(np.array([0.3]))[0]) < 1e-9
    result = simulate(scenario, runs=500, seed=1, engine=engine)
    assert result.outcomes.won_deals.sum() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_won_listed_deal_is_worth_its_amount(engine):
    doc = listed_world(
        [{"stage": "Open", "age_days": 0.0, "amount": 123_456.0, "name": "Acme"}],
        conversion=0.5,
        won_mean=2.0,
        horizon=60.0,
    )
    doc["deal_value"] = {"dist": "lognormal", "mean": 10_000, "sd": 5_000}
    result = simulate(scenario_from_dict(doc), runs=2_000, seed=5, engine=engine)
    o = result.outcomes
    won = o.won_deals == 1
    assert set(np.unique(o.won_deals)) <= {0, 1}
    np.testing.assert_array_equal(o.revenue[won], 123_456.0)
    np.testing.assert_array_equal(o.revenue[~won], 0.0)
    p_win = 0.5 * (1 - math.exp(-60.0 / 2.0))
    within(won.mean(), p_win, math.sqrt(p_win * (1 - p_win) / len(won)))


@pytest.mark.parametrize("engine", ENGINES)
def test_listed_deals_move_on_through_later_stages(engine):
    # An aged deal in stage A (fixed rate 1, age 5 of a fixed 8-day stage: 3 days left)
    # then stage B (rate 0.4, 2 days): won on day 5 with probability 0.4.
    doc = document(
        horizon_days=5.0,
        inflow={"per_week": 0.0},
        quota={"deals": 1},
        deal_value=1.0,
        stages=[
            {"name": "A", "conversion": 1.0, "duration": 8.0},
            {"name": "B", "conversion": 0.4, "duration": 2.0},
        ],
        open_deals=[{"stage": "A", "age_days": 5.0}] * 10,
    )
    result = simulate(scenario_from_dict(doc), runs=RUNS[engine], seed=8, engine=engine)
    o = result.outcomes
    np.testing.assert_array_equal(o.converted[:, 0], 10)
    np.testing.assert_array_equal(o.entered[:, 1], 10)
    within(o.won_deals.mean(), 4.0, math.sqrt(10 * 0.4 * 0.6 / len(o)))


@pytest.mark.parametrize("engine", ENGINES)
def test_seasonal_inflow_follows_the_weekly_multipliers(engine):
    multipliers = [0.0, 2.0, 1.0, 0.5]
    doc = document(
        horizon_weeks=4,
        horizon_days=None,
        inflow={"per_week": 7.0, "multipliers": multipliers},
        quota={"deals": 20},
        deal_value=1.0,
        stages=[{"name": "Only", "conversion": 1.0, "duration": 0.0}],
    )
    doc.pop("horizon_days")
    scenario = scenario_from_dict(doc)
    result = simulate(scenario, runs=RUNS[engine], seed=4, engine=engine)
    weekly = np.diff(result.outcomes.weekly_revenue, axis=1, prepend=0.0)  # won (= arrived) each week
    for week, factor in enumerate(multipliers):
        mean = 7.0 * factor
        within(weekly[:, week].mean(), mean, math.sqrt(mean / len(weekly)) + 1e-12)
    assert (weekly[:, 0] == 0).all()  # no inflow at all in a week with multiplier 0
    total = 7.0 * sum(multipliers)
    assert scenario.expected_arrivals == pytest.approx(total)
    within(result.outcomes.entered[:, 0].mean(), total, math.sqrt(total / len(weekly)))


def test_monthly_multipliers_are_accepted_and_weigh_days():
    doc = document(horizon_days=91.0, inflow={"per_week": 7.0, "multipliers": [1.0, 2.0, 0.5]})
    scenario = scenario_from_dict(doc)
    month = 365.25 / 12
    assert scenario.n_months == 3
    assert scenario.expected_arrivals == pytest.approx(month + 2 * month + 0.5 * (91.0 - 2 * month))


def test_p_won_given_age_matches_listed_deals():
    doc = listed_world([{"stage": "Open", "age_days": a} for a in (0.0, 10.0, 100.0)])
    scenario = scenario_from_dict(doc)
    stage = scenario.stages[0]
    expected = p_won_given_age(0.3, stage.duration, stage.lost_duration, np.array([0.0, 10.0, 100.0]))
    np.testing.assert_allclose(ListedDeals.of(scenario).conversion(np.full(3, 0.3)), expected, rtol=1e-12)


BAD = [
    ({"open_deals": [{"stage": "Nowhere"}]}, "open_deals[0].stage: unknown stage 'Nowhere'"),
    ({"open_deals": [{"stage": "Discovery", "age_days": -1}]}, "open_deals[0].age_days: must be a finite number >= 0"),
    ({"open_deals": [{"stage": "Discovery", "amount": -5}]}, "open_deals[0].amount: must be a finite number >= 0"),
    ({"open_deals": [{"stage": "Discovery", "agee": 3}]}, "open_deals[0].agee: unknown key"),
    ({"inflow": {"per_week": 5, "multipliers": [1, -1]}}, "inflow.multipliers: every multiplier must be"),
    ({"inflow": {"per_week": 5, "multipliers": [1, 2]}}, "inflow.multipliers: give one per week"),
]


@pytest.mark.parametrize(("changes", "expected"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_listed_deals_and_multipliers_name_the_field(changes, expected):
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(document(**changes))
    assert any(line.startswith(expected) for line in caught.value.problems), caught.value.problems


def test_the_new_keys_round_trip_through_toml():
    doc = document(
        inflow={"per_week": 5.0, "multipliers": [1.0] * 4 + [1.5] * 4 + [0.5] * 5},
        horizon_days=91.0,
        open_deals=[
            {"stage": "Discovery", "age_days": 12.5, "amount": 40_000.0, "name": "Acme"},
            {"stage": "Proposal"},
        ],
    )
    doc["stages"][0]["lost_duration"] = {"dist": "gamma", "mean": 20, "sd": 10}
    scenario = scenario_from_dict(doc)
    text = scenario_to_toml(scenario)
    assert scenario_from_toml(text) == scenario
    assert "open_deals" in text and "lost_duration" in text and "multipliers" in text

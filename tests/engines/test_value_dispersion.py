"""``deal_value_dispersion`` against closed forms, on every engine and on the inflow thresholds.

Each replication draws one deal value level ``H ~ Gamma(1 / d**2, scale=d**2)`` (mean 1,
sd ``d``) and every value it draws from ``deal_value`` is ``H`` times the drawn one. With
evenly spaced arrivals, conversion 1 and 0 days in the funnel, a replication wins exactly
``n = floor(per_week / 7 * H)`` deals and its revenue is ``R = H (V_1 + ... + V_n)``, the
``V_k`` i.i.d. with mean ``m`` and sd ``s``:

* E R = n m;
* Var R = E[Var(R | H)] + Var(E[R | H]) = n s**2 E[H**2] + n**2 m**2 Var H
  = n s**2 (1 + d**2) + n**2 m**2 d**2 (two values of one replication covary by m**2 d**2);
* with a fixed deal value ``m``, R = n m H, so P(R >= q) = P(H >= q / (n m)), a Gamma tail.

Every check is |estimate - exact| <= Z * SE with a fixed seed: the SE of a mean from the
exact variance, of a sample variance sqrt((mu4 - sigma**4) / n) with the sample's fourth
central moment, of a share sqrt(p (1 - p) / n). The engines are the SimPy engine, the
vectorised engine, its queues (``[capacity]`` with reps that never bind) and the inflow
thresholds the magic number reads, with a revenue quota.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim import simulate
from sim.crm.synthetic import deal_history
from sim.engines.simpy_engine import run_replications
from sim.model.scenario import Quota, ScenarioError, scenario_from_dict, scenario_to_dict
from sim.runner import Request, critical_inflows, inflow_thresholds, simulate_team
from tests.conftest import RUNS, Z, document, fixed_stages, make_scenario, within, within_proportion
from tests.engines.test_closed_forms import check_law, exact_fixed_arrivals
from tests.engines.test_inflow_dispersion import SIMULATED, assert_same_numbers, base_funnel, simulated

D = 0.3
PER_WEEK, HORIZON = 14.0, 63.0
N = exact_fixed_arrivals(PER_WEEK, HORIZON)  # 126 wins in every replication
MEAN, SD = 10_000.0, 4_000.0


def wins_scenario(d=D, per_week=PER_WEEK, reps=False, deal_value=None, quota=None, days=0.0, **changes):
    """Evenly spaced arrivals, each won the day it arrives (``days`` later): a known number of wins."""
    stages = fixed_stages((1.0, days))
    extra = {}
    if reps:
        stages[0]["per_rep"] = 10**6  # never binds, but the scenario runs on the queues
        extra["capacity"] = {"reps": 1}
    return make_scenario(
        horizon_days=HORIZON,
        inflow={"per_week": per_week, "process": "fixed"},
        deal_value=deal_value or {"dist": "lognormal", "mean": MEAN, "sd": SD},
        deal_value_dispersion=d,
        quota=quota or {"revenue": 1.0},
        stages=stages,
        **extra,
        **changes,
    )


def revenue_variance(n: int, d: float = D, m: float = MEAN, s: float = SD) -> float:
    return n * s**2 * (1 + d**2) + n**2 * m**2 * d**2


def check_revenue(revenue: np.ndarray, n: int, d: float = D) -> None:
    """Mean n m and variance n s^2 (1 + d^2) + n^2 m^2 d^2 within Z SE."""
    var = revenue_variance(n, d)
    within(revenue.mean(), n * MEAN, math.sqrt(var / len(revenue)))
    centred = revenue - revenue.mean()
    within(revenue.var(ddof=1), var, math.sqrt((np.mean(centred**4) - var**2) / len(revenue)))


def test_the_key_is_validated_and_left_out_at_zero():
    assert make_scenario().deal_value_dispersion == 0.0
    for bad in (-0.1, 3.5, math.inf, math.nan):
        with pytest.raises(ScenarioError, match="deal_value_dispersion"):
            scenario_from_dict(document(deal_value_dispersion=bad))
    assert "deal_value_dispersion" not in scenario_to_dict(make_scenario(deal_value_dispersion=0))
    scenario = make_scenario(deal_value_dispersion=0.4)
    assert scenario_from_dict(scenario_to_dict(scenario)) == scenario


@pytest.mark.parametrize("name", SIMULATED)
def test_revenue_of_n_wins_has_the_closed_form_mean_and_variance(name):
    result = simulated(name, wins_scenario(reps=SIMULATED[name][1]))
    if SIMULATED[name][1]:
        assert result.outcomes.served is not None  # the queues ran it
    assert (result.outcomes.won_deals == N).all()
    check_revenue(result.outcomes.revenue, N)
    # Without the level the same wins have the independent values' variance n s^2.
    steady = simulated(name, wins_scenario(d=0.0, reps=SIMULATED[name][1])).outcomes.revenue
    check_revenue(steady, N, d=0.0)


@pytest.mark.parametrize("name", SIMULATED)
def test_a_fixed_deal_value_takes_the_gamma_level(name):
    # R = n m H: its tails are Gamma tails.
    result = simulated(name, wins_scenario(deal_value=MEAN, reps=SIMULATED[name][1]))
    level = stats.gamma(a=1 / D**2, scale=D**2)
    check_law(result.outcomes.revenue / (N * MEAN), level)
    for h in (0.7, 1.0, 1.4):
        within_proportion(result.outcomes.revenue >= h * N * MEAN, float(level.sf(h)))


def test_thresholds_with_a_revenue_quota_count_the_scaled_values():
    runs = RUNS["vectorized"]
    # A fixed value: P(R >= q at x) = P(H >= q / (n(x) m)), n(x) = floor(x H / 7) wins.
    data = inflow_thresholds(Request.of(wins_scenario(deal_value=MEAN), runs=runs, seed=3), 2 * PER_WEEK)
    level = stats.gamma(a=1 / D**2, scale=D**2)
    for q in (0.8 * N * MEAN, N * MEAN, 1.3 * N * MEAN):
        critical = data.critical_inflows(Quota(revenue=q))
        for per_week in (10.5, PER_WEEK, 20.5):
            n = exact_fixed_arrivals(per_week, HORIZON)
            within_proportion(critical <= per_week, float(level.sf(q / (n * MEAN))))
    # Lognormal values: exactly the replications the vectorised engine says hit the quota
    # (whose revenue has the closed-form mean and variance, above).
    scenario = wins_scenario()
    for q in (0.8 * N * MEAN, 1.3 * N * MEAN):
        quoted = scenario.model_copy(update={"quota": Quota(revenue=q)})
        critical = critical_inflows(quoted, runs=4_000, seed=4, max_per_week=2 * PER_WEEK)
        for per_week in (10.5, PER_WEEK, 20.5):
            at = simulate(quoted.with_inflow(per_week), runs=4_000, seed=4, engine="vectorized")
            np.testing.assert_array_equal(critical <= per_week, at.hit)


@pytest.mark.parametrize("name", [*SIMULATED, "thresholds"])
def test_dispersion_zero_is_todays_values_bit_for_bit(name):
    plain = base_funnel(name, inflow={"per_week": 9.5})
    assert_same_numbers(name, plain, base_funnel(name, inflow={"per_week": 9.5}, deal_value_dispersion=0))


@pytest.mark.parametrize("name", [*SIMULATED, "thresholds"])
def test_same_seed_same_numbers_on_one_and_two_jobs(name):
    scenario = make_scenario(inflow={"per_week": 9.5}, deal_value_dispersion=0.5)
    if SIMULATED.get(name, ("", False))[1]:
        scenario = wins_scenario(d=0.5, reps=True)
    if name == "thresholds":
        one, two = (critical_inflows(scenario, runs=3_000, seed=6, max_per_week=25.0, jobs=j) for j in (1, 2))
        np.testing.assert_array_equal(one, two)
        return
    runs = 1_200 if name == "simpy" else 3_000
    one, again, two = (simulated(name, scenario, runs=runs, seed=5, jobs=j).outcomes for j in (1, 1, 2))
    for field in ("won_deals", "revenue", "weekly_revenue"):
        np.testing.assert_array_equal(getattr(one, field), getattr(again, field))
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    # The level moves the values, not the wins.
    plain = simulated(name, scenario.model_copy(update={"deal_value_dispersion": 0.0}), runs=runs, seed=5).outcomes
    np.testing.assert_array_equal(plain.won_deals, one.won_deals)
    assert not np.array_equal(plain.revenue, one.revenue)


# Listed deals of age 0 in a stage of 1 day: each is won on day 1.
LISTED = [
    {"stage": "S0", "age_days": 0, "amount": 25_000},
    {"stage": "S0", "age_days": 0, "amount": 40_000},
    {"stage": "S0"},  # no amount: a drawn value, at the level
]
AMOUNTS = 65_000.0


@pytest.mark.parametrize("name", ["simpy", "vectorized", "thresholds"])
def test_listed_amounts_are_not_scaled(name):
    # Only listed deals with amounts: every replication's revenue is their sum, whatever H.
    known = wins_scenario(d=0.8, per_week=0.0, days=1.0, open_deals=LISTED[:2], quota={"revenue": AMOUNTS})
    if name == "thresholds":
        critical = critical_inflows(known, runs=2_000, seed=7, max_per_week=10.0)
        assert (critical == 0).all()  # the open pipeline alone meets the quota, in every replication
        # A fixed new value m: at inflow x the n(x) = floor(x (H - 1) / 7) new wins add n(x) m H
        # to the amounts, so P(R >= q) = P(H >= (q - amounts) / (n(x) m)).
        priced = known.model_copy(update={"deal_value": make_scenario(deal_value=MEAN).deal_value})
        data = inflow_thresholds(Request.of(priced, runs=RUNS["vectorized"], seed=7), 2 * PER_WEEK)
        level = stats.gamma(a=1 / 0.8**2, scale=0.8**2)
        for q in (AMOUNTS + 0.7 * N * MEAN, AMOUNTS + N * MEAN):
            critical = data.critical_inflows(Quota(revenue=q))
            for per_week in (10.5, PER_WEEK, 20.5):
                n = exact_fixed_arrivals(per_week, HORIZON - 1.0)
                within_proportion(critical <= per_week, float(level.sf((q - AMOUNTS) / (n * MEAN))))
        return
    runs = RUNS[name]
    revenue = simulate(known, runs=runs, seed=7, engine=name).outcomes.revenue
    np.testing.assert_array_equal(revenue, AMOUNTS)
    # With new wins and a listed deal without amount, the drawn values alone are scaled: on
    # the same seed, (R - amounts) is H times the unscaled (R - amounts), replication by replication.
    mixed = wins_scenario(d=D, days=1.0, open_deals=LISTED)
    scaled = simulate(mixed, runs=runs, seed=8, engine=name).outcomes.revenue - AMOUNTS
    unscaled = simulate(mixed.model_copy(update={"deal_value_dispersion": 0.0}), runs=runs, seed=8, engine=name)
    check_law(scaled / (unscaled.outcomes.revenue - AMOUNTS), stats.gamma(a=1 / D**2, scale=D**2))


def test_team_reps_draw_their_own_levels():
    # Three reps, each with its own level: the team's revenue has 3 times one rep's
    # variance, and the reps' revenues are uncorrelated.
    scenario = wins_scenario(team={"reps": 3, "rep_quota": 1.0, "rate_concentration": 20})
    team = simulate_team(scenario, runs=RUNS["vectorized"], seed=11, engine="vectorized")
    total = team.total.outcomes.revenue
    assert (team.total.outcomes.won_deals == 3 * N).all()
    var, n = 3 * revenue_variance(N), len(total)
    within(total.mean(), 3 * N * MEAN, math.sqrt(var / n))
    centred = total - total.mean()
    within(total.var(ddof=1), var, math.sqrt((np.mean(centred**4) - var**2) / n))
    reps = np.stack([rep.outcomes.revenue for rep in team.reps])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert abs(np.corrcoef(reps[a], reps[b])[0, 1]) < Z / math.sqrt(n)


def test_synthetic_export_is_the_engines_replication():
    scenario = make_scenario(inflow={"per_week": 9.5}, deal_value_dispersion=0.5)
    seeds = [np.random.SeedSequence(12, spawn_key=(i,)) for i in range(6)]
    outcomes = run_replications(scenario, seeds)
    plain = scenario.model_copy(update={"deal_value_dispersion": 0.0})
    for i, seed in enumerate(seeds):
        history = deal_history(scenario, seed)
        won = history[history.outcome == "won"]
        assert len(won) == outcomes.won_deals[i]
        assert won.amount.sum() == pytest.approx(outcomes.revenue[i], rel=1e-12)
        # Every deal's amount, won or not, is at the replication's level: one ratio for all.
        ratio = history.amount / deal_history(plain, seed).amount
        np.testing.assert_allclose(ratio, ratio.iloc[0], rtol=1e-12)

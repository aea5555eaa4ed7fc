"""``[inflow] dispersion`` against closed forms, on every engine and on the inflow thresholds.

Each replication draws one inflow level ``G ~ Gamma(1 / d**2, scale=d**2)`` (mean 1, sd
``d``) and its new opportunities arrive at ``per_week * G``. With conversion 1 and 0 days
in the funnel, a replication's wins are its arrivals N, whose expected count is
``m = per_week / 7 * W(H)``:

* Poisson arrivals: N is negative binomial, ``nbinom(n=1/d**2, p=1/(1 + m d**2))``, with
  E N = m and Var N = m + (d m)**2;
* evenly spaced arrivals: N = floor(m G) (the ``k``-th arrives at unit-rate time ``k / G``),
  so P(N >= k) = P(G >= k / m), a Gamma tail, and E N, E N**2 are sums of those tails.

Every check is |estimate - exact| <= Z * SE with a fixed seed: the SE of a mean from the
law's sd, of a sample variance sqrt((mu4 - sigma**4) / n) with the law's fourth central
moment, of a share sqrt(p (1 - p) / n). The engines are the SimPy engine, the vectorised
engine, its queues (``[capacity]`` with reps that never bind) and the inflow thresholds the
magic number reads.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim import simulate
from sim.crm.synthetic import deal_history
from sim.engines.simpy_engine import run_replications
from sim.model.scenario import Quota
from sim.questions.magic_number import solve_magic_number
from sim.runner import Request, critical_inflows, inflow_thresholds, simulate_team
from tests.conftest import BASE_DOCUMENT, RUNS, Z, fixed_stages, make_scenario, within, within_proportion
from tests.engines.test_closed_forms import check_law
from tests.engines.test_vectorized import assert_identical

D = 0.25
PER_WEEK, HORIZON = 14.0, 63.0
M = PER_WEEK / 7 * HORIZON  # expected arrivals: 126
KS = (100, 126, 160)
"""Counts at which P(N >= k) is checked: below, at and above the mean."""
SIMULATED = {"simpy": ("simpy", False), "vectorized": ("vectorized", False), "queues": ("vectorized", True)}
"""Engine name -> (engine asked for, with never-binding reps: the vectorised queues)."""


def arrivals_scenario(d=D, per_week=PER_WEEK, process="poisson", reps=False, quota=1, multipliers=None, **changes):
    """Every new deal is won the day it arrives: wins count arrivals."""
    stages = fixed_stages((1.0, 0.0))
    extra = {}
    if reps:
        stages[0]["per_rep"] = 10**6  # never binds, but the scenario runs on the queues
        extra["capacity"] = {"reps": 1}
    inflow = {"per_week": per_week, "process": process, "dispersion": d}
    if multipliers is not None:
        inflow["multipliers"] = list(multipliers)
    return make_scenario(horizon_days=HORIZON, inflow=inflow, quota={"deals": quota}, stages=stages, **extra, **changes)


def negative_binomial(m: float, d: float = D):
    return stats.nbinom(n=1 / d**2, p=1 / (1 + m * d**2))


def simulated(name: str, scenario, runs=None, seed=1, jobs=1):
    engine, _ = SIMULATED[name]
    runs = runs or RUNS["simpy" if name == "simpy" else "vectorized"]
    result = simulate(scenario, runs=runs, seed=seed, engine=engine, jobs=jobs)
    return result


@pytest.mark.parametrize("name", SIMULATED)
def test_poisson_arrivals_are_negative_binomial(name):
    scenario = arrivals_scenario(reps=SIMULATED[name][1])
    result = simulated(name, scenario)
    if SIMULATED[name][1]:
        assert result.outcomes.served is not None  # the queues ran it
    won = result.outcomes.won_deals
    np.testing.assert_array_equal(won, result.outcomes.entered[:, 0])
    law = negative_binomial(M)
    assert law.mean() == pytest.approx(M) and law.var() == pytest.approx(M + (D * M) ** 2)
    check_law(won, law)
    for k in KS:
        within_proportion(won >= k, float(law.sf(k - 1)))


@pytest.mark.parametrize("name", ["simpy", "vectorized"])
def test_seasonal_inflow_with_dispersion(name):
    # Nine weekly factors: m = per_week / 7 * W(H), W the integral of the factors.
    factors = (0.5, 1.0, 1.5, 2.0, 1.0, 0.5, 1.0, 1.5, 0.0)
    scenario = arrivals_scenario(d=0.4, multipliers=factors)
    m = PER_WEEK * sum(factors)
    check_law(simulated(name, scenario).outcomes.won_deals, negative_binomial(m, 0.4))


def fixed_tail(k: np.ndarray, m: float, d: float = D) -> np.ndarray:
    """P(N >= k) for evenly spaced arrivals: P(G >= k / m)."""
    return stats.gamma(a=1 / d**2, scale=d**2).sf(k / m)


@pytest.mark.parametrize("name", SIMULATED)
def test_evenly_spaced_arrivals_follow_the_level(name):
    scenario = arrivals_scenario(process="fixed", reps=SIMULATED[name][1])
    won = simulated(name, scenario).outcomes.won_deals
    # N = floor(m G): E N = sum_k P(N >= k), E N^2 = sum_k (2k - 1) P(N >= k).
    k = np.arange(1, 40 * int(M))
    tail = fixed_tail(k, M)
    mean = float(tail.sum())
    var = float(((2 * k - 1) * tail).sum()) - mean**2
    assert var == pytest.approx((D * M) ** 2, rel=0.01)  # the level's spread plus a little rounding
    within(won.mean(), mean, math.sqrt(var / len(won)))
    centred = won - won.mean()
    within(won.var(ddof=1), var, math.sqrt((np.mean(centred**4) - var**2) / len(won)))
    for q in KS:
        within_proportion(won >= q, float(fixed_tail(np.array(q), M)))


def test_thresholds_give_the_negative_binomial():
    # The inflow thresholds (the magic number's path): P(hit k deals at per_week) = P(N >= k).
    runs = RUNS["vectorized"]
    data = inflow_thresholds(Request.of(arrivals_scenario(), runs=runs, seed=3), 2 * PER_WEEK)
    for k in KS:
        critical = data.critical_inflows(Quota(deals=k))
        for per_week in (PER_WEEK / 2, PER_WEEK, 1.5 * PER_WEEK):
            within_proportion(critical <= per_week, float(negative_binomial(per_week / 7 * HORIZON).sf(k - 1)))


def base_funnel(name: str, **changes):
    """The base funnel (lognormal and gamma days) for engine ``name``; on the queues with reps that do bind."""
    queues = SIMULATED.get(name, ("", False))[1]
    stages = [{**stage, "per_rep": 2} for stage in BASE_DOCUMENT["stages"]] if queues else None
    extra = {"capacity": {"reps": 3}, "stages": stages} if queues else {}
    return make_scenario(**extra, **changes)


def assert_same_numbers(name: str, a, b) -> None:
    """Scenarios ``a`` and ``b`` give the very same numbers on engine ``name`` (or its thresholds)."""
    if name == "thresholds":
        x, y = (critical_inflows(s, runs=2_000, seed=4, max_per_week=30.0) for s in (a, b))
        np.testing.assert_array_equal(x, y)
        return
    assert_identical(*(simulated(name, s, runs=1_000, seed=4).outcomes for s in (a, b)))


@pytest.mark.parametrize("name", [*SIMULATED, "thresholds"])
def test_dispersion_zero_is_the_steady_inflow_bit_for_bit(name):
    steady = base_funnel(name, inflow={"per_week": 9.5})
    assert_same_numbers(name, steady, base_funnel(name, inflow={"per_week": 9.5, "dispersion": 0}))


@pytest.mark.parametrize("name", SIMULATED)
def test_same_seed_same_numbers_on_one_and_two_jobs(name):
    scenario = make_scenario(inflow={"per_week": 9.5, "dispersion": 0.5})
    if SIMULATED[name][1]:
        scenario = arrivals_scenario(d=0.5, reps=True)
    runs = 1_200 if name == "simpy" else 3_000
    one, again, two = (simulated(name, scenario, runs=runs, seed=5, jobs=j).outcomes for j in (1, 1, 2))
    for field in ("won_deals", "revenue", "weekly_revenue"):
        np.testing.assert_array_equal(getattr(one, field), getattr(again, field))
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    # The level moves the numbers: they are not those of the steady inflow.
    steady = simulated(name, scenario.with_inflow(scenario.inflow.per_week), runs=runs, seed=5)
    assert steady.outcomes.won_deals.var() > 0


def test_thresholds_on_one_and_two_jobs_and_extended():
    scenario = make_scenario(inflow={"per_week": 9.5, "dispersion": 0.5}, quota={"deals": 12})
    one, two = (critical_inflows(scenario, runs=3_000, seed=6, max_per_week=25.0, jobs=j) for j in (1, 2))
    np.testing.assert_array_equal(one, two)
    # Looked at as far as 8 a week and extended to 25: exactly the thresholds simulated that far.
    request = Request.of(scenario, runs=3_000, seed=6)
    extended = inflow_thresholds(request, 8.0).extended(25.0)
    np.testing.assert_array_equal(extended.critical_inflows(scenario.quota), one)


@pytest.mark.parametrize("quota", [5, 12])
def test_critical_inflows_match_brute_force(quota):
    # Real funnel: Beta rates, lognormal and gamma days, dispersion 0.5.
    scenario = make_scenario(
        inflow={"per_week": 9.5, "dispersion": 0.5},
        quota={"deals": quota},
        stages=[
            {
                "name": "A",
                "conversion": {"mean": 0.6, "concentration": 30},
                "duration": {"dist": "lognormal", "mean": 7, "sd": 4},
            },
            {"name": "B", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 10, "sd": 5}},
        ],
    )
    runs = RUNS["vectorized"]
    critical = critical_inflows(scenario, runs=runs, seed=7, max_per_week=60.0)
    for per_week in (4.0, 9.5, 20.0, 60.0):
        # The same replications simulated at that inflow: exactly the same hits (the top
        # of the range included, where replications with G > 1 need the most deals).
        at = simulate(scenario.with_inflow(per_week), runs=runs, seed=7, engine="vectorized")
        np.testing.assert_array_equal(critical <= per_week, at.hit)
        # The SimPy engine, with streams of its own: the same P(hit) within the SE of the difference.
        brute = simulate(scenario.with_inflow(per_week), runs=RUNS["simpy"], seed=8, engine="simpy").hit
        p, q = float(np.mean(critical <= per_week)), float(brute.mean())
        within(p, q, math.sqrt(p * (1 - p) / runs + q * (1 - q) / len(brute)) + 1e-12)


def test_magic_number_meets_the_negative_binomial():
    # With wins = arrivals, P(hit k at x) is the negative binomial tail at m = x / 7 * H.
    k, target, runs = 126, 0.8, RUNS["vectorized"]
    answer = solve_magic_number(arrivals_scenario(quota=k), target, runs=runs, seed=9)
    exact = float(negative_binomial(answer.weekly_opportunities / 7 * HORIZON).sf(k - 1))
    within(exact, target, math.sqrt(target * (1 - target) / runs))
    # More than the Poisson inflow needs: the spread asks for more opportunities.
    steady = solve_magic_number(arrivals_scenario(d=0.0, quota=k), target, runs=runs, seed=9)
    assert answer.weekly_opportunities > steady.weekly_opportunities


@pytest.mark.parametrize("name", ["simpy", "vectorized", "thresholds"])
def test_more_inflow_only_adds_wins(name):
    scenario = make_scenario(inflow={"per_week": 6.0, "dispersion": 0.7}, quota={"deals": 6})
    if name == "thresholds":
        critical = critical_inflows(scenario, runs=4_000, seed=10, max_per_week=40.0)
        hits = [critical <= x for x in (3.0, 6.0, 9.0, 12.0)]
    else:
        runs = 800 if name == "simpy" else 4_000
        results = [simulated(name, scenario.with_inflow(x), runs=runs, seed=10).outcomes for x in (3.0, 6.0, 9.0, 12.0)]
        for low, high in zip(results[:-1], results[1:], strict=True):
            assert (high.won_deals >= low.won_deals).all()
            assert (high.revenue >= low.revenue - 1e-6 * np.abs(low.revenue)).all()
        hits = [r.won_deals >= 6 for r in results]
    for low, high in zip(hits[:-1], hits[1:], strict=True):
        assert (high >= low).all()


def test_team_reps_draw_their_own_levels():
    # Three reps, each N_r negative binomial with its own level: the team total has mean
    # 3 m and variance 3 (m + (d m)^2), less than one shared level's 3 m + (3 d m)^2.
    scenario = arrivals_scenario(team={"reps": 3, "rep_quota": 1, "rate_concentration": 20})
    team = simulate_team(scenario, runs=RUNS["vectorized"], seed=11, engine="vectorized")
    total = team.total.outcomes.won_deals
    law = negative_binomial(M)
    n, one_var, one_kurtosis = len(total), float(law.var()), float(law.stats(moments="k"))
    mean, var = 3 * M, 3 * one_var
    within(total.mean(), mean, math.sqrt(var / n))
    # A sum of 3 i.i.d. centred terms: E S^4 = 3 mu4 + 3 * 3 * 2 sigma^4.
    mu4 = 3 * (one_kurtosis + 3) * one_var**2 + 18 * one_var**2
    within(total.var(ddof=1), var, math.sqrt((mu4 - var**2) / n))
    # Each rep's own levels differ: the reps' counts are not perfectly correlated.
    reps = np.stack([rep.outcomes.won_deals for rep in team.reps])
    assert abs(np.corrcoef(reps)[0, 1]) < Z / math.sqrt(n)


def test_synthetic_export_is_the_engines_replication():
    scenario = make_scenario(inflow={"per_week": 9.5, "dispersion": 0.5})
    seeds = [np.random.SeedSequence(12, spawn_key=(i,)) for i in range(6)]
    outcomes = run_replications(scenario, seeds)
    for i, seed in enumerate(seeds):
        history = deal_history(scenario, seed)
        won = history[history.outcome == "won"]
        assert len(won) == outcomes.won_deals[i]
        assert won.amount.sum() == pytest.approx(outcomes.revenue[i], rel=1e-12)
        assert len(history) == outcomes.entered[i, 0]

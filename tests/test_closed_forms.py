"""The Monte Carlo against closed forms, on both engines.

With Poisson arrivals of rate lambda a day and fixed conversion rates, the deals won by
the horizon H are Poisson with mean lambda * prod(p) * integral_0^H F(H - t) dt, F the
cdf of the total time in the stages (Poisson thinning). Open deals add binomials, and a
Beta rate turns them into Beta-binomials (open deals) or a Beta-Poisson mixture (inflow).

Every check is |estimate - exact| <= Z * SE, SE from the closed form (or, for a
variance, from the sample's fourth moment), with Z = 4: a false alarm about once in
16,000 checks. Seeds are fixed, so a run is reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from sim import simulate
from tests.conftest import ENGINES, make_scenario

Z = 4.0
RUNS = {"vectorized": 20_000, "simpy": 3_000}


def _within(estimate: float, exact: float, se: float) -> None:
    assert abs(estimate - exact) <= Z * se, f"{estimate} vs exact {exact} (SE {se:.4g})"


def _check_poisson(won: np.ndarray, mu: float) -> None:
    n = len(won)
    _within(won.mean(), mu, math.sqrt(mu / n))
    # Sample variance of a Poisson: Var(s^2) ~ (mu4 - sigma^4) / n = (mu + 2 mu^2) / n.
    _within(won.var(ddof=1), mu, math.sqrt((mu + 2 * mu * mu) / n))


def _check_p_hit(hit: np.ndarray, exact: float) -> None:
    _within(hit.mean(), exact, math.sqrt(max(exact * (1 - exact), 1e-12) / len(hit)))


def _fixed_stages(*pairs):
    return [{"name": f"S{i}", "conversion": p, "duration": d} for i, (p, d) in enumerate(pairs)]


@pytest.mark.parametrize("engine", ENGINES)
def test_fixed_durations_give_poisson_thinning(engine):
    horizon, per_week = 60.0, 10.5
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 7},
        deal_value={"dist": "exponential", "mean": 5_000},
        stages=_fixed_stages((0.6, 5.0), (0.45, 12.0)),
    )
    mu = per_week / 7 * 0.6 * 0.45 * (horizon - 17.0)
    result = simulate(scenario, runs=RUNS[engine], seed=1, engine=engine)
    won = result.outcomes.won_deals
    _check_poisson(won, mu)
    _check_p_hit(result.hit, stats.poisson.sf(6, mu))
    # Revenue = sum of won exponential values: mean mu * m, variance 2 mu m^2 (compound Poisson).
    m = 5_000.0
    _within(result.outcomes.revenue.mean(), mu * m, math.sqrt(2 * mu * m * m / len(won)))


@pytest.mark.parametrize("engine", ENGINES)
def test_exponential_stage(engine):
    horizon, per_week, mean = 50.0, 14.0, 9.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 20},
        stages=[{"name": "Only", "conversion": 0.4, "duration": {"dist": "exponential", "mean": mean}}],
    )
    mu = per_week / 7 * 0.4 * (horizon - mean * (1 - math.exp(-horizon / mean)))
    result = simulate(scenario, runs=RUNS[engine], seed=2, engine=engine)
    _check_poisson(result.outcomes.won_deals, mu)
    _check_p_hit(result.hit, stats.poisson.sf(19, mu))


@pytest.mark.parametrize("engine", ENGINES)
def test_two_exponential_stages_give_erlang_timing(engine):
    horizon, per_week, mean = 45.0, 21.0, 6.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 25},
        stages=[
            {"name": "A", "conversion": 0.7, "duration": {"dist": "exponential", "mean": mean}},
            {"name": "B", "conversion": 0.5, "duration": {"dist": "exponential", "mean": mean}},
        ],
    )
    erlang_cdf = stats.gamma(a=2, scale=mean).cdf
    integral, _ = integrate.quad(erlang_cdf, 0, horizon)
    mu = per_week / 7 * 0.35 * integral
    result = simulate(scenario, runs=RUNS[engine], seed=3, engine=engine)
    _check_poisson(result.outcomes.won_deals, mu)
    _check_p_hit(result.hit, stats.poisson.sf(24, mu))
    # Stage A's conversions by the horizon are Poisson too, with the exponential integral.
    mu_a = per_week / 7 * 0.7 * (horizon - mean * (1 - math.exp(-horizon / mean)))
    _check_poisson(result.outcomes.converted[:, 0], mu_a)


@pytest.mark.parametrize("engine", ENGINES)
def test_open_deals_are_binomial(engine):
    stages = _fixed_stages((0.6, 5.0), (0.5, 10.0))
    stages[0]["open"], stages[1]["open"] = 30, 12
    scenario = make_scenario(horizon_days=40, inflow={"per_week": 0}, quota={"deals": 15}, stages=stages)
    # Two independent binomials: 30 deals at 0.6 * 0.5, 12 deals at 0.5.
    pmf = np.convolve(stats.binom.pmf(np.arange(31), 30, 0.3), stats.binom.pmf(np.arange(13), 12, 0.5))
    mean = 30 * 0.3 + 12 * 0.5
    variance = 30 * 0.3 * 0.7 + 12 * 0.25
    result = simulate(scenario, runs=RUNS[engine], seed=4, engine=engine)
    won = result.outcomes.won_deals
    _within(won.mean(), mean, math.sqrt(variance / len(won)))
    _check_p_hit(result.hit, pmf[15:].sum())
    assert (result.outcomes.entered[:, 0] == 30).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_nothing_is_won_when_stages_outlast_the_horizon(engine):
    stages = _fixed_stages((0.9, 20.0), (0.9, 25.0))
    stages[0]["open"] = 10
    scenario = make_scenario(horizon_days=44.9, inflow={"per_week": 30}, stages=stages)
    result = simulate(scenario, runs=500, seed=5, engine=engine)
    assert result.outcomes.won_deals.sum() == 0
    assert result.outcomes.revenue.sum() == 0
    assert result.p_hit == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_beta_rate_on_open_deals_is_beta_binomial(engine):
    mean, concentration, n = 0.4, 8.0, 25
    scenario = make_scenario(
        horizon_days=30,
        inflow={"per_week": 0},
        quota={"deals": 14},
        stages=[
            {"name": "Only", "conversion": {"mean": mean, "concentration": concentration}, "duration": 3, "open": n}
        ],
    )
    law = stats.betabinom(n, mean * concentration, (1 - mean) * concentration)
    result = simulate(scenario, runs=RUNS[engine], seed=6, engine=engine)
    won = result.outcomes.won_deals
    _within(won.mean(), law.mean(), law.std() / math.sqrt(len(won)))
    _check_p_hit(result.hit, law.sf(13))
    # The rate is drawn once per replication: every deal of a run shares it.
    rates = result.outcomes.rates[:, 0]
    _within(rates.mean(), mean, math.sqrt(stats.beta(3.2, 4.8).var() / len(rates)))


@pytest.mark.parametrize("engine", ENGINES)
def test_beta_rate_on_inflow_is_a_beta_poisson_mixture(engine):
    horizon, per_week, mean, concentration = 63.0, 14.0, 0.3, 10.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 30},
        stages=[{"name": "Only", "conversion": {"mean": mean, "concentration": concentration}, "duration": 7.0}],
    )
    scale = per_week / 7 * (horizon - 7.0)  # won | p ~ Poisson(scale * p)
    beta = stats.beta(mean * concentration, (1 - mean) * concentration)
    exact_mean = scale * mean
    exact_var = exact_mean + scale**2 * beta.var()
    p_hit, _ = integrate.quad(lambda p: stats.poisson.sf(29, scale * p) * beta.pdf(p), 0, 1)
    result = simulate(scenario, runs=RUNS[engine], seed=7, engine=engine)
    won = result.outcomes.won_deals.astype(float)
    n = len(won)
    _within(won.mean(), exact_mean, math.sqrt(exact_var / n))
    fourth = ((won - won.mean()) ** 4).mean()
    _within(won.var(ddof=1), exact_var, math.sqrt((fourth - won.var() ** 2) / n))
    _check_p_hit(result.hit, p_hit)


@pytest.mark.parametrize("engine", ENGINES)
def test_fixed_arrivals_are_evenly_spaced(engine):
    scenario = make_scenario(
        horizon_days=71,
        inflow={"per_week": 7.5, "process": "fixed"},
        stages=_fixed_stages((1.0, 0.0)),
    )
    result = simulate(scenario, runs=300, seed=8, engine=engine)
    # Arrivals at k / rate for k = 1, 2, ...: floor(7.5 / 7 * 71) = 76 of them.
    assert (result.outcomes.entered[:, 0] == 76).all()
    assert (result.outcomes.won_deals == 76).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_weekly_revenue_is_cumulative(engine):
    result = simulate(make_scenario(horizon_days=66), runs=400, seed=9, engine=engine)
    weekly = result.outcomes.weekly_revenue
    assert weekly.shape == (400, 10)  # 66 days = 9 weeks and a partial tenth
    assert (np.diff(weekly, axis=1) >= 0).all()
    np.testing.assert_allclose(weekly[:, -1], result.outcomes.revenue, rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_expected_funnel_matches_exact_counts(engine):
    # Stage entries: Poisson(lambda H) arrivals enter stage 0; with fixed durations
    # stage 1 is entered by deals converting stage 0 by the horizon.
    horizon, per_week = 56.0, 7.0
    scenario = make_scenario(
        horizon_days=horizon, inflow={"per_week": per_week}, stages=_fixed_stages((0.5, 6.0), (0.5, 6.0))
    )
    result = simulate(scenario, runs=RUNS[engine], seed=10, engine=engine)
    entered = result.outcomes.entered
    _check_poisson(entered[:, 0], per_week / 7 * horizon)
    _check_poisson(entered[:, 1], per_week / 7 * 0.5 * (horizon - 6))
    summary = result.summary()
    assert summary["stages"][0]["entered"] == pytest.approx(entered[:, 0].mean())

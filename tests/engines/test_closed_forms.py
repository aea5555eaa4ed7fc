"""The Monte Carlo against closed forms, on both engines.

With Poisson arrivals of rate lambda = per_week / 7 a day and fixed conversion rates, the
deals won by the horizon H are Poisson with mean lambda * prod(p) * integral_0^H F(H - t) dt,
F the cdf of the total time in the stages (Poisson thinning). Open deals add binomials,
and a Beta rate turns them into Beta-binomials (open deals) or a Beta-Poisson mixture
(inflow). Revenue is then a compound sum of independent deal values.

Every statistical check is |estimate - exact| <= Z * SE with Z = 4 (a two-sided false
alarm about once in 16,000 checks). The SE of a mean is sd / sqrt(n) with the closed
form's sd; the SE of a sample variance is sqrt((mu4 - sigma^4) / n), with the closed
form's fourth central moment where it is known and the sample's otherwise; the SE of
P(hit) is sqrt(p (1 - p) / n). Seeds are fixed, so every run is reproducible.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, stats

from sim import simulate
from sim.model.average_math import average_math
from tests.conftest import ENGINES, RUNS, fixed_stages, make_scenario, within, within_proportion

ALPHA = 1e-4
"""Significance level of the distribution-shape (KS) checks."""


def check_poisson(counts: np.ndarray, mu: float) -> None:
    """Mean and variance of Poisson(mu) counts: Var(s^2) ~ (mu4 - mu^2) / n = (mu + 2 mu^2) / n."""
    n = len(counts)
    within(counts.mean(), mu, math.sqrt(mu / n))
    within(counts.var(ddof=1), mu, math.sqrt((mu + 2 * mu * mu) / n))


def check_law(counts: np.ndarray, law) -> None:
    """Mean and variance of counts against a frozen scipy law, SEs from its own moments."""
    n = len(counts)
    mean, var, excess = (float(x) for x in law.stats(moments="mvk"))
    within(counts.mean(), mean, math.sqrt(var / n))
    mu4 = (excess + 3) * var * var
    within(counts.var(ddof=1), var, math.sqrt((mu4 - var * var) / n))


def exact_fixed_arrivals(per_week: float, horizon: float) -> int:
    """floor(per_week / 7 * H) in exact rational arithmetic (no rounding of the product)."""
    return math.floor(Fraction(per_week) * Fraction(horizon) / 7)


def exponential_integral(horizon: float, mean: float) -> float:
    """integral_0^H F(H - t) dt for an exponential delay: H - m (1 - exp(-H / m))."""
    return horizon - mean * (1 - math.exp(-horizon / mean))


# --- inflow: Poisson thinning ----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_fixed_durations_give_poisson_thinning(engine):
    # Total time in the stages D = 17 days: integral_0^H F(H - t) dt = H - D.
    horizon, per_week, value_mean = 60.0, 10.5, 5_000.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 7},
        deal_value={"dist": "exponential", "mean": value_mean},
        stages=fixed_stages((0.6, 5.0), (0.45, 12.0)),
    )
    mu = per_week / 7 * 0.6 * 0.45 * (horizon - 17.0)
    result = simulate(scenario, runs=RUNS[engine], seed=1, engine=engine)
    won = result.outcomes.won_deals
    check_poisson(won, mu)
    within_proportion(result.hit, stats.poisson.sf(6, mu))  # P(won >= 7)
    # Revenue is compound Poisson: mean mu * E[V], variance mu * E[V^2] = 2 mu m^2 for an exponential.
    within(result.outcomes.revenue.mean(), mu * value_mean, math.sqrt(2 * mu * value_mean**2 / len(won)))
    # A fixed rate is the same in every replication.
    assert (result.outcomes.rates == [0.6, 0.45]).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_exponential_stage(engine):
    horizon, per_week, mean = 50.0, 14.0, 9.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 20},
        stages=[{"name": "Only", "conversion": 0.4, "duration": {"dist": "exponential", "mean": mean}}],
    )
    mu = per_week / 7 * 0.4 * exponential_integral(horizon, mean)
    result = simulate(scenario, runs=RUNS[engine], seed=2, engine=engine)
    check_poisson(result.outcomes.won_deals, mu)
    within_proportion(result.hit, stats.poisson.sf(19, mu))
    # Arrivals themselves: Poisson(lambda H) enter the stage.
    check_poisson(result.outcomes.entered[:, 0], per_week / 7 * horizon)


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
    # Time in the funnel is Erlang-2 (gamma with shape 2): integrate its cdf numerically.
    erlang_cdf = stats.gamma(a=2, scale=mean).cdf
    integral, _ = integrate.quad(erlang_cdf, 0, horizon)
    mu = per_week / 7 * 0.7 * 0.5 * integral
    result = simulate(scenario, runs=RUNS[engine], seed=3, engine=engine)
    check_poisson(result.outcomes.won_deals, mu)
    within_proportion(result.hit, stats.poisson.sf(24, mu))
    # Stage A's conversions by the horizon are Poisson too, with the exponential integral,
    # and each of them enters stage B.
    mu_a = per_week / 7 * 0.7 * exponential_integral(horizon, mean)
    check_poisson(result.outcomes.converted[:, 0], mu_a)
    np.testing.assert_array_equal(result.outcomes.entered[:, 1], result.outcomes.converted[:, 0])


@pytest.mark.parametrize("engine", ENGINES)
def test_revenue_quota_on_fixed_values(engine):
    # With a fixed deal value v, revenue >= R exactly when won >= ceil(R / v).
    horizon, per_week, value, quota = 84.0, 7.0, 12_500.0, 160_000.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"revenue": quota},
        deal_value=value,
        stages=fixed_stages((0.5, 4.0), (0.4, 10.0)),
    )
    mu = per_week / 7 * 0.2 * (horizon - 14.0)
    result = simulate(scenario, runs=RUNS[engine], seed=12, engine=engine)
    np.testing.assert_allclose(result.outcomes.revenue, value * result.outcomes.won_deals, rtol=1e-12)
    within_proportion(result.hit, stats.poisson.sf(math.ceil(quota / value) - 1, mu))


@pytest.mark.parametrize("engine", ENGINES)
def test_revenue_is_a_compound_poisson_sum(engine):
    # Lognormal values (mean m, sd s): E[revenue] = mu m, Var[revenue] = mu (s^2 + m^2).
    horizon, per_week, m, s = 70.0, 14.0, 20_000.0, 12_000.0
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        deal_value={"dist": "lognormal", "mean": m, "sd": s},
        stages=fixed_stages((0.3, 9.0)),
    )
    mu = per_week / 7 * 0.3 * (horizon - 9.0)
    result = simulate(scenario, runs=RUNS[engine], seed=13, engine=engine)
    revenue = result.outcomes.revenue
    within(revenue.mean(), mu * m, math.sqrt(mu * (s * s + m * m) / len(revenue)))
    # Given the wins, the values are i.i.d. lognormal: revenue / won has mean m.
    wins = result.outcomes.won_deals
    per_deal = revenue[wins > 0].sum() / wins.sum()
    within(per_deal, m, s / math.sqrt(wins.sum()))


# --- open deals: binomials ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_open_deals_alone_are_binomial(engine):
    # 25 open deals at the start of the first stage, durations 5 + 10 days <= 40: won ~ Bin(25, 0.6 * 0.5).
    n, p, quota = 25, 0.6 * 0.5, 10
    scenario = make_scenario(
        horizon_days=40,
        inflow={"per_week": 0},
        quota={"deals": quota},
        stages=fixed_stages((0.6, 5.0), (0.5, 10.0), open_deals=(n,)),
    )
    law = stats.binom(n, p)
    result = simulate(scenario, runs=RUNS[engine], seed=4, engine=engine)
    check_law(result.outcomes.won_deals, law)
    within_proportion(result.hit, law.sf(quota - 1))  # P(won >= q)
    assert (result.outcomes.entered[:, 0] == n).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_open_deals_in_two_stages_add_binomials(engine):
    # 30 deals in S0 won with 0.6 * 0.5, 12 in S1 won with 0.5: independent binomials.
    scenario = make_scenario(
        horizon_days=40,
        inflow={"per_week": 0},
        quota={"deals": 15},
        stages=fixed_stages((0.6, 5.0), (0.5, 10.0), open_deals=(30, 12)),
    )
    pmf = np.convolve(stats.binom.pmf(np.arange(31), 30, 0.3), stats.binom.pmf(np.arange(13), 12, 0.5))
    mean = 30 * 0.3 + 12 * 0.5
    variance = 30 * 0.3 * 0.7 + 12 * 0.5 * 0.5
    result = simulate(scenario, runs=RUNS[engine], seed=5, engine=engine)
    won = result.outcomes.won_deals
    within(won.mean(), mean, math.sqrt(variance / len(won)))
    within_proportion(result.hit, pmf[15:].sum())
    # Stage S1 is entered by its 12 open deals plus S0's conversions.
    np.testing.assert_array_equal(result.outcomes.entered[:, 1], 12 + result.outcomes.converted[:, 0])


@pytest.mark.parametrize("engine", ENGINES)
def test_open_deals_and_inflow_add_a_binomial_to_a_poisson(engine):
    horizon, per_week, n = 49.0, 10.5, 20
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        quota={"deals": 16},
        stages=fixed_stages((0.5, 3.0), (0.6, 4.0), open_deals=(n,)),
    )
    mu = per_week / 7 * 0.3 * (horizon - 7.0)
    pmf = np.convolve(stats.binom.pmf(np.arange(n + 1), n, 0.3), stats.poisson.pmf(np.arange(200), mu))
    result = simulate(scenario, runs=RUNS[engine], seed=14, engine=engine)
    won = result.outcomes.won_deals
    within(won.mean(), n * 0.3 + mu, math.sqrt((n * 0.3 * 0.7 + mu) / len(won)))
    within_proportion(result.hit, pmf[16:].sum())


@pytest.mark.parametrize("engine", ENGINES)
def test_nothing_is_won_when_stages_outlast_the_horizon(engine):
    # 20 + 25 = 45 days in the funnel, a 44.9-day horizon: neither open nor new deals close.
    scenario = make_scenario(
        horizon_days=44.9, inflow={"per_week": 30}, stages=fixed_stages((0.9, 20.0), (0.9, 25.0), open_deals=(10,))
    )
    result = simulate(scenario, runs=500 if engine == "vectorized" else 100, seed=6, engine=engine)
    assert result.outcomes.won_deals.sum() == 0
    assert result.outcomes.revenue.sum() == 0
    assert (result.outcomes.weekly_revenue == 0).all()
    assert result.p_hit == 0
    # The first stage is still worked: 90% of the open deals convert out of it by day 20.
    assert (result.outcomes.converted[:, 0] > 0).any()


# --- Beta rates: mixtures ----------------------------------------------------------------


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
    a, b = mean * concentration, (1 - mean) * concentration
    law = stats.betabinom(n, a, b)
    result = simulate(scenario, runs=RUNS[engine], seed=7, engine=engine)
    # Mean and variance: the variance is inflated by the shared rate, n p (1-p) (a + b + n) / (a + b + 1).
    check_law(result.outcomes.won_deals, law)
    within_proportion(result.hit, law.sf(13))
    # The rate is drawn once per replication, Beta(a, b): a KS test at alpha = 1e-4.
    rates = result.outcomes.rates[:, 0]
    assert stats.kstest(rates, stats.beta(a, b).cdf).pvalue > ALPHA


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
    # P(hit) = integral of P(Poisson(scale p) >= 30) over the Beta.
    p_hit, _ = integrate.quad(lambda p: stats.poisson.sf(29, scale * p) * beta.pdf(p), 0, 1)
    result = simulate(scenario, runs=RUNS[engine], seed=8, engine=engine)
    won = result.outcomes.won_deals.astype(float)
    n = len(won)
    within(won.mean(), exact_mean, math.sqrt(exact_var / n))
    fourth = ((won - won.mean()) ** 4).mean()  # the sample's fourth central moment
    within(won.var(ddof=1), exact_var, math.sqrt((fourth - won.var() ** 2) / n))
    within_proportion(result.hit, p_hit)


# --- deterministic arrivals and timing ---------------------------------------------------


FIXED_INFLOW = {
    "7.5 a week, 71 days": (7.5, 71.0),
    "2 a week, 10 days": (2.0, 10.0),
    # rate * H a whole number: the last arrival falls exactly on the horizon and counts.
    "3 a week, 7 weeks": (3.0, 49.0),
    "16 a week, 13 weeks": (16.0, 91.0),
    "17 a week, 3 weeks": (17.0, 21.0),
    "17 a week, 6 weeks": (17.0, 42.0),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("per_week", "horizon_days"), list(FIXED_INFLOW.values()), ids=list(FIXED_INFLOW))
def test_fixed_arrivals_are_evenly_spaced(engine, per_week, horizon_days):
    scenario = make_scenario(
        horizon_days=horizon_days,
        inflow={"per_week": per_week, "process": "fixed"},
        stages=fixed_stages((1.0, 0.0)),
    )
    result = simulate(scenario, runs=300, seed=9, engine=engine)
    # Arrivals at k / rate for k = 1, 2, ... up to the horizon (inclusive): floor(rate * H)
    # of them, computed exactly (in rationals) from the numbers the scenario holds.
    count = exact_fixed_arrivals(per_week, horizon_days)
    assert (result.outcomes.entered[:, 0] == count).all(), f"{set(result.outcomes.entered[:, 0])} != {count}"
    assert (result.outcomes.won_deals == count).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_wins_at_the_horizon_count_and_weeks_are_cumulative(engine):
    # One arrival a day (days 1..10), 3 days in a single stage that always converts:
    # wins at days 4..13, of which 4..10 (day 10 is the horizon, inclusive) count.
    # Week 1 ends at day 7 (wins at 4, 5, 6, 7), week 2 at the horizon.
    def scenario(quota):
        return make_scenario(
            horizon_days=10,
            quota=quota,
            inflow={"per_week": 7, "process": "fixed"},
            deal_value=1_000,
            stages=fixed_stages((1.0, 3.0)),
        )

    result = simulate(scenario({"deals": 7}), runs=50, seed=0, engine=engine)
    o = result.outcomes
    assert (o.entered[:, 0] == 10).all() and (o.won_deals == 7).all()
    assert (o.weekly_revenue == [4_000.0, 7_000.0]).all()
    # Quota is hit when the result is >= the target: exactly at it counts, one more does not.
    assert result.p_hit == 1
    assert simulate(scenario({"deals": 8}), runs=50, seed=0, engine=engine).p_hit == 0
    assert simulate(scenario({"revenue": 7_000}), runs=50, seed=0, engine=engine).p_hit == 1
    assert simulate(scenario({"revenue": 7_000.5}), runs=50, seed=0, engine=engine).p_hit == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_weekly_revenue_is_cumulative(engine):
    result = simulate(make_scenario(horizon_days=66), runs=400, seed=10, engine=engine)
    weekly = result.outcomes.weekly_revenue
    assert weekly.shape == (400, 10)  # 66 days = 9 weeks and a partial tenth
    assert (weekly >= 0).all()
    assert (np.diff(weekly, axis=1) >= 0).all()
    np.testing.assert_allclose(weekly[:, -1], result.outcomes.revenue, rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_expected_funnel_matches_exact_counts(engine):
    # Stage entries: Poisson(lambda H) arrivals enter stage 0; with fixed durations
    # stage 1 is entered by deals converting out of stage 0 by the horizon.
    horizon, per_week = 56.0, 7.0
    scenario = make_scenario(
        horizon_days=horizon, inflow={"per_week": per_week}, stages=fixed_stages((0.5, 6.0), (0.5, 6.0))
    )
    result = simulate(scenario, runs=RUNS[engine], seed=11, engine=engine)
    entered = result.outcomes.entered
    check_poisson(entered[:, 0], per_week / 7 * horizon)
    check_poisson(entered[:, 1], per_week / 7 * 0.5 * (horizon - 6))
    summary = result.summary()
    assert summary["stages"][0]["entered"] == pytest.approx(entered[:, 0].mean())
    assert summary["stages"][1]["converted"] == pytest.approx(result.outcomes.converted[:, 1].mean())


def test_average_math_is_the_exact_mean_when_durations_are_fixed():
    # With fixed durations and rates, "every quantity at its mean" is the exact expectation:
    # lambda * prod(p) * (H - D) from the inflow, plus n * (rates still ahead) for open deals.
    horizon, per_week = 60.0, 10.5
    scenario = make_scenario(
        horizon_days=horizon,
        inflow={"per_week": per_week},
        deal_value={"dist": "gamma", "mean": 8_000, "sd": 3_000},
        quota={"revenue": 200_000},
        stages=fixed_stages((0.6, 5.0), (0.45, 12.0), open_deals=(10, 4)),
    )
    won = per_week / 7 * 0.6 * 0.45 * (horizon - 17.0) + 10 * 0.6 * 0.45 + 4 * 0.45
    plan = average_math(scenario)
    assert plan["won_deals"] == pytest.approx(won, rel=1e-12)
    assert plan["revenue"] == pytest.approx(won * 8_000, rel=1e-12)
    assert plan["hit"] == (won * 8_000 >= 200_000)
    # Entering the first stage: lambda H new deals plus the 10 open ones.
    assert plan["stages"][0]["entered"] == pytest.approx(per_week / 7 * horizon + 10)

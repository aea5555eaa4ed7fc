"""Fits to CRM history: censored maximum likelihood against closed forms and known truths.

Synthetic data come from known distributions with fixed seeds; recovered means are
checked within ``Z`` standard errors, the SE taken from a closed form (exponential: mean /
sqrt(events); gamma: the MLE of the mean is the sample mean) or from the Fisher
information (lognormal: expected information when complete, observed information of the
censored log-likelihood otherwise).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.crm.fitting import (
    ZERO_DURATION_DAYS,
    aalen_johansen,
    fit_duration,
    fit_outcomes,
    fit_rate,
    kaplan_meier,
    misfit_limit,
    seasonality,
    weekly_inflow,
)
from sim.model.distributions import Empirical, Exponential, Gamma, Lognormal
from sim.model.funnel import p_won_given_age
from sim.model.scenario import BetaRate
from tests.conftest import Z, within

N = 2_000


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of log X for a lognormal with the given mean and sd."""
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def lognormal_mean_se_observed(complete: np.ndarray, censored: np.ndarray, mu: float, sigma: float) -> float:
    """SE of the fitted mean exp(mu + sigma^2/2) from the observed information of the censored fit.

    The Hessian of the censored log-likelihood in (mu, sigma) is taken by central
    differences at the estimate; the delta method carries its inverse to the mean.
    """

    def log_l(theta):
        m, s = theta
        return np.sum(stats.norm.logpdf(np.log(complete), m, s) - np.log(complete)) + np.sum(
            stats.norm.logsf(np.log(censored), m, s)
        )

    theta, h = np.array([mu, sigma]), 1e-4
    hessian = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hessian[i, j] = (
                log_l(theta + ei + ej) - log_l(theta + ei - ej) - log_l(theta - ei + ej) + log_l(theta - ei - ej)
            ) / (4 * h * h)
    covariance = np.linalg.inv(-hessian)
    mean = math.exp(mu + sigma**2 / 2)
    gradient = np.array([mean, mean * sigma])
    return float(math.sqrt(gradient @ covariance @ gradient))


def censor_at(durations: np.ndarray, rng: np.random.Generator, days: float) -> tuple[np.ndarray, np.ndarray]:
    """Deals created uniformly over ``days`` before an as-of date: (closed durations, open ages)."""
    created = rng.uniform(0, days, durations.size)
    age = days - created
    closed = durations <= age
    return durations[closed], age[~closed]


# --- complete data -------------------------------------------------------------------


def test_lognormal_recovered_and_chosen():
    mean, sd = 30.0, 24.0
    mu, sigma = lognormal_params(mean, sd)
    x = np.random.default_rng(11).lognormal(mu, sigma, N)
    fit = fit_duration(x)
    assert fit.family == "lognormal"
    assert isinstance(fit.model, Lognormal)
    # Expected Fisher information: Var(mu^) = s^2/n, Var(s^) = s^2/(2n), then the delta method.
    se = mean * sigma * math.sqrt((1 + sigma**2 / 2) / N)
    within(fit.model.mean(), mean, se)
    assert fit.n_complete == N and fit.n_censored == 0
    assert fit.warnings == []


def test_gamma_recovered_and_chosen():
    mean, sd = 20.0, 12.0
    shape = (mean / sd) ** 2
    x = np.random.default_rng(12).gamma(shape, mean / shape, N)
    fit = fit_duration(x)
    assert fit.family == "gamma"
    assert isinstance(fit.model, Gamma)
    # The gamma MLE of the mean is the sample mean (the scale's score equation).
    within(fit.model.mean(), mean, sd / math.sqrt(N))


def test_exponential_not_beaten_beyond_chance_by_gamma():
    # The exponential is a gamma with shape 1, so AIC picks gamma about 16% of the time
    # on exponential data (P(chi2_1 > 2)); the sound check is the likelihood-ratio bound.
    mean = 15.0
    x = np.random.default_rng(13).exponential(mean, N)
    fit = fit_duration(x)
    table = fit.table.set_index("family")
    lr = 2 * (table.loc["gamma", "log_likelihood"] - table.loc["exponential", "log_likelihood"])
    assert lr <= stats.chi2.ppf(1 - 1 / 16_000, df=1)
    assert fit.family in ("exponential", "gamma")
    assert table.loc["lognormal", "aic"] > table.loc["exponential", "aic"] + 10
    exponential_mean = table.loc["exponential", "mean"]
    within(exponential_mean, mean, mean / math.sqrt(N))


def test_table_has_every_family_sorted_by_aic():
    x = np.random.default_rng(14).lognormal(2, 0.5, 200)
    fit = fit_duration(x)
    assert set(fit.table["family"]) == {"lognormal", "gamma", "exponential"}
    assert list(fit.table["aic"]) == sorted(fit.table["aic"])
    k = fit.table["family"].map({"lognormal": 2, "gamma": 2, "exponential": 1})
    assert np.allclose(fit.table["aic"], 2 * k - 2 * fit.table["log_likelihood"])
    assert fit.table.loc[0, "family"] == fit.family


def test_ks_distance_is_plain_ks_statistic_without_censoring():
    x = np.random.default_rng(15).gamma(3, 5, 300)
    fit = fit_duration(x)
    assert fit.ks_distance == pytest.approx(stats.kstest(x, fit.model.cdf).statistic, rel=1e-9)


def test_zero_durations_stand_for_half_a_day():
    x = np.concatenate([np.zeros(20), np.random.default_rng(16).lognormal(1, 1, 200)])
    fit = fit_duration(x)
    assert math.isfinite(fit.table.loc[0, "log_likelihood"])
    lognormal = fit.table.set_index("family").loc["lognormal"]
    frozen = stats.lognorm(lognormal["parameters"]["s"], scale=lognormal["parameters"]["scale"])
    expected = np.sum(frozen.logpdf(np.where(x == 0, ZERO_DURATION_DAYS, x)))
    assert lognormal["log_likelihood"] == pytest.approx(expected, rel=1e-9)


# --- censoring -----------------------------------------------------------------------


def test_exponential_censored_mean_is_total_time_over_events():
    mean = 40.0
    rng = np.random.default_rng(21)
    complete, open_ages = censor_at(rng.exponential(mean, 3_000), rng, days=120)
    fit = fit_duration(complete, open_ages, families=("exponential",))
    assert isinstance(fit.model, Exponential)
    assert fit.model.mean() == pytest.approx((complete.sum() + open_ages.sum()) / complete.size)
    within(fit.model.mean(), mean, mean / math.sqrt(complete.size))


def test_censoring_removes_the_short_bias_of_closed_deals():
    mean, sd = 60.0, 60.0
    mu, sigma = lognormal_params(mean, sd)
    rng = np.random.default_rng(22)
    complete, open_ages = censor_at(rng.lognormal(mu, sigma, 4_000), rng, days=365)
    assert open_ages.size > 400  # a real share of deals is still open

    naive = fit_duration(complete, families=("lognormal",))
    naive_mu, naive_sigma = math.log(naive.table.loc[0, "parameters"]["scale"]), naive.table.loc[0, "parameters"]["s"]
    naive_se = lognormal_mean_se_observed(complete, np.array([]), naive_mu, naive_sigma)
    assert (mean - naive.model.mean()) / naive_se > 2 * Z, "closed deals alone should look much shorter"

    fit = fit_duration(complete, open_ages, families=("lognormal",))
    fit_mu, fit_sigma = math.log(fit.table.loc[0, "parameters"]["scale"]), fit.table.loc[0, "parameters"]["s"]
    within(fit.model.mean(), mean, lognormal_mean_se_observed(complete, open_ages, fit_mu, fit_sigma))
    assert fit.n_censored == open_ages.size
    assert "censored" in fit.note


def test_most_deals_open_warns():
    rng = np.random.default_rng(23)
    complete, open_ages = censor_at(rng.exponential(200, 500), rng, days=60)
    fit = fit_duration(complete, open_ages)
    assert any("still open" in w for w in fit.warnings)


# --- fallbacks and errors ------------------------------------------------------------


def test_few_durations_fall_back_to_empirical():
    fit = fit_duration([3, 0, 10, 4], censored=[50, 60])
    assert isinstance(fit.model, Empirical)
    assert fit.family == "empirical"
    assert sorted(fit.model.values) == [0, 3, 4, 10]
    assert "fewer than 5" in fit.note
    assert any("only 4 complete durations" in w for w in fit.warnings)
    assert fit.table.empty


def sup_distance_to_kaplan_meier(model, complete, censored) -> float:
    """sup |F_model - F_KM| over the data's range, by brute force on every jump and just below it.

    The Kaplan-Meier estimate is scipy's, so this checks :func:`fit_duration`'s figure
    against an independent computation.
    """
    km = stats.ecdf(stats.CensoredData(uncensored=complete, right=censored)).cdf if len(censored) else None
    jumps = np.unique(np.concatenate([complete, np.asarray(getattr(model, "values", ()), dtype=float)]))
    grid = np.unique(np.concatenate([jumps, np.nextafter(jumps, -np.inf)]))
    grid = grid[grid <= complete.max()]
    observed = (
        km.evaluate(grid) if km is not None else np.searchsorted(np.sort(complete), grid, "right") / complete.size
    )
    return float(np.max(np.abs(np.asarray(model.cdf(grid), dtype=float) - observed)))


@pytest.mark.parametrize("censored", [[], [6.0, 50.0, 60.0]])
def test_ks_distance_of_the_empirical_fallback(censored):
    # The resampled values are the data, so without censoring the distance is 0: the
    # fallback's jumps sit where the data's do (the zero included), and are no misfit.
    complete = np.array([3.0, 0.0, 4.0, 4.0])
    fit = fit_duration(complete, censored=censored or None)
    assert fit.family == "empirical"
    expected = sup_distance_to_kaplan_meier(fit.model, complete, np.asarray(censored))
    assert fit.ks_distance == pytest.approx(expected, abs=1e-12)
    assert (fit.ks_distance == 0) == (not censored)


def test_no_families_falls_back_to_empirical():
    fit = fit_duration(np.arange(1, 50), families=())
    assert isinstance(fit.model, Empirical)
    assert "no parametric family" in fit.note


def test_thin_data_warns_but_fits():
    fit = fit_duration(np.random.default_rng(24).lognormal(2, 0.5, 12))
    assert fit.family != "empirical"
    assert any("fewer than 30" in w for w in fit.warnings)


@pytest.mark.parametrize(
    ("durations", "censored", "families", "message"),
    [
        ([], None, ("lognormal",), "no complete durations"),
        ([1, -2, 3], None, ("lognormal",), "negative"),
        ([1, np.nan], None, ("lognormal",), "finite"),
        ([1, 2], [-1], ("lognormal",), "censored"),
        ([1, 2], None, ("weibull",), "unknown"),
    ],
)
def test_bad_input_is_refused(durations, censored, families, message):
    with pytest.raises(ValueError, match=message):
        fit_duration(durations, censored, families=families)


# --- rates, inflow, seasonality ------------------------------------------------------


def test_fit_rate_is_uniform_prior_posterior():
    rate = fit_rate(3, 7)
    assert isinstance(rate, BetaRate)
    assert rate.mean() == pytest.approx(4 / 12)
    assert rate.concentration == 12
    assert rate.beta_parameters() == pytest.approx((4, 8))
    assert fit_rate(0, 5).mean() == pytest.approx(1 / 7)  # never won, still not "never"


@pytest.mark.parametrize(("converted", "lost", "message"), [(0, 0, "= 0"), (-1, 3, "converted"), (2, 1.5, "lost")])
def test_fit_rate_refuses(converted, lost, message):
    with pytest.raises(ValueError, match=message):
        fit_rate(converted, lost)


def test_weekly_inflow_counts_the_half_open_window():
    as_of = pd.Timestamp("2024-06-30 12:00")
    start = as_of - pd.Timedelta(weeks=13)
    created = [
        start,  # excluded: the window is (start, as_of]
        start + pd.Timedelta(seconds=1),
        as_of - pd.Timedelta(days=40),
        as_of,
        as_of + pd.Timedelta(seconds=1),  # after the export
        pd.NaT,
        start - pd.Timedelta(days=100),
    ]
    assert weekly_inflow(created, as_of) == pytest.approx(3 / 13)
    assert weekly_inflow(pd.Series(created), as_of, window_weeks=52) == pytest.approx(5 / 52)
    with pytest.raises(ValueError, match="window_weeks"):
        weekly_inflow(created, as_of, window_weeks=0)


RATE_BY_MONTH = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 2, 9: 2, 10: 1, 11: 1, 12: 4}


def daily_arrivals(first: str, last: str) -> pd.Series:
    """RATE_BY_MONTH[month] deals created at noon every day from first to last."""
    days = pd.date_range(first, last, freq="D") + pd.Timedelta(hours=12)
    return pd.Series(np.repeat(days, [RATE_BY_MONTH[d.month] for d in days]))


def test_seasonality_recovers_a_known_pattern():
    as_of = pd.Timestamp("2024-03-15")
    created = daily_arrivals("2021-03-01", "2024-03-15")
    multipliers = seasonality(created, as_of, horizon_weeks=13)
    mean = np.mean(list(RATE_BY_MONTH.values()))
    # Horizon 2024-03-15 .. 2024-06-14 touches March to June.
    assert multipliers == pytest.approx([RATE_BY_MONTH[m] / mean for m in (3, 4, 5, 6)])


def test_seasonality_needs_enough_years():
    as_of = pd.Timestamp("2024-03-15")
    created = daily_arrivals("2022-09-10", "2024-03-15")
    assert seasonality(created, as_of, horizon_weeks=4) is None
    mean = np.mean(list(RATE_BY_MONTH.values()))
    # One whole year (March 2023 to February 2024); 4 weeks from March 15 reach April.
    assert seasonality(created, as_of, horizon_weeks=4, min_years=1) == pytest.approx([2 / mean, 2 / mean])
    assert seasonality([], as_of, horizon_weeks=4) is None


def test_seasonality_starts_after_a_gap_in_the_history():
    # A year and a half of deals, plus two left open since 2020: the empty months between
    # are a gap in the history, not a quiet season, and one year is all there is.
    as_of = pd.Timestamp("2024-03-15")
    recent = daily_arrivals("2022-09-10", "2024-03-15")
    created = pd.concat([pd.Series(pd.to_datetime(["2020-02-01", "2020-06-20"])), recent], ignore_index=True)
    assert seasonality(created, as_of, horizon_weeks=4) is None
    assert seasonality(created, as_of, horizon_weeks=4, min_years=1) == seasonality(
        recent, as_of, horizon_weeks=4, min_years=1
    )


# --- open deals of a given age -------------------------------------------------------


def test_p_won_given_age_closed_form_with_exponentials():
    p, won_mean, lost_mean = 0.3, 20.0, 60.0
    won = Exponential(dist="exponential", mean=won_mean)
    lost = Exponential(dist="exponential", mean=lost_mean)
    ages = np.array([0.0, 10.0, 45.0, 200.0])
    exact = p * np.exp(-ages / won_mean) / (p * np.exp(-ages / won_mean) + (1 - p) * np.exp(-ages / lost_mean))
    assert p_won_given_age(p, won, lost, ages) == pytest.approx(exact, rel=1e-12)
    assert p_won_given_age(p, won, lost, 0.0) == pytest.approx(p)
    assert p_won_given_age(BetaRate(mean=p, concentration=10).mean(), won, lost, 10.0) == pytest.approx(exact[1])


def test_p_won_given_age_without_lost_model_is_p():
    won = Lognormal(dist="lognormal", mean=30, sd=20)
    assert p_won_given_age(0.25, won, None, [0, 10, 100]) == pytest.approx([0.25] * 3)


def test_zombie_deal_is_not_going_to_be_won():
    won = Empirical(dist="empirical", values=(5, 10, 20))
    lost = Empirical(dist="empirical", values=(8, 30, 40))
    assert p_won_given_age(0.5, won, lost, 1_000) == 0.0  # both survivals are exactly 0
    exponential = Exponential(dist="exponential", mean=20)
    assert p_won_given_age(0.5, exponential, exponential, 1e6) == 0.0  # both underflow
    assert p_won_given_age(0.5, won, None, 1_000) == 0.0


# --- weights and the joint fit ---------------------------------------------------------


def test_unit_weights_match_scipy_censored_fit():
    rng = np.random.default_rng(31)
    complete, open_ages = censor_at(rng.lognormal(3, 0.7, 1_500), rng, days=60)
    ours = fit_duration(complete, open_ages, families=("lognormal", "gamma"), weights=np.ones(open_ages.size))
    for family, dist in (("lognormal", stats.lognorm), ("gamma", stats.gamma)):
        shape, _, scale = dist.fit(stats.CensoredData(uncensored=complete, right=open_ages), floc=0)
        params = ours.table.set_index("family").loc[family, "parameters"]
        assert params["scale"] == pytest.approx(scale, rel=1e-3)
        assert params["s" if family == "lognormal" else "a"] == pytest.approx(shape, rel=1e-3)


def test_kaplan_meier_matches_scipy_and_zero_weights_drop_ages():
    rng = np.random.default_rng(32)
    complete, open_ages = censor_at(rng.exponential(30, 400), rng, days=50)
    times, cdf = kaplan_meier(complete, open_ages)
    reference = stats.ecdf(stats.CensoredData(uncensored=complete, right=open_ages)).cdf
    assert np.allclose(cdf, reference.evaluate(times))
    _, without = kaplan_meier(complete)
    assert np.allclose(kaplan_meier(complete, open_ages, np.zeros(open_ages.size))[1], without)


def test_fit_outcomes_without_open_deals_is_fit_rate():
    rng = np.random.default_rng(33)
    fit = fit_outcomes(rng.lognormal(3, 0.5, 300), rng.lognormal(2.5, 0.6, 700))
    assert fit.rate.mean() == pytest.approx(fit_rate(300, 700).mean())
    assert fit.rate.concentration == pytest.approx(fit_rate(300, 700).concentration)
    assert fit.converged


def test_fit_outcomes_needs_a_won_deal():
    with pytest.raises(ValueError, match="no deal has been won"):
        fit_outcomes([], [3, 4], [5])


def test_a_family_that_does_not_fit_is_warned_about():
    # Lognormal durations with a long tail: an exponential cannot follow them. The
    # warning's limit is the KS 5% point, so a family that is right stays quiet.
    rng = np.random.default_rng(21)
    durations = rng.lognormal(3.0, 1.2, 400)
    wrong = fit_duration(durations, families=("exponential",))
    assert not wrong.fits_well and wrong.ks_distance > misfit_limit(400)
    assert any("exponential fit is poor" in w for w in wrong.warnings)
    right = fit_duration(durations, families=("lognormal",))
    assert right.fits_well and not any("poor" in w for w in right.warnings)
    assert misfit_limit(400) == pytest.approx(1.36 / 20) and misfit_limit(10**6) == 0.05


def test_weighted_complete_durations_count_as_often_as_their_weight():
    # A weight of 2 is the same as the value seen twice: in Kaplan-Meier, in the
    # censored exponential's closed form, and in the lognormal's likelihood.
    rng = np.random.default_rng(22)
    complete, ages = rng.exponential(30, 50), rng.uniform(0, 60, 20)
    twice = rng.uniform(size=50) < 0.5
    weights = np.where(twice, 2.0, 1.0)
    doubled = np.concatenate([complete, complete[twice]])
    times, cdf = kaplan_meier(complete, ages, complete_weights=weights)
    times_d, cdf_d = kaplan_meier(doubled, ages)
    np.testing.assert_allclose(times, times_d)
    np.testing.assert_allclose(cdf, cdf_d)
    weighted = fit_duration(complete, ages, ("exponential",), complete_weights=weights)
    assert weighted.model.mean() == pytest.approx((np.dot(weights, complete) + ages.sum()) / weights.sum())
    for family in ("exponential", "lognormal"):
        a = fit_duration(complete, ages, (family,), complete_weights=weights).model
        b = fit_duration(doubled, ages, (family,)).model
        assert a.mean() == pytest.approx(b.mean(), rel=1e-5) and a.std() == pytest.approx(b.std(), rel=1e-5)


def test_recency_weighted_outcomes_follow_the_recent_rate():
    # Old deals won 40%, recent ones 20%: weights that favour the recent move the rate.
    won, lost = np.full(60, 10.0), np.full(140, 12.0)
    old = np.r_[np.arange(60) < 40, np.arange(140) < 60]  # 40 of 100 old deals won, 20 of 100 recent
    weights = np.where(old, 0.1, 1.0)
    fit = fit_outcomes(won, lost, won_weights=weights[:60], lost_weights=weights[60:])
    assert fit.p == pytest.approx((40 * 0.1 + 20) / (100 * 0.1 + 100))


def test_aalen_johansen_without_open_deals_is_the_share_closed_by_each_time():
    won, lost = np.array([3.0, 5.0, 5.0, 9.0]), np.array([1.0, 5.0, 12.0])
    times, won_incidence, lost_incidence = aalen_johansen(won, lost)
    assert times.tolist() == [1.0, 3.0, 5.0, 9.0, 12.0]
    np.testing.assert_allclose(won_incidence, np.array([0, 1, 3, 4, 4]) / 7)
    np.testing.assert_allclose(lost_incidence, np.array([1, 1, 2, 2, 3]) / 7)


def test_aalen_johansen_with_one_outcome_is_kaplan_meier():
    rng = np.random.default_rng(23)
    won, ages = rng.exponential(20, 80), rng.uniform(0, 40, 30)
    times, won_incidence, lost_incidence = aalen_johansen(won, [], ages)
    km_times, km_cdf = kaplan_meier(won, ages)
    np.testing.assert_allclose(times, km_times)
    np.testing.assert_allclose(won_incidence, km_cdf)
    assert not lost_incidence.any()


def test_no_family_fits_so_auto_takes_durations_from_the_data():
    # Won deals close either within days or after months (two kinds of buyer); no single
    # family follows that. Auto turns to Aalen-Johansen, whose rate and mean duration
    # are the truth within Z SE (binomial, and the sample mean's).
    rng = np.random.default_rng(24)
    n, p = 1_500, 0.3
    is_won = rng.uniform(size=n) < p
    fast = rng.uniform(size=n) < 0.5
    days = np.where(is_won, np.where(fast, rng.gamma(4, 1.5, n), rng.gamma(30, 4.0, n)), rng.exponential(30, n))
    created = rng.uniform(0, 400, n)
    closed = created + days <= 400
    ages = (400 - created)[~closed]
    parametric = fit_outcomes(days[is_won & closed], days[~is_won & closed], ages)
    assert not parametric.won.fits_well
    fit = fit_outcomes(days[is_won & closed], days[~is_won & closed], ages, durations="auto")
    assert fit.won.family == "aalen-johansen" and fit.won.fits_well
    within(fit.p, p, math.sqrt(p * (1 - p) / n))
    true_mean = 0.5 * 6.0 + 0.5 * 120.0
    true_sd = math.sqrt(0.5 * (6.0 + 36.0) + 0.5 * (14_400.0 + 480.0) - true_mean**2)
    within(fit.won.model.mean(), true_mean, true_sd / math.sqrt((is_won & closed).sum()))
    with pytest.raises(ValueError, match="durations: must be one of"):
        fit_outcomes([1.0], [2.0], durations="spline")


def test_deals_that_never_close_are_found_and_do_not_stretch_the_durations():
    # A tenth of the lost deals are never closed in the CRM: they stay open for ever. The
    # three-outcome fit finds their share (binomial SE), keeps the won durations' mean
    # (the sample mean's SE) and gives the old ones no chance of a win.
    rng = np.random.default_rng(25)
    n, p, stale = 4_000, 0.25, 0.1
    created = rng.uniform(0, 700, n)
    won_mask = rng.uniform(size=n) < p
    never = ~won_mask & (rng.uniform(size=n) < stale)
    days = np.where(won_mask, rng.lognormal(3.6, 0.6, n), rng.lognormal(3.2, 0.7, n))
    age = 700 - created
    closed = ~never & (days <= age)
    won, lost = days[won_mask & closed], days[~won_mask & closed]
    ages = age[~closed]
    fit = fit_outcomes(won, lost, ages, never_closed=True)
    z = (1 - p) * stale
    within(fit.never_closed, z, math.sqrt(z * (1 - z) / n))
    within(fit.p, p, math.sqrt(p * (1 - p) / n))
    true_mean = math.exp(3.6 + 0.18)
    within(fit.won.model.mean(), true_mean, true_mean * math.sqrt(math.expm1(0.36) / won.size))
    assert fit.weights[ages > 300].max() < 0.01
    # Without the third outcome the old open deals are read as slow wins: the rate is far too high.
    plain = fit_outcomes(won, lost, ages)
    assert plain.never_closed == 0 and plain.p - p > Z * math.sqrt(p * (1 - p) / n)
    assert plain.weights[ages > 300].min() > 0.5

"""Period-to-period spread measured on histories whose truth is known.

Between-cohort variance is checked against the truth within ``Z`` standard errors of
a sample variance (``sqrt(2 / (k - 1))`` times the variance each cohort's rate shows,
binomial noise included: the method-of-moments SE, which the maximum-likelihood fit
does no worse than). The inflow's measured dispersion is checked against its closed
form for a constant Poisson rate (only the window's own estimation error, ``1 / (rate W)``)
and for Gamma-mixed quarters, with an SE from the number of non-overlapping origins.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from sim.crm.spread import (
    GAP_WEEKS,
    MIN_COHORTS,
    inflow_dispersion,
    rate_spread,
    recency_weights,
    slope_variance,
    value_spread,
    weekly_counts,
)
from tests.conftest import Z

AS_OF = pd.Timestamp("2025-01-01")


def test_recency_weights_halve_every_half_life():
    dates = pd.DatetimeIndex([AS_OF, AS_OF - pd.Timedelta(weeks=13), AS_OF - pd.Timedelta(weeks=26)])
    assert recency_weights(dates, AS_OF, 13) == pytest.approx([1.0, 0.5, 0.25])
    assert recency_weights(dates, AS_OF, None).tolist() == [1.0, 1.0, 1.0]


def cohorts(rates: np.ndarray, size: int, rng: np.random.Generator):
    """Deals of cohorts with the given true rates: (labels, successes, trials)."""
    wins = rng.binomial(size, rates)
    labels = np.repeat(np.arange(rates.size), size)
    successes = np.concatenate([np.r_[np.ones(w), np.zeros(size - w)] for w in wins])
    return labels, successes, np.ones(labels.size)


@pytest.mark.parametrize("concentration", [20.0, 80.0])
def test_the_spread_between_cohorts_is_the_true_one(concentration):
    rng = np.random.default_rng(5)
    k, size, mean = 120, 60, 0.3
    rates = rng.beta(mean * concentration, (1 - mean) * concentration, k)
    labels, successes, trials = cohorts(rates, size, rng)
    got = rate_spread(successes.mean(), successes.size, labels, successes, trials)
    true_between = mean * (1 - mean) / (concentration + 1)
    seen = true_between + mean * (1 - mean) / size  # what each cohort's rate varies by
    se = math.sqrt(2 / (k - 1)) * seen
    assert abs(got.between_sd**2 - true_between) < Z * se
    # The coming period's rate: the spread plus the mean's own uncertainty.
    assert got.rate.mean() == pytest.approx(successes.mean())
    variance = got.rate.mean() * (1 - got.rate.mean()) / (got.rate.concentration + 1)
    expected = got.between_sd**2 * (1 + 1 / k) + got.rate.mean() * (1 - got.rate.mean()) / successes.size
    assert variance == pytest.approx(expected, rel=1e-9)


def test_cohorts_that_agree_leave_only_the_sampling_error():
    rng = np.random.default_rng(6)
    labels, successes, trials = cohorts(np.full(60, 0.25), 80, rng)
    got = rate_spread(successes.mean(), successes.size, labels, successes, trials)
    seen = 0.25 * 0.75 / 80
    assert got.between_sd**2 < Z * math.sqrt(2 / 59) * seen


def test_too_few_cohorts_fall_back_to_sampling_with_a_warning():
    rng = np.random.default_rng(7)
    labels, successes, trials = cohorts(np.array([0.2, 0.4, 0.3]), 50, rng)
    got = rate_spread(0.3, 150, labels, successes, trials)
    assert got.cohorts == 3 < MIN_COHORTS
    assert got.rate.concentration == 150 and "cannot be measured" in got.warnings[0]


def test_open_deals_count_only_for_what_is_known_of_them():
    # Two cohorts of open deals that know nothing yet (known = 0) add no cohort.
    rng = np.random.default_rng(8)
    labels, successes, trials = cohorts(np.full(5, 0.3), 40, rng)
    fresh = np.array([10, 10, 11, 11])
    got = rate_spread(0.3, 200, np.r_[labels, fresh], np.r_[successes, np.zeros(4)], np.r_[trials, np.zeros(4)])
    assert got.cohorts == 5


def trending_cohorts(slope: float, k: int, size: int, rng: np.random.Generator):
    """Monthly cohorts whose logit rate moves ``slope`` a week, ending at 0.2 four weeks before now."""
    weeks_ago = 4.0 + 4.0 * np.arange(k)[::-1]
    rates = special.expit(special.logit(0.2) - slope * (weeks_ago - 4.0))
    labels, successes, trials = cohorts(rates, size, rng)
    return labels, successes, trials, np.repeat(weeks_ago, size), rates


def test_a_trend_between_cohorts_is_carried_to_now():
    # 24 monthly cohorts whose logit rate falls 0.01 a week: the pooled rate speaks for the
    # middle of the history, the trend carries it to now (true rate at 0 weeks ago).
    rng = np.random.default_rng(10)
    slope, k, size = -0.01, 24, 400
    labels, successes, trials, weeks_ago, _ = trending_cohorts(slope, k, size, rng)
    got = rate_spread(successes.mean(), successes.size, labels, successes, trials, weeks_ago=weeks_ago)
    truth = special.expit(special.logit(0.2) + slope * 4.0)
    sd = math.sqrt(got.rate.mean() * (1 - got.rate.mean()) / (got.rate.concentration + 1))
    assert abs(got.rate.mean() - truth) < Z * sd
    assert got.rate.mean() < successes.mean() - Z * sd  # the pooled rate was wrong by more than the band
    assert "trend" in got.note


def test_a_slope_within_its_noise_is_not_carried():
    # Cohorts that agree: the fitted slope is noise, shrunk to nothing or next to nothing.
    rng = np.random.default_rng(11)
    labels, successes, trials, weeks_ago, _ = trending_cohorts(0.0, 24, 100, rng)
    got = rate_spread(successes.mean(), successes.size, labels, successes, trials, weeks_ago=weeks_ago)
    sampling_sd = math.sqrt(0.2 * 0.8 / successes.size)
    assert abs(got.rate.mean() - successes.mean()) < Z * sampling_sd


def test_the_slopes_variance_is_weighted_least_squares_for_binomial_cohorts():
    # With no spread between cohorts (a huge concentration) the Fisher information of a
    # logit-linear mean is that of weighted least squares: 1 / sum(info (t - mean t)^2).
    weeks = np.array([-40.0, -30.0, -20.0, -10.0])
    trials, weights = np.array([100.0, 200.0, 150.0, 50.0]), np.array([0.25, 0.5, 0.75, 1.0])
    level, slope = special.logit(0.3), 0.0
    info = weights * trials * 0.3 * 0.7
    centre = np.dot(info, weeks) / info.sum()
    expected = 1 / np.dot(info, (weeks - centre) ** 2)
    assert slope_variance(level, slope, 1e12, trials, weights, weeks) == pytest.approx(expected, rel=1e-6)


def weekly_history(levels: np.ndarray, weeks_per_level: int, rng: np.random.Generator) -> pd.Series:
    """Creation dates of deals whose weekly inflow is Poisson at each period's level, ending at AS_OF."""
    per_week = np.repeat(levels, weeks_per_level)
    counts = rng.poisson(per_week)
    starts = AS_OF - pd.to_timedelta((per_week.size - np.arange(per_week.size)) * 7, unit="D")
    offsets = np.concatenate([rng.uniform(0, 7, c) for c in counts])
    return pd.Series(np.repeat(starts, counts) + pd.to_timedelta(offsets, unit="D"))


def test_a_steady_poisson_inflow_has_only_the_windows_own_error():
    rng = np.random.default_rng(9)
    rate, window, horizon = 30.0, 13, 13
    created = weekly_history(np.full(400, rate), 1, rng)
    got = inflow_dispersion(created, AS_OF, window, 7 * horizon)
    truth = 1 / (rate * window)
    # Errors of origins closer than window + horizon weeks overlap: count only the independent ones.
    independent = got.origins / (window + horizon)
    se = math.sqrt(2) * (1 / (rate * horizon) + truth) / math.sqrt(independent)
    assert abs(got.dispersion**2 - truth) < Z * se


def test_quarters_that_swing_show_their_swing():
    # Quarters' levels are independent Gamma(cv). An origin a share ``a`` into a quarter
    # has a window over ``a`` of this quarter and ``1 - a`` of the last, and a horizon
    # over ``1 - a`` of this one and ``a`` of the next: the error's variance is
    # cv^2 ((1 - 2a)^2 + a^2 + (1 - a)^2), whose mean over uniform ``a`` is cv^2, plus the
    # window's own Poisson error.
    rng = np.random.default_rng(10)
    rate, cv, quarters = 30.0, 0.35, 80
    levels = rate * rng.gamma(1 / cv**2, cv**2, quarters)
    created = weekly_history(levels, 13, rng)
    got = inflow_dispersion(created, AS_OF, 13, 91)
    truth = cv**2 + 1 / (rate * 13)
    independent = got.origins / 26
    assert abs(got.dispersion**2 - truth) < Z * math.sqrt(2 / independent) * truth


def test_a_short_history_reads_weekly_counts_and_says_so():
    rng = np.random.default_rng(11)
    created = weekly_history(np.full(15, 20.0), 1, rng)
    got = inflow_dispersion(created, AS_OF, 13, 91)
    assert got.origins == 0 and "weekly counts alone" in got.warnings[0]
    assert got.dispersion**2 >= 1 / (20 * 15) * 0.5


def test_weekly_counts_start_after_the_last_gap():
    created = pd.Series(
        [AS_OF - pd.Timedelta(weeks=100)]  # a stray ancient deal
        + [AS_OF - pd.Timedelta(days=d) for d in (1, 2, 9, 15, 20)]
    )
    counts = weekly_counts(created, AS_OF)
    assert counts.tolist() == [2.0, 1.0, 2.0] and GAP_WEEKS <= 97


def test_value_spread_sees_months_whose_mean_moves():
    rng = np.random.default_rng(12)
    months = np.repeat(np.arange(24), 40)
    steady = rng.lognormal(10, 0.5, months.size)
    assert value_spread(steady, months) < 0.05
    level = np.exp(rng.normal(0, 0.3, 24))[months]
    assert value_spread(steady * level, months) > 0.15

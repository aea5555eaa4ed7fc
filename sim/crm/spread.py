"""How much a funnel's numbers move from period to period, measured on the history.

A forecast whose rates carry only sampling error (thousands of deals, so a Beta with a
concentration in the thousands) and whose inflow is Poisson around one rate has bands
far narrower than what happens: real win rates differ between monthly cohorts and the
inflow swings between quarters. The uncertainty a forecast needs is that of the *next*
period, so it is measured from how periods of the history differed from each other:

* :func:`rate_spread`: a Beta for the rate of the coming period, from the beta-binomial
  spread of monthly creation cohorts around their trend (open deals count in part, by
  how much their outcome is already known; a trend is carried to now only as far as it
  stands out of its noise);
* :func:`inflow_dispersion`: the relative error of a trailing-window inflow forecast at
  past origins of the history, beyond the Poisson noise the engines add themselves;
* :func:`value_spread`: the relative spread of the mean won amount between months;
* :func:`recency_weights`: exponential weights by age, so recent history counts more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from sim.model.scenario import MAX_DISPERSION, BetaRate
from sim.words import counted

MIN_COHORTS = 4
"""Cohorts (with at least :data:`MIN_COHORT_DEALS` resolved deals) needed to measure a rate's spread."""
MIN_COHORT_DEALS = 5.0
MAX_CONCENTRATION = 1e6
"""A beta-binomial concentration this large is a binomial: no spread between cohorts."""
MIN_PAST_ORIGINS = 4
"""Past forecast origins needed to measure the inflow's spread from its errors."""
GAP_WEEKS = 4
"""Weeks in a row without a new deal that mark a gap: the history starts after the last one."""


def recency_weights(
    dates: pd.Series | pd.DatetimeIndex, as_of: pd.Timestamp, half_life_weeks: float | None
) -> np.ndarray:
    """Weights ``0.5 ** (age / half_life)`` of events on ``dates``, as of ``as_of``.

    Parameters
    ----------
    dates : pandas.Series or DatetimeIndex
        When each event happened (at or before ``as_of``).
    as_of : pandas.Timestamp
        Now: an event today weighs 1.
    half_life_weeks : float or None
        Weeks after which an event counts half; None weighs every event 1.

    Returns
    -------
    ndarray
        One weight in (0, 1] per date.
    """
    if half_life_weeks is None:
        return np.ones(len(dates))
    age_weeks = np.maximum((as_of - pd.DatetimeIndex(dates)) / pd.Timedelta(weeks=1), 0.0)
    return np.exp2(-np.asarray(age_weeks, dtype=float) / half_life_weeks)


@dataclass(frozen=True)
class RateSpread:
    """The rate of the coming period: its Beta and how it was measured.

    Attributes
    ----------
    rate : BetaRate
        Mean: the (recency-weighted) pooled rate; variance: the spread between cohorts
        plus the uncertainty of the mean.
    cohorts : int
        Cohorts that carried enough resolved deals to count.
    between_sd : float
        The sd of the rate between cohorts (0 when the cohorts agree within their
        binomial noise).
    note : str
        How the Beta was made, in words.
    warnings : tuple of str
    """

    rate: BetaRate
    cohorts: int
    between_sd: float
    note: str
    warnings: tuple[str, ...] = ()


def _beta_binomial_fit(
    successes: np.ndarray, trials: np.ndarray, weights: np.ndarray, weeks: np.ndarray
) -> tuple[float, float, float]:
    """Maximum-likelihood beta-binomial whose mean moves on the logit scale with time.

    Each cohort's log-likelihood ``ln B(x + a, n - x + b) - ln B(a, b)`` counts with its
    weight; its mean is ``expit(level + slope * weeks)`` and the concentration is
    searched in ``[1e-2, MAX_CONCENTRATION]``. Fractional counts are allowed.

    Returns
    -------
    (level, slope, concentration)
        ``level`` on the logit scale at ``weeks = 0``, ``slope`` per week.
    """

    def negative(theta: np.ndarray) -> float:
        mean = special.expit(theta[0] + theta[1] * weeks)
        concentration = math.exp(theta[2])
        a, b = mean * concentration, (1 - mean) * concentration
        log_l = special.betaln(successes + a, trials - successes + b) - special.betaln(a, b)
        return -float(np.dot(weights, log_l))

    pooled = float(np.dot(weights, successes) / np.dot(weights, trials))
    pooled = min(max(pooled, 1e-6), 1 - 1e-6)
    starts = [np.array([special.logit(pooled), 0.0, math.log(c)]) for c in (3.0, 30.0, 300.0, 3000.0)]
    bounds = [(-20.0, 20.0), (-0.1, 0.1), (math.log(1e-2), math.log(MAX_CONCENTRATION))]
    best = min(
        (optimize.minimize(negative, start, method="L-BFGS-B", bounds=bounds) for start in starts),
        key=lambda found: found.fun,
    )
    return float(best.x[0]), float(best.x[1]), float(math.exp(best.x[2]))


def slope_variance(
    level: float, slope: float, concentration: float, trials: np.ndarray, weights: np.ndarray, weeks: np.ndarray
) -> float:
    """The variance of the fitted slope: the inverse Fisher information of a logit-linear mean.

    A cohort of ``n`` trials tells about its logit mean ``w n m (1 - m)`` divided by the
    beta-binomial's inflation ``1 + (n - 1) / (concentration + 1)``.
    """
    mean = special.expit(level + slope * weeks)
    info = weights * trials * mean * (1 - mean) / (1 + np.maximum(trials - 1, 0) / (concentration + 1))
    fisher = np.array([[info.sum(), np.dot(info, weeks)], [np.dot(info, weeks), np.dot(info, weeks**2)]])
    determinant = float(np.linalg.det(fisher))
    return float(fisher[0, 0] / determinant) if determinant > 0 else math.inf


def rate_spread(
    pooled_mean: float,
    pooled_trials: float,
    cohort: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    weights: np.ndarray | None = None,
    weeks_ago: np.ndarray | None = None,
) -> RateSpread:
    """A Beta for the coming period's rate, from the spread and the trend between cohorts.

    Parameters
    ----------
    pooled_mean : float
        The rate fitted on all deals (the joint, censoring-aware fit): the Beta's mean
        before any trend.
    pooled_trials : float
        The number of closed deals that would carry the pooled fit's information (its
        sampling uncertainty is ``mean (1 - mean) / pooled_trials``).
    cohort : ndarray
        Each deal's cohort label (any hashable; a month).
    successes : ndarray
        Each deal's chance of a win: 1 for a won deal, 0 for a lost one, ``w`` for an
        open one (its chance given its age).
    trials : ndarray
        How much each deal tells about its cohort's rate, in closed deals: 1 for a closed
        deal, ``k`` in [0, 1] for an open one (its information relative to a closed deal's).
        A cohort's rate is the mean of its deals' chances (closed deals alone would be
        biased to the quick outcome: in a young cohort the deals closed so far are the
        quick ones), observed with the information of the sum of its trials.
    weights : ndarray, optional
        Each cohort's weight is the mean of its deals' (recency) weights; default 1.
    weeks_ago : ndarray, optional
        How long before the forecast each deal entered, in weeks. Given, the cohorts'
        rates may follow a trend (logit-linear in time), carried from the time the
        pooled rate speaks for (the trials' weighted mean) to the forecast's start.

    Returns
    -------
    RateSpread
        Variance ``tau^2 (1 + 1 / k) + m (1 - m) / N + (d m (1 - m))^2 v`` where ``tau^2``
        is the beta-binomial's between-cohort variance around its trend, ``k`` the
        cohorts' effective number, ``N`` the pooled trials, ``d`` the weeks the trend is
        carried and ``v`` the slope's variance. The slope is shrunk toward none by
        ``1 - v / slope^2`` (empirical Bayes: a slope within its noise is not
        extrapolated). Fewer than :data:`MIN_COHORTS` cohorts with
        :data:`MIN_COHORT_DEALS` resolved deals: the sampling Beta, with a warning.
    """
    mean = min(max(float(pooled_mean), 1e-6), 1 - 1e-6)
    frame = pd.DataFrame(
        {
            "cohort": cohort,
            "chance": successes,
            "n": trials,
            "w": np.ones(len(cohort)) if weights is None else weights,
            "weeks": np.zeros(len(cohort)) if weeks_ago is None else -np.asarray(weeks_ago, dtype=float),
        }
    )
    sums = frame.groupby("cohort", sort=True).agg(
        chance=("chance", "mean"), n=("n", "sum"), w=("w", "mean"), weeks=("weeks", "mean")
    )
    sums["x"] = sums["chance"] * sums["n"]
    used = sums[sums["n"] >= MIN_COHORT_DEALS]
    sampling = mean * (1 - mean) / max(pooled_trials, 1.0)
    if len(used) < MIN_COHORTS:
        rate = BetaRate(mean=mean, concentration=max(pooled_trials, 1.0))
        return RateSpread(
            rate=rate,
            cohorts=len(used),
            between_sd=float("nan"),
            note=f"only {counted(len(used), 'monthly cohort')} with {MIN_COHORT_DEALS:g}+ resolved deals: "
            "sampling error only",
            warnings=(
                f"only {counted(len(used), 'monthly cohort')} with enough resolved deals (fewer than {MIN_COHORTS}): "
                "how much "
                "the rate moves between months cannot be measured, so the band is too narrow if it does",
            ),
        )
    w, n, weeks = (used[k].to_numpy() for k in ("w", "n", "weeks"))
    if weeks_ago is None:
        weeks = np.zeros(len(used))
    level, slope, concentration = _beta_binomial_fit(used["x"].to_numpy(), n, w, weeks)
    carried, trend_variance = 0.0, 0.0
    if weeks_ago is not None:
        variance = slope_variance(level, slope, concentration, n, w, weeks)
        kept = max(1.0 - variance / slope**2, 0.0) if slope else 0.0
        distance = -float(np.dot(w * n, weeks) / np.dot(w, n))
        carried = slope * kept * distance
        mean = float(special.expit(special.logit(mean) + carried))
        trend_variance = (distance * mean * (1 - mean)) ** 2 * variance * kept
    between = mean * (1 - mean) / (concentration + 1)
    effective_cohorts = float(w.sum() ** 2 / np.dot(w, w))
    variance = between * (1 + 1 / effective_cohorts) + sampling + trend_variance
    variance = min(variance, 0.999 * mean * (1 - mean))
    rate = BetaRate(mean=mean, concentration=mean * (1 - mean) / variance - 1)
    trend = f"; a trend of {carried:+.2f} on the logit scale carried to now" if carried else ""
    return RateSpread(
        rate=rate,
        cohorts=len(used),
        between_sd=math.sqrt(between),
        note=(
            f"spread between {counted(len(used), 'monthly cohort')} (sd {math.sqrt(between):.3f}) plus the mean's own "
            f"uncertainty{trend}"
        ),
    )


@dataclass(frozen=True)
class InflowSpread:
    """The inflow's relative spread for the coming period, and how it was measured.

    Attributes
    ----------
    dispersion : float
        The sd of the period's inflow level relative to the forecast rate (the
        scenario's ``inflow.dispersion``).
    origins : int
        Past origins whose forecast error was measured (0: measured from weekly counts).
    note : str
    warnings : tuple of str
    """

    dispersion: float
    origins: int
    note: str
    warnings: tuple[str, ...] = ()


def weekly_counts(created: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    """Deals created in each whole week ending at ``as_of``, oldest first.

    The history starts after the last gap of :data:`GAP_WEEKS` empty weeks: CRM exports
    keep a few deals open for years, long before the rest of the data starts.
    """
    weeks_back = np.floor((as_of - pd.DatetimeIndex(created)) / pd.Timedelta(weeks=1))
    weeks_back = np.asarray(weeks_back, dtype=float)
    weeks_back = weeks_back[weeks_back >= 0].astype(int)
    if weeks_back.size == 0:
        return np.zeros(0)
    counts = np.bincount(weeks_back.max() - weeks_back, minlength=weeks_back.max() + 1).astype(float)
    empty = np.concatenate([[0], (counts == 0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(empty))
    runs = edges.reshape(-1, 2)  # [start, stop) of each run of empty weeks
    gaps = runs[runs[:, 1] - runs[:, 0] >= GAP_WEEKS]
    return counts[gaps[-1, 1] :] if len(gaps) else counts


def inflow_dispersion(
    created: pd.Series,
    as_of: pd.Timestamp,
    window_weeks: float,
    horizon_days: float,
    half_life_weeks: float | None = None,
) -> InflowSpread:
    """The relative error of the trailing-window inflow forecast, measured at past origins.

    At each past week ``t`` whose window and horizon both lie inside the history, the
    forecast ``rate_t`` (deals created in the ``window_weeks`` before ``t``, per week) is
    set against the count in the horizon after ``t``. The relative error
    ``e_t = count / (rate_t H) - 1`` has variance ``d^2 + 1 / (rate_t H)``: the level's
    own change (with the forecast's estimation error), and the Poisson noise the engines
    add. So ``d^2 = mean(e_t^2 - 1 / (rate_t H))``, weighted by the recency of ``t``.

    Parameters
    ----------
    created : pandas.Series
        Creation dates of the deals known on ``as_of``.
    as_of : pandas.Timestamp
    window_weeks : float
        The trailing window of the inflow forecast.
    horizon_days : float
        The forecast's horizon.
    half_life_weeks : float, optional
        Recency weighting of past origins.

    Returns
    -------
    InflowSpread
        With fewer than :data:`MIN_PAST_ORIGINS` past origins, ``d^2`` comes from the
        weekly counts alone, as if weeks were independent: their variance beyond Poisson
        over the window and the horizon, plus the window's own Poisson error; a warning
        says it may be low.
    """
    counts = weekly_counts(created, as_of)
    window, horizon = max(1, round(window_weeks)), max(1, round(horizon_days / 7))
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    ends = np.arange(window, counts.size - horizon + 1)  # t: weeks before it are the window
    rates = (cumulative[ends] - cumulative[ends - window]) / window
    future = cumulative[ends + horizon] - cumulative[ends]
    usable = rates > 0
    ends, rates, future = ends[usable], rates[usable], future[usable]
    if ends.size >= MIN_PAST_ORIGINS:
        age_weeks = counts.size - ends
        weights = np.ones(ends.size) if half_life_weeks is None else np.exp2(-age_weeks / half_life_weeks)
        expected = rates * horizon
        excess = (future / expected - 1) ** 2 - 1 / expected
        d2 = max(float(np.dot(weights, excess) / weights.sum()), 0.0)
        note = f"error of the {window}-week inflow forecast at {counted(ends.size, 'past week')}"
        return _capped(d2, int(ends.size), note)
    recent = counts[-window:]
    mean = float(recent.mean()) if recent.size else 0.0
    if mean <= 0:
        return InflowSpread(0.0, 0, "no deal created in the window", ("no deal was created in the window",))
    excess = max(float(recent.var(ddof=1)) - mean, 0.0) / mean**2 if recent.size > 1 else 0.0
    d2 = excess / recent.size + excess / horizon + 1 / (mean * recent.size)
    return _capped(
        d2,
        0,
        f"weekly counts of the last {counted(recent.size, 'week')} (too little history to measure past forecasts)",
        f"the history is shorter than the {window}-week window plus the {horizon}-week horizon, so how much the "
        "inflow moves between periods is read from weekly counts alone: the band may be too narrow",
    )


def _capped(d2: float, origins: int, note: str, *warnings: str) -> InflowSpread:
    """The spread of a squared dispersion, held to :data:`MAX_DISPERSION` with a warning when beyond."""
    dispersion = math.sqrt(d2)
    if dispersion > MAX_DISPERSION:
        warnings += (
            f"the inflow swung by {dispersion:.0%} between past periods; taken as {MAX_DISPERSION:.0%}, the most a "
            "scenario allows",
        )
        dispersion = MAX_DISPERSION
    return InflowSpread(dispersion=dispersion, origins=origins, note=note, warnings=warnings)


def value_spread(amounts: np.ndarray, months: np.ndarray) -> float:
    """The sd of the monthly mean won amount, relative to the mean, beyond sampling noise.

    Method of moments: the weighted variance of the monthly means minus each month's
    sampling variance ``s^2 / n``, over the squared overall mean; 0 when the months agree
    within their noise or fewer than :data:`MIN_COHORTS` months have two or more wins.
    """
    frame = pd.DataFrame({"month": months, "amount": amounts})
    groups = frame.groupby("month")["amount"].agg(["mean", "var", "count"])
    groups = groups[groups["count"] >= 2]
    if len(groups) < MIN_COHORTS:
        return 0.0
    overall = float(np.average(groups["mean"], weights=groups["count"]))
    if overall <= 0:
        return 0.0
    spread = float(groups["mean"].var(ddof=1)) - float((groups["var"] / groups["count"]).mean())
    return math.sqrt(max(spread, 0.0)) / overall

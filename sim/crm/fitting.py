"""Fitting scenario parameters to CRM history, with open deals counted as censored.

A CRM export is a snapshot: deals still open have not finished, so their durations are
only known to be *at least* their age. Fitting durations to closed deals alone keeps the
quick ones and drops the slow ones, and underestimates how long deals take. Here every
duration fit is a maximum-likelihood fit to right-censored data: a closed deal
contributes its density, an open one its survival probability at its age. That is the
likelihood ``scipy.stats`` maximises for ``CensoredData``, written out here because an
open deal may count only in part (the EM weights of :func:`fit_outcomes`); with unit
weights the fits agree with scipy's (tests/crm/test_fitting.py).

The functions return :mod:`sim.model.distributions` and :class:`sim.model.scenario.BetaRate`
models, ready for a scenario, plus the numbers a user needs to judge the fit (per-family
log-likelihood and AIC, a goodness-of-fit distance, notes and warnings on thin data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from sim.model.distributions import DistributionBase, Empirical, Exponential, Gamma, Lognormal
from sim.model.funnel import p_won_given_age
from sim.model.scenario import BetaRate
from sim.words import counted, human

ZERO_DURATION_DAYS = 0.5
"""Stand-in for a duration of 0 days in the likelihood.

Dates in CRM exports are usually whole days, so a deal closed the day it was created
took somewhere between 0 and 1 day; half a day is the middle of that interval. The
lognormal and gamma densities are 0 (log density -inf) at 0, so 0 itself cannot be used.
"""
MIN_COMPLETE_FOR_FIT = 5
"""Fewer complete durations than this: no parametric fit, resample the observed ones."""
THIN_DATA = 30
"""Fewer complete durations than this earns a warning that the fit is uncertain."""
MAX_EMPIRICAL_VALUES = 100_000
"""Most values :class:`sim.model.distributions.Empirical` takes."""
DURATION_FAMILIES = ("lognormal", "gamma", "exponential")
KS_CRITICAL = 1.36
"""The Kolmogorov-Smirnov statistic's 5% point, times sqrt(n), for large n."""
MIN_MISFIT = 0.05
"""A KS distance below this is no misfit worth a warning, however many values there are."""
DURATION_CHOICES = ("auto", "parametric", "nonparametric")
"""How :func:`fit_outcomes` models durations: a family, the data themselves, or the data when no family fits."""
NONPARAMETRIC_POINTS = 400
POLISH_EVERY = 20
"""EM iterations between direct searches of the joint likelihood (:func:`_polish`)."""
NEVER_CLOSED_START = 0.1
"""Share of the open deals first taken to never close (EM then finds the share)."""
"""Quantiles that stand for a non-parametric duration distribution."""
_PARAMETERS = {"lognormal": 2, "gamma": 2, "exponential": 1}


@dataclass
class DurationFit:
    """The result of :func:`fit_duration`.

    Attributes
    ----------
    model : Distribution
        The chosen distribution (Lognormal, Gamma, Exponential, or Empirical as fallback).
    family : str
        Its family name.
    table : pandas.DataFrame
        One row per parametric family fitted, best AIC first: ``family``,
        ``parameters`` (scipy's, as a dict), ``mean``, ``sd``, ``log_likelihood``,
        ``aic``, ``ks_distance`` (as :attr:`ks_distance`, for that family).
    ks_distance : float
        Goodness of fit of the chosen model: the largest vertical distance between its
        cdf and the Kaplan-Meier estimate of the cdf, over the range of the data. With
        nothing censored Kaplan-Meier is the empirical cdf and this is the plain
        Kolmogorov-Smirnov statistic. No p-value is given: the parameters were fitted
        to the same data, so the usual KS p-value would be too kind.
    n_complete, n_censored : int
        Closed (complete) durations and open (censored) ages used.
    note : str
        How the model was chosen, in words.
    warnings : list of str
        Reasons to distrust the fit (thin data, most deals still open, failed families,
        a poor fit).
    fits_well : bool
        Whether :attr:`ks_distance` is within the goodness-of-fit limit,
        ``max(KS_CRITICAL / sqrt(n_complete), MIN_MISFIT)``.
    """

    model: Any
    family: str
    table: pd.DataFrame
    ks_distance: float
    n_complete: int
    n_censored: int
    note: str = ""
    warnings: list[str] = field(default_factory=list)
    thetas: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fits_well: bool = True


def misfit_limit(n_complete: int) -> float:
    """The KS distance above which a fitted family is said to fit poorly.

    The KS test's 5% point for ``n_complete`` values (lenient: the parameters were
    fitted to the same data, which makes distances smaller), and never below
    :data:`MIN_MISFIT`, so a large export does not warn about trivial misfits.
    """
    return max(KS_CRITICAL / math.sqrt(max(n_complete, 1)), MIN_MISFIT)


def _as_days(values: Any, what: str) -> np.ndarray:
    array = np.asarray([] if values is None else values, dtype=float).ravel()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: every value must be a finite number of days")
    if np.any(array < 0):
        raise ValueError(f"{what}: durations cannot be negative, got {array[array < 0][0]:g}")
    return array


def _model_from_theta(family: str, theta: np.ndarray) -> DistributionBase:
    """The model of log-parameters (those of :func:`_log_pdf_sf`)."""
    if family == "exponential":
        return Exponential(dist="exponential", mean=math.exp(theta[0]))
    first, second = math.exp(theta[0]), math.exp(theta[1])
    if family == "lognormal":
        return _model_from_scipy(family, (second, 0.0, first))
    return _model_from_scipy(family, (first, 0.0, second))


def _model_from_scipy(family: str, params: tuple[float, ...]) -> DistributionBase:
    """The mean/sd-parameterised model of a scipy fit with location 0."""
    if family == "lognormal":
        s, _, scale = params
        mean = scale * math.exp(s**2 / 2)
        return Lognormal(dist="lognormal", mean=mean, sd=mean * math.sqrt(math.expm1(s**2)))
    if family == "gamma":
        a, _, scale = params
        return Gamma(dist="gamma", mean=a * scale, sd=math.sqrt(a) * scale)
    raise ValueError(f"unknown family {family!r}")


def _weighted_sum(values: np.ndarray, weights: np.ndarray | None) -> float:
    """Sum of ``values``, each times its weight when weights are given."""
    return float(np.sum(values) if weights is None else np.dot(weights, values))


def _weighted_log_likelihood(
    frozen: Any,
    complete: np.ndarray,
    censored: np.ndarray,
    weights: np.ndarray,
    complete_weights: np.ndarray | None = None,
) -> float:
    """Sum of (weighted) log pdf over complete durations plus weighted log sf over censored ages.

    A censored age with weight 0 contributes nothing, even where its survival
    probability underflows to 0 (0 * -inf would be nan).
    """
    log_sf = np.asarray(frozen.logsf(censored), dtype=float)
    used = weights > 0
    log_pdf = np.asarray(frozen.logpdf(complete), dtype=float)
    return _weighted_sum(log_pdf, complete_weights) + float(np.sum(weights[used] * np.maximum(log_sf[used], -1e6)))


def _family_log_likelihood(
    family: str,
    theta: np.ndarray,
    complete: np.ndarray,
    censored: np.ndarray,
    weights: np.ndarray,
    complete_weights: np.ndarray | None = None,
):
    """:func:`_weighted_log_likelihood` written out for lognormal (mu, log s) and gamma (log a, log scale).

    The search evaluates it hundreds of times; freezing a scipy distribution per call
    would cost more than the arithmetic.
    """
    log_pdf, log_sf = _log_pdf_sf(family, theta, complete, censored)
    return _weighted_sum(log_pdf, complete_weights) + float(np.sum(weights * log_sf))


def _log_pdf_sf(family: str, theta: np.ndarray, complete: np.ndarray, censored: np.ndarray):
    """Log density at the complete values and log survival at the censored ones (floored at -1e6).

    In log-parameters: lognormal (mu, log s), gamma (log a, log scale), exponential (log mean).
    """
    if family == "lognormal":
        mu, sigma = theta[0], math.exp(theta[1])
        z = (np.log(complete) - mu) / sigma
        log_pdf = -0.5 * z**2 - math.log(sigma) - 0.5 * math.log(2 * math.pi) - np.log(complete)
        log_sf = special.log_ndtr(-(np.log(censored) - mu) / sigma)
    elif family == "gamma":
        shape, scale = math.exp(theta[0]), math.exp(theta[1])
        log_pdf = (shape - 1) * np.log(complete) - complete / scale - special.gammaln(shape) - shape * theta[1]
        with np.errstate(divide="ignore"):
            log_sf = np.log(special.gammaincc(shape, censored / scale))
    else:
        mean = math.exp(theta[0])
        log_pdf, log_sf = -complete / mean - theta[0], -censored / mean
    return log_pdf, np.maximum(log_sf, -1e6)


def _start(family: str, complete: np.ndarray) -> np.ndarray:
    """Complete-data estimates, a good start for the censored search."""
    if family == "lognormal":
        logs = np.log(complete)
        return np.array([logs.mean(), math.log(max(logs.std(), 1e-3))])
    mean, var = complete.mean(), max(complete.var(), 1e-9 * complete.mean() ** 2)
    return np.array([math.log(mean**2 / var), math.log(var / mean)])


def _fit_family(
    family: str,
    complete: np.ndarray,
    censored: np.ndarray,
    weights: np.ndarray,
    start: np.ndarray | None = None,
    complete_weights: np.ndarray | None = None,
) -> tuple[DistributionBase, dict, np.ndarray]:
    """Weighted censored maximum likelihood for one family.

    Returns the model, scipy's parameters (location 0) and the log-parameters found, which
    make a warm start for the next fit of nearly the same data (the EM loop).
    """
    if family == "exponential":
        # The censored MLE of an exponential mean has a closed form (total time on test
        # / events), weights included.
        events = complete.size if complete_weights is None else complete_weights.sum()
        mean = float((_weighted_sum(complete, complete_weights) + np.dot(weights, censored)) / events)
        return Exponential(dist="exponential", mean=mean), {"scale": mean}, np.array([math.log(mean)])

    def negative(theta):
        if np.any(np.abs(theta) > 50):  # far outside any sensible duration or amount
            return np.inf
        with np.errstate(all="ignore"):
            value = -_family_log_likelihood(family, theta, complete, censored, weights, complete_weights)
        return value if math.isfinite(value) else np.inf

    theta0 = _start(family, complete) if start is None else np.asarray(start, dtype=float)
    # scipy.stats' CensoredData takes no weights, so the search is done here, in
    # log-parameters (no bounds needed); Nelder-Mead copes with the flat valleys of
    # heavily censored data where gradient methods stall.
    found = optimize.minimize(
        negative, theta0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2_000}
    )
    if not np.isfinite(found.fun):
        raise ValueError("the likelihood search found no finite optimum")
    theta = found.x
    if family == "lognormal":
        params = (math.exp(theta[1]), 0.0, math.exp(theta[0]))
        names = ("s", "loc", "scale")
    else:
        params = (math.exp(theta[0]), 0.0, math.exp(theta[1]))
        names = ("a", "loc", "scale")
    return _model_from_scipy(family, params), dict(zip(names, params, strict=True)), theta


def _log_likelihood(
    model: DistributionBase,
    complete: np.ndarray,
    censored: np.ndarray,
    weights: np.ndarray | None = None,
    complete_weights: np.ndarray | None = None,
) -> float:
    weights = np.ones(censored.size) if weights is None else weights
    return _weighted_log_likelihood(model.scipy(), complete, censored, weights, complete_weights)


def kaplan_meier(
    complete: Any, censored: Any = None, weights: Any = None, complete_weights: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier estimate of the cdf, with optionally weighted censored ages.

    Parameters
    ----------
    complete : array-like of float
        Complete durations.
    censored : array-like of float, optional
        Right-censored ages (the duration exceeds each).
    weights : array-like of float, optional
        A weight in [0, 1] per censored age (default 1): the share of that deal that
        belongs to this population (the EM weights of :func:`fit_outcomes`).
    complete_weights : array-like of float, optional
        A weight > 0 per complete duration (default 1): recency weights.

    Returns
    -------
    times, cdf : ndarray
        The distinct complete durations and the estimated cdf just after each. With
        unit weights this is ``scipy.stats.ecdf`` of the ``CensoredData``; a censored age
        tied with a complete duration is counted at risk there, as scipy does.
    """
    complete = np.asarray(complete, dtype=float)
    ages = np.asarray([] if censored is None else censored, dtype=float)
    w = np.ones(ages.size) if weights is None else np.asarray(weights, dtype=float)
    if complete_weights is None:
        complete = np.sort(complete)
        times, deaths = np.unique(complete, return_counts=True)
        at_risk_complete = complete.size - np.searchsorted(complete, times, side="left")
    else:
        order = np.argsort(complete, kind="stable")
        complete, cw = complete[order], np.asarray(complete_weights, dtype=float)[order]
        times, first = np.unique(complete, return_index=True)
        deaths = np.add.reduceat(cw, first)
        at_risk_complete = np.concatenate([np.cumsum(cw[::-1])[::-1], [0.0]])[first]
    order = np.argsort(ages)
    tail = np.concatenate([np.cumsum(w[order][::-1])[::-1], [0.0]])
    at_risk_censored = tail[np.searchsorted(ages[order], times, side="left")]
    survival = np.cumprod(1.0 - deaths / (at_risk_complete + at_risk_censored))
    return times, 1.0 - survival


def _ks_to_kaplan_meier(
    model: DistributionBase,
    complete: np.ndarray,
    censored: np.ndarray,
    weights: np.ndarray | None = None,
    complete_weights: np.ndarray | None = None,
) -> float:
    """Largest |F_model - F_KM| at the Kaplan-Meier jumps, both sides of each step.

    Each side is compared with the model on the same side: F(t) with the estimate just
    after t, and F just below t with the estimate just before. For a continuous model the
    two values of F are one; for the empirical fallback, which jumps where the data do,
    comparing F(t) with the estimate before the jump would count the jump itself as misfit.
    """
    times, after = kaplan_meier(complete, censored, weights, complete_weights)
    before = np.concatenate([[0.0], after[:-1]])
    fitted = np.asarray(model.cdf(times), dtype=float)
    fitted_before = np.asarray(model.cdf(np.nextafter(times, -np.inf)), dtype=float)
    return float(max(np.max(np.abs(fitted - after)), np.max(np.abs(fitted_before - before))))


def _weighted_at(times: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Total weight of ``values`` equal to each of the sorted ``times``."""
    return np.bincount(np.searchsorted(times, values), weights=weights, minlength=times.size)[: times.size]


def _at_risk(times: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Total weight of ``values`` at or above each of the sorted ``times``."""
    order = np.argsort(values)
    tail = np.concatenate([np.cumsum(weights[order][::-1])[::-1], [0.0]])
    return tail[np.searchsorted(values[order], times, side="left")]


def aalen_johansen(
    won: Any,
    lost: Any,
    open_ages: Any = None,
    won_weights: Any = None,
    lost_weights: Any = None,
    open_weights: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cumulative incidence of winning and of losing by each time, open deals censored.

    Winning and losing compete: with ``n(t)`` deals still open just before ``t`` (closed
    at or after ``t``, or open at an age of at least ``t``) and ``d_won(t)``,
    ``d_lost(t)`` of them closing at ``t``, the incidence of winning grows by
    ``S(t-) d_won(t) / n(t)``, where ``S`` is the Kaplan-Meier chance of being still open.
    Without open deals the incidences are the shares won and lost by ``t``.

    Parameters
    ----------
    won, lost : array-like of float
        Days to a win and to a loss.
    open_ages : array-like of float, optional
        Ages of open deals (right-censored).
    won_weights, lost_weights, open_weights : array-like of float, optional
        A weight per deal (default 1).

    Returns
    -------
    times, won_incidence, lost_incidence : ndarray
        The distinct closing times and both incidences just after each.
    """
    won, lost = _as_days(won, "won durations"), _as_days(lost, "lost durations")
    ages = _as_days(open_ages, "open ages")
    r_won, r_lost, r_open = (
        np.ones(x.size) if r is None else np.asarray(r, dtype=float).ravel()
        for x, r in ((won, won_weights), (lost, lost_weights), (ages, open_weights))
    )
    closed = np.concatenate([won, lost])
    times = np.unique(closed)
    d_won, d_lost = _weighted_at(times, won, r_won), _weighted_at(times, lost, r_lost)
    at_risk = _at_risk(times, closed, np.concatenate([r_won, r_lost])) + _at_risk(times, ages, r_open)
    hazard = (d_won + d_lost) / at_risk
    still_open_before = np.concatenate([[1.0], np.cumprod(1.0 - hazard)[:-1]])
    return times, np.cumsum(still_open_before * d_won / at_risk), np.cumsum(still_open_before * d_lost / at_risk)


def _incidence_fit(
    times: np.ndarray,
    incidence: np.ndarray,
    complete: np.ndarray,
    ages: np.ndarray,
    weights: np.ndarray,
    parametric: DurationFit,
    what: str,
) -> DurationFit:
    """A duration distribution from a cumulative incidence, as :data:`NONPARAMETRIC_POINTS` quantiles.

    It cannot reach beyond the longest duration observed; the parametric fit's table
    stays, for the report.
    """
    cdf = incidence / incidence[-1]
    quantiles = (np.arange(NONPARAMETRIC_POINTS) + 0.5) / NONPARAMETRIC_POINTS
    values = times[np.minimum(np.searchsorted(cdf, quantiles, side="left"), times.size - 1)]
    model = Empirical(dist="empirical", values=tuple(float(v) for v in values))
    why = (
        f"no family fits ({parametric.family}: KS {parametric.ks_distance:.2f})"
        if not parametric.fits_well
        else "asked for"
    )
    return DurationFit(
        model=model,
        family="aalen-johansen",
        table=parametric.table,
        ks_distance=_ks_to_kaplan_meier(model, complete, ages, weights),
        n_complete=parametric.n_complete,
        n_censored=parametric.n_censored,
        note=f"{why}: the {what} taken from the data (Aalen-Johansen, open deals censored), up to "
        f"{counted(round(times[-1]), 'day')}, the longest seen",
        warnings=[w for w in parametric.warnings if "fit is poor" not in w],
        fits_well=True,
    )


def _empirical(values: np.ndarray) -> Empirical:
    ordered = np.sort(values)
    if ordered.size > MAX_EMPIRICAL_VALUES:  # evenly spaced order statistics keep the shape
        ordered = ordered[np.linspace(0, ordered.size - 1, MAX_EMPIRICAL_VALUES).round().astype(int)]
    return Empirical(dist="empirical", values=tuple(float(v) for v in ordered))


def fit_duration(
    durations: Any,
    censored: Any = None,
    families: tuple[str, ...] = DURATION_FAMILIES,
    weights: Any = None,
    *,
    complete_weights: Any = None,
    starts: dict[str, np.ndarray] | None = None,
    what: str = "durations",
) -> DurationFit:
    """Fit a duration distribution to complete and right-censored durations.

    Parameters
    ----------
    durations : array-like of float
        Complete durations in days (deals that closed), >= 0. Zeros are replaced by
        :data:`ZERO_DURATION_DAYS` in the likelihood (a same-day close, with dates in
        whole days).
    censored : array-like of float, optional
        Ages in days of deals still open: their durations are at least this. Ages of 0
        carry no information (every duration exceeds 0) and are left out of the fit.
    families : tuple of str
        Families to try, among ``lognormal``, ``gamma`` and ``exponential``.
    weights : array-like of float, optional
        One weight in [0, 1] per censored age (default 1): how much of that open deal
        belongs to this population. :func:`fit_outcomes` passes P(won | open at its age)
        for the won durations and its complement for the lost ones; an unweighted fit is
        the fit with every weight 1.
    complete_weights : array-like of float, optional
        One weight > 0 per complete duration (default 1): how much that deal counts,
        for recency weighting (:func:`sim.crm.spread.recency_weights`). A censored age's
        recency goes into its ``weights``.
    starts : dict, optional
        Family -> log-parameters to start the search from (``DurationFit.thetas`` of an
        earlier fit of similar data); the complete-data estimates otherwise.
    what : str
        What the values are, for messages ("durations", "won amounts").

    Returns
    -------
    DurationFit
        The family with the lowest AIC = 2k - 2 log L (k = 2 for lognormal and gamma,
        1 for exponential), where log L = sum of log pdf over complete durations + sum
        of weight * log sf over censored ages. With fewer than
        :data:`MIN_COMPLETE_FOR_FIT` complete durations, or when every family fails,
        the model is an Empirical distribution of the complete durations (which ignores
        the open deals, so it is biased short; the note says so).

    Raises
    ------
    ValueError
        If there are no complete durations, a value is negative or not finite, a
        weight is outside [0, 1] or the weights do not match the censored ages, or a
        family is unknown.
    """
    raw = _as_days(durations, what)
    ages = _as_days(censored, "censored")
    w = np.ones(ages.size) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.size != ages.size:
        raise ValueError(f"weights: one per censored age is needed, got {w.size} for {ages.size}")
    if not np.all((w >= 0) & (w <= 1)):
        raise ValueError("weights: every weight must be between 0 and 1")
    cw = None if complete_weights is None else np.asarray(complete_weights, dtype=float).ravel()
    if cw is not None and (cw.size != raw.size or not np.all((cw > 0) & np.isfinite(cw))):
        raise ValueError(f"complete_weights: one number > 0 per complete value is needed, got {cw.size} for {raw.size}")
    unknown = [f for f in families if f not in _PARAMETERS]
    if unknown:
        raise ValueError(f"families: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(_PARAMETERS)}")
    if raw.size == 0:
        raise ValueError(f"{what}: no complete {what} to fit (no deal has closed)")
    complete = np.where(raw == 0, ZERO_DURATION_DAYS, raw)
    keep = (ages > 0) & (w > 0)
    ages, w = ages[keep], w[keep]
    n_open = float(w.sum())

    warnings = []
    if raw.size < THIN_DATA:
        warnings.append(
            f"only {counted(raw.size, f'complete {what[:-1]}', f'complete {what}')} (fewer than {THIN_DATA}): "
            "the fit is uncertain"
        )
    if n_open > raw.size:
        warnings.append(
            f"{human(n_open, 'count')} of {counted(round(n_open + raw.size), 'deal')} are still open: the long tail "
            "rests on the fitted family"
        )

    rows = []
    models = {}
    thetas = {}
    if raw.size >= MIN_COMPLETE_FOR_FIT:
        for family in families:
            try:
                model, params, theta = _fit_family(family, complete, ages, w, (starts or {}).get(family), cw)
                log_l = _log_likelihood(model, complete, ages, w, cw)
                if not math.isfinite(log_l):
                    raise ValueError("log-likelihood is not finite")
            except (ValueError, RuntimeError, OverflowError, FloatingPointError) as error:
                # A fit that fails (or lands outside the models' safe sd/mean band) is
                # left out: the others may still describe the data.
                warnings.append(f"{family} fit failed: {str(error).splitlines()[0]}")
                continue
            models[family], thetas[family] = model, theta
            rows.append(
                {
                    "family": family,
                    "parameters": params,
                    "mean": model.mean(),
                    "sd": model.std(),
                    "log_likelihood": log_l,
                    "aic": 2 * _PARAMETERS[family] - 2 * log_l,
                    "ks_distance": _ks_to_kaplan_meier(model, complete, ages, w, cw),
                }
            )
    columns = ["family", "parameters", "mean", "sd", "log_likelihood", "aic", "ks_distance"]
    table = pd.DataFrame(rows, columns=columns).sort_values("aic", kind="stable").reset_index(drop=True)

    if table.empty:
        model = _empirical(raw)
        family = "empirical"
        why = (
            f"fewer than {MIN_COMPLETE_FOR_FIT} complete {what}"
            if raw.size < MIN_COMPLETE_FOR_FIT
            else "no parametric family could be fitted"
        )
        note = (
            f"{why}: resampling the {counted(raw.size, f'observed {what[:-1]}', f'observed {what}')} "
            "(open deals ignored, so biased short)"
        )
        # Against the values it resamples (zeros as zeros), not the likelihood's stand-ins.
        ks = _ks_to_kaplan_meier(model, raw, ages, w, cw)
    else:
        best = table.iloc[0]
        family, model, ks = best["family"], models[best["family"]], float(best["ks_distance"])
        note = f"{family} chosen by AIC among {', '.join(table['family'])}" + (
            f", with {counted(ages.size, 'open deal')} as censored" if ages.size else ""
        )
    limit = misfit_limit(raw.size)
    fits_well = family == "empirical" or ks <= limit
    if not fits_well:
        warnings.append(
            f"the {family} fit is poor: its cdf is {ks:.2f} from the Kaplan-Meier estimate of the data at worst, "
            f"above {limit:.2f} (the 5% level for {counted(raw.size, 'value')}): the forecast's timing may be off"
        )
    return DurationFit(
        model=model,
        family=family,
        table=table,
        ks_distance=ks,
        n_complete=int(raw.size),
        n_censored=int(ages.size),
        note=note,
        warnings=warnings,
        thetas=thetas,
        fits_well=fits_well,
    )


VALUE_FAMILIES = ("lognormal", "gamma")


def fit_value(amounts: Any, weights: Any = None) -> DurationFit:
    """Fit the deal value distribution to the amounts of won deals.

    The same maximum-likelihood machinery as :func:`fit_duration` (nothing censored),
    over the lognormal and gamma families, chosen by AIC; fewer than
    :data:`MIN_COMPLETE_FOR_FIT` amounts fall back to resampling them. An amount of 0
    stands for :data:`ZERO_DURATION_DAYS` in the likelihood only.

    Parameters
    ----------
    amounts : array-like of float
        Won amounts, >= 0.
    weights : array-like of float, optional
        One weight > 0 per amount (recency weights); default 1.

    Returns
    -------
    DurationFit
    """
    return fit_duration(amounts, families=VALUE_FAMILIES, complete_weights=weights, what="won amounts")


@dataclass
class OutcomeFit:
    """The result of :func:`fit_outcomes`: the win rate and both duration models, jointly.

    Attributes
    ----------
    rate : BetaRate
        The conversion rate, with the uncertainty the data leave (see :func:`fit_outcomes`).
    p : float
        The maximum-likelihood win rate.
    won, lost : DurationFit
        Durations of deals that are won and of deals that are lost; ``lost`` is None
        when no deal has been lost yet.
    weights : ndarray
        P(won | still open at its age) per open age, at the solution.
    expected_won, expected_lost : float
        Won (lost) deals plus the open deals' expected share.
    iterations : int
        EM iterations done.
    converged : bool
        Whether the weights settled within the tolerance.
    never_closed : float
        The share of deals the CRM never closes (0 unless asked for).
    open_known : ndarray
        Per open deal, how much of its outcome its survival so far already tells, in
        closed deals: ``p (1 - p) (S_won - S_lost)^2 / (p S_won + (1 - p) S_lost)^2``,
        0 for a fresh deal, 1 for one that can only be lost.
    """

    rate: BetaRate
    p: float
    won: DurationFit
    lost: DurationFit | None
    weights: np.ndarray
    expected_won: float
    expected_lost: float
    iterations: int
    converged: bool
    open_known: np.ndarray = field(default_factory=lambda: np.zeros(0))
    never_closed: float = 0.0


def _beta_rate(converted: float, n: float) -> BetaRate:
    """Beta posterior of a uniform prior after ``converted`` successes in ``n`` (both may be fractional)."""
    return BetaRate(mean=(converted + 1) / (n + 2), concentration=n + 2)


def fit_outcomes(
    won: Any,
    lost: Any,
    open_ages: Any = None,
    families: tuple[str, ...] = DURATION_FAMILIES,
    tol: float = 1e-6,
    max_iterations: int = 500,
    *,
    won_weights: Any = None,
    lost_weights: Any = None,
    open_weights: Any = None,
    durations: str = "parametric",
    never_closed: bool = False,
) -> OutcomeFit:
    """Fit the win rate and the won and lost duration models together, open deals included.

    An open deal of age ``a`` does not know whether it will be won: its likelihood is
    ``p S_won(a) + (1 - p) S_lost(a)``. The EM algorithm treats its outcome as missing:
    each open deal gets the weight ``w = P(won | open at a)`` of
    :func:`sim.model.funnel.p_won_given_age` (E step); the won durations are fitted with the
    open ages as censored observations weighted ``w``, the lost ones with weights
    ``1 - w``, and ``p = (won + sum w) / (won + lost + open)`` (M step); repeat until the
    weights settle. Each M step keeps the family chosen by AIC and starts from the last
    parameters; at convergence all families are compared again, and EM goes on with a
    new choice if AIC now prefers one.

    Parameters
    ----------
    won, lost : array-like of float
        Days from creation to close of won and of lost deals.
    open_ages : array-like of float, optional
        Ages in days of deals still open.
    families : tuple of str
        Duration families to try.
    tol : float
        Stop when no weight moves by more than this.
    max_iterations : int
        Give up after this many iterations (``converged`` is then False).
    won_weights, lost_weights, open_weights : array-like of float, optional
        One weight > 0 per won, lost and open deal (default 1): how much each counts,
        for recency weighting. Every sum above becomes a weighted sum.
    durations : {"parametric", "auto", "nonparametric"}
        ``parametric``: the families above. ``nonparametric``: the won and lost
        durations and the rate from :func:`aalen_johansen` (each duration model the
        incidence's shape, the rate the share won of the incidences at the longest
        duration seen). ``auto``: the families, unless the won or the lost one fits
        poorly (:attr:`DurationFit.fits_well`), then non-parametric.
    never_closed : bool
        Allow a third outcome: deals the CRM never closes ("zombies", lost in fact), a
        share ``z`` of all deals. An open deal of age ``a`` then has the likelihood
        ``p S_won(a) + q S_lost(a) + z`` (``p + q + z = 1``), so an open deal far older than
        any that close is put down to ``z`` instead of stretching the durations' tails
        and looking like a slow win. The rate stays the share won, ``p``.

    Returns
    -------
    OutcomeFit
        The rate is a Beta with mean ``(c + 1) / (n + 2)`` and concentration ``n + 2``,
        where ``n = p (1 - p) I(p)`` is the number of closed deals that would carry the
        same information ``I(p)`` (the observed information about ``p``) and
        ``c = p n``. With no open deal this is exactly :func:`fit_rate` (won, lost); an
        open deal adds between nothing (a fresh one, whose survival says nothing about
        its outcome) and one closed deal (a zombie that can only be lost). With
        parametric durations, ``I(p)`` allows for their being estimated from the same
        deals (the Schur complement of the joint observed information): when most deals
        are still open, that is most of what the open deals seemed to say.

    Raises
    ------
    ValueError
        If no deal has been won (nothing to fit the won durations to), or a value is
        bad (as :func:`fit_duration`).
    """
    won = _as_days(won, "won durations")
    lost = _as_days(lost, "lost durations")
    ages = _as_days(open_ages, "open ages")
    if durations not in DURATION_CHOICES:
        raise ValueError(f"durations: must be one of {', '.join(DURATION_CHOICES)}, got {durations!r}")
    if won.size == 0:
        raise ValueError("won durations: no deal has been won yet, so there is nothing to fit how long winning takes")
    weighted = not (won_weights is None and lost_weights is None and open_weights is None)
    r_won, r_lost, r_open = (
        None if not weighted else np.ones(x.size) if given is None else np.asarray(given, dtype=float).ravel()
        for x, given in ((won, won_weights), (lost, lost_weights), (ages, open_weights))
    )
    n_won, n_lost, n_open = (
        float(x.size) if r is None else float(r.sum()) for x, r in ((won, r_won), (lost, r_lost), (ages, r_open))
    )
    n = n_won + n_lost + n_open
    p = (n_won + 0.5 * n_open) / n  # half of the open deals won: a neutral start
    z = NEVER_CLOSED_START * n_open / n if never_closed else 0.0
    w = np.full(ages.size, p)
    v = 1 - w - z  # each open deal's chance of being lost (of closing lost, with never_closed)

    def open_sum(values: np.ndarray) -> float:
        return _weighted_sum(values, r_open)

    def fit_parts(won_families, lost_families):
        won_fit = fit_duration(
            won, ages, won_families, w if r_open is None else w * r_open, complete_weights=r_won, starts=starts_won
        )
        lost_fit = (
            fit_duration(
                lost,
                ages,
                lost_families,
                v if r_open is None else v * r_open,
                complete_weights=r_lost,
                starts=starts_lost,
            )
            if lost.size
            else None
        )
        return won_fit, lost_fit

    fixed_won = fixed_lost = None
    starts_won: dict = {}
    starts_lost: dict = {}
    iterations, converged = 0, False
    for _ in range(3):  # rounds of EM with fixed families, then an AIC re-check
        while iterations < max_iterations:
            iterations += 1
            if iterations % POLISH_EVERY == 0 and fixed_won and fixed_lost and lost.size:
                p, z, w, v, starts_won, starts_lost = _polished(
                    won,
                    lost,
                    ages,
                    (r_won, r_lost, r_open),
                    (fixed_won[0], fixed_lost[0]),
                    (starts_won, starts_lost),
                    (p, z, w, v),
                    never_closed,
                )
            won_fit, lost_fit = fit_parts(fixed_won or families, fixed_lost or families)
            starts_won, starts_lost = won_fit.thetas, (lost_fit.thetas if lost_fit else {})
            fixed_won = (won_fit.family,) if won_fit.family != "empirical" else fixed_won
            fixed_lost = (lost_fit.family,) if lost_fit and lost_fit.family != "empirical" else fixed_lost
            p = (n_won + open_sum(w)) / n
            q = None
            if never_closed:
                q = (n_lost + open_sum(v)) / n
                z = max(1.0 - p - q, 0.0)
            new_w, v = _chances(p, z, won_fit, lost_fit, ages, never_closed, q)
            change = float(np.max(np.abs(new_w - w))) if w.size else 0.0
            w = new_w
            if change < tol:
                converged = True
                break
        won_fit, lost_fit = fit_parts(families, families)
        if won_fit.family in (fixed_won or ()) + ("empirical",) and (
            lost_fit is None or lost_fit.family in (fixed_lost or ()) + ("empirical",)
        ):
            break
        fixed_won = fixed_lost = None
        converged = False
    p = (n_won + open_sum(w)) / n
    nonparametric = durations == "nonparametric" or (
        durations == "auto" and not (won_fit.fits_well and (lost_fit is None or lost_fit.fits_well))
    )
    if nonparametric:
        # Deals that will never close leave the risk sets: they would make late closes look rare.
        closing = w + v if never_closed else np.ones(ages.size)
        r = {"won_weights": r_won, "lost_weights": r_lost, "open_weights": closing * (1 if r_open is None else r_open)}
        times, won_incidence, lost_incidence = aalen_johansen(won, lost, ages, **r)
        p = float(won_incidence[-1] / (won_incidence[-1] + lost_incidence[-1])) * (1 - z)
        won_fit = _incidence_fit(times, won_incidence, won, ages, w, won_fit, "won durations")
        if lost_fit is not None:
            lost_fit = _incidence_fit(times, lost_incidence, lost, ages, v, lost_fit, "lost durations")
        w, v = _chances(p, z, won_fit, lost_fit, ages, never_closed)
    # Observed information about p: closed deals give 1/p^2 or 1/(1-p)^2, an open one
    # (S_w - S_l)^2 / (p S_w + (1 - p) S_l)^2.
    s_won = np.asarray(won_fit.model.sf(ages), dtype=float)
    s_lost = np.asarray(lost_fit.model.sf(ages), dtype=float) if lost_fit else s_won
    if z > 0:  # not won: lost in time, or never closed
        s_lost = ((1 - p - z) * s_lost + z) / (1 - p)
    mix = p * s_won + (1 - p) * s_lost
    open_info = np.divide((s_won - s_lost) ** 2, mix**2, out=np.zeros_like(mix), where=mix > 0)
    p_inside = min(max(p, 1e-9), 1 - 1e-9)
    # With recency weights the information is the weighted (discounted) sum, as in dynamic
    # models with a discount factor: old deals say less about a rate that may have moved.
    information = n_won / p_inside**2 + n_lost / (1 - p_inside) ** 2 + open_sum(open_info)
    if lost_fit is not None and not nonparametric:
        information *= _share_kept_by_durations(
            won, lost, ages, (r_won, r_lost, r_open), won_fit, lost_fit, p, z, never_closed
        )
    n_equivalent = p_inside * (1 - p_inside) * information
    return OutcomeFit(
        rate=_beta_rate(p * n_equivalent, n_equivalent),
        p=float(p),
        won=won_fit,
        lost=lost_fit,
        weights=w,
        expected_won=float(won.size + w.sum()),
        expected_lost=float(lost.size + (1 - w).sum()),
        iterations=iterations,
        converged=converged,
        open_known=np.clip(p_inside * (1 - p_inside) * open_info, 0.0, 1.0),
        never_closed=float(z),
    )


def _shares(x: np.ndarray, never_closed: bool) -> tuple[float, float, float]:
    """(p, q, z) from unbounded numbers: p = expit(x0), z = (1 - p) expit(x1) or 0."""
    p = float(special.expit(x[0]))
    z = (1 - p) * float(special.expit(x[1])) if never_closed else 0.0
    return p, 1 - p - z, z


def _polish(
    won: np.ndarray,
    lost: np.ndarray,
    ages: np.ndarray,
    weights: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    families: tuple[str, str],
    thetas: tuple[np.ndarray, np.ndarray],
    shares: tuple[float, float],
    never_closed: bool,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The joint maximum likelihood of the rate, the shares and both families' parameters, searched directly.

    EM creeps when most deals are still open (each step moves little); from where it
    got to, one search of the observed-data likelihood goes the rest of the way:
    ``sum over won (log p + log f_won) + over lost (log q + log f_lost) + over open
    log(p S_won + q S_lost + z)``.

    Returns
    -------
    (p, z, theta_won, theta_lost)
    """
    p0, z0 = shares
    start = [special.logit(min(max(p0, 1e-6), 1 - 1e-6))]
    if never_closed:
        start.append(special.logit(min(max(z0 / (1 - p0), 1e-6), 1 - 1e-6)))
    start = np.concatenate([start, thetas[0], thetas[1]])
    head = len(start) - thetas[0].size - thetas[1].size

    def negative(x: np.ndarray) -> float:
        return _joint_negative(x, won, lost, ages, weights, families, thetas[0].size, never_closed)

    found = optimize.minimize(
        negative, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4_000}
    )
    x = found.x if found.fun <= negative(start) else start
    p, _, z = _shares(x, never_closed)
    return p, z, x[head : head + thetas[0].size], x[head + thetas[0].size :]


def _joint_negative(
    x: np.ndarray,
    won: np.ndarray,
    lost: np.ndarray,
    ages: np.ndarray,
    weights: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    families: tuple[str, str],
    k_won: int,
    never_closed: bool,
) -> float:
    """Minus the observed-data log-likelihood of :func:`_polish` at ``x`` (shares, then both families' log-parameters).

    ``sum over won (log p + log f_won) + over lost (log q + log f_lost) + over open
    log(p S_won + q S_lost + z)``; infinite where it is not finite.
    """
    r_won, r_lost, r_open = weights
    head = 2 if never_closed else 1
    if np.any(np.abs(x[head:]) > 50):
        return np.inf
    complete_won = np.where(won == 0, ZERO_DURATION_DAYS, won)
    complete_lost = np.where(lost == 0, ZERO_DURATION_DAYS, lost)
    p, q, z = _shares(x, never_closed)
    with np.errstate(all="ignore"):
        pdf_won, sf_won = _log_pdf_sf(families[0], x[head : head + k_won], complete_won, ages)
        pdf_lost, sf_lost = _log_pdf_sf(families[1], x[head + k_won :], complete_lost, ages)
        open_terms = np.logaddexp(math.log(p) + sf_won, math.log(max(q, 1e-300)) + sf_lost)
        if z > 0:
            open_terms = np.logaddexp(open_terms, math.log(z))
        value = (
            _weighted_sum(math.log(p) + pdf_won, r_won)
            + _weighted_sum(math.log(max(q, 1e-300)) + pdf_lost, r_lost)
            + _weighted_sum(open_terms, r_open)
        )
    return -value if math.isfinite(value) else np.inf


def _share_kept_by_durations(
    won: np.ndarray,
    lost: np.ndarray,
    ages: np.ndarray,
    weights: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    won_fit: DurationFit,
    lost_fit: DurationFit,
    p: float,
    z: float,
    never_closed: bool,
) -> float:
    """How much of the information about the rate is left once the durations are uncertain too, in (0, 1].

    The observed information of the joint likelihood (:func:`_joint_negative`) at the
    fit, by central differences: the rate's information with the durations known is its
    diagonal entry, with them estimated from the same deals the inverse of the inverse's
    (the Schur complement). When most deals are still open the two differ a lot: a slow
    win and a slow loss explain an old open deal alike, so its survival says little
    about the rate until the durations are pinned down. 1 when the families are not
    parametric or the curvature cannot be measured.
    """
    try:
        thetas = (won_fit.thetas[won_fit.family], lost_fit.thetas[lost_fit.family])
    except KeyError:
        return 1.0
    shares = [special.logit(min(max(p, 1e-9), 1 - 1e-9))]
    if never_closed:
        shares.append(special.logit(min(max(z / (1 - p), 1e-9), 1 - 1e-9)))
    x0 = np.concatenate([shares, thetas[0], thetas[1]])
    families = (won_fit.family, lost_fit.family)

    def f(x: np.ndarray) -> float:
        return _joint_negative(x, won, lost, ages, weights, families, thetas[0].size, never_closed)

    h = 1e-3
    k = x0.size
    steps = np.eye(k) * h
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            value = (
                f(x0 + steps[i] + steps[j])
                - f(x0 + steps[i] - steps[j])
                - f(x0 - steps[i] + steps[j])
                + f(x0 - steps[i] - steps[j])
            ) / (4 * h * h)
            hessian[i, j] = hessian[j, i] = value
    if not np.all(np.isfinite(hessian)) or hessian[0, 0] <= 0:
        return 1.0
    try:
        inverse = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return 1.0
    if not inverse[0, 0] > 0:
        return 1.0
    return float(min(max(1.0 / (inverse[0, 0] * hessian[0, 0]), 1e-3), 1.0))


def _polished(
    won: np.ndarray,
    lost: np.ndarray,
    ages: np.ndarray,
    weights: tuple,
    families: tuple[str, str],
    starts: tuple[dict, dict],
    state: tuple,
    never_closed: bool,
) -> tuple:
    """EM's state moved to the joint maximum likelihood (:func:`_polish`), or left as it was if that fails.

    Returns ``(p, z, w, v, starts_won, starts_lost)``: the shares, each open deal's
    chances of being won and lost, and the families' log-parameters.
    """
    p, z, w, v = state
    try:
        p, z, theta_won, theta_lost = _polish(
            won, lost, ages, weights, families, (starts[0][families[0]], starts[1][families[1]]), (p, z), never_closed
        )
        models = (_model_from_theta(families[0], theta_won), _model_from_theta(families[1], theta_lost))
    except (ValueError, KeyError, FloatingPointError, OverflowError):
        return (*state, *starts)
    w, v = _chances(p, z, *models, ages, never_closed)
    return p, z, w, v, {families[0]: theta_won}, {families[1]: theta_lost}


def _chances(
    p: float, z: float, won, lost, ages: np.ndarray, never_closed: bool, q: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each open deal's chances of being won and of closing lost, by Bayes' rule on "still open at its age".

    ``won`` and ``lost`` are duration models or fits (None: lost like won). Without
    ``never_closed`` the two chances add up to 1 (:func:`sim.model.funnel.p_won_given_age`);
    with it the rest, ``z / mix``, is the chance of never closing. ``q`` (the share lost in
    time) is ``1 - p - z`` unless given.
    """
    won, lost = getattr(won, "model", won), getattr(lost, "model", lost)
    if not never_closed:
        chance = np.asarray(p_won_given_age(p, won, lost, ages))
        return chance, 1 - chance
    q = 1 - p - z if q is None else q
    s_won = np.asarray(won.sf(ages), dtype=float)
    s_lost = np.asarray(lost.sf(ages), dtype=float) if lost is not None else s_won
    mix = p * s_won + q * s_lost + z
    safe = np.where(mix > 0, mix, 1.0)
    return np.where(mix > 0, p * s_won / safe, 0.0), np.where(mix > 0, q * s_lost / safe, 0.0)


def fit_rate(converted: int, lost: int) -> BetaRate:
    """An uncertain conversion rate from counts of converted and lost deals.

    The rate is the posterior of a uniform prior after ``converted`` successes and
    ``lost`` failures, Beta(converted + 1, lost + 1): mean (converted + 1) / (n + 2) and
    concentration n + 2, with n = converted + lost. The uniform prior keeps the mean
    strictly inside (0, 1), so 0 wins in 10 is not read as "never".

    Parameters
    ----------
    converted, lost : int
        Counts, >= 0, not both 0.

    Returns
    -------
    BetaRate

    Raises
    ------
    ValueError
        For negative or non-integer counts, or when both are 0 (nothing to learn from).
    """
    for name, count in (("converted", converted), ("lost", lost)):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValueError(f"{name}: must be a whole number >= 0, got {count!r}")
    n = int(converted) + int(lost)
    if n == 0:
        raise ValueError("fit_rate: no converted or lost deals to estimate a rate from (converted + lost = 0)")
    return _beta_rate(int(converted), n)


def _timestamps(created: Any) -> pd.Series:
    """Datetimes as a naive Series (UTC for zone-aware input), missing values dropped."""
    values = pd.Series(pd.to_datetime(pd.Series(created), utc=True)).dt.tz_localize(None)
    return values.dropna()


def _timestamp(as_of: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def weekly_inflow(created: Any, as_of: Any, window_weeks: float = 13) -> float:
    """New opportunities per week over the trailing window.

    Parameters
    ----------
    created : array-like of datetimes
        Creation dates of all deals (any state). Zone-aware values are compared in UTC.
    as_of : datetime-like
        The end of the window (the export's date).
    window_weeks : float
        Length of the window, > 0.

    Returns
    -------
    float
        Deals created in (as_of - window, as_of], divided by ``window_weeks``. If the
        history starts inside the window, the rate is understated.
    """
    if not (isinstance(window_weeks, int | float) and math.isfinite(window_weeks) and window_weeks > 0):
        raise ValueError(f"window_weeks: must be a number > 0, got {window_weeks!r}")
    end = _timestamp(as_of)
    start = end - pd.Timedelta(weeks=window_weeks)
    values = _timestamps(created)
    return float(((values > start) & (values <= end)).sum() / window_weeks)


def seasonality(created: Any, as_of: Any, horizon_weeks: float, min_years: int = 2) -> list[float] | None:
    """Per-month multipliers of the weekly inflow, from past years' creation dates.

    The history used is the whole years of full calendar months ending with the month
    before ``as_of``'s and starting after the last month in which no deal was created
    (the first month of the data counts as full only if its first deal was created on
    the 1st). For each calendar month the creation rate per day is averaged over those
    years; a month's multiplier is its rate over the mean of the twelve. Rates per day,
    not counts, so February is not read as quiet for having fewer days.

    Parameters
    ----------
    created : array-like of datetimes
        Creation dates of all deals.
    as_of : datetime-like
        The start of the forecast.
    horizon_weeks : float
        Length of the forecast, > 0.
    min_years : int
        Whole years of history required, >= 1.

    Returns
    -------
    list of float or None
        One multiplier per calendar month the horizon touches, starting with
        ``as_of``'s month and ending with the month of ``as_of + horizon``; None when
        fewer than ``min_years`` such years (or no deal at all) are available. So a
        few deals left open for years do not make a short history look long, nor the
        empty months between them a quiet season.

    Notes
    -----
    The multipliers are relative to the yearly average. A baseline such as
    :func:`weekly_inflow` measured over a busy or quiet quarter already carries that
    season; divide it by the mean multiplier of its window before applying these.
    """
    if not (isinstance(horizon_weeks, int | float) and math.isfinite(horizon_weeks) and horizon_weeks > 0):
        raise ValueError(f"horizon_weeks: must be a number > 0, got {horizon_weeks!r}")
    if isinstance(min_years, bool) or not isinstance(min_years, int) or min_years < 1:
        raise ValueError(f"min_years: must be a whole number >= 1, got {min_years!r}")
    end = _timestamp(as_of)
    values = _timestamps(created)
    values = values[values <= end]
    if values.empty:
        return None
    first = values.min()
    first_full = first.to_period("M") + (0 if first.day == 1 else 1)
    last_full = end.to_period("M") - 1
    if last_full < first_full:
        return None
    covered = pd.period_range(first_full, last_full, freq="M")
    counts = values.dt.to_period("M").value_counts().reindex(covered, fill_value=0)
    # A month without one new deal is a gap in the history, not a season: CRM exports
    # keep a few deals open for years, long before the rest of the data starts.
    empty = np.flatnonzero(counts.to_numpy() == 0)
    run = len(covered) - (empty[-1] + 1 if empty.size else 0)
    years = run // 12
    if years < min_years:
        return None
    months = covered[-12 * years :]
    counts = counts.reindex(months)
    per_day = counts / months.days_in_month
    profile = per_day.groupby(months.month).mean()
    if profile.mean() == 0:
        return None
    multiplier = profile / profile.mean()
    horizon = pd.period_range(end.to_period("M"), (end + pd.Timedelta(weeks=horizon_weeks)).to_period("M"), freq="M")
    return [float(multiplier[month]) for month in horizon.month]

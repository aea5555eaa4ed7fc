"""Scores of probabilistic forecasts against what happened: coverage, errors, pinball loss and PIT.

Pure functions over forecast samples (or their quantiles) and actuals, one value per
forecast origin. The idea a reader needs: a forecast is judged first on whether it is
honest about its uncertainty (its bands hold the actual as often as they claim, and
the actuals fall across its distribution evenly: the probability integral transform,
PIT, is uniform), and only then on how close its middle lands (the absolute %
error of P50, the pinball loss of its quantiles).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sim.words import counted

ALPHA = 0.05
"""The KS p-value below which the PITs are judged not uniform."""
MIN_PIT_ORIGINS = 10
"""Fewer PITs than this say too little about the shape of a forecast's errors to judge it."""
TAIL = 0.1
"""A PIT below this or above ``1 - TAIL`` is in a tail (a share ``2 * TAIL`` of an honest forecast's)."""


def coverage(lower, upper, actual) -> float:
    """Share of origins whose actual lies in ``[lower, upper]``, ends included.

    Parameters
    ----------
    lower, upper, actual : array_like
        One value per origin: the band's ends and what happened.

    Returns
    -------
    float
        A fraction (0.8 expected of an honest P10-P90 band, 0.5 of a P25-P75 band).
    """
    lower, upper, actual = (np.asarray(x, dtype=float) for x in (lower, upper, actual))
    return float(np.mean((lower <= actual) & (actual <= upper)))


def mape(forecast, actual) -> float | None:
    """Mean ``|forecast - actual| / actual`` over the origins whose actual is not 0.

    Parameters
    ----------
    forecast, actual : array_like
        One point forecast (a P50, a baseline) and one actual per origin.

    Returns
    -------
    float or None
        A fraction; None when every actual is 0 (a relative miss of nothing is undefined).
    """
    forecast, actual = np.asarray(forecast, dtype=float), np.asarray(actual, dtype=float)
    some = actual > 0
    if not some.any():
        return None
    return float(np.mean(np.abs(forecast[some] - actual[some]) / actual[some]))


def pinball_loss(quantiles, levels, actual) -> float:
    """Mean pinball (quantile) loss over the levels and the origins.

    For a level ``tau``, a forecast quantile ``q`` and an actual ``y`` the loss is
    ``tau (y - q)`` when ``y >= q`` and ``(1 - tau) (q - y)`` when ``y < q``: the
    quantile that minimises its expectation is the true ``tau`` quantile, so a lower
    mean is a better forecast, in the actual's units.

    Parameters
    ----------
    quantiles : array_like, shape (origins, levels)
        Each origin's forecast quantiles.
    levels : array_like, shape (levels,)
        Their levels, e.g. ``(0.1, 0.5, 0.9)``.
    actual : array_like, shape (origins,)

    Returns
    -------
    float
    """
    quantiles = np.asarray(quantiles, dtype=float)
    levels = np.asarray(levels, dtype=float)
    miss = np.asarray(actual, dtype=float)[:, None] - quantiles
    return float(np.mean(np.maximum(levels * miss, (levels - 1.0) * miss)))


def scaled(loss: float, actual) -> float | None:
    """A loss divided by the mean actual, comparable across files and units (None if that mean is 0)."""
    mean = float(np.mean(np.asarray(actual, dtype=float)))
    return loss / mean if mean > 0 else None


def mid_pit(samples, actual: float) -> float:
    """Where the actual fell in the forecast's distribution: ``P(X < a) + 0.5 P(X = a)``.

    For a continuous forecast this is the PIT ``F(a)``; for counts (won deals) and for
    revenue's point mass at 0 it is the mid-PIT, which splits the forecast's mass at
    the actual evenly. Over many origins an honest forecast's PITs are spread evenly
    on ``[0, 1]``.

    Parameters
    ----------
    samples : array_like
        The forecast's simulated values.
    actual : float

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    samples = np.asarray(samples, dtype=float)
    return float(np.mean(samples < actual) + 0.5 * np.mean(samples == actual))


def pit_uniformity(pits) -> tuple[float, float]:
    """The Kolmogorov-Smirnov statistic and p-value of the PITs against the uniform on [0, 1].

    Parameters
    ----------
    pits : array_like
        One PIT per origin (:func:`mid_pit`).

    Returns
    -------
    (float, float)
        The statistic (largest gap between the PITs' cdf and the diagonal) and its
        p-value (:func:`scipy.stats.kstest`).
    """
    result = stats.kstest(np.asarray(pits, dtype=float), "uniform")
    return float(result.statistic), float(result.pvalue)


def pit_verdict(pits, p_value: float, alpha: float = ALPHA) -> str:
    """What the PITs say about the forecast, in plain words.

    With at least :data:`MIN_PIT_ORIGINS` PITs and a KS p-value below ``alpha``, the
    larger of two departures names the fault, each as a z-score against an honest
    forecast's: the mean PIT (0.5, SE ``sqrt(1 / (12 n))``; low means the actuals sit
    low in the forecast: it runs high) and the share in the tails (``2 * TAIL``, SE
    ``sqrt(p (1 - p) / n)``; more means the bands are too narrow, fewer too wide).

    Parameters
    ----------
    pits : array_like
    p_value : float
        From :func:`pit_uniformity`.
    alpha : float

    Returns
    -------
    str
    """
    pits = np.asarray(pits, dtype=float)
    n = pits.size
    if n < MIN_PIT_ORIGINS:
        too_few = "is too few" if n == 1 else "are too few"
        return (
            f"{counted(n, 'origin')} {too_few} to judge the shape of the forecast's errors (at least {MIN_PIT_ORIGINS})"
        )
    if p_value >= alpha:
        return "actuals fall across the forecast's range as often as it says: no sign of bias or of bands too narrow"
    expected_tails = 2 * TAIL
    z_mean = (pits.mean() - 0.5) / np.sqrt(1 / (12 * n))
    tails = np.mean((pits < TAIL) | (pits > 1 - TAIL))
    z_tails = (tails - expected_tails) / np.sqrt(expected_tails * (1 - expected_tails) / n)
    if abs(z_tails) > abs(z_mean):
        if z_tails > 0:
            return "actuals fall in the forecast's tails too often: bands too narrow"
        return "actuals crowd the middle of the forecast: bands too wide"
    if z_mean < 0:
        return "actuals fall low in the forecast too often: forecasts run high"
    return "actuals fall high in the forecast too often: forecasts run low"


def skill(error: float | None, reference: float | None) -> float | None:
    """``1 - error / reference``: above 0 the forecast misses less than the reference, 1 is perfect.

    None when either error is None or the reference is 0.
    """
    if error is None or reference is None or reference == 0:
        return None
    return 1.0 - error / reference

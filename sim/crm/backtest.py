"""Backtests: calibrate on what was known on past dates, forecast, and compare with what happened.

For each as-of date ``D`` the export is cut at ``D`` (:func:`sim.crm.calibrate.calibrate`
looks at nothing later), the calibrated scenario is simulated over the next ``N`` days,
and the forecast (P10, P50, P90 of won deals and revenue) is set against the actual: the
deals of the file, created at any time, that closed won in ``(D, D + N]``. A forecast
whose P10-P90 band holds the actual about 80% of the time over many dates is honest
about its uncertainty; the mean absolute percentage error of P50 says how close the
middle lands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.crm.calibrate import CalibrationError, calibrate, date_label, parse_as_of
from sim.crm.reader import CrmData
from sim.runner import simulate

QUANTILES = (0.1, 0.5, 0.9)


def _band(values: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.quantile(np.asarray(values, dtype=float), QUANTILES)
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90)}


def _inside(band: dict[str, float], actual: float) -> bool:
    return bool(band["p10"] <= actual <= band["p90"])


def _mape(pairs: list[tuple[float, float]]) -> float | None:
    """Mean |P50 - actual| / actual over the dates whose actual is not 0 (None if there are none)."""
    errors = [abs(p50 - actual) / actual for p50, actual in pairs if actual > 0]
    return float(np.mean(errors)) if errors else None


def actual_wins(deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float) -> dict[str, float]:
    """Won deals and their revenue, closed in ``(as_of, as_of + horizon_days]``, created at any time."""
    end = as_of + pd.Timedelta(days=horizon_days)
    won = deals[(deals["outcome"] == "won") & (deals["closed"] > as_of) & (deals["closed"] <= end)]
    return {"revenue": float(won["amount"].sum()), "deals": int(len(won))}


def backtest(
    crm: CrmData | pd.DataFrame,
    as_of_dates: list[Any],
    horizon_days: float,
    *,
    runs: int = 2_000,
    seed: int = 0,
    window_weeks: float = 13,
    jobs: int = 1,
    engine: str = "auto",
    history: pd.DataFrame | None = None,
) -> dict:
    """Backtest calibrated forecasts at several past dates.

    Parameters
    ----------
    crm : CrmData or pandas.DataFrame
        The export (:func:`sim.crm.reader.read_deals`), or its ``deals`` table.
    as_of_dates : list of datetime-like or str
        The dates to forecast from; each needs data up to ``as_of + horizon_days``.
    horizon_days : float
        Days forecast after each date.
    runs, seed, jobs, engine
        As :func:`sim.runner.simulate`; every date uses the same seed.
    window_weeks : float
        Trailing window of the inflow (as :func:`sim.crm.calibrate.calibrate`).
    history : pandas.DataFrame, optional
        A stage history (:func:`sim.crm.reader.read_stage_history`): each date's calibration
        then has one stage per stage name, from the rows entered by that date.

    Returns
    -------
    dict
        ``dates``: per date ``as_of``, ``forecast`` (``revenue`` and ``deals``, each
        ``p10``, ``p50``, ``p90``), ``actual`` (``revenue``, ``deals``) and
        ``inside_p10_p90`` (whether the actual revenue lies in the forecast's P10-P90
        band, ends included), plus ``inside_p10_p90_deals`` (the same for won deals).
        ``coverage``: share of dates whose revenue lies inside its band;
        ``mape_p50``: mean |P50 - actual| / actual of revenue, over dates with revenue
        (None if none had any). Both are fractions. ``coverage_deals`` and
        ``mape_p50_deals`` give the same for won deals; ``horizon_days``, ``runs``,
        ``seed`` and ``measure`` (``"revenue"``) say what was done.

    Raises
    ------
    CalibrationError
        One line per date that cannot be backtested (before any simulation is run):
        the data end too early to see the outcome, or nothing can be calibrated then.
    """
    deals = crm.deals if isinstance(crm, CrmData) else crm
    if not as_of_dates:
        raise CalibrationError(["as_of: give at least one date"])
    if not (isinstance(horizon_days, int | float) and 0 < horizon_days <= 3660):
        raise CalibrationError([f"horizon_days: must be a number of days from 1 to 3660, got {horizon_days!r}"])
    dates = [parse_as_of(d) if isinstance(d, str) else pd.Timestamp(d) for d in as_of_dates]
    last = max(deals["created"].max(), deals["closed"].max())
    problems, calibrations = [], []
    for as_of in dates:
        label = date_label(as_of)
        if as_of + pd.Timedelta(days=horizon_days) > last:
            problems.append(
                f"as_of {label}: cannot be backtested over {horizon_days:g} days: "
                f"the data end on {date_label(last)}, before {date_label(as_of + pd.Timedelta(days=horizon_days))}"
            )
            continue
        try:
            calibrations.append(
                calibrate(crm, as_of, window_weeks=window_weeks, horizon_days=horizon_days, history=history)
            )
        except CalibrationError as error:
            problems += error.problems
    if problems:
        raise CalibrationError(problems)

    rows = []
    for as_of, calibration in zip(dates, calibrations, strict=True):
        result = simulate(calibration.scenario, runs=runs, seed=seed, jobs=jobs, engine=engine)
        forecast = {"revenue": _band(result.outcomes.revenue), "deals": _band(result.outcomes.won_deals)}
        actual = actual_wins(deals, as_of, horizon_days)
        rows.append(
            {
                "as_of": date_label(as_of),
                "forecast": forecast,
                "actual": actual,
                "inside_p10_p90": _inside(forecast["revenue"], actual["revenue"]),
                "inside_p10_p90_deals": _inside(forecast["deals"], actual["deals"]),
            }
        )
    return {
        "dates": rows,
        "coverage": float(np.mean([r["inside_p10_p90"] for r in rows])),
        "mape_p50": _mape([(r["forecast"]["revenue"]["p50"], r["actual"]["revenue"]) for r in rows]),
        "coverage_deals": float(np.mean([r["inside_p10_p90_deals"] for r in rows])),
        "mape_p50_deals": _mape([(r["forecast"]["deals"]["p50"], r["actual"]["deals"]) for r in rows]),
        "measure": "revenue",
        "horizon_days": float(horizon_days),
        "runs": runs,
        "seed": seed,
    }

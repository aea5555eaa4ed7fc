"""Backtests: calibrate on what was known on past dates, forecast, and compare with what happened.

For each origin (as-of date) ``D`` the export is cut at ``D`` (:func:`sim.crm.calibrate.calibrate`
looks at nothing later), the calibrated scenario is simulated over the next ``N`` days,
and the forecast (P10, P25, P50, P75, P90 of won deals and revenue) is set against the
actual: the deals of the file, created at any time, that closed won in ``(D, D + N]``.
Over many origins (:func:`rolling_origins`) the scores of :mod:`sim.crm.scoring` say
whether the forecast is honest about its uncertainty (its bands hold the actual as
often as they claim; the PITs are uniform) and how close its middle lands, beside two
naive forecasts from the same file and origins (:mod:`sim.crm.baselines`): a forecast
that misses more than the run-rate has not earned its complexity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sim.crm import scoring
from sim.crm.baselines import actual_wins, run_rate, weighted_pipeline
from sim.crm.calibrate import CalibrationError, date_label, parse_as_of
from sim.crm.half_life import calibrate_choosing
from sim.crm.reader import CrmData
from sim.crm.segments import OTHER, calibrate_segments, in_segment, segment_values
from sim.runner import simulate
from sim.words import counted

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
BAND = ("p10", "p25", "p50", "p75", "p90")
PINBALL = ("p10", "p50", "p90")
"""The quantiles the pinball loss averages over."""
MEASURES = ("revenue", "deals")
BASELINES = ("run_rate", "weighted_pipeline")
MAX_DAYS = 3660


def _band(values: np.ndarray) -> dict[str, float]:
    return {key: float(q) for key, q in zip(BAND, np.quantile(np.asarray(values, dtype=float), QUANTILES), strict=True)}


def _inside(band: dict[str, float], actual: float, low: str = "p10", high: str = "p90") -> bool:
    return bool(band[low] <= actual <= band[high])


def _date(value: Any, field: str, problems: list[str]) -> pd.Timestamp | None:
    """``value`` as a date, or None with a ``field: ...`` line added to ``problems``."""
    if value is None:
        problems.append(f"{field}: give a date (YYYY-MM-DD)")
        return None
    try:
        stamp = parse_as_of(value) if isinstance(value, str) else pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        problems.append(f"{field}: not a date (YYYY-MM-DD), got {value!r}")
        return None
    return stamp


def rolling_origins(start: Any, stop: Any, every_days: Any) -> list[pd.Timestamp]:
    """Origins every ``every_days`` days from ``start`` up to ``stop`` (both ends included when they fall on it).

    Parameters
    ----------
    start, stop : datetime-like or str
        The first origin and the last date an origin may fall on (``YYYY-MM-DD``).
    every_days : int
        Whole days between origins, from 1 to 3660.

    Returns
    -------
    list of pandas.Timestamp

    Raises
    ------
    CalibrationError
        One line per problem, named by field: ``from`` (``start``), ``to`` (``stop``),
        ``every_days``.
    """
    problems: list[str] = []
    first, last = _date(start, "from", problems), _date(stop, "to", problems)
    number = isinstance(every_days, int | float | np.integer) and not isinstance(every_days, bool)
    if not (number and float(every_days).is_integer() and 1 <= every_days <= MAX_DAYS):
        problems.append(f"every_days: must be a whole number of days from 1 to {MAX_DAYS}, got {every_days!r}")
    if first is not None and last is not None and first > last:
        problems.append(f"from: {date_label(first)} is after the end of the range ({date_label(last)})")
    if problems:
        raise CalibrationError(problems)
    return list(pd.date_range(first, last, freq=pd.Timedelta(days=int(every_days))))


def _origin(deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float, scenario, outcomes) -> dict:
    """One origin's entry for one funnel: the forecast's band, the actual, where it fell, and the baselines."""
    baselines = {
        "run_rate": run_rate(deals, as_of, horizon_days),
        "weighted_pipeline": weighted_pipeline(deals, scenario, as_of, horizon_days),
    }
    return _entry(as_of, outcomes, actual_wins(deals, as_of, horizon_days), baselines)


def _entry(as_of: pd.Timestamp, outcomes, actual: dict, baselines: dict) -> dict:
    """One origin's entry from the simulated outcomes, the actual and the baselines' forecasts."""
    samples = {"revenue": outcomes.revenue, "deals": outcomes.won_deals}
    forecast = {m: _band(samples[m]) for m in MEASURES}
    return {
        "as_of": date_label(as_of),
        "forecast": forecast,
        "actual": actual,
        "inside_p10_p90": _inside(forecast["revenue"], actual["revenue"]),
        "inside_p10_p90_deals": _inside(forecast["deals"], actual["deals"]),
        "inside_p25_p75": _inside(forecast["revenue"], actual["revenue"], "p25", "p75"),
        "inside_p25_p75_deals": _inside(forecast["deals"], actual["deals"], "p25", "p75"),
        "pit": {m: scoring.mid_pit(samples[m], actual[m]) for m in MEASURES},
        "baselines": baselines,
    }


def _segmented_origin(deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float, calibration, result):
    """The total's entry and each segment's at one origin of a backtest by segment.

    The total's run-rate is the whole export's; its weighted pipeline the sum of the
    segments' (each weighs its open deals by its own funnel).
    """
    values = segment_values(deals)
    parts = []
    for part, outcome in zip(calibration.parts, result.segment_totals(), strict=True):
        mine = deals[in_segment(values, part.name, part.values).to_numpy()]
        parts.append(_origin(mine, as_of, horizon_days, part.scenario, outcome.outcomes))
    pipeline = {m: sum(p["baselines"]["weighted_pipeline"][m] for p in parts) for m in MEASURES}
    baselines = {"run_rate": run_rate(deals, as_of, horizon_days), "weighted_pipeline": pipeline}
    return _entry(as_of, result.outcomes, actual_wins(deals, as_of, horizon_days), baselines), parts


def _scores(rows: list[dict]) -> dict:
    """The scores over all origins, revenue bare and won deals with ``_deals`` (or under ``deals``)."""
    out: dict[str, Any] = {}
    pinball, pit, skill = {}, {}, {}
    baselines: dict[str, dict[str, Any]] = {
        name: {"values": [r["baselines"][name] for r in rows]} for name in BASELINES
    }
    for measure in MEASURES:
        suffix = "" if measure == "revenue" else "_deals"
        band = {key: np.array([r["forecast"][measure][key] for r in rows]) for key in BAND}
        actual = np.array([r["actual"][measure] for r in rows], dtype=float)
        out[f"coverage{suffix}"] = scoring.coverage(band["p10"], band["p90"], actual)
        out[f"mape_p50{suffix}"] = scoring.mape(band["p50"], actual)
        out[f"coverage_p25_p75{suffix}"] = scoring.coverage(band["p25"], band["p75"], actual)
        levels = [QUANTILES[BAND.index(key)] for key in PINBALL]
        loss = scoring.pinball_loss(np.column_stack([band[key] for key in PINBALL]), levels, actual)
        pinball[measure] = {"loss": loss, "scaled": scoring.scaled(loss, actual)}
        pits = [r["pit"][measure] for r in rows]
        statistic, p_value = scoring.pit_uniformity(pits)
        verdict = scoring.pit_verdict(pits, p_value)
        pit[measure] = {"values": pits, "ks_statistic": statistic, "p_value": p_value, "verdict": verdict}
        for name in BASELINES:
            point = [r["baselines"][name][measure] for r in rows]
            baselines[name][f"mape_p50{suffix}"] = scoring.mape(point, actual)
        skill[measure] = scoring.skill(out[f"mape_p50{suffix}"], baselines["run_rate"][f"mape_p50{suffix}"])
    return {**out, "pinball": pinball, "pit": pit, "baselines": baselines, "skill": skill}


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
    progress: Callable[[int, int], None] | None = None,
    **calibration_options: Any,
) -> dict:
    """Backtest calibrated forecasts at several past dates (origins), with scores and baselines.

    Parameters
    ----------
    crm : CrmData or pandas.DataFrame
        The export (:func:`sim.crm.reader.read_deals`), or its ``deals`` table.
    as_of_dates : list of datetime-like or str
        The origins to forecast from (e.g. :func:`rolling_origins`), in the order given;
        each needs data up to ``as_of + horizon_days``.
    horizon_days : float
        Days forecast after each origin.
    runs, seed, jobs, engine
        As :func:`sim.runner.simulate`; every origin uses the same seed.
    window_weeks : float
        Trailing window of the inflow (as :func:`sim.crm.calibrate.calibrate`).
    history : pandas.DataFrame, optional
        A stage history (:func:`sim.crm.reader.read_stage_history`): each origin's
        calibration then has one stage per stage name, from the rows entered by then.
    progress : callable, optional
        Called as ``progress(done, total)`` after each calibration and each simulation
        (``total`` is twice the number of origins).
    **calibration_options
        Passed on to :func:`sim.crm.calibrate.calibrate` at every origin;
        ``half_life_weeks="auto"`` chooses the half-life at each origin from the history
        before it (:func:`sim.crm.half_life.choose_half_life`), and each origin's entry
        gains ``half_life`` (the choice and its scores).

    Returns
    -------
    dict
        ``dates``: per origin ``as_of``; ``forecast`` (``revenue`` and ``deals``, each
        ``p10``, ``p25``, ``p50``, ``p75``, ``p90``); ``actual`` (``revenue``, ``deals``);
        ``inside_p10_p90`` (whether the actual revenue lies in the forecast's P10-P90
        band, ends included) and ``inside_p10_p90_deals`` (the same for won deals),
        ``inside_p25_p75`` and ``inside_p25_p75_deals`` (the P25-P75 band); ``pit``
        (``revenue``, ``deals``: :func:`sim.crm.scoring.mid_pit` of the actual);
        ``baselines`` (``run_rate``, ``weighted_pipeline``: each ``revenue``, ``deals``).

        Over all origins, revenue bare and won deals with ``_deals``: ``coverage`` and
        ``coverage_p25_p75`` (shares of origins whose actual lies in the band) and
        ``mape_p50`` (mean |P50 - actual| / actual over origins whose actual is not 0;
        None if none). Under ``revenue`` and ``deals``: ``pinball`` (``loss``, the mean
        pinball loss over P10, P50, P90, and ``scaled``, that over the mean actual, None
        if it is 0); ``pit`` (``values`` per origin, ``ks_statistic``, ``p_value`` against
        the uniform, and ``verdict`` in words); ``skill`` (``1 - mape_p50 / mape_p50`` of
        the run-rate; None when either is). ``baselines``: for ``run_rate`` and
        ``weighted_pipeline``, ``mape_p50``, ``mape_p50_deals`` and ``values`` per origin.
        ``origins`` (their number), ``horizon_days``, ``runs``, ``seed`` and ``measure``
        (``"revenue"``) say what was done. Shares and errors are fractions.

    Raises
    ------
    CalibrationError
        One line per origin that cannot be backtested (before any simulation is run):
        the data end too early to see the outcome, or nothing can be calibrated then.
    """
    deals = crm.deals if isinstance(crm, CrmData) else crm
    if not as_of_dates:
        raise CalibrationError(["as_of: give at least one date"])
    if not (isinstance(horizon_days, int | float) and 0 < horizon_days <= MAX_DAYS):
        raise CalibrationError([f"horizon_days: must be a number of days from 1 to {MAX_DAYS}, got {horizon_days!r}"])
    dates = [parse_as_of(d) if isinstance(d, str) else pd.Timestamp(d) for d in as_of_dates]
    last = max(deals["created"].max(), deals["closed"].max())
    total = 2 * len(dates)
    problems = [
        f"as_of {date_label(as_of)}: cannot be backtested over {counted(horizon_days, 'day')}: "
        f"the data end on {date_label(last)}, before {date_label(as_of + pd.Timedelta(days=horizon_days))}"
        for as_of in dates
        if as_of + pd.Timedelta(days=horizon_days) > last
    ]
    if problems:  # before any calibration: they take a second each
        raise CalibrationError(problems)
    calibrations, choices = [], []
    options = {**calibration_options, "window_weeks": window_weeks, "history": history}
    inner: dict = {}  # inner forecasts of an automatic half-life, shared between origins
    segmented = isinstance(crm, CrmData) and "segment" in crm.mapping
    groups = None  # by segment: the first origin's grouping, kept for every origin
    for done, as_of in enumerate(dates, start=1):
        try:
            if segmented:
                calibration = calibrate_segments(
                    crm, as_of, horizon_days=horizon_days, seed=seed, memo=inner, groups=groups, **options
                )
                if groups is None:  # the first origin decides the segments (nothing later is known there)
                    groups = {**calibration.groups, OTHER: calibration.groups.get(OTHER, ())}
                if len(groups) != len(calibration.parts):  # an empty other, kept so every origin has the same
                    calibration = calibrate_segments(
                        crm, as_of, horizon_days=horizon_days, seed=seed, memo=inner, groups=groups, **options
                    )
                if [p.name for p in calibration.parts] != list(groups):
                    pooled = ", ".join(sorted(set(groups) - {p.name for p in calibration.parts}))
                    raise CalibrationError([f"as_of {date_label(as_of)}: segment {pooled} could not be calibrated"])
                choice = calibration.choice
            else:
                calibration, choice = calibrate_choosing(
                    crm, as_of, horizon_days=horizon_days, seed=seed, memo=inner, **options
                )
            calibrations.append(calibration)
            choices.append(choice)
        except CalibrationError as error:
            problems += error.problems
        if progress is not None:
            progress(done, total)
    if problems:
        raise CalibrationError(problems)

    rows, by_segment = [], []
    for k, (as_of, calibration) in enumerate(zip(dates, calibrations, strict=True)):
        result = simulate(calibration.scenario, runs=runs, seed=seed, jobs=jobs, engine=engine)
        if segmented:
            row, parts = _segmented_origin(deals, as_of, horizon_days, calibration, result)
            rows.append(row)
            by_segment.append(parts)
        else:
            rows.append(_origin(deals, as_of, horizon_days, calibration.scenario, result.outcomes))
        if choices[k] is not None:
            rows[-1]["half_life"] = choices[k].as_dict()
        if progress is not None:
            progress(len(dates) + len(rows), total)
    answer = {
        "dates": rows,
        **_scores(rows),
        "origins": len(rows),
        "measure": "revenue",
        "horizon_days": float(horizon_days),
        "runs": runs,
        "seed": seed,
    }
    if segmented:
        answer["segment_column"] = calibrations[0].column
        answer["segments"] = [
            {"name": name, "values": list(values), "dates": parts, **_scores(parts)}
            for (name, values), parts in zip(groups.items(), zip(*by_segment, strict=True), strict=True)
        ]
    return answer

"""Calibration: a scenario from a CRM export, using only what was known on a given day.

On the as-of date ``D`` a deal is known only if it was created by ``D``; its outcome is
known only if it closed by ``D``; otherwise it was open on ``D``, aged ``D - created``
days. Later rows of the export are the future and are not looked at, so the same file
serves for calibration today and for backtests of past dates (:mod:`sim.backtest`).

Without a stage history the funnel is one stage, :data:`OPEN_STAGE`, from creation to
close: its conversion is the win rate, its ``duration`` the days from creation to a win
and its ``lost_duration`` the days to a loss. Both durations and the rate are fitted
jointly with the open deals as censored observations (:func:`sim.fitting.fit_outcomes`):
fitting closed deals alone keeps the quick ones and makes the cycle look short. The open
pipeline becomes ``[[open_deals]]`` with each deal's age and amount, so old "zombie"
deals, which have outlived the deals that close, come out unlikely to win.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sim.crm import CrmData
from sim.errors import InputError
from sim.fitting import THIN_DATA, DurationFit, OutcomeFit, fit_duration, fit_outcomes, fit_value, seasonality
from sim.scenario import (
    DAYS_PER_MONTH,
    Inflow,
    OpenDeal,
    Quota,
    Scenario,
    ScenarioError,
    Stage,
    problems_from,
    scenario_to_toml,
)
from sim.streams import aged_conversion

OPEN_STAGE = "Open pipeline"
"""The single stage of a funnel calibrated without a stage history."""
DAY = pd.Timedelta(days=1)
ZOMBIE_QUANTILE = 0.99
"""An open deal older than this quantile of both the won and the lost durations is a zombie."""
SEASONAL_YEARS = 2
"""Whole years of history needed before the inflow is made seasonal."""


class CalibrationError(InputError):
    """Data that cannot be calibrated from; ``problems`` holds one line per problem."""


@dataclass
class Snapshot:
    """The export as known on the as-of date.

    Attributes
    ----------
    as_of : pandas.Timestamp
    won, lost : ndarray
        Days from creation to close of the deals won (lost) by ``as_of``.
    won_amounts : ndarray
        Amounts of the deals won by ``as_of``.
    won_closed : pandas.Series
        Close dates of those won deals (for the default quota).
    open : pandas.DataFrame
        Deals open on ``as_of``: ``id``, ``age_days``, ``amount`` (NaN when blank).
    created : pandas.Series
        Creation dates of every known deal.
    unknown : int
        Deals of the file created after ``as_of`` (left out).
    """

    as_of: pd.Timestamp
    won: np.ndarray
    lost: np.ndarray
    won_amounts: np.ndarray
    won_closed: pd.Series
    open: pd.DataFrame
    created: pd.Series
    unknown: int


def parse_as_of(text: Any) -> pd.Timestamp:
    """An as-of date from ``YYYY-MM-DD`` (midnight, the start of that day) or an ISO date-time.

    Raises
    ------
    ValueError
        ``--as-of: ...`` for anything else.
    """
    value = str(text).strip()
    try:
        if len(value) < 10 or value[4] != "-" or value[7] != "-":
            raise ValueError
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"--as-of: not a date (YYYY-MM-DD), got {text!r}") from None
    if stamp is pd.NaT:
        raise ValueError(f"--as-of: not a date (YYYY-MM-DD), got {text!r}")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def date_label(as_of: pd.Timestamp) -> str:
    """A date as YYYY-MM-DD, or in full ISO form when it has a time of day."""
    return as_of.strftime("%Y-%m-%d") if as_of == as_of.normalize() else as_of.isoformat()


def snapshot(deals: pd.DataFrame, as_of: Any) -> Snapshot:
    """What the export said on ``as_of``: closed deals with durations, open deals with ages.

    Parameters
    ----------
    deals : pandas.DataFrame
        :attr:`sim.crm.CrmData.deals`.
    as_of : datetime-like
        The information cut-off: deals created after it are ignored, and those closed
        after it count as open on it.

    Returns
    -------
    Snapshot
    """
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    known = deals[deals["created"] <= as_of]
    closed = known["outcome"].isin(["won", "lost"]) & (known["closed"] <= as_of)
    days = (known["closed"] - known["created"]) / DAY
    won = closed & (known["outcome"] == "won")
    lost = closed & (known["outcome"] == "lost")
    still = known[~closed]
    return Snapshot(
        as_of=as_of,
        won=days[won].to_numpy(dtype=float),
        lost=days[lost].to_numpy(dtype=float),
        won_amounts=known.loc[won, "amount"].to_numpy(dtype=float),
        won_closed=known.loc[won, "closed"],
        open=pd.DataFrame(
            {
                "id": still["id"].astype(str),
                "age_days": ((as_of - still["created"]) / DAY).to_numpy(dtype=float),
                "amount": still["amount"].to_numpy(dtype=float),
            }
        ).reset_index(drop=True),
        created=known["created"],
        unknown=int(len(deals) - len(known)),
    )


def naive_duration_fit(snap: Snapshot) -> DurationFit:
    """The won-duration fit a spreadsheet would make: closed deals only, open ones ignored.

    Kept to show (and test) the short bias that :func:`calibrate` avoids.
    """
    return fit_duration(snap.won)


@dataclass
class Calibration:
    """The result of :func:`calibrate`: the scenario, the fits behind it, and the report."""

    scenario: Scenario
    report: dict
    snapshot: Snapshot
    outcomes: OutcomeFit
    value: DurationFit


def fit_summary(fit: DurationFit) -> dict:
    """A JSON-ready summary of a fit: the chosen family, its parameters, AIC and KS distance."""
    table = fit.table
    chosen = table[table["family"] == fit.family]
    row = chosen.iloc[0] if not chosen.empty else None
    return {
        "family": fit.family,
        "mean": float(fit.model.mean()),
        "sd": float(fit.model.std()),
        "parameters": {k: float(v) for k, v in row["parameters"].items()} if row is not None else {},
        "aic": float(row["aic"]) if row is not None else None,
        "ks_distance": float(fit.ks_distance),
        "n_complete": fit.n_complete,
        "n_censored": fit.n_censored,
        "note": fit.note,
        "candidates": [
            {"family": r["family"], "aic": float(r["aic"]), "ks_distance": float(r["ks_distance"])}
            for _, r in table.iterrows()
        ],
    }


def _month_factor(profile: dict[int, float], start: pd.Timestamp, days: float) -> float:
    """Mean seasonal factor over ``days`` from ``start``, on a quarter-day grid."""
    grid = start + pd.to_timedelta(np.arange(0.125, max(days, 0.25), 0.25), unit="D")
    return float(np.mean([profile[m] for m in grid.month]))


def seasonal_inflow(created: pd.Series, as_of: pd.Timestamp, window_weeks: float, horizon_days: float):
    """Seasonality for the scenario: the window's mean factor and one multiplier per scenario month.

    :func:`sim.fitting.seasonality` gives one factor per calendar month; the scenario's
    months are periods of :data:`sim.scenario.DAYS_PER_MONTH` days from the as-of date,
    so each gets the mean factor of the days it covers. None when the history is
    shorter than :data:`SEASONAL_YEARS` years.
    """
    # A 53-week horizon touches every calendar month once: the whole profile.
    months = seasonality(created, as_of, horizon_weeks=53, min_years=SEASONAL_YEARS)
    if months is None:
        return None
    calendar = pd.period_range(as_of.to_period("M"), periods=len(months), freq="M")
    profile = {period.month: factor for period, factor in zip(calendar, months, strict=True)}
    window_days = 7 * window_weeks
    window = _month_factor(profile, as_of - pd.Timedelta(days=window_days), window_days)
    n_months = max(1, math.ceil(horizon_days / DAYS_PER_MONTH - 1e-9))
    multipliers = []
    for k in range(n_months):
        begin = k * DAYS_PER_MONTH
        length = min(horizon_days, (k + 1) * DAYS_PER_MONTH) - begin
        multipliers.append(_month_factor(profile, as_of + pd.Timedelta(days=begin), length))
    return window, multipliers


def calibrate(
    crm: CrmData | pd.DataFrame,
    as_of: Any,
    *,
    window_weeks: float = 13,
    horizon_days: float = 91,
    quota_revenue: float | None = None,
    quota_deals: int | None = None,
    seasonal: bool = True,
    name: str | None = None,
) -> Calibration:
    """Calibrate a single-stage scenario from a CRM export as known on ``as_of``.

    Parameters
    ----------
    crm : CrmData or pandas.DataFrame
        From :func:`sim.crm.read_deals` (or its ``deals`` table).
    as_of : datetime-like or str
        The information cut-off (a date means the start of that day).
    window_weeks : float
        Trailing window for the inflow and the default quota.
    horizon_days : float
        The scenario's horizon.
    quota_revenue, quota_deals : optional
        The quota; at most one. Default: the revenue won in the trailing window, scaled
        to the horizon (won deals if nothing was won in the window).
    seasonal : bool
        Estimate monthly inflow multipliers when there are :data:`SEASONAL_YEARS` years
        of history.
    name : str, optional
        The scenario's name.

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        When nothing can be fitted (no deal created by ``as_of``, none won) or an option
        is bad, one ``field: problem`` line each.
    """
    deals = crm.deals if isinstance(crm, CrmData) else crm
    source = crm.source if isinstance(crm, CrmData) else "deals"
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    label = date_label(as_of)
    problems = []
    if not (isinstance(window_weeks, int | float) and math.isfinite(window_weeks) and window_weeks > 0):
        problems.append(f"--window-weeks: must be a number > 0, got {window_weeks!r}")
    if not (isinstance(horizon_days, int | float) and math.isfinite(horizon_days) and 0 < horizon_days <= 3660):
        problems.append(f"--horizon-days: must be a number of days from 1 to 3660, got {horizon_days!r}")
    if quota_revenue is not None and quota_deals is not None:
        problems.append("--quota-revenue: give at most one of --quota-revenue and --quota-deals")
    if problems:
        raise CalibrationError(problems)
    snap = snapshot(deals, as_of)
    if snap.created.empty:
        first = deals["created"].min()
        raise CalibrationError(
            [f"--as-of {label}: no deal was created by then (the first is from {date_label(first)})"]
        )
    if snap.won.size == 0:
        raise CalibrationError(
            [f"--as-of {label}: no deal had been won by then, so there is nothing to fit how long winning takes"]
        )
    warnings: list[str] = []
    last = max(deals["created"].max(), deals["closed"].max())
    if as_of > last:
        warnings.append(
            f"as-of {label} is after the last date in the file ({date_label(last)}): deals open in the file are "
            "taken to be still open on it"
        )

    outcomes = fit_outcomes(snap.won, snap.lost, snap.open["age_days"])
    value = fit_value(snap.won_amounts)
    for what, fit in (("won duration", outcomes.won), ("lost duration", outcomes.lost), ("deal value", value)):
        if fit is not None:
            warnings += [f"{what}: {w}" for w in fit.warnings]
    if snap.lost.size == 0:
        warnings.append("no deal had been lost: lost deals are taken to last as long as won ones")
    closed = snap.won.size + snap.lost.size
    if closed < THIN_DATA:
        warnings.append(f"only {closed} won or lost deals (fewer than {THIN_DATA}): the win rate is uncertain")
    if not outcomes.converged:
        warnings.append(f"the joint fit did not settle in {outcomes.iterations} iterations: treat it with care")

    # Inflow: the trailing window's rate, deseasonalised when seasonality is known.
    window_start = as_of - pd.Timedelta(weeks=window_weeks)
    in_window = int(((snap.created > window_start) & (snap.created <= as_of)).sum())
    observed = in_window / window_weeks
    if snap.created.min() > window_start:
        warnings.append(
            f"the history starts {date_label(snap.created.min())}, inside the {window_weeks:g}-week window: "
            "the inflow is understated"
        )
    season = seasonal_inflow(snap.created, as_of, window_weeks, horizon_days) if seasonal else None
    per_week, multipliers, window_factor = observed, None, 1.0
    if season is not None:
        window_factor, multipliers = season
        per_week = observed / window_factor if window_factor > 0 else observed

    # Zombies: older than nearly every deal that closed, won or lost.
    limit = float(outcomes.won.model.ppf(ZOMBIE_QUANTILE))
    if outcomes.lost is not None:
        limit = max(limit, float(outcomes.lost.model.ppf(ZOMBIE_QUANTILE)))
    zombies = snap.open[snap.open["age_days"] > limit]
    if len(zombies):
        examples = ", ".join(zombies["id"].head(5))
        warnings.append(
            f"{len(zombies)} open deals are older than {limit:.0f} days (the {ZOMBIE_QUANTILE:.0%} point of both "
            f"won and lost durations), e.g. {examples}: zombies, nearly certain not to be won; close them in the CRM"
        )

    # Quota: by default, the trailing window's won revenue at the same pace.
    won_in_window = (snap.won_closed > window_start) & (snap.won_closed <= as_of)
    pace = horizon_days / (7 * window_weeks)
    if quota_revenue is not None:
        quota, basis = Quota(revenue=quota_revenue), "given"
    elif quota_deals is not None:
        quota, basis = Quota(deals=quota_deals), "given"
    else:
        revenue = float(snap.won_amounts[won_in_window.to_numpy()].sum()) * pace
        if revenue > 0:
            quota = Quota(revenue=revenue)
            basis = f"revenue won in the {window_weeks:g} weeks to {label}, scaled to {horizon_days:g} days"
        else:
            quota, basis = Quota(deals=1), "nothing was won in the window: one won deal"
            warnings.append("no revenue was won in the window: the default quota is one won deal")

    open_deals = [
        OpenDeal(
            stage=OPEN_STAGE,
            age_days=float(row.age_days),
            amount=None if not math.isfinite(row.amount) else float(row.amount),
            name=str(row.id),
        )
        for row in snap.open.itertuples(index=False)
    ]
    try:
        scenario = Scenario(
            name=(name or f"Calibrated from {Path(source).name} as of {label}")[:200],
            description=(
                f"Calibrated by funnel-sim from {source} with what was known on {label}: "
                f"{snap.won.size} won, {snap.lost.size} lost, {len(snap.open)} open; inflow over the "
                f"{window_weeks:g} weeks before."
            ),
            horizon_days=float(horizon_days),
            quota=quota,
            inflow=Inflow(per_week=per_week, multipliers=tuple(multipliers) if multipliers else None),
            deal_value=value.model,
            stages=(
                Stage(
                    name=OPEN_STAGE,
                    conversion=outcomes.rate,
                    duration=outcomes.won.model,
                    lost_duration=outcomes.lost.model if outcomes.lost is not None else None,
                ),
            ),
            open_deals=tuple(open_deals),
        )
    except ValidationError as error:
        raise CalibrationError(problems_from(error)) from None
    except ScenarioError as error:  # pragma: no cover - the models above are validated already
        raise CalibrationError(error.problems) from None

    stage = scenario.stages[0]
    p_open = np.asarray(aged_conversion(stage, outcomes.rate.mean(), snap.open["age_days"].to_numpy()))
    report = {
        "source": source,
        "as_of": label,
        "horizon_days": float(horizon_days),
        "window_weeks": float(window_weeks),
        "rows": crm.report() if isinstance(crm, CrmData) else {"rows_used": len(deals)},
        "counts": {
            "known": int(len(snap.created)),
            "won": int(snap.won.size),
            "lost": int(snap.lost.size),
            "open": int(len(snap.open)),
            "created_in_window": in_window,
            "created_after_as_of": snap.unknown,
        },
        "rate": {
            "mean": outcomes.rate.mean(),
            "concentration": outcomes.rate.concentration,
            "p_mle": outcomes.p,
            "expected_won": outcomes.expected_won,
            "expected_lost": outcomes.expected_lost,
            "em_iterations": outcomes.iterations,
            "converged": outcomes.converged,
        },
        "won_duration": fit_summary(outcomes.won),
        "lost_duration": fit_summary(outcomes.lost) if outcomes.lost is not None else None,
        "deal_value": fit_summary(value),
        "inflow": {
            "per_week": per_week,
            "observed_per_week": observed,
            "window_factor": window_factor,
            "expected_over_horizon": scenario.expected_arrivals,
        },
        "seasonality": {"per": "month", "multipliers": list(multipliers)} if multipliers else None,
        "open_pipeline": {
            "deals": len(snap.open),
            "with_amount": int(np.isfinite(snap.open["amount"]).sum()),
            "expected_wins": float(p_open.sum()),
            "zombies": int(len(zombies)),
            "zombie_age_days": limit,
        },
        "quota": {"unit": quota.unit, "target": quota.target, "basis": basis},
        "warnings": warnings,
    }
    return Calibration(scenario=scenario, report=report, snapshot=snap, outcomes=outcomes, value=value)


def write_scenario(scenario: Scenario, path: str | Path, force: bool = False) -> Path:
    """Write the scenario as TOML, atomically, refusing to replace a file unless ``force``.

    The text goes to a temporary file in the same directory, which then replaces the
    target in one step: a failure never leaves half a file.

    Raises
    ------
    CalibrationError
        ``-o: ...`` when the file exists (without ``force``) or cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise CalibrationError([f"-o: {path} is a directory"])
    if path.exists() and not force:
        raise CalibrationError([f"-o: {path} already exists; use --force to overwrite it"])
    text = scenario_to_toml(scenario)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise CalibrationError([f"-o: cannot write in {directory} ({error.strerror})"]) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a scenario is an ordinary file
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise CalibrationError([f"-o: cannot write {path} ({error.strerror})"]) from None
    return path

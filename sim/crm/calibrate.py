"""Calibration: a scenario from a CRM export, using only what was known on a given day.

On the as-of date ``D`` a deal is known only if it was created by ``D``; its outcome is
known only if it closed by ``D``; otherwise it was open on ``D``, aged ``D - created``
days. Later rows of the export are the future and are not looked at, so the same file
serves for calibration today and for backtests of past dates (:mod:`sim.crm.backtest`).

Without a stage history the funnel is one stage, :data:`OPEN_STAGE`, from creation to
close: its conversion is the win rate, its ``duration`` the days from creation to a win
and its ``lost_duration`` the days to a loss. Both durations and the rate are fitted
jointly with the open deals as censored observations (:func:`sim.crm.fitting.fit_outcomes`):
fitting closed deals alone keeps the quick ones and makes the cycle look short. The open
pipeline becomes ``[[open_deals]]`` with each deal's age and amount, so old "zombie"
deals, which have outlived the deals that close, come out unlikely to win.

With a stage history (:func:`sim.crm.reader.read_stage_history`: which stage each deal entered,
and when) the funnel has one stage per stage name, in the order deals usually enter them
(:func:`stage_order`), and each stage is fitted the same way from its own episodes
(:func:`stage_episodes`): a deal that entered the stage by the as-of date either moved on
(entered a later stage, or was won from it), was lost in it, or is still in it, aged
from its entry to the stage. Open deals are listed in their current stage with that age.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sim.crm import DEFAULT_HALF_LIFE_WEEKS
from sim.crm.baselines import open_win_chances
from sim.crm.fitting import (
    DURATION_CHOICES,
    NONPARAMETRIC_POINTS,
    THIN_DATA,
    DurationFit,
    OutcomeFit,
    fit_duration,
    fit_outcomes,
    fit_value,
    seasonality,
)
from sim.crm.reader import CrmData, outcome_of_stage
from sim.crm.report import (
    CalibrationReport,
    DealCounts,
    FitSummary,
    HistorySummary,
    InflowSummary,
    OpenPipeline,
    QuotaSummary,
    RateSummary,
    RowCounts,
    SeasonalitySummary,
    StageCounts,
    StageReport,
)
from sim.crm.rounding import tidy_scenario
from sim.crm.spread import (
    GAP_WEEKS,
    RateSpread,
    inflow_dispersion,
    rate_spread,
    recency_weights,
    value_spread,
    weekly_counts,
)
from sim.errors import InputError
from sim.model.distributions import Empirical
from sim.model.scenario import (
    DAYS_PER_MONTH,
    MAX_DISPERSION,
    Inflow,
    OpenDeal,
    Quota,
    Scenario,
    ScenarioError,
    Stage,
    problems_from,
    scenario_to_toml,
)
from sim.words import counted, human

OPEN_STAGE = "Open pipeline"
"""The single stage of a funnel calibrated without a stage history."""
DAY = pd.Timedelta(days=1)
ZOMBIE_QUANTILE = 0.99
"""An open deal older than this quantile of both the won and the lost durations is a zombie."""
SEASONAL_YEARS = 2
"""Whole years of history needed before the inflow is made seasonal."""
UNCERTAINTIES = ("history", "sampling")
"""How uncertain a calibrated scenario's rates and inflow are: as they varied between past
periods (``history``), or only the sampling error of the fits (``sampling``)."""
MAX_HALF_LIFE_WEEKS = 520.0


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
    won_created, lost_created : ndarray of datetime64
        Their creation dates.
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
    won_created: np.ndarray
    lost_created: np.ndarray
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
        ``as_of: ...`` for anything else.
    """
    value = str(text).strip()
    try:
        if len(value) < 10 or value[4] != "-" or value[7] != "-":
            raise ValueError
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"as_of: not a date (YYYY-MM-DD), got {text!r}") from None
    if stamp is pd.NaT:
        raise ValueError(f"as_of: not a date (YYYY-MM-DD), got {text!r}")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def date_label(as_of: pd.Timestamp) -> str:
    """A date as YYYY-MM-DD, or in full ISO form when it has a time of day."""
    return as_of.strftime("%Y-%m-%d") if as_of == as_of.normalize() else as_of.isoformat()


def snapshot(deals: pd.DataFrame, as_of: Any) -> Snapshot:
    """What the export said on ``as_of``: closed deals with durations, open deals with ages.

    Parameters
    ----------
    deals : pandas.DataFrame
        :attr:`sim.crm.reader.CrmData.deals`.
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
        won_created=known.loc[won, "created"].to_numpy(),
        lost_created=known.loc[lost, "created"].to_numpy(),
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
class StageEpisodes:
    """What the deals did in one stage, as known on the as-of date.

    Attributes
    ----------
    name : str
    converted, lost : ndarray
        Days from entering the stage to moving on (entering a later stage, or a win),
        and to a loss in it.
    open : pandas.DataFrame
        Deals in the stage on the as-of date: ``id``, ``age_days`` (days since they
        entered it), ``amount``.
    converted_entered, lost_entered : ndarray of datetime64
        When the converted and the lost deals entered the stage (their creation date
        without a stage history).
    skipped : int
        Deals that went from an earlier stage straight to a later one (or to a win)
        without entering this one; they are not among its observations.
    """

    name: str
    converted: np.ndarray
    lost: np.ndarray
    open: pd.DataFrame
    converted_entered: np.ndarray
    lost_entered: np.ndarray
    skipped: int = 0

    def entered(self, as_of: pd.Timestamp) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, pd.DatetimeIndex]:
        """When the converted, the lost and the open deals entered the stage."""
        opened = as_of - pd.to_timedelta(self.open["age_days"].to_numpy(dtype=float), unit="D")
        return pd.DatetimeIndex(self.converted_entered), pd.DatetimeIndex(self.lost_entered), pd.DatetimeIndex(opened)


def _history_known(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """History rows entered by ``as_of``, without the closing rows (``Closed Won``/``Lost``)."""
    keep = (history["entered"] <= as_of) & (history["stage"].map(outcome_of_stage) == "open")
    return history.loc[keep, ["id", "stage", "entered"]]


def stage_order(history: pd.DataFrame) -> list[str]:
    """The funnel's stages in the order deals usually enter them.

    Each deal's stages are ranked by the date it first entered them (0 for its first);
    stages are ordered by the median of their ranks over the deals that entered them,
    ties broken by the mean rank, then by more deals first, then by name. The median
    keeps a few deals that skip a stage or move back from reordering the funnel.

    Parameters
    ----------
    history : pandas.DataFrame
        ``id``, ``stage``, ``entered`` (as :func:`sim.crm.reader.read_stage_history`); closing
        stages (won or lost, by :func:`sim.crm.reader.outcome_of_stage`) are left out.
    """
    open_rows = history[history["stage"].map(outcome_of_stage) == "open"]
    first = open_rows.sort_values(["id", "entered"], kind="stable").drop_duplicates(["id", "stage"])
    ranks = pd.DataFrame({"stage": first["stage"], "rank": first.groupby("id").cumcount()})
    stats = ranks.groupby("stage")["rank"].agg(["median", "mean", "size"]).reset_index()
    stats = stats.sort_values(["median", "mean", "size", "stage"], ascending=[True, True, False, True])
    return stats["stage"].tolist()


def stage_episodes(
    deals: pd.DataFrame, history: pd.DataFrame, as_of: Any, order: list[str] | None = None
) -> tuple[list[StageEpisodes], dict[str, int]]:
    """Each stage's converted, lost and open observations on ``as_of``, from a stage history.

    Only what was known on ``as_of`` is used: deals created by then, history rows
    entered by then, outcomes of deals closed by then.

    A deal's stages are taken in funnel order (``order``), each at the first date it
    entered it; a stage ends when the deal enters the next stage it visits (at the
    earliest on the day it entered this one: moving back is not modelled). After its
    last stage a deal is won (that stage converted, after ``closed - entered`` days),
    lost (lost in that stage) or open in it, aged ``as_of - entered``. Stages a deal
    passed over are *ignored* for it (counted in :attr:`StageEpisodes.skipped`): each
    stage's rate and durations are those of the deals that entered it. A known deal
    with no history row by ``as_of`` is taken to have entered the first stage when it was
    created. History rows after a deal's close, and closing rows (``Closed Won``), are
    dropped.

    Parameters
    ----------
    deals : pandas.DataFrame
        :attr:`sim.crm.reader.CrmData.deals`.
    history : pandas.DataFrame
        :func:`sim.crm.reader.read_stage_history`.
    as_of : datetime-like
    order : list of str, optional
        Stage names in funnel order; by default :func:`stage_order` of the known history.

    Returns
    -------
    (list of StageEpisodes, dict)
        One entry per stage in funnel order, and counts: ``deals_with_history``,
        ``deals_without_history``, ``entries_used`` (stage entries, closing rows and
        rows after a close left out), ``rows_after_close``.
    """
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    known = deals[deals["created"] <= as_of]
    closed_known = known["closed"].where(known["outcome"].isin(["won", "lost"]) & (known["closed"] <= as_of))
    info = pd.DataFrame(
        {
            "id": known["id"].astype(str),
            "created": known["created"],
            "closed": closed_known,
            "outcome": known["outcome"].where(closed_known.notna(), "open"),
            "amount": known["amount"].astype(float),
        }
    ).set_index("id")
    rows = _history_known(history, as_of)
    rows = rows[rows["id"].isin(info.index)]
    if order is None:
        order = stage_order(rows)
    rows = rows[rows["stage"].isin(order)]
    close = info["closed"].reindex(rows["id"]).to_numpy()
    after_close = pd.notna(close) & (rows["entered"].to_numpy() > close)
    rows = rows[~after_close]
    missing = info.index.difference(rows["id"].unique())
    if len(missing) and order:
        start = pd.DataFrame({"id": missing, "stage": order[0], "entered": info.loc[missing, "created"].to_numpy()})
        rows = pd.concat([rows, start], ignore_index=True)
    position = {name: j for j, name in enumerate(order)}
    visits = rows.sort_values(["id", "entered"], kind="stable").drop_duplicates(["id", "stage"]).copy()
    visits["pos"] = visits["stage"].map(position).astype(int)
    visits = visits.sort_values(["id", "pos"], kind="stable").reset_index(drop=True)
    same = visits["id"].shift(-1) == visits["id"]
    next_entered = visits["entered"].shift(-1).where(same)
    next_pos = visits["pos"].shift(-1).where(same)
    last = ~same
    deal = info.reindex(visits["id"])
    outcome = deal["outcome"].to_numpy()
    end = pd.Series(np.where(last, deal["closed"].to_numpy(), next_entered.to_numpy()), dtype="datetime64[us]")
    days = np.maximum(((end - visits["entered"]) / DAY).to_numpy(dtype=float), 0.0)
    converted = (~last).to_numpy() | (last.to_numpy() & (outcome == "won"))
    lost = last.to_numpy() & (outcome == "lost")
    still = last.to_numpy() & (outcome == "open")
    # Stages jumped over: between a stage and the next one visited, or after a win from before the last.
    jump_to = np.where(last, np.where(outcome == "won", len(order), visits["pos"] + 1), next_pos.fillna(0))
    skipped = np.zeros(len(order), dtype=int)
    for pos, to in zip(visits["pos"].to_numpy(), jump_to.astype(int), strict=True):
        skipped[pos + 1 : to] += 1
    episodes = []
    for j, name in enumerate(order):
        here = (visits["pos"] == j).to_numpy()
        opened = here & still
        episodes.append(
            StageEpisodes(
                name=name,
                converted=days[here & converted],
                lost=days[here & lost],
                converted_entered=visits.loc[here & converted, "entered"].to_numpy(),
                lost_entered=visits.loc[here & lost, "entered"].to_numpy(),
                open=pd.DataFrame(
                    {
                        "id": visits.loc[opened, "id"].astype(str).to_numpy(),
                        "age_days": ((as_of - visits.loc[opened, "entered"]) / DAY).to_numpy(dtype=float),
                        "amount": deal["amount"].to_numpy(dtype=float)[opened],
                    }
                ),
                skipped=int(skipped[j]),
            )
        )
    counts = {
        "deals_with_history": int(len(info) - len(missing)),
        "deals_without_history": int(len(missing)),
        "entries_used": int(len(rows) - len(missing)),
        "rows_after_close": int(after_close.sum()),
    }
    return episodes, counts


@dataclass
class Calibration:
    """The result of :func:`calibrate`: the scenario, the fits behind it, and the report.

    Attributes
    ----------
    scenario : Scenario
        The calibrated scenario.
    report : CalibrationReport
        What was read, fitted and made, with the warnings (:meth:`CalibrationReport.as_dict`
        for JSON).
    snapshot : Snapshot
        The export as known on the as-of date.
    outcomes : OutcomeFit
        The first stage's joint fit (the only one without a stage history).
    value : DurationFit
        The fit of the won deals' amounts.
    stages : list of StageEpisodes
        Each stage's observations, in funnel order (one stage without a history).
    stage_outcomes : list of OutcomeFit
        Each stage's joint fit, in funnel order; ``outcomes`` is the first.
    """

    scenario: Scenario
    report: CalibrationReport
    snapshot: Snapshot
    outcomes: OutcomeFit
    value: DurationFit
    stages: list[StageEpisodes] = field(default_factory=list)
    stage_outcomes: list[OutcomeFit] = field(default_factory=list)


def _month_factor(profile: dict[int, float], start: pd.Timestamp, days: float) -> float:
    """Mean seasonal factor over ``days`` from ``start``, on a quarter-day grid."""
    grid = start + pd.to_timedelta(np.arange(0.125, max(days, 0.25), 0.25), unit="D")
    return float(np.mean([profile[m] for m in grid.month]))


def seasonal_inflow(created: pd.Series, as_of: pd.Timestamp, window_weeks: float, horizon_days: float):
    """Seasonality for the scenario: the window's mean factor and one multiplier per scenario month.

    :func:`sim.crm.fitting.seasonality` gives one factor per calendar month; the scenario's
    months are periods of :data:`sim.model.scenario.DAYS_PER_MONTH` days from the as-of date,
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


def _check_options(
    window_weeks: Any,
    horizon_days: Any,
    quota_revenue: float | None,
    quota_deals: int | None,
    uncertainty: Any = "history",
    half_life_weeks: Any = None,
    durations: Any = "auto",
) -> None:
    """Refuse bad options of :func:`calibrate`, one ``field: problem`` line each.

    Raises
    ------
    CalibrationError
        For a window that is not a number > 0, a horizon not from 1 to 3660 days,
        both quotas, an unknown uncertainty, or a half-life that is not a number of
        weeks in (0, 520].
    """
    problems = []
    if durations not in DURATION_CHOICES:
        problems.append(f"durations: must be one of {', '.join(DURATION_CHOICES)}, got {durations!r}")
    if uncertainty not in UNCERTAINTIES:
        problems.append(f"uncertainty: must be one of {', '.join(UNCERTAINTIES)}, got {uncertainty!r}")
    if half_life_weeks is not None and not (
        isinstance(half_life_weeks, int | float)
        and not isinstance(half_life_weeks, bool)
        and math.isfinite(half_life_weeks)
        and 0 < half_life_weeks <= MAX_HALF_LIFE_WEEKS
    ):
        problems.append(
            f"half_life_weeks: must be a number of weeks above 0 and at most {MAX_HALF_LIFE_WEEKS:g}, "
            f"got {half_life_weeks!r}"
        )
    if not (isinstance(window_weeks, int | float) and math.isfinite(window_weeks) and window_weeks > 0):
        problems.append(f"window_weeks: must be a number > 0, got {window_weeks!r}")
    if not (isinstance(horizon_days, int | float) and math.isfinite(horizon_days) and 0 < horizon_days <= 3660):
        problems.append(f"horizon_days: must be a number of days from 1 to 3660, got {horizon_days!r}")
    if quota_revenue is not None and quota_deals is not None:
        problems.append("quota_revenue: give at most one of quota_revenue and quota_deals")
    if problems:
        raise CalibrationError(problems)


def _known_data(deals: pd.DataFrame, as_of: pd.Timestamp) -> tuple[Snapshot, list[str]]:
    """The snapshot on ``as_of``, refused when it has nothing to fit, and its warnings.

    Raises
    ------
    CalibrationError
        ``as_of DATE: ...`` when no deal had been created, or none won, by then.
    """
    label = date_label(as_of)
    snap = snapshot(deals, as_of)
    if snap.created.empty:
        first = deals["created"].min()
        raise CalibrationError([f"as_of {label}: no deal was created by then (the first is from {date_label(first)})"])
    if snap.won.size == 0:
        raise CalibrationError(
            [f"as_of {label}: no deal had been won by then, so there is nothing to fit how long winning takes"]
        )
    warnings = []
    last = max(deals["created"].max(), deals["closed"].max())
    if as_of > last:
        warnings.append(
            f"as-of {label} is after the last date in the file ({date_label(last)}): deals open in the file are "
            "taken to be still open on it"
        )
    return snap, warnings


def _stage_observations(
    deals: pd.DataFrame, snap: Snapshot, history: pd.DataFrame | None
) -> tuple[list[StageEpisodes], dict[str, int] | None]:
    """Each stage's episodes (the one :data:`OPEN_STAGE` without a history) and the history's counts.

    Raises
    ------
    CalibrationError
        ``history: ...`` when no deal had entered a stage, or a stage that no deal had
        left, by the as-of date.
    """
    label = date_label(snap.as_of)
    if history is None:
        episodes, counts = (
            [StageEpisodes(OPEN_STAGE, snap.won, snap.lost, snap.open, snap.won_created, snap.lost_created)],
            None,
        )
    else:
        episodes, counts = stage_episodes(deals, history, snap.as_of)
        if not episodes:
            raise CalibrationError([f"history: no deal had entered a stage by {label}"])
    problems = [
        f"history: stage {e.name!r}: no deal had moved on from it by {label}, so there is nothing to fit "
        "how long it takes"
        for e in episodes
        if e.converted.size == 0
    ]
    if problems:
        raise CalibrationError(problems)
    return episodes, counts


def _stage_warnings(e: StageEpisodes, fit: OutcomeFit, multi: bool) -> list[str]:
    """What to say about one stage's fit: its durations' warnings, thin data, no convergence, skips."""
    where = f"stage {e.name!r}: " if multi else ""
    moved = "moved on" if multi else "won"
    warnings = []
    for what, part in ((f"{moved} duration", fit.won), ("lost duration", fit.lost)):
        if part is not None:
            warnings += [f"{where}{what}: {w}" for w in part.warnings]
    if e.lost.size == 0:
        warnings.append(f"{where}no deal had been lost: lost deals are taken to last as long as {moved} ones")
    closed = e.converted.size + e.lost.size
    if closed < THIN_DATA:
        warnings.append(
            f"{where}only {counted(closed, f'{moved} or lost deal')} (fewer than {THIN_DATA}): the "
            f"{'conversion' if multi else 'win'} rate is uncertain"
        )
    if not fit.converged:
        warnings.append(f"{where}the joint fit did not settle in {fit.iterations} iterations: treat it with care")
    passed = e.skipped + e.converted.size
    if multi and e.skipped and e.skipped >= 0.05 * passed:
        warnings.append(
            f"stage {e.name!r}: {counted(e.skipped, 'deal')} went past it without entering it; its rate and "
            "durations are "
            "those of the deals that entered it, and the scenario sends every deal through it"
        )
    return warnings


def evidence_date(e: StageEpisodes, as_of: pd.Timestamp) -> pd.Timestamp:
    """The date a stage's outcome evidence is recent to: when its newest closed deal entered it.

    Recency weighting discounts evidence for its age relative to the newest evidence
    there is. In a funnel with long cycles no deal that entered lately has closed yet;
    counting the ages of its outcomes from ``as_of`` would discount every one of them
    alike, shrinking the information without tilting it toward anything more recent.
    ``as_of`` when nothing has closed.
    """
    converted, lost, _ = e.entered(as_of)
    closed = converted.append(lost)
    return min(closed.max(), as_of) if len(closed) else as_of


def _recency(e: StageEpisodes, as_of: pd.Timestamp, half_life_weeks: float | None) -> dict[str, np.ndarray]:
    """The stage's recency weights by entry date, as :func:`sim.crm.fitting.fit_outcomes` takes them."""
    if half_life_weeks is None:
        return {}
    converted, lost, opened = e.entered(as_of)
    newest = evidence_date(e, as_of)
    return {
        "won_weights": recency_weights(converted, newest, half_life_weeks),
        "lost_weights": recency_weights(lost, newest, half_life_weeks),
        "open_weights": recency_weights(opened, newest, half_life_weeks),
    }


def _fit_stages(
    episodes: list[StageEpisodes],
    multi: bool,
    as_of: pd.Timestamp,
    half_life_weeks: float | None,
    durations: str = "auto",
    never_closed: bool = False,
) -> tuple[list[OutcomeFit], list[str]]:
    """Each stage's joint fit of rate and durations (open deals censored), and the warnings about them."""
    fits = [
        fit_outcomes(
            e.converted,
            e.lost,
            e.open["age_days"],
            durations=durations,
            never_closed=never_closed,
            **_recency(e, as_of, half_life_weeks),
        )
        for e in episodes
    ]
    warnings = [w for e, fit in zip(episodes, fits, strict=True) for w in _stage_warnings(e, fit, multi)]
    return fits, warnings


def _rate_spread(e: StageEpisodes, fit: OutcomeFit, as_of: pd.Timestamp, half_life_weeks: float | None) -> RateSpread:
    """The stage's rate for the coming period, from its monthly entry cohorts.

    A closed deal is a whole trial; an open one counts for what its survival so far
    already says about its outcome (:attr:`sim.crm.fitting.OutcomeFit.open_known`), with
    its chance of being won.
    """
    converted, lost, opened = e.entered(as_of)
    dates = converted.append(lost).append(opened)
    known = fit.open_known
    successes = np.concatenate([np.ones(len(converted)), np.zeros(len(lost)), fit.weights])
    trials = np.concatenate([np.ones(len(converted) + len(lost)), known])
    return rate_spread(
        fit.rate.mean(),
        fit.rate.concentration,
        np.asarray(dates.to_period("M").astype(str)),
        successes,
        trials,
        recency_weights(dates, evidence_date(e, as_of), half_life_weeks),
        np.asarray((as_of - dates) / pd.Timedelta(weeks=1), dtype=float),
    )


@dataclass(frozen=True)
class _Inflow:
    """The inflow estimate: deals created in the window, their weekly rate, and its seasonal form."""

    in_window: int
    observed: float
    per_week: float
    window_factor: float
    multipliers: list[float] | None
    warnings: list[str]
    dispersion: float = 0.0
    dispersion_note: str = "not measured: Poisson around one rate"


def _estimate_inflow(
    snap: Snapshot,
    window_weeks: float,
    horizon_days: float,
    seasonal: bool,
    uncertainty: str = "sampling",
    half_life_weeks: float | None = None,
) -> _Inflow:
    """The rate of new deals, deseasonalised when seasonality is known.

    ``sampling``: the trailing window's count over its length (understated when the
    history is younger than the window). ``history``: the same over the time the history
    covers when shorter, or the recency-weighted mean of all weeks with a half-life; and
    the spread between periods (:func:`sim.crm.spread.inflow_dispersion`).
    """
    as_of = snap.as_of
    window_start = as_of - pd.Timedelta(weeks=window_weeks)
    in_window = int(((snap.created > window_start) & (snap.created <= as_of)).sum())
    observed = in_window / window_weeks
    warnings = []
    young = snap.created.min() > window_start
    if uncertainty == "history":
        # A history younger than the window is read over the time it covers, not the window.
        history_days = (as_of - snap.created.min()) / DAY
        counts = weekly_counts(snap.created, as_of)
        if counts.size == 0:
            newest = snap.created.max()
            raise CalibrationError(
                [
                    f"as_of {date_label(as_of)}: no deal was created in the {counted(GAP_WEEKS, 'week')} before it "
                    "(the newest "
                    f"is from {date_label(newest)}), so there is no inflow to measure; the export may end earlier"
                ]
            )
        if half_life_weeks is not None:
            weights = np.exp2(-(np.arange(counts.size)[::-1] + 0.5) / half_life_weeks)
            observed = float(np.dot(weights, counts) / weights.sum())
        elif young and history_days >= 7:
            observed = in_window / (history_days / 7)
    elif young:
        warnings.append(
            f"the history starts {date_label(snap.created.min())}, inside the {window_weeks:g}-week window: "
            "the inflow is understated"
        )
    season = seasonal_inflow(snap.created, as_of, window_weeks, horizon_days) if seasonal else None
    per_week, multipliers, window_factor = observed, None, 1.0
    if season is not None:
        window_factor, multipliers = season
        per_week = observed / window_factor if window_factor > 0 else observed
    if uncertainty == "sampling":
        return _Inflow(in_window, observed, per_week, window_factor, multipliers, warnings)
    spread = inflow_dispersion(snap.created, as_of, window_weeks, horizon_days, half_life_weeks)
    warnings += list(spread.warnings)
    return _Inflow(in_window, observed, per_week, window_factor, multipliers, warnings, spread.dispersion, spread.note)


def _lost_model(fit: OutcomeFit, zombie_age: float):
    """The stage's lost duration; with deals that never close, a mixture with them at the zombie age.

    Not won is lost in time (share ``q``) or never closed (``z``): :data:`NONPARAMETRIC_POINTS`
    values, ``q / (q + z)`` of them the lost duration's quantiles and the rest the zombie
    age, by which nearly every deal that closes has closed.
    """
    if fit.lost is None:
        return None
    z = fit.never_closed
    q = 1.0 - fit.p - z
    if z <= 0 or q <= 0:
        return fit.lost.model
    closing = max(1, round(NONPARAMETRIC_POINTS * q / (q + z)))
    values = np.concatenate(
        [
            np.asarray(fit.lost.model.ppf((np.arange(closing) + 0.5) / closing), dtype=float),
            np.full(NONPARAMETRIC_POINTS - closing, zombie_age),
        ]
    )
    return Empirical(dist="empirical", values=tuple(float(v) for v in values))


def _zombies(
    episodes: list[StageEpisodes], fits: list[OutcomeFit], multi: bool, dropped: bool = False
) -> tuple[list[float], int, list[str]]:
    """Each stage's zombie age, the open deals older than theirs, and the warning about them.

    A zombie is older than nearly every deal that left its stage, won (moved on) or lost:
    the :data:`ZOMBIE_QUANTILE` point of both durations.
    """
    parts, limits = [], []
    for e, fit in zip(episodes, fits, strict=True):
        limit = float(fit.won.model.ppf(ZOMBIE_QUANTILE))
        if fit.lost is not None:
            limit = max(limit, float(fit.lost.model.ppf(ZOMBIE_QUANTILE)))
        limits.append(limit)
        parts.append(e.open[e.open["age_days"] > limit])
    zombies = pd.concat(parts, ignore_index=True)
    warnings = []
    if len(zombies):
        examples = ", ".join(zombies["id"].head(5))
        days = counted(round(limits[0]), "day") if not multi else "their stage allows"
        warnings.append(
            f"{counted(len(zombies), 'open deal')} {'is' if len(zombies) == 1 else 'are'} older than {days} "
            f"(the {ZOMBIE_QUANTILE:.0%} point of both "
            f"won and lost durations), e.g. {examples}: zombies, "
            + ("counted as lost and left out of the forecast" if dropped else "nearly certain not to be won")
            + "; close them in the CRM"
        )
    return limits, int(len(zombies)), warnings


def _quota(
    snap: Snapshot,
    window_weeks: float,
    horizon_days: float,
    quota_revenue: float | None,
    quota_deals: int | None,
) -> tuple[Quota, str, list[str]]:
    """The quota given, or by default the trailing window's won revenue at the same pace; its basis; warnings."""
    as_of = snap.as_of
    if quota_revenue is not None:
        return Quota(revenue=quota_revenue), "given", []
    if quota_deals is not None:
        return Quota(deals=quota_deals), "given", []
    window_start = as_of - pd.Timedelta(weeks=window_weeks)
    won_in_window = (snap.won_closed > window_start) & (snap.won_closed <= as_of)
    pace = horizon_days / (7 * window_weeks)
    revenue = float(snap.won_amounts[won_in_window.to_numpy()].sum()) * pace
    if revenue > 0:
        basis = (
            f"revenue won in the {counted(window_weeks, 'week')} to {date_label(as_of)}, scaled to "
            f"{counted(horizon_days, 'day')}"
        )
        return Quota(revenue=revenue), basis, []
    return (
        Quota(deals=1),
        "nothing was won in the window: one won deal",
        ["no revenue was won in the window: the default quota is one won deal"],
    )


def pace_quota(snap: Snapshot, window_weeks: float, horizon_days: float) -> Quota:
    """The default quota: the revenue won in the trailing window, scaled to the horizon (one won deal if none)."""
    return _quota(snap, window_weeks, horizon_days, None, None)[0]


def _scenario(
    *,
    name: str | None,
    source: str,
    snap: Snapshot,
    window_weeks: float,
    horizon_days: float,
    quota: Quota,
    inflow: _Inflow,
    value: DurationFit,
    episodes: list[StageEpisodes],
    fits: list[OutcomeFit],
    spreads: list[RateSpread] | None,
    zombie_ages: list[float],
    drop_zombies: bool = False,
    value_dispersion: float = 0.0,
) -> Scenario:
    """The calibrated scenario: one stage per fit, the open deals listed in their stages.

    Each stage's rate is its spread between periods when measured (``spreads``), else
    the fit's sampling Beta. With ``drop_zombies`` the open deals older than their
    stage's zombie age are left out (lost in fact), and the deals a fit found never close
    take their place in the lost duration (:func:`_lost_model`), so a listed deal's chance
    of being won allows for them.

    Raises
    ------
    CalibrationError
        When the scenario does not validate (the scenario's own ``field: problem`` lines).
    """
    label = date_label(snap.as_of)
    open_deals = [
        OpenDeal(
            stage=e.name,
            age_days=float(row.age_days),
            amount=None if not math.isfinite(row.amount) else float(row.amount),
            name=str(row.id),
        )
        for e, limit in zip(episodes, zombie_ages, strict=True)
        for row in e.open.itertuples(index=False)
        if not (drop_zombies and row.age_days > limit)
    ]
    multipliers = inflow.multipliers
    rates = [fit.rate for fit in fits] if spreads is None else [spread.rate for spread in spreads]
    try:
        scenario = Scenario(
            name=(name or f"Calibrated from {Path(source).name} as of {label}")[:200],
            description=(
                f"Calibrated by funnel-sim from {source} with what was known on {label}: "
                f"{human(snap.won.size, 'count')} won, {human(snap.lost.size, 'count')} lost, "
                f"{human(len(snap.open), 'count')} open; inflow over the {counted(window_weeks, 'week')} before."
            ),
            horizon_days=float(horizon_days),
            quota=quota,
            inflow=Inflow(
                per_week=inflow.per_week,
                multipliers=tuple(multipliers) if multipliers else None,
                dispersion=inflow.dispersion,
            ),
            deal_value=value.model,
            deal_value_dispersion=value_dispersion,
            stages=tuple(
                Stage(
                    name=e.name,
                    conversion=rate,
                    duration=fit.won.model,
                    lost_duration=_lost_model(fit, limit),
                )
                for e, fit, rate, limit in zip(episodes, fits, rates, zombie_ages, strict=True)
            ),
            open_deals=tuple(open_deals),
        )
    except ValidationError as error:
        raise CalibrationError(problems_from(error)) from None
    except ScenarioError as error:  # pragma: no cover - the models above are validated already
        raise CalibrationError(error.problems) from None
    return tidy_scenario(scenario)


def _stage_report(e: StageEpisodes, fit: OutcomeFit, spread: RateSpread | None, zombie_age: float) -> StageReport:
    """One stage's counts, rate, durations and zombie age."""
    return StageReport(
        name=e.name,
        counts=StageCounts(
            entered=int(e.converted.size + e.lost.size + len(e.open)),
            converted=int(e.converted.size),
            lost=int(e.lost.size),
            open=int(len(e.open)),
            skipped=e.skipped,
        ),
        rate=RateSummary.from_fit(fit, spread),
        duration=FitSummary.from_fit(fit.won),
        lost_duration=FitSummary.from_fit(fit.lost) if fit.lost is not None else None,
        zombie_age_days=zombie_age,
    )


def _report(
    *,
    crm: CrmData | pd.DataFrame,
    source: str,
    snap: Snapshot,
    window_weeks: float,
    horizon_days: float,
    history: pd.DataFrame | None,
    history_counts: dict[str, int] | None,
    episodes: list[StageEpisodes],
    fits: list[OutcomeFit],
    spreads: list[RateSpread] | None,
    value: DurationFit,
    value_sd: float,
    half_life_weeks: float | None,
    inflow: _Inflow,
    zombie_ages: list[float],
    zombies: int,
    scenario: Scenario,
    quota: Quota,
    basis: str,
    warnings: list[str],
) -> CalibrationReport:
    """The typed report of a calibration from its parts."""
    multi = history is not None
    outcomes = fits[0]
    if isinstance(crm, CrmData):
        rows, columns = RowCounts.from_dict(crm.report()), dict(crm.mapping)
    else:
        rows, columns = RowCounts(rows_used=len(crm)), None
    return CalibrationReport(
        source=source,
        as_of=date_label(snap.as_of),
        horizon_days=float(horizon_days),
        window_weeks=float(window_weeks),
        rows=rows,
        columns=columns,
        counts=DealCounts(
            known=int(len(snap.created)),
            won=int(snap.won.size),
            lost=int(snap.lost.size),
            open=int(len(snap.open)),
            created_in_window=inflow.in_window,
            created_after_as_of=snap.unknown,
        ),
        rate=None if multi else RateSummary.from_fit(outcomes, spreads[0] if spreads else None),
        won_duration=None if multi else FitSummary.from_fit(outcomes.won),
        lost_duration=None if multi or outcomes.lost is None else FitSummary.from_fit(outcomes.lost),
        stages=tuple(
            _stage_report(e, fit, spread, limit)
            for e, fit, spread, limit in zip(episodes, fits, spreads or [None] * len(fits), zombie_ages, strict=True)
        ),
        history=None
        if history is None
        else HistorySummary(
            rows=RowCounts.from_dict(history.attrs.get("report", {"rows_used": len(history)})), **history_counts
        ),
        deal_value=FitSummary.from_fit(value),
        inflow=InflowSummary(
            per_week=inflow.per_week,
            observed_per_week=inflow.observed,
            window_factor=inflow.window_factor,
            expected_over_horizon=scenario.expected_arrivals,
            dispersion=inflow.dispersion,
            dispersion_note=inflow.dispersion_note,
        ),
        seasonality=SeasonalitySummary(multipliers=tuple(inflow.multipliers)) if inflow.multipliers else None,
        open_pipeline=OpenPipeline(
            deals=len(snap.open),
            with_amount=int(np.isfinite(snap.open["amount"]).sum()),
            expected_wins=float(open_win_chances(scenario).sum()),
            zombies=zombies,
            zombie_age_days=zombie_ages[0] if not multi else None,
        ),
        quota=QuotaSummary(unit=quota.unit, target=quota.target, basis=basis),
        warnings=tuple(warnings),
        uncertainty="sampling" if spreads is None else "history",
        half_life_weeks=half_life_weeks,
        deal_value_spread=value_sd,
    )


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
    history: pd.DataFrame | None = None,
    uncertainty: str = "history",
    half_life_weeks: float | None = DEFAULT_HALF_LIFE_WEEKS,
    durations: str = "auto",
) -> Calibration:
    """Calibrate a scenario from a CRM export as known on ``as_of``.

    The steps: the data known on ``as_of``, each stage's joint fit, the deal value, the
    inflow, the zombies among the open deals, the quota, the scenario, and the report.

    Parameters
    ----------
    crm : CrmData or pandas.DataFrame
        From :func:`sim.crm.reader.read_deals` (or its ``deals`` table).
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
    history : pandas.DataFrame, optional
        A stage history (:func:`sim.crm.reader.read_stage_history`). Without it the funnel is
        the one stage :data:`OPEN_STAGE`; with it, one stage per stage name in the order
        of :func:`stage_order`, each fitted from :func:`stage_episodes`, and the report's
        top-level ``rate``, ``won_duration`` and ``lost_duration`` are None (see its
        ``stages``).
    uncertainty : {"history", "sampling"}
        ``history``: each rate's Beta is the spread between monthly cohorts
        (:func:`sim.crm.spread.rate_spread`) and the inflow's level varies between
        replications as the inflow forecast's error did at past dates
        (:func:`sim.crm.spread.inflow_dispersion`). ``sampling``: only the fits'
        sampling error, a Poisson inflow around one rate (too narrow wherever periods
        differ; kept to show it).
    half_life_weeks : float, optional
        Recency weighting: a deal counts ``0.5 ** (age / half_life)`` in the rate and
        duration fits (age since it entered the stage), an amount by its close date, a
        week's new deals by its age (the inflow is then the weighted weekly mean over
        the whole history, not the window's). None: every deal counts the same.
        Default :data:`DEFAULT_HALF_LIFE_WEEKS`.
    durations : {"auto", "parametric", "nonparametric"}
        How durations are modelled (:func:`sim.crm.fitting.fit_outcomes`): ``auto``
        takes the best family unless it fits poorly, then the data themselves
        (Aalen-Johansen, won and lost competing, open deals censored).

    Returns
    -------
    Calibration
        With the typed :class:`sim.crm.report.CalibrationReport` as its ``report``.

    Raises
    ------
    ValueError
        ``as_of: ...`` for a string that is not a date (:func:`parse_as_of`).
    CalibrationError
        When nothing can be fitted (no deal created by ``as_of``, none won, a stage that
        no deal has left yet) or an option is bad, one ``field: problem`` line each,
        named by the parameter (``as_of``, ``window_weeks``, ``horizon_days``,
        ``quota_revenue``, ``history``).
    """
    deals = crm.deals if isinstance(crm, CrmData) else crm
    source = crm.source if isinstance(crm, CrmData) else "deals"
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    _check_options(window_weeks, horizon_days, quota_revenue, quota_deals, uncertainty, half_life_weeks, durations)
    snap, warnings = _known_data(deals, as_of)
    episodes, history_counts = _stage_observations(deals, snap, history)
    multi = history is not None
    history_mode = uncertainty == "history"
    fits, fit_warnings = _fit_stages(episodes, multi, as_of, half_life_weeks, durations, history_mode)
    spreads = None
    if uncertainty == "history":
        spreads = [_rate_spread(e, fit, as_of, half_life_weeks) for e, fit in zip(episodes, fits, strict=True)]
        fit_warnings += [
            (f"stage {e.name!r}: " if multi else "") + w
            for e, s in zip(episodes, spreads, strict=True)
            for w in s.warnings
        ]
    value = fit_value(
        snap.won_amounts, recency_weights(snap.won_closed, as_of, half_life_weeks) if half_life_weeks else None
    )
    value_sd = value_spread(snap.won_amounts, np.asarray(snap.won_closed.dt.to_period("M").astype(str)))
    inflow = _estimate_inflow(snap, window_weeks, horizon_days, seasonal, uncertainty, half_life_weeks)
    zombie_ages, zombies, zombie_warnings = _zombies(episodes, fits, multi, dropped=history_mode)
    quota, basis, quota_warnings = _quota(snap, window_weeks, horizon_days, quota_revenue, quota_deals)
    warnings += [
        *fit_warnings,
        *(f"deal value: {w}" for w in value.warnings),
        *inflow.warnings,
        *zombie_warnings,
        *quota_warnings,
    ]
    scenario = _scenario(
        name=name,
        source=source,
        snap=snap,
        window_weeks=window_weeks,
        horizon_days=horizon_days,
        quota=quota,
        inflow=inflow,
        value=value,
        episodes=episodes,
        fits=fits,
        spreads=spreads,
        zombie_ages=zombie_ages,
        drop_zombies=history_mode,
        value_dispersion=min(value_sd, MAX_DISPERSION) if history_mode else 0.0,
    )
    report = _report(
        crm=crm,
        source=source,
        snap=snap,
        window_weeks=window_weeks,
        horizon_days=horizon_days,
        history=history,
        history_counts=history_counts,
        episodes=episodes,
        fits=fits,
        spreads=spreads,
        value=value,
        value_sd=value_sd,
        half_life_weeks=half_life_weeks,
        inflow=inflow,
        zombie_ages=zombie_ages,
        zombies=zombies,
        scenario=scenario,
        quota=quota,
        basis=basis,
        warnings=warnings,
    )
    return Calibration(
        scenario=scenario,
        report=report,
        snapshot=snap,
        outcomes=fits[0],
        value=value,
        stages=episodes,
        stage_outcomes=fits,
    )


def check_output(path: str | Path, force: bool = False) -> Path:
    """Refuse an output path that cannot be written, before any work is done for it.

    Raises
    ------
    CalibrationError
        ``-o: ...`` for a directory, a file that exists (without ``force``), or a
        folder that does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise CalibrationError([f"-o: {path} is a directory, not a file"])
    if path.exists() and not force:
        raise CalibrationError([f"-o: {path} already exists; use --force to overwrite it"])
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CalibrationError([f"-o: cannot write in {directory} (no such folder)"])
    return path


def write_scenario(scenario: Scenario, path: str | Path, force: bool = False) -> Path:
    """Write the scenario as TOML, atomically, refusing to replace a file unless ``force``.

    The text goes to a temporary file in the same directory, which then replaces the
    target in one step: a failure never leaves half a file.

    Raises
    ------
    CalibrationError
        ``-o: ...`` when the file exists (without ``force``) or cannot be written.
    """
    path = check_output(path, force)
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

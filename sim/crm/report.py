"""The calibration report: typed, frozen records of what :func:`sim.crm.calibrate.calibrate` did.

:class:`CalibrationReport` holds the columns used, the rows read, used and skipped, the
deal counts on the as-of date, a :class:`FitSummary` per fitted duration and the deal
value, a :class:`RateSummary` per fitted rate, a :class:`StageReport` per stage, the
inflow, the open pipeline, the quota and the warnings. The command line and the app
read its attributes; :meth:`CalibrationReport.as_dict` gives the JSON-ready dictionary
that ``funnel-sim calibrate --json`` prints (its keys, values and order are part of the
command's output, held by ``tests/test_snapshot.py``).

The records hold plain values only; building them from the fits is
:func:`sim.crm.calibrate.calibrate`'s work (with :meth:`FitSummary.from_fit` and
:meth:`RateSummary.from_fit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.crm.fitting import DurationFit, OutcomeFit
from sim.crm.spread import RateSpread


@dataclass(frozen=True)
class Candidate:
    """One family tried for a fit.

    Attributes
    ----------
    family : str
    aic : float
        Akaike information criterion of the family's best parameters (lower is better).
    ks_distance : float
        Largest gap between the family's cdf and the data's.
    """

    family: str
    aic: float
    ks_distance: float

    def as_dict(self) -> dict[str, Any]:
        """``family``, ``aic``, ``ks_distance``."""
        return {"family": self.family, "aic": self.aic, "ks_distance": self.ks_distance}


@dataclass(frozen=True)
class FitSummary:
    """A fitted distribution (a duration or the deal value) in numbers.

    Attributes
    ----------
    family : str
        The family chosen (by AIC, or ``empirical`` when resampled).
    mean, sd : float
        The fitted distribution's mean and standard deviation.
    parameters : dict of str to float
        The chosen family's scipy parameters (empty when the family is not in the table).
    aic : float or None
        Its AIC (None when the family is not in the table).
    ks_distance : float
        Goodness of fit of the chosen model (0 = perfect).
    n_complete, n_censored : int
        Complete observations (closed deals) and censored ones (open deals) fitted.
    note : str
        How the family was chosen.
    candidates : tuple of Candidate
        Every family tried, in the fit's table order.
    """

    family: str
    mean: float
    sd: float
    parameters: dict[str, float]
    aic: float | None
    ks_distance: float
    n_complete: int
    n_censored: int
    note: str
    candidates: tuple[Candidate, ...]

    @classmethod
    def from_fit(cls, fit: DurationFit) -> FitSummary:
        """The summary of a :class:`sim.crm.fitting.DurationFit`."""
        table = fit.table
        chosen = table[table["family"] == fit.family]
        row = chosen.iloc[0] if not chosen.empty else None
        return cls(
            family=fit.family,
            mean=float(fit.model.mean()),
            sd=float(fit.model.std()),
            parameters={k: float(v) for k, v in row["parameters"].items()} if row is not None else {},
            aic=float(row["aic"]) if row is not None else None,
            ks_distance=float(fit.ks_distance),
            n_complete=fit.n_complete,
            n_censored=fit.n_censored,
            note=fit.note,
            candidates=tuple(
                Candidate(family=r["family"], aic=float(r["aic"]), ks_distance=float(r["ks_distance"]))
                for _, r in table.iterrows()
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary: the attributes, ``candidates`` as a list of dicts."""
        return {
            "family": self.family,
            "mean": self.mean,
            "sd": self.sd,
            "parameters": dict(self.parameters),
            "aic": self.aic,
            "ks_distance": self.ks_distance,
            "n_complete": self.n_complete,
            "n_censored": self.n_censored,
            "note": self.note,
            "candidates": [c.as_dict() for c in self.candidates],
        }


@dataclass(frozen=True)
class RateSummary:
    """A fitted conversion (or win) rate.

    Attributes
    ----------
    mean : float
        Mean of the Beta distribution of the rate.
    concentration : float
        Its concentration (alpha + beta): how sure the data make it.
    p_mle : float
        The joint fit's maximum-likelihood rate.
    expected_won, expected_lost : float
        Deals (closed and open) expected to convert and to be lost.
    em_iterations : int
        Iterations of the joint fit.
    converged : bool
        Whether the joint fit settled.
    cohorts : int or None
        Monthly cohorts whose spread made the Beta (None: the sampling Beta of the fit).
    between_sd : float or None
        The rate's sd between those cohorts (None when not measured).
    spread_note : str
        How the Beta was made, in words.
    """

    mean: float
    concentration: float
    p_mle: float
    expected_won: float
    expected_lost: float
    em_iterations: int
    converged: bool
    cohorts: int | None = None
    between_sd: float | None = None
    spread_note: str = "sampling error of the joint fit"

    @classmethod
    def from_fit(cls, fit: OutcomeFit, spread: RateSpread | None = None) -> RateSummary:
        """The rate of a :class:`sim.crm.fitting.OutcomeFit`, or its spread between periods when given."""
        rate = fit.rate if spread is None else spread.rate
        extra = {}
        if spread is not None:
            between = None if math.isnan(spread.between_sd) else spread.between_sd
            extra = {"cohorts": spread.cohorts, "between_sd": between, "spread_note": spread.note}
        return cls(
            mean=rate.mean(),
            concentration=rate.concentration,
            p_mle=fit.p,
            expected_won=fit.expected_won,
            expected_lost=fit.expected_lost,
            em_iterations=fit.iterations,
            converged=fit.converged,
            **extra,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "mean": self.mean,
            "concentration": self.concentration,
            "p_mle": self.p_mle,
            "expected_won": self.expected_won,
            "expected_lost": self.expected_lost,
            "em_iterations": self.em_iterations,
            "converged": self.converged,
            "cohorts": self.cohorts,
            "between_sd": self.between_sd,
            "spread_note": self.spread_note,
        }


@dataclass(frozen=True)
class SkippedRows:
    """Rows skipped for one reason: how many, and the first (up to 10) line numbers."""

    count: int
    lines: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """``count`` and ``lines`` (a list)."""
        return {"count": self.count, "lines": list(self.lines)}


@dataclass(frozen=True)
class RowCounts:
    """Rows of a file read, used and skipped.

    Attributes
    ----------
    rows_used : int
    rows_read, skipped : int or None
        None when the data did not come from a file (a bare table).
    skipped_by_reason : dict of str to SkippedRows, or None
        The skipped rows by reason, most common first; None as ``rows_read``.
    """

    rows_used: int
    rows_read: int | None = None
    skipped: int | None = None
    skipped_by_reason: dict[str, SkippedRows] | None = None

    @classmethod
    def from_dict(cls, report: Mapping[str, Any]) -> RowCounts:
        """From a reader's report (:meth:`sim.crm.reader.CrmData.report`), or just ``{"rows_used": n}``."""
        by_reason = report.get("skipped_by_reason")
        return cls(
            rows_used=report["rows_used"],
            rows_read=report.get("rows_read"),
            skipped=report.get("skipped"),
            skipped_by_reason=None
            if by_reason is None
            else {r: SkippedRows(e["count"], tuple(e["lines"])) for r, e in by_reason.items()},
        )

    @property
    def read(self) -> int:
        """Rows read: ``rows_read``, or the rows used when not known."""
        return self.rows_used if self.rows_read is None else self.rows_read

    @property
    def reasons(self) -> dict[str, SkippedRows]:
        """The skipped rows by reason (empty when none or not known)."""
        return self.skipped_by_reason or {}

    def as_dict(self) -> dict[str, Any]:
        """The reader's report again: only the keys it had, in its order."""
        out: dict[str, Any] = {}
        if self.rows_read is not None:
            out["rows_read"] = self.rows_read
        out["rows_used"] = self.rows_used
        if self.skipped is not None:
            out["skipped"] = self.skipped
        if self.skipped_by_reason is not None:
            out["skipped_by_reason"] = {r: e.as_dict() for r, e in self.skipped_by_reason.items()}
        return out


@dataclass(frozen=True)
class HistorySummary:
    """What the stage history gave: its rows, and how the deals matched it.

    Attributes
    ----------
    rows : RowCounts
        Rows of the history file read, used and skipped.
    deals_with_history, deals_without_history : int
        Known deals with and without a history row by the as-of date (those without are
        taken to enter the first stage on creation).
    entries_used : int
        Stage entries used (closing rows and rows after a close left out).
    rows_after_close : int
        History rows dated after their deal's close, dropped.
    """

    rows: RowCounts
    deals_with_history: int
    deals_without_history: int
    entries_used: int
    rows_after_close: int

    def as_dict(self) -> dict[str, Any]:
        """The rows' keys, then the counts, in one flat dictionary."""
        return {
            **self.rows.as_dict(),
            "deals_with_history": self.deals_with_history,
            "deals_without_history": self.deals_without_history,
            "entries_used": self.entries_used,
            "rows_after_close": self.rows_after_close,
        }


@dataclass(frozen=True)
class DealCounts:
    """Deals as known on the as-of date.

    Attributes
    ----------
    known : int
        Deals created by the as-of date.
    won, lost, open : int
        Of those: won and lost by then, and open on it.
    created_in_window : int
        Deals created in the trailing inflow window.
    created_after_as_of : int
        Deals of the file created later (left out).
    """

    known: int
    won: int
    lost: int
    open: int
    created_in_window: int
    created_after_as_of: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "known": self.known,
            "won": self.won,
            "lost": self.lost,
            "open": self.open,
            "created_in_window": self.created_in_window,
            "created_after_as_of": self.created_after_as_of,
        }


@dataclass(frozen=True)
class StageCounts:
    """One stage's observations: deals that entered it, moved on, were lost, are open, went past it."""

    entered: int
    converted: int
    lost: int
    open: int
    skipped: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "entered": self.entered,
            "converted": self.converted,
            "lost": self.lost,
            "open": self.open,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class StageReport:
    """One stage of the calibrated funnel.

    Attributes
    ----------
    name : str
    counts : StageCounts
    rate : RateSummary
        Its conversion rate.
    duration : FitSummary
        Days from entering it to moving on (to a win, for the single stage).
    lost_duration : FitSummary or None
        Days from entering it to a loss (None when no deal was lost in it).
    zombie_age_days : float
        Open deals older than this are zombies.
    """

    name: str
    counts: StageCounts
    rate: RateSummary
    duration: FitSummary
    lost_duration: FitSummary | None
    zombie_age_days: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary: nested records as dictionaries."""
        return {
            "name": self.name,
            "counts": self.counts.as_dict(),
            "rate": self.rate.as_dict(),
            "duration": self.duration.as_dict(),
            "lost_duration": None if self.lost_duration is None else self.lost_duration.as_dict(),
            "zombie_age_days": self.zombie_age_days,
        }


@dataclass(frozen=True)
class InflowSummary:
    """New deals a week.

    Attributes
    ----------
    per_week : float
        The scenario's rate (the observed one, deseasonalised when seasonal).
    observed_per_week : float
        Deals created a week in the trailing window.
    window_factor : float
        The window's mean seasonal factor (1 without seasonality).
    expected_over_horizon : float
        Arrivals the scenario expects over its horizon.
    dispersion : float
        The inflow level's relative sd between periods (the scenario's
        ``inflow.dispersion``; 0 for a plain Poisson inflow).
    dispersion_note : str
        How it was measured.
    """

    per_week: float
    observed_per_week: float
    window_factor: float
    expected_over_horizon: float
    dispersion: float = 0.0
    dispersion_note: str = "not measured: Poisson around one rate"

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "per_week": self.per_week,
            "observed_per_week": self.observed_per_week,
            "window_factor": self.window_factor,
            "expected_over_horizon": self.expected_over_horizon,
            "dispersion": self.dispersion,
            "dispersion_note": self.dispersion_note,
        }


@dataclass(frozen=True)
class SeasonalitySummary:
    """The inflow's multipliers, one per scenario month (``per`` is ``"month"``)."""

    multipliers: tuple[float, ...]
    per: str = "month"

    def as_dict(self) -> dict[str, Any]:
        """``per`` and ``multipliers`` (a list)."""
        return {"per": self.per, "multipliers": list(self.multipliers)}


@dataclass(frozen=True)
class OpenPipeline:
    """The deals open on the as-of date.

    Attributes
    ----------
    deals : int
    with_amount : int
        Those with an amount.
    expected_wins : float
        Wins expected from them eventually (older deals are less likely to be won).
    zombies : int
        Open deals older than their stage's :attr:`StageReport.zombie_age_days`.
    zombie_age_days : float or None
        The zombie age of the single stage (None with several stages: see the stages).
    """

    deals: int
    with_amount: int
    expected_wins: float
    zombies: int
    zombie_age_days: float | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "deals": self.deals,
            "with_amount": self.with_amount,
            "expected_wins": self.expected_wins,
            "zombies": self.zombies,
            "zombie_age_days": self.zombie_age_days,
        }


@dataclass(frozen=True)
class QuotaSummary:
    """The scenario's quota: ``unit`` (``"revenue"`` or ``"deals"``), ``target``, and where it came from."""

    unit: str
    target: float
    basis: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {"unit": self.unit, "target": self.target, "basis": self.basis}


@dataclass(frozen=True)
class CalibrationReport:
    """What a calibration read, fitted and made, with its warnings.

    Attributes
    ----------
    source : str
        The export's name.
    as_of : str
        The as-of date (YYYY-MM-DD, or ISO with a time of day).
    horizon_days, window_weeks : float
        The scenario's horizon and the trailing window of the inflow.
    rows : RowCounts
        Rows of the export read, used and skipped.
    columns : dict of str to str, or None
        Role -> the export's column (None for a bare table).
    counts : DealCounts
    rate, won_duration, lost_duration : RateSummary, FitSummary, FitSummary or None
        The single stage's win rate and durations; None with a stage history (see
        ``stages``), ``lost_duration`` also when no deal was lost.
    stages : tuple of StageReport
        Every stage in funnel order (one without a history).
    history : HistorySummary or None
        The stage history's rows and matches (None without one).
    deal_value : FitSummary
        The won deals' amounts.
    inflow : InflowSummary
    seasonality : SeasonalitySummary or None
        None when the inflow is not seasonal.
    open_pipeline : OpenPipeline
    quota : QuotaSummary
    warnings : tuple of str
        One line each, for the user.
    uncertainty : str
        ``"history"`` (rates and inflow vary as they did between past periods) or
        ``"sampling"`` (only the sampling error of the fits).
    half_life_weeks : float or None
        The recency weighting's half-life (None: every deal counts the same).
    deal_value_spread : float
        The mean won amount's relative sd between months, beyond sampling noise (the
        scenario's ``deal_value_dispersion`` with ``history`` uncertainty).
    """

    source: str
    as_of: str
    horizon_days: float
    window_weeks: float
    rows: RowCounts
    columns: dict[str, str] | None
    counts: DealCounts
    rate: RateSummary | None
    won_duration: FitSummary | None
    lost_duration: FitSummary | None
    stages: tuple[StageReport, ...]
    history: HistorySummary | None
    deal_value: FitSummary
    inflow: InflowSummary
    seasonality: SeasonalitySummary | None
    open_pipeline: OpenPipeline
    quota: QuotaSummary
    warnings: tuple[str, ...]
    uncertainty: str = "sampling"
    half_life_weeks: float | None = None
    deal_value_spread: float = 0.0

    @property
    def multi_stage(self) -> bool:
        """Whether the funnel was calibrated from a stage history (one stage per stage name)."""
        return self.history is not None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary that ``funnel-sim calibrate --json`` prints (with ``output``).

        Every record becomes a dictionary, tuples lists, and the keys keep the order of
        the attributes.
        """

        def maybe(record) -> dict[str, Any] | None:
            return None if record is None else record.as_dict()

        return {
            "source": self.source,
            "as_of": self.as_of,
            "horizon_days": self.horizon_days,
            "window_weeks": self.window_weeks,
            "rows": self.rows.as_dict(),
            "columns": None if self.columns is None else dict(self.columns),
            "counts": self.counts.as_dict(),
            "rate": maybe(self.rate),
            "won_duration": maybe(self.won_duration),
            "lost_duration": maybe(self.lost_duration),
            "stages": [s.as_dict() for s in self.stages],
            "history": maybe(self.history),
            "deal_value": self.deal_value.as_dict(),
            "inflow": self.inflow.as_dict(),
            "seasonality": maybe(self.seasonality),
            "open_pipeline": self.open_pipeline.as_dict(),
            "quota": self.quota.as_dict(),
            "warnings": list(self.warnings),
            "uncertainty": self.uncertainty,
            "half_life_weeks": self.half_life_weeks,
            "deal_value_spread": self.deal_value_spread,
        }

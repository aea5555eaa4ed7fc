"""Calibration per segment: one funnel for each territory, product line or channel of an export.

An export column (``--column segment=NAME``) splits the deals into segments, and each
segment value with enough data gets its own funnel, calibrated from its own deals by
:func:`sim.crm.calibrate.calibrate` with what was known on the as-of date. The one idea:
**a segment stands alone only when its own wins can carry a fit**. The won-duration and
deal-value fits rest on won deals, and below :data:`MIN_SEGMENT_WINS` (the calibration's
own thin-data mark, :data:`sim.crm.fitting.THIN_DATA`) they are noise, so segment values
with fewer won deals by the as-of date, deals with a blank value, and values whose
calibration fails are pooled into one segment, :data:`OTHER`. When the pool itself has
too few wins, it takes the whole export's funnel (stages, durations, deal value) and
keeps its own inflow (its share of the export's new deals) and its own open deals.

The scenario's top level is the whole export calibrated as one funnel: the defaults a
segment inherits (only a thin pool does). The total's quota is the user's, or by default
the export's recent pace, which is the sum of the segments' recent paces; each segment
then has its own pace as its quota, so it gets its own P(hit).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sim.crm.calibrate import Calibration, CalibrationError, date_label, pace_quota, parse_as_of, snapshot
from sim.crm.fitting import THIN_DATA
from sim.crm.half_life import HalfLifeChoice, calibrate_choosing
from sim.crm.reader import CrmData
from sim.crm.rounding import tidy_scenario
from sim.model.scenario import (
    Scenario,
    ScenarioError,
    problems_from,
    rate_mean,
    scenario_from_dict,
    scenario_to_dict,
)
from sim.words import counted, human

MIN_SEGMENT_WINS = THIN_DATA
"""Won deals by the as-of date a segment value needs to have a funnel of its own."""
OTHER = "other"
"""The segment that pools thin segment values, blank values and values that cannot be calibrated."""
FUNNEL_SECTIONS = ("inflow", "deal_value", "deal_value_dispersion", "stages", "open_deals")
"""What a calibrated segment gives of its own; a pool too thin for a funnel gives only inflow and open deals."""


@dataclass(frozen=True)
class SegmentPart:
    """One segment of a calibration by segment.

    Attributes
    ----------
    name : str
        The segment's name: its value in the export, or :data:`OTHER`.
    values : tuple of str
        The export's values in it (one for a segment of its own; those pooled for
        :data:`OTHER`, ``""`` standing for a blank value).
    own_funnel : bool
        Whether its stages, durations and deal value were calibrated from its own deals
        (False: the whole export's, for a pool with too few wins).
    scenario : Scenario
        The segment as an ordinary scenario (as :meth:`Scenario.segment` gives it).
    calibration : Calibration or None
        Its own calibration (None without an own funnel).
    counts : dict
        Deals known on the as-of date: ``known``, ``won``, ``lost``, ``open``.
    warnings : tuple of str
    own_quota : bool
        Whether the segment has a quota of its own (its recent pace; without one its
        scenario's quota is the total's).
    """

    name: str
    values: tuple[str, ...]
    own_funnel: bool
    scenario: Scenario
    calibration: Calibration | None
    counts: dict[str, int]
    warnings: tuple[str, ...] = ()
    own_quota: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready figures: name, values, counts, rates, deal value, inflow, open deals, quota, report."""
        s = self.scenario
        rates = [rate_mean(stage.conversion) for stage in s.stages]
        return {
            "name": self.name,
            "values": list(self.values),
            "funnel": "own" if self.own_funnel else "whole export",
            "counts": dict(self.counts),
            "stages": [{"name": st.name, "conversion": r} for st, r in zip(s.stages, rates, strict=True)],
            "win_rate": float(np.prod(rates)),
            "deal_value_mean": float(s.deal_value.mean()),
            "inflow_per_week": s.inflow.per_week,
            "expected_over_horizon": s.expected_arrivals,
            "open_deals": len(s.open_deals),
            "quota": {"unit": s.quota.unit, "target": s.quota.target} if self.own_quota else None,
            "warnings": list(self.warnings),
            "report": None if self.calibration is None else self.calibration.report.as_dict(),
        }


@dataclass(frozen=True)
class Pooling:
    """Which segment values went into :data:`OTHER`, and why.

    Attributes
    ----------
    thin : dict of str to int
        Values with fewer than :data:`MIN_SEGMENT_WINS` won deals: their won deals.
    failed : dict of str to str
        Values whose own calibration failed: the first problem.
    blank : int
        Deals known on the as-of date with a blank segment value.
    min_wins : int
    """

    thin: dict[str, int]
    failed: dict[str, str]
    blank: int
    min_wins: int = MIN_SEGMENT_WINS

    @property
    def values(self) -> tuple[str, ...]:
        """Every pooled value (thin first, then failed), without the blank one."""
        return (*self.thin, *self.failed)

    def sentences(self) -> list[str]:
        """What was pooled, in words: one sentence per reason."""
        lines = []
        if self.thin:
            names = ", ".join(self.thin)
            verb = "is" if len(self.thin) == 1 else "are"
            lines.append(
                f"{counted(len(self.thin), 'segment')} with fewer than {counted(self.min_wins, 'won deal')} "
                f"{verb} pooled into {OTHER}: {names}"
            )
        for value, problem in self.failed.items():
            lines.append(f"segment {value!r} could not be calibrated on its own ({problem}); it is pooled into {OTHER}")
        if self.blank:
            lines.append(
                f"{counted(self.blank, 'deal')} with no segment value {'is' if self.blank == 1 else 'are'} in {OTHER}"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """``min_won_deals``, ``thin`` (value -> won deals), ``failed`` (value -> problem), ``blank_deals``."""
        return {
            "min_won_deals": self.min_wins,
            "thin": dict(self.thin),
            "failed": dict(self.failed),
            "blank_deals": self.blank,
        }


@dataclass(frozen=True)
class SegmentCalibration:
    """The result of :func:`calibrate_segments`.

    Attributes
    ----------
    scenario : Scenario
        One scenario with ``[[segments]]``: the whole export's funnel at the top level,
        the total's quota, each segment's own sections.
    whole : Calibration
        The whole export calibrated as one funnel (the top level, and the report's
        rows, columns and total counts).
    parts : tuple of SegmentPart
        The segments in the scenario's order (largest by known deals first, :data:`OTHER` last).
    pooling : Pooling
    column : str
        The export's column the segments come from.
    choice : HalfLifeChoice or None
        The half-life chosen on the whole export with ``half_life_weeks="auto"`` (every
        segment uses it).
    """

    scenario: Scenario
    whole: Calibration
    parts: tuple[SegmentPart, ...]
    pooling: Pooling
    column: str
    choice: HalfLifeChoice | None = None

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Segment name -> the export's values in it (the grouping a backtest keeps for every origin)."""
        return {part.name: part.values for part in self.parts}

    def as_dict(self) -> dict[str, Any]:
        """The whole export's report, with the total's quota, then ``segment_column``, ``segments``, ``pooled``."""
        report = self.whole.report.as_dict()
        quota = self.scenario.quota
        report["quota"] = {"unit": quota.unit, "target": quota.target, "basis": self.quota_basis}
        return {
            **report,
            "segment_column": self.column,
            "segments": [part.as_dict() for part in self.parts],
            "pooled": self.pooling.as_dict(),
        }

    @property
    def quota_basis(self) -> str:
        """Where the total's quota came from."""
        basis = self.whole.report.quota.basis
        return basis if basis == "given" else f"{basis}: the sum of the segments' own"


def segment_values(deals: pd.DataFrame) -> pd.Series:
    """Each deal's segment value, stripped (``""`` when blank or when the export has no segment column)."""
    if "segment" not in deals:
        return pd.Series("", index=deals.index, dtype=object)
    return deals["segment"].astype(str).str.strip()


def in_segment(values: pd.Series, name: str, members: Sequence[str]) -> pd.Series:
    """Which deals (by their :func:`segment_values`) belong to segment ``name`` holding ``members``."""
    mask = values.isin(members)
    return mask | (values == "") if name == OTHER else mask


def _subset(crm: CrmData, mask: pd.Series, name: str) -> CrmData:
    deals = crm.deals[mask.to_numpy()].reset_index(drop=True)
    return CrmData(deals=deals, mapping=crm.mapping, rows_read=len(deals), source=f"{crm.source} [{name}]")


def _counts(deals: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, int]:
    snap = snapshot(deals, as_of)
    return {
        "known": int(len(snap.created)),
        "won": int(snap.won.size),
        "lost": int(snap.lost.size),
        "open": int(len(snap.open)),
    }


def _grouping(
    values: pd.Series, deals: pd.DataFrame, as_of: pd.Timestamp, groups: Mapping[str, Sequence[str]] | None
) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """Segment name -> its values (enough wins: alone, most deals first; the rest in :data:`OTHER`), and the thin."""
    known = deals["created"] <= as_of
    won = known & (deals["outcome"] == "won") & (deals["closed"] <= as_of)
    if groups is not None:
        given = {name: tuple(v) for name, v in groups.items()}
        seen = {v for vs in given.values() for v in vs}
        extra = tuple(sorted(set(values[known]) - seen - {""}))
        if extra or (values[known] == "").any():
            given[OTHER] = given.get(OTHER, ()) + extra
        return given, {}
    table = pd.DataFrame({"value": values[known], "won": won[known]})
    stats = table[table["value"] != ""].groupby("value")["won"].agg(["sum", "size"])
    stats = stats.sort_values(["size", "sum"], ascending=False, kind="stable")
    alone = [v for v, row in stats.iterrows() if row["sum"] >= MIN_SEGMENT_WINS and v != OTHER]
    thin = {v: int(row["sum"]) for v, row in stats.iterrows() if v not in alone and v != OTHER}
    out = {v: (v,) for v in alone}
    pooled = tuple(thin) + ((OTHER,) if OTHER in stats.index else ())
    if pooled or (values[known] == "").any():
        out[OTHER] = pooled
    return out, thin


def calibrate_segments(
    crm: CrmData,
    as_of: Any,
    *,
    quota_revenue: float | None = None,
    quota_deals: int | None = None,
    half_life_weeks: float | str | None = None,
    seed: int = 0,
    memo: MutableMapping | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    **options: Any,
) -> SegmentCalibration:
    """Calibrate one funnel per segment value of an export, as known on ``as_of``, into one scenario.

    Parameters
    ----------
    crm : CrmData
        Read with a ``segment`` column (:func:`sim.crm.reader.read_deals` with
        ``columns={"segment": NAME}``).
    as_of : datetime-like or str
    quota_revenue, quota_deals : optional
        The total's quota; by default the recent pace (as :func:`sim.crm.calibrate.calibrate`),
        and each segment's own recent pace its quota.
    half_life_weeks : float, "auto" or None
        As :func:`sim.crm.half_life.calibrate_choosing`; ``auto`` chooses once, on the
        whole export (``seed`` and ``memo`` go there), and every segment uses the choice.
    groups : mapping of str to sequence of str, optional
        Segment name -> the values in it, decided before (a backtest decides at its first
        origin and keeps it, so that every origin forecasts the same segments); values
        not in it go to :data:`OTHER`, which is kept even when empty (no inflow, no
        open deals). By default the rule of the module: a value with
        :data:`MIN_SEGMENT_WINS` won deals by ``as_of`` is a segment of its own.
    **options
        Passed on to :func:`sim.crm.calibrate.calibrate` (``horizon_days``,
        ``window_weeks``, ``history``, ``uncertainty``, ``durations``, ``name``...).

    Returns
    -------
    SegmentCalibration

    Raises
    ------
    CalibrationError
        As :func:`sim.crm.calibrate.calibrate` for the whole export (a segment that
        cannot be calibrated is pooled instead).
    """
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    whole, choice = calibrate_choosing(
        crm,
        as_of,
        half_life_weeks=half_life_weeks,
        seed=seed,
        memo=memo,
        quota_revenue=quota_revenue,
        quota_deals=quota_deals,
        **options,
    )
    half_life = whole.report.half_life_weeks
    deals = crm.deals
    values = segment_values(deals)
    grouping, thin = _grouping(values, deals, as_of, groups)
    known = deals["created"] <= as_of
    blank = int(((values == "") & known).sum())
    failed: dict[str, str] = {}
    calibrations: dict[str, Calibration] = {}
    inner = {key: value for key, value in options.items() if key != "name"}
    for name, members in grouping.items():
        if name == OTHER:
            continue
        try:
            calibrations[name] = calibrate_choosing(
                _subset(crm, values.isin(members), name), as_of, half_life_weeks=half_life, **inner
            )[0]
        except CalibrationError as error:
            failed[name] = error.problems[0]
    if failed:
        grouping = {n: m for n, m in grouping.items() if n not in failed}
        grouping[OTHER] = grouping.pop(OTHER, ()) + tuple(failed)
    if OTHER in grouping:  # last; only when it holds deals, unless the grouping was given
        grouping[OTHER] = grouping.pop(OTHER)
        pool = values.isin(grouping[OTHER]) | (values == "")
        if groups is None and not (pool & known).any():
            grouping.pop(OTHER)
    parts = []
    for name, members in grouping.items():
        sub = _subset(crm, in_segment(values, name, members), name)
        counts = _counts(sub.deals, as_of)
        if name == OTHER:
            calibration, warnings = _pool(sub, crm, whole, as_of, half_life, inner, counts)
        else:
            calibration, warnings = calibrations[name], ()
        scenario = (
            calibration.scenario if calibration is not None else _borrowed(sub.deals, deals, whole, as_of, options)
        )
        if calibration is not None:
            # The whole export's report says once where the file ends; a segment's own last date says nothing.
            warnings = tuple(w for w in calibration.report.warnings if not w.startswith("as-of "))
        parts.append(
            SegmentPart(name, tuple(members), calibration is not None, scenario, calibration, counts, warnings)
        )
    pooling = Pooling(thin=thin, failed=failed, blank=blank)
    scenario = _organisation(whole, parts, as_of, own_quotas=quota_revenue is None and quota_deals is None)
    parts = [
        SegmentPart(
            p.name,
            p.values,
            p.own_funnel,
            scenario.segment(i),
            p.calibration,
            p.counts,
            p.warnings,
            own_quota=scenario.segments[i].quota is not None,
        )
        for i, p in enumerate(parts)
    ]
    return SegmentCalibration(scenario, whole, tuple(parts), pooling, crm.mapping.get("segment", "segment"), choice)


def _pool(sub, crm, whole, as_of, half_life, options, counts) -> tuple[Calibration | None, tuple[str, ...]]:
    """The pool's own calibration when its wins can carry one, else None (it borrows the whole export's funnel)."""
    if counts["won"] < MIN_SEGMENT_WINS:
        return None, ()
    try:
        return calibrate_choosing(sub, as_of, half_life_weeks=half_life, **options)[0], ()
    except CalibrationError:
        return None, ()


def _borrowed(pool: pd.DataFrame, deals: pd.DataFrame, whole: Calibration, as_of: pd.Timestamp, options) -> Scenario:
    """A thin pool: the whole export's funnel, its share of the export's inflow, its own open deals and recent pace.

    The share is of the deals created in the inflow window (of all deals known on
    ``as_of`` when the window holds none).
    """
    window_weeks = options.get("window_weeks", 13)
    horizon_days = options.get("horizon_days", 91)
    start = as_of - pd.Timedelta(weeks=window_weeks)

    def created(frame: pd.DataFrame, since: pd.Timestamp | None) -> int:
        made = frame["created"] <= as_of
        if since is not None:
            made &= frame["created"] > since
        return int(made.sum())

    since = start if created(deals, start) else None
    share = created(pool, since) / max(created(deals, since), 1)
    scenario = whole.scenario
    ids = set(pool["id"].astype(str))
    open_deals = tuple(d for d in scenario.open_deals if d.name in ids)
    quota = pace_quota(snapshot(pool, as_of), window_weeks, horizon_days)
    inflow = scenario.inflow.model_copy(update={"per_week": scenario.inflow.per_week * share})
    return scenario.model_copy(update={"name": OTHER, "inflow": inflow, "open_deals": open_deals, "quota": quota})


def _organisation(whole: Calibration, parts: list[SegmentPart], as_of: pd.Timestamp, own_quotas: bool) -> Scenario:
    """The scenario with ``[[segments]]``: the whole export at the top level (no open deals), each part's sections."""
    top = scenario_to_dict(whole.scenario)
    top.pop("open_deals", None)
    label = date_label(as_of)
    top["description"] = (
        f"{whole.scenario.description} In {counted(len(parts), 'segment')}: {', '.join(p.name for p in parts)}; "
        "the top level is the whole export as one funnel."
    )
    segments = []
    for part in parts:
        document = scenario_to_dict(part.scenario)
        keys = FUNNEL_SECTIONS if part.own_funnel else ("inflow", "open_deals")
        entry = {"name": part.name[:200]}
        if own_quotas:
            entry["quota"] = document["quota"]
        entry.update({key: document[key] for key in keys if key in document})
        segments.append(entry)
    top["segments"] = segments
    try:
        return tidy_scenario(scenario_from_dict(top))
    except (ScenarioError, ValidationError) as error:  # pragma: no cover - every part validated on its own
        problems = error.problems if isinstance(error, ScenarioError) else problems_from(error)
        raise CalibrationError([f"segments as of {label}: {p}" for p in problems]) from None


def _quota_words(scenario: Scenario) -> str:
    quota = scenario.quota
    return human(quota.target, "money") if quota.unit == "revenue" else counted(quota.target, "won deal")


def segment_lines(result: SegmentCalibration) -> list[str]:
    """Each segment's figures in a line, then what was pooled, for the command line's report."""
    own_quotas = any(segment.quota is not None for segment in result.scenario.segments)
    lines = [f"Segments by {result.column} ({len(result.parts)}), each its own funnel over the shared horizon:"]
    for part in result.parts:
        s, c, info = part.scenario, part.counts, part.as_dict()
        win = f"win rate {info['win_rate']:.1%}"
        if len(s.stages) > 1:
            stages = ", ".join(f"{st['name']} {st['conversion']:.1%}" for st in info["stages"])
            win = f"conversion {stages} ({win})"
        named = part.name
        if part.name == OTHER:
            blanks = " and blanks" if result.pooling.blank else ""
            named += f" ({counted(len(part.values), 'value')}{blanks})"
        tail = f"; quota {_quota_words(s)}" if own_quotas else ""
        if not part.own_funnel:
            tail += "; too few wins for a funnel of its own, so the whole export's funnel with its own inflow"
        lines.append(
            f"  {named}: {human(c['known'], 'count')} deals known ({human(c['won'], 'count')} won, "
            f"{human(c['lost'], 'count')} lost, {human(c['open'], 'count')} open); {win}, deal value "
            f"{human(info['deal_value_mean'], 'money')}, {human(s.inflow.per_week)} new a week, "
            f"{counted(len(s.open_deals), 'open deal')} listed{tail}."
        )
    lines += [f"{sentence}." for sentence in result.pooling.sentences()]
    return lines

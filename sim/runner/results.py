"""Results: a simulation's per-replication outcomes judged against a quota, and their summaries.

:class:`SimulationResult` (one funnel, or a team's total) and :class:`TeamResult`
(every rep of a team) hold outcomes and the scenario they were simulated for; every
judgment (P(hit), attainment, the share of reps at quota) is a pure function of the
outcomes and the scenario's quota, so outcomes simulated once answer any quota.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import stats

from sim.engines.outcomes import Outcomes
from sim.engines.streams import rep_seed, segment_seed
from sim.engines.thresholds import BlockWins, ThresholdBlock
from sim.model.average_math import average_math, team_average_math
from sim.model.scenario import Quota, Scenario
from sim.model.segments import cost_of_reps, plan_on_averages, segment_scenarios
from sim.model.segments import reps as segment_reps
from sim.model.team import DAYS_PER_YEAR, is_new, rep_scenarios


@dataclass(frozen=True)
class Part:
    """One funnel's simulation within a request: its engine, its outcomes and, for a team, each rep's."""

    engine: str
    outcomes: Outcomes
    reps: tuple[Outcomes, ...] | None = None


@dataclass(frozen=True)
class Simulation:
    """What the runner produced for a request: each scenario's outcomes, nothing judged yet.

    Attributes
    ----------
    engines : tuple of str
        Per scenario of the request, the engine that ran it (``"simpy"`` or ``"vectorized"``;
        with segments, each segment's engine, distinct ones joined by ``+``).
    outcomes : tuple of Outcomes
        Per scenario, its replications (a team's: the team total, :func:`team_total`; with
        segments: their total, :func:`segments_total`).
    reps : tuple of (tuple of Outcomes or None)
        Per scenario, each rep's replications for a team; None otherwise.
    segments : tuple of (tuple of Part or None)
        Per scenario with segments, each segment's simulation; None otherwise.
    """

    engines: tuple[str, ...]
    outcomes: tuple[Outcomes, ...]
    reps: tuple[tuple[Outcomes, ...] | None, ...]
    segments: tuple[tuple[Part, ...] | None, ...] = ()

    def nbytes(self) -> int:
        """Memory the arrays take."""
        parts = list(self.outcomes) + [o for reps in self.reps if reps for o in reps]
        for segments in self.segments:
            for part in segments or ():
                parts += [part.outcomes, *(part.reps or ())]
        return sum(getattr(o, f.name).nbytes for o in parts for f in fields(o))

    def result(self, scenario: Scenario, seed: int, index: int = 0) -> SimulationResult:
        """Scenario ``index``'s replications judged against ``scenario``'s quota (a team's: its total).

        With segments, a :class:`SegmentsResult`: the total, and each segment judged on its own.
        """
        if scenario.segments:
            return segments_result(scenario, seed, self.engines[index], self.segments[index])
        return SimulationResult(scenario, seed, self.engines[index], self.outcomes[index])

    def team(self, scenario: Scenario, seed: int, index: int = 0) -> TeamResult:
        """Scenario ``index``'s reps and total, judged against ``scenario``'s team and rep quotas."""
        return team_result(scenario, seed, self.engines[index], list(self.reps[index]))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    Parameters
    ----------
    successes, n : int
        Hits and trials.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    (low, high) : tuple of float
    """
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def describe(values: np.ndarray) -> dict[str, float]:
    """Mean, sd and the 10th, 50th and 90th percentiles of a sample."""
    values = np.asarray(values, dtype=float)
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
    }


def quota_result(scenario: Scenario, won_deals: np.ndarray, revenue: np.ndarray) -> np.ndarray:
    """Per replication, the quantity the quota counts (revenue or won deals)."""
    return revenue if scenario.quota.unit == "revenue" else won_deals


def hits(scenario: Scenario, won_deals: np.ndarray, revenue: np.ndarray) -> np.ndarray:
    """Per replication, whether the quota was hit (result >= quota)."""
    return quota_result(scenario, won_deals, revenue) >= scenario.quota.target


@dataclass(frozen=True)
class SimulationResult:
    """Replications of one scenario: the per-replication table and its summaries.

    Attributes
    ----------
    scenario : Scenario
    seed : int
        The root seed.
    engine : str
        ``"simpy"`` or ``"vectorized"``: the engine that actually ran.
    outcomes : Outcomes
        Per-replication arrays.
    """

    scenario: Scenario
    seed: int
    engine: str
    outcomes: Outcomes

    @property
    def runs(self) -> int:
        """Number of replications."""
        return len(self.outcomes)

    @property
    def result(self) -> np.ndarray:
        """Per replication, what the quota counts (revenue or won deals)."""
        o = self.outcomes
        return quota_result(self.scenario, o.won_deals, o.revenue)

    @property
    def hit(self) -> np.ndarray:
        """Per replication, whether the quota was hit."""
        return self.result >= self.scenario.quota.target

    @property
    def p_hit(self) -> float:
        """Share of replications that hit the quota."""
        return float(self.hit.mean())

    def table(self) -> pd.DataFrame:
        """Tidy per-replication table: one row per replication, with the root seed."""
        o = self.outcomes
        columns = {
            "replication": np.arange(self.runs),
            "seed": self.seed,
            "won_deals": o.won_deals,
            "revenue": o.revenue,
            "hit": self.hit,
        }
        slots = self.scenario.slots()
        for j, name in enumerate(self.scenario.stage_names):
            columns[f"entered[{name}]"] = o.entered[:, j]
            columns[f"converted[{name}]"] = o.converted[:, j]
            columns[f"rate[{name}]"] = o.rates[:, j]
            if o.has_capacity and slots[j] is not None:
                columns[f"served[{name}]"] = o.served[:, j]
                columns[f"wait_days[{name}]"] = o.wait_days[:, j]
                columns[f"neglected[{name}]"] = o.neglected[:, j]
                columns[f"busy_days[{name}]"] = o.busy_days[:, j]
        return pd.DataFrame(columns)

    def stage_capacity(self) -> list[dict] | None:
        """Per stage, waits and slot use over all replications; None when reps were not limited.

        ``mean_wait_days`` is the total wait of the deals that got a slot divided by
        their number (None if none did); ``utilisation`` is busy slot-days divided by
        available slot-days (slots x horizon), both within [0, horizon]; ``mean_queue``
        the time-average number of deals waiting; ``neglected`` the mean deals per run
        lost to waiting longer than ``max_wait_days``. A stage without ``per_rep`` has
        no wait and no queue, and ``utilisation`` None: it has no slots to fill.
        """
        o = self.outcomes
        if not o.has_capacity:
            return None
        rows = []
        for j, slots in enumerate(self.scenario.slots()):
            served = int(o.served[:, j].sum())
            rows.append(
                {
                    "mean_wait_days": float(o.wait_days[:, j].sum() / served) if served else None,
                    "utilisation": None
                    if slots is None
                    else float(o.busy_days[:, j].sum() / (slots * self.scenario.horizon * self.runs)),
                    "mean_queue": float(o.mean_queue[:, j].mean()),
                    "neglected": float(o.neglected[:, j].mean()),
                }
            )
        return rows

    def _headline(self) -> dict:
        """The figures every summary starts with: what was run, the quota, P(hit), won deals and revenue."""
        o = self.outcomes
        return {
            "scenario": self.scenario.name,
            "runs": self.runs,
            "seed": self.seed,
            "engine": self.engine,
            "quota": {"unit": self.scenario.quota.unit, "target": self.scenario.quota.target},
            "p_hit": self.p_hit,
            "p_hit_ci": list(wilson_interval(int(self.hit.sum()), self.runs)),
            "deals": describe(o.won_deals),
            "revenue": describe(o.revenue),
        }

    def summary(self) -> dict:
        """The figures people ask for, as a JSON-ready dictionary.

        Keys: ``scenario``, ``runs``, ``seed``, ``engine``, ``quota`` (unit and
        target), ``p_hit`` and its 95% Wilson interval ``p_hit_ci``, ``deals`` and
        ``revenue`` (mean, sd, p10, p50, p90), ``stages`` (mean deals entering and
        converting per replication: the expected funnel) and ``average_math``. When reps
        are limited, each ``stages`` entry also has ``mean_wait_days``, ``utilisation``,
        ``mean_queue`` and ``neglected`` (:meth:`stage_capacity`).
        """
        o = self.outcomes
        capacity = self.stage_capacity()
        summary = {
            **self._headline(),
            "stages": [
                {
                    "name": name,
                    "entered": float(o.entered[:, j].mean()),
                    "converted": float(o.converted[:, j].mean()),
                }
                for j, name in enumerate(self.scenario.stage_names)
            ],
            "average_math": average_math(self.scenario),
        }
        if capacity is not None:
            for stage, figures in zip(summary["stages"], capacity, strict=True):
                stage.update(figures)
        return summary


def summary4(values: np.ndarray) -> dict:
    d = describe(values)
    return {key: d[key] for key in ("mean", "p10", "p50", "p90")}


@dataclass(frozen=True)
class TeamResult:
    """Replications of a team: every rep's results, the team total, and the team figures.

    Attributes
    ----------
    scenario : Scenario
        The team scenario (with ``[team]``).
    seed : int
        The root seed.
    engine : str
        The engine that ran the reps.
    reps : tuple of SimulationResult
        Rep *r*'s replications of :func:`rep_scenarios` ``[r]`` (its quota is ``rep_quota``).
    total : SimulationResult
        The team total per replication (reps' figures summed; ``rates`` averaged over
        reps) against the team quota.
    """

    scenario: Scenario
    seed: int
    engine: str
    reps: tuple[SimulationResult, ...]
    total: SimulationResult

    @property
    def runs(self) -> int:
        """Number of replications."""
        return self.total.runs

    @property
    def won_deals(self) -> np.ndarray:
        """Won deals, shape (runs, reps)."""
        return np.stack([r.outcomes.won_deals for r in self.reps], axis=1)

    @property
    def revenue(self) -> np.ndarray:
        """Won revenue, shape (runs, reps)."""
        return np.stack([r.outcomes.revenue for r in self.reps], axis=1)

    @property
    def result(self) -> np.ndarray:
        """What the quota counts (revenue or won deals), shape (runs, reps)."""
        return self.revenue if self.scenario.quota.unit == "revenue" else self.won_deals

    @property
    def attainment(self) -> np.ndarray:
        """Each rep's result / ``rep_quota``, shape (runs, reps)."""
        return self.result / self.scenario.team.rep_quota

    @property
    def at_quota(self) -> np.ndarray:
        """Whether each rep made ``rep_quota`` (result >= it), shape (runs, reps)."""
        return self.result >= self.scenario.team.rep_quota

    @property
    def is_new(self) -> np.ndarray:
        """Per rep, whether it is new (ramping)."""
        return is_new(self.scenario)

    @property
    def value_ratio(self) -> np.ndarray | None:
        """Won revenue scaled to a year (x 365.25 / horizon days) / ``cost_per_year``; None without a cost."""
        cost = self.scenario.team.cost_per_year
        if cost is None:
            return None
        return self.revenue * (DAYS_PER_YEAR / self.scenario.horizon) / cost

    @property
    def p_team_hit(self) -> float:
        """Share of replications in which the team total makes the team quota."""
        return self.total.p_hit

    def share_at_quota(self, reps: np.ndarray | None = None) -> tuple[float, float]:
        """Mean over replications of the share of reps at quota, and its standard error.

        Parameters
        ----------
        reps : ndarray of bool, optional
            Which reps to count (all by default).
        """
        at = self.at_quota if reps is None else self.at_quota[:, reps]
        per_run = at.mean(axis=1)
        se = float(per_run.std(ddof=1) / math.sqrt(len(per_run))) if len(per_run) > 1 else 0.0
        return float(per_run.mean()), se

    def _group(self, reps: np.ndarray) -> dict:
        share, se = self.share_at_quota(reps)
        ratio = self.value_ratio
        return {
            "reps": int(reps.sum()),
            "attainment": summary4(self.attainment[:, reps]),
            "share_at_quota": share,
            "share_at_quota_se": se,
            "value_ratio": None if ratio is None else summary4(ratio[:, reps]),
        }

    def team_summary(self) -> dict:
        """The team figures, JSON-ready (the ``team`` object of ``funnel-sim run --json``).

        Keys: ``reps``, ``new_reps``, ``ramp_months``, ``unit``, ``rep_quota``,
        ``team_quota``, ``rate_concentration``, ``cost_per_year``; ``attainment`` (mean,
        p10, p50, p90 of result / rep_quota over all rep-replications);
        ``share_at_quota`` and its ``share_at_quota_se``; ``p_team_hit`` and its 95%
        Wilson interval ``p_team_hit_ci``; ``value_ratio`` (mean, p10, p50, p90, or
        None without ``cost_per_year``); ``average_rep`` (the average math of the
        average experienced rep and whether it makes ``rep_quota``); and, when there are new
        reps, ``by_group`` with ``experienced`` and ``new``, each with ``reps``,
        ``attainment``, ``share_at_quota``, ``share_at_quota_se`` and ``value_ratio``.
        """
        team = self.scenario.team
        everyone = self._group(np.ones(team.reps, dtype=bool))
        hits = int(self.total.hit.sum())
        out = {
            "reps": team.reps,
            "new_reps": team.new_reps,
            "ramp_months": team.ramp_months,
            "unit": self.scenario.quota.unit,
            "rep_quota": team.rep_quota,
            "team_quota": self.scenario.quota.target,
            "rate_concentration": team.rate_concentration,
            "cost_per_year": team.cost_per_year,
            "attainment": everyone["attainment"],
            "share_at_quota": everyone["share_at_quota"],
            "share_at_quota_se": everyone["share_at_quota_se"],
            "p_team_hit": self.p_team_hit,
            "p_team_hit_ci": list(wilson_interval(hits, self.runs)),
            "value_ratio": everyone["value_ratio"],
            "average_rep": team_average_math(self.scenario)["average_rep"],
        }
        if team.mixed:
            out["by_group"] = {"experienced": self._group(~self.is_new), "new": self._group(self.is_new)}
        return out

    def summary(self) -> dict:
        """The team total in the keys of :meth:`SimulationResult.summary`, plus ``team``.

        ``average_math`` is the team's (:func:`team_average_math`, without
        ``average_rep``, which is in ``team``); ``stages`` count the whole team's deals.
        """
        out = self.total.summary()
        plan = team_average_math(self.scenario)
        plan.pop("average_rep")
        out["average_math"] = plan
        out["team"] = self.team_summary()
        return out

    def table(self) -> pd.DataFrame:
        """Tidy table: one row per replication and rep, with the root seed."""
        runs, reps = self.result.shape
        columns = {
            "replication": np.repeat(np.arange(runs), reps),
            "rep": np.tile(np.arange(reps), runs),
            "seed": self.seed,
            "new": np.tile(self.is_new, runs),
            "won_deals": self.won_deals.ravel(),
            "revenue": self.revenue.ravel(),
            "attainment": self.attainment.ravel(),
            "at_quota": self.at_quota.ravel(),
        }
        if self.value_ratio is not None:
            columns["value_ratio"] = self.value_ratio.ravel()
        return pd.DataFrame(columns)


def team_total(parts: list[Outcomes]) -> Outcomes:
    def add(name):
        return np.sum([getattr(p, name) for p in parts], axis=0)

    return Outcomes(
        won_deals=add("won_deals"),
        revenue=add("revenue"),
        weekly_revenue=add("weekly_revenue"),
        entered=add("entered"),
        converted=add("converted"),
        rates=np.mean([p.rates for p in parts], axis=0),
    )


def segments_total(parts: list[Part]) -> Part:
    """The total of an organisation's segments: won deals and revenue summed per replication.

    Segments may have different stages, so the total has no stage figures (each
    segment keeps its own). Its engine names each distinct engine the segments ran on.
    """
    first = parts[0].outcomes
    engines = "+".join(dict.fromkeys(p.engine for p in parts))
    empty = np.zeros((len(first), 0))
    total = Outcomes(
        won_deals=np.sum([p.outcomes.won_deals for p in parts], axis=0),
        revenue=np.sum([p.outcomes.revenue for p in parts], axis=0),
        weekly_revenue=np.sum([p.outcomes.weekly_revenue for p in parts], axis=0),
        entered=empty.astype(np.int64),
        converted=empty.astype(np.int64),
        rates=empty,
    )
    return Part(engines, total)


def team_result(scenario: Scenario, seed: int, engine: str, rep_outcomes: list[Outcomes]) -> TeamResult:
    """A :class:`TeamResult` from each rep's outcomes (as :func:`simulate_team` makes them).

    The outcomes do not depend on the quotas, so outcomes simulated once can be judged
    against other team or rep quotas (the app's cache does this).
    """
    reps = tuple(
        SimulationResult(rep_scenario, rep_seed(seed, rep), engine, outcomes)
        for rep, (rep_scenario, outcomes) in enumerate(zip(rep_scenarios(scenario), rep_outcomes, strict=True))
    )
    total = SimulationResult(scenario, int(seed), engine, team_total(list(rep_outcomes)))
    return TeamResult(scenario, int(seed), engine, reps, total)


@dataclass(frozen=True)
class SegmentsResult(SimulationResult):
    """Replications of a scenario with segments: the total against the total quota, and each segment.

    The inherited figures (``result``, ``hit``, ``p_hit``, ``outcomes``) are the total's;
    the total has no stage figures (segments may have different stages).

    Attributes
    ----------
    segments : tuple of SimulationResult or TeamResult
        Segment *i*'s replications, simulated with :func:`sim.engines.streams.segment_seed`
        (seed, i) and judged against its own quota (the total's when it has none).
    """

    segments: tuple[SimulationResult | TeamResult, ...] = ()

    def segment_totals(self) -> list[SimulationResult]:
        """Each segment's figures as one funnel (a team segment's: its total)."""
        return [s.total if isinstance(s, TeamResult) else s for s in self.segments]

    def spread_shares(self) -> np.ndarray:
        """Each segment's share of the total's variance (in the quota's unit): cov(segment, total) / var(total).

        The shares add up to 1 (the total is the segments' sum); a segment with a large
        share is where the total's risk comes from. All 0 when the total does not vary.
        """
        parts = np.stack(
            [quota_result(self.scenario, s.outcomes.won_deals, s.outcomes.revenue) for s in self.segment_totals()]
        )
        total = parts.sum(axis=0)
        variance = float(np.var(total))
        if variance == 0:
            return np.zeros(len(parts))
        return np.array([np.mean((p - p.mean()) * (total - total.mean())) for p in parts]) / variance

    def _segment_summary(self, i: int, result: SimulationResult, share: float) -> dict:
        segment, funnel = self.scenario.segments[i], result.scenario
        own = segment.quota is not None
        hits = int(result.hit.sum())
        return {
            "name": segment.name,
            "engine": result.engine,
            "has_quota": own,
            "quota": {"unit": funnel.quota.unit, "target": funnel.quota.target} if own else None,
            "p_hit": result.p_hit if own else None,
            "p_hit_ci": list(wilson_interval(hits, self.runs)) if own else None,
            "deals": summary4(result.outcomes.won_deals),
            "revenue": summary4(result.outcomes.revenue),
            "spread_share": float(share),
            "reps": segment_reps(funnel),
            "cost": cost_of_reps(funnel),
        }

    def summary(self) -> dict:
        """The total's figures in the keys of :meth:`SimulationResult.summary` (no ``stages``), plus segments.

        ``average_math`` is the sum of the segments' (:func:`sim.model.segments.plan_on_averages`);
        ``reps`` and ``cost`` (of the reps over the horizon, None without any ``cost_per_year``)
        are the organisation's; ``segments`` lists per segment: ``name``, ``engine``,
        ``has_quota``, ``quota``, ``p_hit`` and ``p_hit_ci`` (None without its own quota),
        ``deals`` and ``revenue`` (mean, p10, p50, p90), ``spread_share``
        (:meth:`spread_shares`), ``reps`` and ``cost``.
        """
        shares = self.spread_shares()
        return {
            **self._headline(),
            "average_math": plan_on_averages(self.scenario),
            "reps": segment_reps(self.scenario),
            "cost": cost_of_reps(self.scenario),
            "segments": [
                self._segment_summary(i, result, share)
                for i, (result, share) in enumerate(zip(self.segment_totals(), shares, strict=True))
            ],
        }

    def table(self) -> pd.DataFrame:
        """Tidy per-replication table: the total's columns, then each segment's won deals and revenue."""
        columns = {
            "replication": np.arange(self.runs),
            "seed": self.seed,
            "won_deals": self.outcomes.won_deals,
            "revenue": self.outcomes.revenue,
            "hit": self.hit,
        }
        for segment, result in zip(self.scenario.segments, self.segment_totals(), strict=True):
            columns[f"won_deals[{segment.name}]"] = result.outcomes.won_deals
            columns[f"revenue[{segment.name}]"] = result.outcomes.revenue
        return pd.DataFrame(columns)


def segments_result(scenario: Scenario, seed: int, engine: str, parts: tuple[Part, ...]) -> SegmentsResult:
    """A :class:`SegmentsResult` from each segment's simulation (as the runner makes them)."""
    segments = []
    for i, (funnel, part) in enumerate(zip(segment_scenarios(scenario), parts, strict=True)):
        own_seed = segment_seed(seed, i)
        if funnel.team is None:
            segments.append(SimulationResult(funnel, own_seed, part.engine, part.outcomes))
        else:
            segments.append(team_result(funnel, own_seed, part.engine, list(part.reps)))
    total = segments_total(list(parts))
    return SegmentsResult(scenario, int(seed), engine, total.outcomes, tuple(segments))


@dataclass(frozen=True)
class InflowThresholds:
    """Each replication's wins as the weekly inflow rises, simulated as far as ``max_per_week``.

    With one seed a deal's way through the funnel does not depend on the inflow, only
    its arrival day does, so each new deal of each replication is won from a threshold
    inflow on (:class:`sim.engines.ThresholdBlock`). Nothing here depends on the quota:
    :meth:`critical_inflows` judges any quota, and :meth:`extended` looks further by
    simulating only the deals beyond.

    Attributes
    ----------
    scenario : Scenario
        The funnel or team (its inflow's ``per_week`` is ignored).
    runs, seed : int
    max_per_week : float
        The largest inflow looked at.
    blocks : tuple of tuple of ThresholdBlock
        Per block of replications, one per funnel (each rep of a team).
    """

    scenario: Scenario
    runs: int
    seed: int
    max_per_week: float
    blocks: tuple[tuple[ThresholdBlock, ...], ...]

    def critical_inflows(self, quota: Quota, max_per_week: float | None = None) -> np.ndarray:
        """Per replication, the smallest weekly inflow at which it hits the quota (``inf``: more than looked at).

        Parameters
        ----------
        quota : Quota
            The quota judged (a team's: the team quota).
        max_per_week : float, optional
            Look only as far as this (at most :attr:`max_per_week`): the answer is then
            the one of thresholds simulated as far as it.

        Returns
        -------
        ndarray of float, shape (runs,)
        """
        top = self.max_per_week if max_per_week is None else min(self.max_per_week, max_per_week)
        return np.concatenate([wins.critical_inflows(quota, top) for wins in self._wins])[: self.runs]

    def nbytes(self) -> int:
        """About the memory the thresholds take (each new win's column and threshold)."""
        return sum(10 * len(part.new_wins()[1]) for funnels in self.blocks for part in funnels)

    @functools.cached_property
    def _wins(self) -> list[BlockWins]:
        # Sorted once: every quota and inflow asked about afterwards only counts.
        return [BlockWins(list(funnels)) for funnels in self.blocks]

    def extended(self, max_per_week: float) -> InflowThresholds:
        """The same replications looked at as far as ``max_per_week``: only the deals beyond are simulated.

        The answers are those of :func:`sim.runner.inflow_thresholds` at ``max_per_week``;
        this object is left as it is. (In this process: sending the blocks' state to
        workers and back costs what they would save.)
        """
        if max_per_week <= self.max_per_week:
            return self
        done = [_extended_part(part, float(max_per_week)) for funnels in self.blocks for part in funnels]
        per_block = len(self.blocks[0])  # funnels
        blocks = tuple(tuple(done[i : i + per_block]) for i in range(0, len(done), per_block))
        return InflowThresholds(self.scenario, self.runs, self.seed, float(max_per_week), blocks)


def _extended_part(part: ThresholdBlock, max_per_week: float) -> ThresholdBlock:
    part = copy.deepcopy(part)  # in this process (one job) the original is kept as it was
    part.extend(max_per_week)
    return part

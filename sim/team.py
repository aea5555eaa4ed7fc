"""Teams of reps: individual attainment, the share of reps at quota, the team's odds.

A scenario with a ``[team]`` section describes ``team.reps`` reps drawn from one
population. :func:`simulate_team` turns it into one scenario per rep
(:func:`rep_scenarios`) and runs each with :func:`sim.runner.simulate`, so both engines
run teams and every rep's numbers are those of an ordinary scenario:

* each stage's conversion rate becomes a Beta rate with the stage's mean m and the
  team's ``rate_concentration`` c. A Beta rate is drawn once per replication, so in
  every replication each rep is a fresh draw from the population Beta(m c, (1 - m) c):
  the spread of the rates is the spread between reps. A stage whose rate is already a
  Beta keeps its mean and takes c (the team's spread replaces the scenario's
  uncertainty about the rate; reps do not share a common draw). A rate of exactly 0 or
  1 stays fixed: it has no spread;
* ``[inflow] per_week`` is each rep's inflow. The last ``new_reps`` reps are new: their
  inflow rises linearly from 0 at day 0 to full at ``ramp_months`` months, given to
  the engines as one ``[inflow] multipliers`` factor per week, each the ramp's average
  over that week (times the scenario's own seasonal factor when it has one), so a new
  rep's expected inflow is exactly the integral of the ramp;
* the scenario's open pipeline is the team's, split evenly: ``open = n`` in a stage
  gives each rep ``n // reps`` deals and one more to the first ``n % reps`` reps, and
  listed open deal *i* goes to rep ``i % reps``;
* rep *r* is simulated with its own root seed, drawn from
  ``SeedSequence(seed, spawn_key=(TEAM_STREAM, r))``: it depends only on the seed and
  *r*, never on the number of reps, runs or workers, and it shares no stream with
  another rep or with an ordinary run of the same seed. So reps are independent, the
  same seed gives the same team, and adding a rep leaves the others as they were.

Reps do not interact (no shared capacity: a ``[team]`` cannot be combined with
``[capacity]``), so the team total of a replication is the sum of its reps' results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import analysis
from sim.outcomes import Outcomes
from sim.runner import MAX_RESULT_BYTES, Engine, SimulationResult, result_bytes, simulate
from sim.scenario import DAYS_PER_MONTH, BetaRate, Inflow, Quota, Scenario, rate_mean

TEAM_STREAM = 0x7EA7
"""First spawn-key word of the reps' seeds: keeps them apart from the replication streams."""
DAYS_PER_YEAR = 365.25

Progress = Callable[[int, int], None]


def _team(scenario: Scenario):
    if scenario.team is None:
        raise ValueError("team: the scenario has no [team] section")
    return scenario.team


def rep_seed(seed: int, rep: int) -> int:
    """Root seed of rep ``rep``: a 128-bit integer drawn from ``SeedSequence(seed, spawn_key=(TEAM_STREAM, rep))``.

    It depends on nothing but ``seed`` and ``rep``. The spawn key has two words, unlike a
    replication's (one word), so no rep reuses a replication stream of the root seed.
    """
    words = np.random.SeedSequence(int(seed), spawn_key=(TEAM_STREAM, int(rep))).generate_state(4, np.uint32)
    return int.from_bytes(words.astype("<u4").tobytes(), "little")


def is_new(scenario: Scenario) -> np.ndarray:
    """Per rep, whether it is new (ramping): the last ``new_reps`` reps."""
    team = _team(scenario)
    return np.arange(team.reps) >= team.reps - team.new_reps


def ramp_multipliers(scenario: Scenario, ramp_months: float) -> tuple[float, ...]:
    """Weekly inflow factors of a new rep: the linear ramp (times any seasonality) averaged per week.

    The ramp is ``min(t / R, 1)`` with R = ``ramp_months`` months of
    :data:`~sim.scenario.DAYS_PER_MONTH` days. The factor of week k is the integral of
    ramp x seasonal factor over that week (the last week ends at the horizon) divided
    by its length, so the expected inflow of the rep is exact; only its timing within a
    week is flattened.

    Returns
    -------
    tuple of float, one per week of the horizon (``scenario.n_weeks``)
    """
    ramp_days = ramp_months * DAYS_PER_MONTH
    weeks = np.minimum(np.arange(scenario.n_weeks + 1) * 7.0, scenario.horizon)
    seasons = scenario.inflow_knots()[0]
    # On each piece between consecutive cuts the seasonal factor is constant and the ramp
    # linear, so the ramp at the midpoint times the seasonal weight of the piece is exact.
    cuts = np.unique(np.concatenate([weeks, seasons, [min(ramp_days, scenario.horizon)]]))
    low, high = cuts[:-1], cuts[1:]
    ramp = np.minimum((low + high) / 2 / ramp_days, 1.0)
    weight = (scenario.weight_at(high) - scenario.weight_at(low)) * ramp
    week = np.clip(np.searchsorted(weeks, low, side="right") - 1, 0, scenario.n_weeks - 1)
    per_week = np.bincount(week, weights=weight, minlength=scenario.n_weeks)
    return tuple(float(x) for x in per_week / np.diff(weeks))


def _rep_rate(conversion, concentration: float):
    m = rate_mean(conversion)
    return BetaRate(mean=m, concentration=concentration) if 0.0 < m < 1.0 else float(m)


def _share(total: int, reps: int, rep: int) -> int:
    """Rep ``rep``'s part of ``total`` deals split evenly (the remainder to the first reps)."""
    return total // reps + (rep < total % reps)


def rep_scenarios(scenario: Scenario) -> list[Scenario]:
    """One ordinary scenario per rep (no ``[team]``): its rates, inflow, open deals and quota.

    The rep's quota is ``team.rep_quota`` in the scenario's unit, so the rep scenario's
    P(hit) is the rep's chance of making quota. See the module docstring for the rest.
    """
    team = _team(scenario)
    new = is_new(scenario)
    ramped = None
    if team.new_reps:
        ramped = Inflow(
            per_week=scenario.inflow.per_week,
            process=scenario.inflow.process,
            multipliers=ramp_multipliers(scenario, team.ramp_months),
        )
    if scenario.quota.unit == "revenue":
        quota = Quota(revenue=team.rep_quota)
    else:
        quota = Quota(deals=int(team.rep_quota))
    out = []
    for rep in range(team.reps):
        stages = tuple(
            stage.model_copy(
                update={
                    "conversion": _rep_rate(stage.conversion, team.rate_concentration),
                    "open": _share(stage.open, team.reps, rep),
                }
            )
            for stage in scenario.stages
        )
        update = {
            "team": None,
            "quota": quota,
            "stages": stages,
            "open_deals": scenario.open_deals[rep :: team.reps],
        }
        if new[rep]:
            update["inflow"] = ramped
        out.append(scenario.model_copy(update=update))
    return out


def team_average_math(scenario: Scenario) -> dict:
    """The plan on averages for the whole team: the sum of every rep's average math.

    Returns the keys of :func:`sim.analysis.average_math` (``won_deals``, ``revenue``,
    ``hit`` against the team quota, ``stages``) plus ``average_rep``: the average math of
    the average experienced rep (won deals, revenue) and whether it makes ``rep_quota``:
    a quota set from the average rep is what this plan "makes".
    """
    team = _team(scenario)
    plans = [analysis.average_math(rep) for rep in rep_scenarios(scenario)]
    won = sum(p["won_deals"] for p in plans)
    revenue = sum(p["revenue"] for p in plans)
    result = revenue if scenario.quota.unit == "revenue" else won
    stages = [
        {
            "name": stage.name,
            "entered": sum(p["stages"][j]["entered"] for p in plans),
            "converted": sum(p["stages"][j]["converted"] for p in plans),
        }
        for j, stage in enumerate(scenario.stages)
    ]
    # The average experienced rep (the open pipeline's remainder makes reps differ slightly);
    # with only new reps, the average new one.
    experienced = [p for p, new in zip(plans, is_new(scenario), strict=True) if not new] or plans
    rep_won = float(np.mean([p["won_deals"] for p in experienced]))
    rep_revenue = float(np.mean([p["revenue"] for p in experienced]))
    rep_result = rep_revenue if scenario.quota.unit == "revenue" else rep_won
    return {
        "won_deals": won,
        "revenue": revenue,
        "hit": bool(result >= scenario.quota.target),
        "stages": stages,
        "average_rep": {"won_deals": rep_won, "revenue": rep_revenue, "hit": bool(rep_result >= team.rep_quota)},
    }


def _summary4(values: np.ndarray) -> dict:
    d = analysis.describe(values)
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
            "attainment": _summary4(self.attainment[:, reps]),
            "share_at_quota": share,
            "share_at_quota_se": se,
            "value_ratio": None if ratio is None else _summary4(ratio[:, reps]),
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
            "p_team_hit_ci": list(analysis.wilson_interval(hits, self.runs)),
            "value_ratio": everyone["value_ratio"],
            "average_rep": team_average_math(self.scenario)["average_rep"],
        }
        if team.new_reps:
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


def _team_total(parts: list[Outcomes]) -> Outcomes:
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


def simulate_team(
    scenario: Scenario,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> TeamResult:
    """Run Monte Carlo replications of a team scenario, rep by rep.

    Parameters
    ----------
    scenario : Scenario
        A scenario with a ``[team]`` section.
    runs, seed, jobs, engine
        As for :func:`sim.runner.simulate`; rep *r* runs with :func:`rep_seed` (seed, r).
    progress : callable, optional
        Called as ``progress(done, runs * reps)`` as rep-replications finish.

    Returns
    -------
    TeamResult
    """
    scenarios = rep_scenarios(scenario)
    n = len(scenarios)
    need = sum(result_bytes(s, runs) for s in scenarios) if isinstance(runs, int) else 0
    if need > MAX_RESULT_BYTES:
        raise ValueError(
            f"runs: {runs:,} runs of {n} reps would need {need / 2**30:.1f} GiB of results "
            f"(limit {MAX_RESULT_BYTES / 2**30:.0f} GiB); ask for fewer runs"
        )
    results = []
    for rep, rep_scenario in enumerate(scenarios):
        report = None
        if progress is not None:

            def report(done, _runs, before=rep * runs):
                progress(before + done, n * runs)

        results.append(
            simulate(rep_scenario, runs=runs, seed=rep_seed(seed, rep), jobs=jobs, engine=engine, progress=report)
        )
    return team_result(scenario, seed, results[0].engine, [r.outcomes for r in results])


def team_result(scenario: Scenario, seed: int, engine: str, rep_outcomes: list[Outcomes]) -> TeamResult:
    """A :class:`TeamResult` from each rep's outcomes (as :func:`simulate_team` makes them).

    The outcomes do not depend on the quotas, so outcomes simulated once can be judged
    against other team or rep quotas (the app's cache does this).
    """
    reps = tuple(
        SimulationResult(rep_scenario, rep_seed(seed, rep), engine, outcomes)
        for rep, (rep_scenario, outcomes) in enumerate(zip(rep_scenarios(scenario), rep_outcomes, strict=True))
    )
    total = SimulationResult(scenario, int(seed), engine, _team_total(list(rep_outcomes)))
    return TeamResult(scenario, int(seed), engine, reps, total)


def realistic_rep_quota(result: TeamResult, confidence: float) -> dict:
    """The rep quota that a chosen share of reps makes, and the share at the current one.

    The quota is the largest q such that at least ``confidence`` of all rep-replications
    reach q: the (1 - confidence) quantile of individual results, taken as in
    :func:`sim.solvers.realistic_quota` (the ceil(confidence x n)-th largest result).
    Over rep-replications, so it is the share of reps that make it, averaged over the
    team's possible quarters.

    Returns
    -------
    dict
        ``quota``, ``confidence``, ``unit``, ``share_at_quota`` (at that quota),
        ``rep_quota`` (the scenario's), ``share_at_rep_quota``, ``attainment`` (mean,
        p10, p50, p90 of result / rep_quota); with new reps, ``by_group`` with the same
        ``quota``, ``share_at_quota`` and ``share_at_rep_quota`` for ``experienced`` and
        ``new`` reps separately.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be strictly between 0 and 1, got {confidence}")
    current = result.scenario.team.rep_quota

    def answer(values: np.ndarray) -> dict:
        values = np.sort(values.ravel())[::-1]
        # The tolerance keeps 0.07 * 100 = 7.000000000000001 from asking for an 8th result.
        quota = float(values[math.ceil(confidence * len(values) - 1e-9) - 1])
        return {
            "quota": quota,
            "share_at_quota": float((values >= quota).mean()),
            "share_at_rep_quota": float((values >= current).mean()),
        }

    out = {
        **answer(result.result),
        "confidence": confidence,
        "unit": result.scenario.quota.unit,
        "rep_quota": current,
        "attainment": _summary4(result.attainment),
    }
    if result.scenario.team.new_reps:
        out["by_group"] = {
            "experienced": answer(result.result[:, ~result.is_new]),
            "new": answer(result.result[:, result.is_new]),
        }
    return out

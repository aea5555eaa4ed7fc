"""Monte Carlo replications: seeding, engine choice, parallel workers, the result object.

:func:`simulate` is the one entry point. It splits the replications into tasks, runs
them on one or more worker processes with joblib, and puts them back in replication
order, so the numbers are identical for any number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from sim import analysis, engine, queueing, vectorized
from sim.outcomes import Outcomes
from sim.scenario import Scenario
from sim.streams import root_children

Engine = Literal["auto", "simpy", "vectorized"]
ENGINES = ("auto", "simpy", "vectorized")
MAX_RUNS = 10_000_000
MAX_RESULT_BYTES = 4 * 2**30
"""Refuse runs whose per-replication results alone would not fit comfortably in memory."""
SIMPY_TASK = 100
"""Replications per SimPy task: small enough for a smooth progress bar."""

Progress = Callable[[int, int], None]


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
        return analysis.quota_result(self.scenario, o.won_deals, o.revenue)

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
            "scenario": self.scenario.name,
            "runs": self.runs,
            "seed": self.seed,
            "engine": self.engine,
            "quota": {"unit": self.scenario.quota.unit, "target": self.scenario.quota.target},
            "p_hit": self.p_hit,
            "p_hit_ci": list(analysis.wilson_interval(int(self.hit.sum()), self.runs)),
            "deals": analysis.describe(o.won_deals),
            "revenue": analysis.describe(o.revenue),
            "stages": [
                {
                    "name": name,
                    "entered": float(o.entered[:, j].mean()),
                    "converted": float(o.converted[:, j].mean()),
                }
                for j, name in enumerate(self.scenario.stage_names)
            ],
            "average_math": analysis.average_math(self.scenario),
        }
        if capacity is not None:
            for stage, figures in zip(summary["stages"], capacity, strict=True):
                stage.update(figures)
        return summary


def _vectorized_runs(scenario: Scenario) -> bool:
    """Whether the vectorised engine runs the scenario with its deals independent of each other.

    Limited rep capacity makes deals wait for each other; a ``[capacity]`` section
    without any ``per_rep`` limits nothing.
    """
    return not scenario.has_capacity_limits and vectorized.supports(scenario)


def choose_engine(scenario: Scenario, engine: Engine = "auto", fastest: bool = False) -> str:
    """The engine that will run.

    ``auto`` means vectorised whenever deals are independent; with limited reps it means
    the SimPy engine, the discrete-event reference, unless ``fastest`` (the app, which
    must answer within a second) asks for the vectorised queues of :mod:`sim.queueing`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if scenario.has_capacity_limits:
        queues = queueing.supports(scenario)
        if engine == "vectorized" and not queues:
            raise ValueError(
                "engine: the vectorised engine cannot run this scenario (reps are limited by [capacity] and "
                "per_rep, and there are listed open deals); use engine simpy or auto"
            )
        return "vectorized" if engine == "vectorized" or (engine == "auto" and fastest and queues) else "simpy"
    return "vectorized" if engine == "auto" else engine


def _simpy_task(scenario: Scenario, seed: int, start: int, stop: int) -> Outcomes:
    return engine.run_replications(scenario, root_children(seed, start, stop))


def _vectorized_task(scenario: Scenario, seed: int, first_block: int, n_blocks: int, keep: int) -> Outcomes:
    seeds = root_children(seed, first_block, first_block + n_blocks)
    if scenario.has_capacity_limits:
        return queueing.simulate_blocks(scenario, seeds).head(keep)
    return vectorized.simulate_block(scenario, seeds[0]).head(keep)


def _tasks(scenario: Scenario, runs: int, seed: int, engine_name: str, jobs: int = 1):
    """Independent units of work, in replication order, each with its replication count."""
    if engine_name == "simpy":
        for lo in range(0, runs, SIMPY_TASK):
            hi = min(runs, lo + SIMPY_TASK)
            yield hi - lo, delayed(_simpy_task)(scenario, seed, lo, hi)
        return
    blocks = list(_blocks(runs))
    # The vectorised queues take several blocks side by side (sim.queueing.blocks_at_once),
    # in as many tasks as there are workers; other scenarios take a block per task.
    group = 1
    if scenario.has_capacity_limits:
        group = min(queueing.blocks_at_once(scenario), math.ceil(len(blocks) / jobs))
    for lo in range(0, len(blocks), group):
        part = blocks[lo : lo + group]
        keep = sum(kept for _, kept in part)
        yield keep, delayed(_vectorized_task)(scenario, seed, part[0][0], len(part), keep)


def _blocks(runs: int):
    """The vectorised engine's blocks for ``runs`` replications: (block index, replications kept)."""
    for block in range(math.ceil(runs / vectorized.BLOCK)):
        yield block, min(vectorized.BLOCK, runs - block * vectorized.BLOCK)


def result_bytes(scenario: Scenario, runs: int) -> int:
    """Memory the per-replication results of ``runs`` replications take."""
    per_run = scenario.n_weeks + 3 * len(scenario.stages) + 2
    if scenario.has_capacity_limits:  # six figures per stage, and two per stage and week
        per_run += len(scenario.stages) * (6 + 2 * scenario.n_weeks)
    return 8 * per_run * runs


def simulate(
    scenario: Scenario,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> SimulationResult:
    """Run Monte Carlo replications of a scenario.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (see :func:`sim.load_scenario`).
    runs : int
        Number of replications.
    seed : int
        Root seed; replication *i* depends only on it and *i*.
    jobs : int
        Worker processes (joblib). Results do not depend on it.
    engine : {"auto", "simpy", "vectorized"}
        ``auto`` uses the vectorised engine whenever the scenario allows it.
    progress : callable, optional
        Called as ``progress(done, runs)`` as replications finish.

    Returns
    -------
    SimulationResult
        For a scenario with ``[team]``, the team total against the team quota (the reps'
        own results: :func:`sim.team.simulate_team`).
    """
    if not isinstance(runs, int | np.integer) or not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs: must be a whole number from 1 to {MAX_RUNS:,}, got {runs}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: must be a whole number >= 0, got {seed}")
    if not isinstance(jobs, int | np.integer) or jobs < 1:
        raise ValueError(f"jobs: must be a whole number >= 1, got {jobs}")
    if result_bytes(scenario, runs) > MAX_RESULT_BYTES:
        raise ValueError(
            f"runs: {runs:,} runs of a {scenario.n_weeks}-week horizon would need "
            f"{result_bytes(scenario, runs) / 2**30:.1f} GiB of results "
            f"(limit {MAX_RESULT_BYTES / 2**30:.0f} GiB); ask for fewer runs"
        )
    if scenario.team is not None:
        # A team is the sum of its reps' funnels, each simulated as a scenario of its own
        # (sim.team); its total against the team quota is the result.
        from sim.team import simulate_team  # sim.team builds on this module

        return simulate_team(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine, progress=progress).total
    engine_name = choose_engine(scenario, engine)
    sizes, calls = zip(*_tasks(scenario, int(runs), int(seed), engine_name, int(jobs)), strict=True)
    parts, done = [], 0
    for size, part in zip(sizes, Parallel(n_jobs=jobs, return_as="generator")(calls), strict=True):
        parts.append(part)
        done += size
        if progress is not None:
            progress(done, runs)
    return SimulationResult(scenario, int(seed), engine_name, Outcomes.concat(parts))


def _critical_task(scenario: Scenario, seed: int, block: int, keep: int, max_per_week: float) -> np.ndarray:
    seed_sequence = root_children(seed, block, block + 1)[0]
    return vectorized.critical_inflow_block(scenario, seed_sequence, max_per_week)[:keep]


def critical_inflows(
    scenario: Scenario, runs: int = 10_000, seed: int = 0, max_per_week: float = 100.0, jobs: int = 1
) -> np.ndarray:
    """Per replication, the smallest weekly inflow at which it hits the quota.

    One vectorised simulation at ``max_per_week`` gives the whole curve: with the same
    seed, replication *i* of ``simulate(with_inflow(scenario, x), runs, seed)`` hits the
    quota exactly when its critical inflow is <= ``x`` (see
    :func:`sim.vectorized.critical_inflow_block`), so P(hit) at ``x`` is the share of
    critical inflows <= ``x``.

    Parameters
    ----------
    scenario : Scenario
        A scenario the vectorised engine runs (its own inflow is ignored).
    runs, seed, jobs
        As for :func:`simulate`.
    max_per_week : float
        The largest inflow looked at; replications that need more get ``inf``.

    Returns
    -------
    ndarray of float, shape (runs,)
    """
    if not _vectorized_runs(scenario) or scenario.team is not None:
        raise ValueError(
            "engine: the whole curve needs one funnel on the vectorised engine, which this scenario is not"
        )
    calls = [delayed(_critical_task)(scenario, int(seed), b, keep, float(max_per_week)) for b, keep in _blocks(runs)]
    return np.concatenate(Parallel(n_jobs=jobs)(calls))

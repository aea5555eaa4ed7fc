"""Monte Carlo replications: seeding, engine choice, parallel workers, the result object.

:func:`simulate` is the entry point. It splits the replications into tasks, runs
them on one or more worker processes with joblib, and puts them back in replication
order, so the numbers are identical for any number of workers. Two more ask the same
of several questions at once, each answer exactly a simulation's:
:func:`simulate_variants` (a scenario and its levers, in one pass) and
:func:`inflow_thresholds` (every inflow up to a top, for the magic number).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from joblib import Parallel, delayed

from sim.engines import queues, simpy_engine, thresholds, vectorized
from sim.engines.outcomes import Outcomes
from sim.engines.streams import BLOCK, rep_seed, root_children
from sim.model.scenario import Quota, Scenario
from sim.model.team import rep_scenarios
from sim.runner.results import SimulationResult, TeamResult, team_result

Engine = Literal["auto", "simpy", "vectorized"]


ENGINES = ("auto", "simpy", "vectorized")


MAX_RUNS = 10_000_000


MAX_RESULT_BYTES = 4 * 2**30
"""Refuse runs whose per-replication results alone would not fit comfortably in memory."""


SIMPY_TASK = 100
"""Replications per SimPy task: small enough for a smooth progress bar."""


Progress = Callable[[int, int], None]


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
    must answer within a second) asks for the vectorised queues of :mod:`sim.engines.queues`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if scenario.has_capacity_limits:
        has_queues = queues.supports(scenario)
        if engine == "vectorized" and not has_queues:
            raise ValueError(
                "engine: the vectorised engine cannot run this scenario (reps are limited by [capacity] and "
                "per_rep, and there are listed open deals); use engine simpy or auto"
            )
        return "vectorized" if engine == "vectorized" or (engine == "auto" and fastest and has_queues) else "simpy"
    return "vectorized" if engine == "auto" else engine


def _simpy_task(scenario: Scenario, seed: int, start: int, stop: int) -> Outcomes:
    return simpy_engine.run_replications(scenario, root_children(seed, start, stop))


def _vectorized_task(scenario: Scenario, seed: int, first_block: int, n_blocks: int, keep: int) -> Outcomes:
    seeds = root_children(seed, first_block, first_block + n_blocks)
    if scenario.has_capacity_limits:
        return queues.simulate_blocks(scenario, seeds).head(keep)
    return vectorized.simulate_block(scenario, seeds[0]).head(keep)


def _tasks(scenario: Scenario, runs: int, seed: int, engine_name: str, jobs: int = 1):
    """Independent units of work, in replication order, each with its replication count."""
    if engine_name == "simpy":
        for lo in range(0, runs, SIMPY_TASK):
            hi = min(runs, lo + SIMPY_TASK)
            yield hi - lo, delayed(_simpy_task)(scenario, seed, lo, hi)
        return
    if scenario.has_capacity_limits:
        for first, n_blocks, keep in _queue_groups([scenario], runs, jobs):
            yield keep, delayed(_vectorized_task)(scenario, seed, first, n_blocks, keep)
        return
    for block, keep in _blocks(runs):
        yield keep, delayed(_vectorized_task)(scenario, seed, block, 1, keep)


def _queue_groups(scenarios: list[Scenario], runs: int, jobs: int):
    """The vectorised queues' tasks: (first block, blocks, replications kept).

    The queues take several blocks side by side (:func:`sim.engines.queues.blocks_at_once`,
    as memory allows for the scenario with the most deals), in as many tasks as there
    are workers.
    """
    blocks = list(_blocks(runs))
    widest = max(scenarios, key=lambda s: s.expected_arrivals)
    group = min(queues.blocks_at_once(widest, len(scenarios)), math.ceil(len(blocks) / jobs))
    for lo in range(0, len(blocks), group):
        part = blocks[lo : lo + group]
        yield part[0][0], len(part), sum(kept for _, kept in part)


def _blocks(runs: int):
    """The vectorised engine's blocks for ``runs`` replications: (block index, replications kept)."""
    for block in range(math.ceil(runs / BLOCK)):
        yield block, min(BLOCK, runs - block * BLOCK)


def result_bytes(scenario: Scenario, runs: int) -> int:
    """Memory the per-replication results of ``runs`` replications take."""
    per_run = scenario.n_weeks + 3 * len(scenario.stages) + 2
    if scenario.has_capacity_limits:  # six figures per stage, and two per stage and week
        per_run += len(scenario.stages) * (6 + 2 * scenario.n_weeks)
    return 8 * per_run * runs


def _check_runs(scenario: Scenario, runs, seed, jobs) -> None:
    """Refuse settings no simulation can honour, naming the setting."""
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
        own results: :func:`sim.runner.simulate_team`).
    """
    _check_runs(scenario, runs, seed, jobs)
    if scenario.team is not None:
        # A team is the sum of its reps' funnels, each simulated as a scenario of its own
        # (sim.team); its total against the team quota is the result.

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


def simulate_variants(
    scenarios: list[Scenario],
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
) -> list[SimulationResult]:
    """Replications of several scenarios with one seed: each exactly what :func:`simulate` gives it.

    Variants of a scenario that the vectorised engine reads the same random numbers for
    (:func:`sim.engines.vectorized.shares_draws`: one lever changed, say) are simulated in one
    pass that draws the numbers once and does once every step on which they agree
    (:func:`sim.engines.vectorized.simulate_block_variants`, or with limited reps
    :func:`sim.engines.queues.simulate_block_variants`); teams rep by rep. Other scenarios
    (on the SimPy engine, say) are simulated one by one.

    Parameters
    ----------
    scenarios : list of Scenario
    runs, seed, jobs, engine
        As for :func:`simulate`: ``jobs`` worker processes share the blocks of
        replications, and the numbers do not depend on them.

    Returns
    -------
    list of SimulationResult
        In the order of ``scenarios``.
    """
    if _shared_queues(scenarios, engine):
        return _queue_variants(scenarios, runs, seed, jobs)
    funnels = _shared_funnels(scenarios, seed, engine)
    if funnels is None:
        return [simulate(s, runs=runs, seed=seed, jobs=jobs, engine=engine) for s in scenarios]
    _check_runs(scenarios[0], runs, seed, jobs)
    tasks = [(variants, funnel_seed, b, keep) for variants, funnel_seed in funnels for b, keep in _blocks(runs)]
    parts = Parallel(n_jobs=jobs)(delayed(_variants_task)(*task) for task in tasks)
    n_blocks = len(parts) // len(funnels)
    outcomes = [  # [funnel][variant]: the funnel's blocks one after the other
        [Outcomes.concat([part[v] for part in parts[f * n_blocks : (f + 1) * n_blocks]]) for v in range(len(scenarios))]
        for f in range(len(funnels))
    ]
    if scenarios[0].team is None:
        return [SimulationResult(s, int(seed), "vectorized", o) for s, o in zip(scenarios, outcomes[0], strict=True)]

    return [
        team_result(s, int(seed), "vectorized", [funnel[v] for funnel in outcomes]).total
        for v, s in enumerate(scenarios)
    ]


def independent_deals(scenario: Scenario, engine: Engine = "auto") -> bool:
    """Whether ``engine`` runs the scenario on the vectorised engine with every deal on its own.

    That is, no reps limit how many deals a stage works at once: what
    :func:`simulate_variants` (to share the work between variants) and
    :func:`inflow_thresholds` need.
    """
    return choose_engine(scenario, engine) == "vectorized" and _vectorized_runs(scenario)


def _shared_funnels(scenarios: list[Scenario], seed: int, engine: Engine) -> list[tuple[list[Scenario], int]] | None:
    """The funnels to simulate together (each with its variants and root seed), or None if they cannot be.

    A funnel is the scenario itself, or each rep of a team (seeded as in :mod:`sim.model.team`).
    """
    if not all(independent_deals(s, engine) for s in scenarios):
        return None
    if all(s.team is None for s in scenarios):
        funnels = [(list(scenarios), int(seed))]
    elif all(s.team is not None and s.team.reps == scenarios[0].team.reps for s in scenarios):
        reps = [rep_scenarios(s) for s in scenarios]
        funnels = [([rep[r] for rep in reps], rep_seed(seed, r)) for r in range(scenarios[0].team.reps)]
    else:
        return None
    if all(vectorized.shares_draws(variants[0], s) for variants, _ in funnels for s in variants):
        return funnels
    return None


def _shared_queues(scenarios: list[Scenario], engine: Engine) -> bool:
    """Whether the scenarios have limited reps and the vectorised queues simulate them together."""
    return all(
        s.has_capacity_limits and choose_engine(s, engine) == "vectorized" and queues.shares_draws(scenarios[0], s)
        for s in scenarios
    )


def _queue_variants(scenarios: list[Scenario], runs: int, seed: int, jobs: int) -> list[SimulationResult]:
    """:func:`simulate_variants` on the vectorised queues: groups of blocks side by side, as :func:`simulate` does."""
    _check_runs(scenarios[0], runs, seed, jobs)
    tasks = [delayed(_queue_variants_task)(scenarios, seed, *group) for group in _queue_groups(scenarios, runs, jobs)]
    parts = Parallel(n_jobs=jobs)(tasks)
    return [
        SimulationResult(s, int(seed), "vectorized", Outcomes.concat([part[v] for part in parts]))
        for v, s in enumerate(scenarios)
    ]


def _queue_variants_task(scenarios: list[Scenario], seed: int, first_block: int, n_blocks: int, keep: int):
    seeds = root_children(seed, first_block, first_block + n_blocks)
    return [o.head(keep) for o in queues.simulate_block_variants(scenarios, seeds)]


def _variants_task(scenarios: list[Scenario], seed: int, block: int, keep: int) -> list[Outcomes]:
    seed_sequence = root_children(seed, block, block + 1)[0]
    return [o.head(keep) for o in vectorized.simulate_block_variants(scenarios, seed_sequence)]


@dataclass(frozen=True)
class InflowThresholds:
    """Each replication's wins as the weekly inflow rises, simulated as far as ``max_per_week``.

    With one seed a deal's way through the funnel does not depend on the inflow, only
    its arrival day does, so each new deal of each replication is won from a threshold
    inflow on (:class:`sim.engines.thresholds.ThresholdBlock`). Nothing here depends on the quota:
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
    blocks: tuple[tuple[thresholds.ThresholdBlock, ...], ...]

    def critical_inflows(self, quota: Quota | None = None, max_per_week: float | None = None) -> np.ndarray:
        """Per replication, the smallest weekly inflow at which it hits the quota (``inf``: more than looked at).

        Parameters
        ----------
        quota : Quota, optional
            The scenario's own by default (a team's: its team quota).
        max_per_week : float, optional
            Look only as far as this (at most :attr:`max_per_week`): the answer is then
            the one of thresholds simulated as far as it.

        Returns
        -------
        ndarray of float, shape (runs,)
        """
        quota = self.scenario.quota if quota is None else quota
        top = self.max_per_week if max_per_week is None else min(self.max_per_week, max_per_week)
        return np.concatenate([wins.critical_inflows(quota, top) for wins in self._wins])[: self.runs]

    @functools.cached_property
    def _wins(self) -> list[thresholds.BlockWins]:
        # Sorted once: every quota and inflow asked about afterwards only counts.
        return [thresholds.BlockWins(list(funnels)) for funnels in self.blocks]

    def extended(self, max_per_week: float, jobs: int = 1) -> InflowThresholds:
        """The same replications looked at as far as ``max_per_week``: only the deals beyond are simulated.

        The answers are those of :func:`inflow_thresholds` at ``max_per_week``; this
        object is left as it is.
        """
        if max_per_week <= self.max_per_week:
            return self
        flat = [part for funnels in self.blocks for part in funnels]
        done = Parallel(n_jobs=jobs)(delayed(_extended_part)(part, float(max_per_week)) for part in flat)
        per_block = len(self.blocks[0])  # funnels
        blocks = tuple(tuple(done[i : i + per_block]) for i in range(0, len(done), per_block))
        return InflowThresholds(self.scenario, self.runs, self.seed, float(max_per_week), blocks)


def _threshold_part(scenario: Scenario, seed: int, block: int, max_per_week: float) -> thresholds.ThresholdBlock:
    part = thresholds.ThresholdBlock(scenario, root_children(seed, block, block + 1)[0])
    part.extend(max_per_week)
    return part


def _extended_part(part: thresholds.ThresholdBlock, max_per_week: float) -> thresholds.ThresholdBlock:
    part = copy.deepcopy(part)  # in this process (one job) the original is kept as it was
    part.extend(max_per_week)
    return part


def inflow_thresholds(
    scenario: Scenario, runs: int = 10_000, seed: int = 0, max_per_week: float = 100.0, jobs: int = 1
) -> InflowThresholds:
    """Each replication's wins as the weekly inflow rises from 0 to ``max_per_week``, from one simulation.

    Parameters
    ----------
    scenario : Scenario
        A funnel or a team the vectorised engine runs (its own inflow is ignored); a
        team's reps are simulated each with their own seed, as :func:`sim.runner.simulate_team` does.
    runs, seed, jobs
        As for :func:`simulate`.
    max_per_week : float
        The largest inflow looked at.

    Returns
    -------
    InflowThresholds
    """
    if not _vectorized_runs(scenario):
        raise ValueError("engine: the whole curve needs the vectorised engine, which cannot run this scenario")
    _check_runs(scenario, runs, seed, jobs)
    if scenario.team is None:
        funnels = [(scenario, int(seed))]
    else:
        funnels = [(rep, rep_seed(seed, r)) for r, rep in enumerate(rep_scenarios(scenario))]
    calls = [
        delayed(_threshold_part)(funnel, funnel_seed, b, float(max_per_week))
        for b, _ in _blocks(runs)
        for funnel, funnel_seed in funnels
    ]
    done = Parallel(n_jobs=jobs)(calls)
    blocks = tuple(tuple(done[i : i + len(funnels)]) for i in range(0, len(done), len(funnels)))
    return InflowThresholds(scenario, int(runs), int(seed), float(max_per_week), blocks)


def critical_inflows(
    scenario: Scenario, runs: int = 10_000, seed: int = 0, max_per_week: float = 100.0, jobs: int = 1
) -> np.ndarray:
    """Per replication, the smallest weekly inflow at which it hits the quota.

    One vectorised simulation at ``max_per_week`` gives the whole curve: with the same
    seed, replication *i* of ``simulate(with_inflow(scenario, x), runs, seed)`` hits the
    quota exactly when its critical inflow is <= ``x`` (see :func:`inflow_thresholds`),
    so P(hit) at ``x`` is the share of critical inflows <= ``x``. For a team, the team
    total against the team quota.

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
    return inflow_thresholds(scenario, runs, seed, max_per_week, jobs).critical_inflows()


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

"""The one path from a request to outcomes: engine choice, a team's reps, shared work, workers, seeds.

:func:`run` takes a :class:`~sim.runner.request.Request` (scenarios simulated with one
seed) and does everything that decides how it is simulated, in one place:

* it chooses each scenario's engine (:func:`choose_engine`);
* it splits a team into one funnel per rep, each with its own root seed
  (:func:`sim.engines.streams.rep_seed`);
* it groups the funnels that an engine can simulate together (a scenario and its
  levers read the same random numbers: :func:`sim.engines.vectorized.shares_draws`) so
  the draws and the work they agree on are done once;
* it cuts the replications into tasks (blocks of :data:`~sim.engines.streams.BLOCK`
  for the array engines, a hundred replications for SimPy), runs them on as many
  worker processes as pay for the work, and puts them back in replication order.

Every task depends only on the seed and the replications it covers, so the numbers are
the same however the work is split. :func:`inflow_thresholds` is the same path for the
magic number's thresholds. The functions at the end (:func:`simulate` and its kin) are
the short forms callers use: a request in, results judged against the scenario's quota out.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed, parallel_config

from sim.engines import queues, simpy_engine, vectorized
from sim.engines.outcomes import Outcomes
from sim.engines.streams import BLOCK, rep_seed, root_children, segment_seed
from sim.engines.thresholds import ThresholdBlock
from sim.model.scenario import Scenario
from sim.model.segments import segment_scenarios
from sim.model.team import rep_scenarios
from sim.runner import budget, memo
from sim.runner.request import CORES, Engine, Request
from sim.runner.results import (
    InflowThresholds,
    Part,
    Simulation,
    SimulationResult,
    TeamResult,
    segments_total,
    team_total,
)

SIMPY_TASK = 100
"""Replications per SimPy task: small enough for a smooth progress bar."""
PARALLEL_DEALS = 20_000_000
"""From this many new deals (over runs, scenarios and reps) the array engines' work goes to worker processes;
below it one process is about as fast (sending the work costs what the second core saves)."""
PARALLEL_THRESHOLD_DEALS = 5_000_000
"""From this many new deals a first simulation of inflow thresholds goes to worker processes."""
TASKS_PER_WORKER = 4
"""Tasks per worker process for a large simulation: few enough that each carries many blocks (one pickled
scenario, one concatenated result), enough that a slow task does not leave a core idle at the end."""
WORKERS_IDLE_SECONDS = 3_600
"""How long worker processes wait for work before they stop (joblib's default is five minutes; starting them
takes a second or two)."""
PARENT_CHECK_SECONDS = 1.0
"""How often a worker process looks whether the process that started it is still there."""
THREADS = min(2, CORES)
"""Threads that walk the stages of scenarios simulated together on the queues, in the runner's own process."""

Progress = Callable[[int, int], None]


def choose_engine(scenario: Scenario, engine: Engine = "auto") -> str:
    """The engine that will run the scenario: ``"simpy"`` or ``"vectorized"``.

    ``auto`` means vectorised wherever it models the scenario: always when deals do not
    wait for each other, and with limited reps its queues (:mod:`sim.engines.queues`)
    unless there are listed open deals too, which only the SimPy engine models. With
    segments, each segment's engine is chosen on its own; this names the slowest.

    Raises
    ------
    ValueError
        ``vectorized`` asked for a scenario it cannot run (limited reps with listed open deals).
    """
    if engine not in ("auto", "simpy", "vectorized"):
        raise ValueError(f"engine: must be one of auto, simpy, vectorized, got {engine!r}")
    if scenario.segments:  # the engine of the slowest segment
        chosen = {choose_engine(segment, engine) for segment in segment_scenarios(scenario)}
        return "simpy" if "simpy" in chosen else "vectorized"
    if engine == "simpy":
        return "simpy"
    if scenario.has_capacity_limits and not queues.supports(scenario):
        if engine == "vectorized":
            raise ValueError(
                "engine: the vectorised engine cannot run this scenario (reps are limited by [capacity] and "
                "per_rep, and there are listed open deals); use engine simpy or auto"
            )
        return "simpy"
    return "vectorized"


def independent_deals(scenario: Scenario, engine: Engine = "auto") -> bool:
    """Whether the scenario runs on the vectorised engine with every deal on its own (no limited reps).

    Then each deal's threshold inflow exists (:func:`inflow_thresholds`) and the magic
    number is exact. Never for a scenario with segments (their inflows are several).
    """
    return (
        not scenario.segments and choose_engine(scenario, engine) == "vectorized" and not scenario.has_capacity_limits
    )


# --- the plan: funnels, groups and tasks ----------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A funnel the request simulates on its own: a scenario, or one segment of it (a team's reps within)."""

    index: int  # the scenario's place in the request
    segment: int  # -1: the scenario has no segments
    scenario: Scenario
    engine: str
    seed: int


@dataclass(frozen=True)
class _Group:
    """Funnels simulated together: the same rep (or the scenario) of several scenarios, one seed."""

    engine: str  # "simpy", "vectorized" (independent deals) or "queues"
    funnels: tuple[Scenario, ...]
    seed: int
    places: tuple[tuple[int, int, int], ...]  # each funnel's (scenario, segment, rep); -1: none


def _units(request: Request) -> list[_Unit]:
    """The request's scenarios cut into what is simulated on its own: each segment with its own seed."""
    units = []
    for index, scenario in enumerate(request.scenarios):
        if not scenario.segments:
            units.append(_Unit(index, -1, scenario, choose_engine(scenario, request.engine), request.seed))
            continue
        for i, segment in enumerate(segment_scenarios(scenario)):
            engine = choose_engine(segment, request.engine)
            units.append(_Unit(index, i, segment, engine, segment_seed(request.seed, i)))
    return units


def _kind(scenario: Scenario, engine: str) -> str:
    """The group a funnel joins: the SimPy engine's kinds are one (each funnel simulated on its own)."""
    how = budget.kind(scenario, engine)
    return "simpy" if how.startswith("simpy") else how


def _groups(units: list[_Unit]) -> tuple[list[_Group], dict[tuple[int, int, int], tuple[int, int, int]]]:
    """Every funnel (a unit, or each rep of a team), grouped where an engine shares their draws.

    Also returns the places of funnels met before with the same seed (a segment that a
    variant leaves as it was), each mapped to the place simulated for it.
    """
    groups: list[_Group] = []
    first: dict[tuple[Scenario, int], tuple[int, int, int]] = {}
    same_as: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    for unit in units:
        kind = _kind(unit.scenario, unit.engine)
        if unit.scenario.team is None:
            funnels = [(unit.scenario, unit.seed, -1)]
        else:
            funnels = [(rep, rep_seed(unit.seed, r), r) for r, rep in enumerate(rep_scenarios(unit.scenario))]
        for funnel, seed, rep in funnels:
            place = (unit.index, unit.segment, rep)
            if unit.segment >= 0:  # only segments repeat whole: other variants differ somewhere
                seen = first.setdefault((funnel, seed), place)
                if seen != place:
                    same_as[place] = seen
                    continue
            for g, group in enumerate(groups):
                if group.engine == kind == "vectorized" or group.engine == kind == "queues":
                    same = vectorized.shares_draws if kind == "vectorized" else queues.shares_draws
                    if group.seed == seed and same(group.funnels[0], funnel):
                        groups[g] = _Group(kind, (*group.funnels, funnel), seed, (*group.places, place))
                        break
            else:
                groups.append(_Group(kind, (funnel,), seed, (place,)))
    return groups, same_as


def _blocks(runs: int) -> list[tuple[int, int]]:
    """The array engines' blocks for ``runs`` replications: (block index, replications kept)."""
    return [(b, min(BLOCK, runs - b * BLOCK)) for b in range(math.ceil(runs / BLOCK))]


def _spans(runs: int, group: _Group, workers: int) -> Iterator[tuple[int, int, int]]:
    """A group's tasks: (first block, blocks, replications kept), consecutive blocks in replication order.

    In one process a task is a block (the queues: as many side by side as memory allows,
    :func:`sim.engines.queues.blocks_at_once`); with workers, a few tasks per worker, so
    each carries many blocks.
    """
    blocks = _blocks(runs)
    if group.engine == "queues":  # as many side by side as memory allows, whatever the workers
        widest = max(group.funnels, key=lambda s: s.expected_arrivals)
        size = queues.blocks_at_once(widest, len(group.funnels))
    else:
        size = 1 if workers == 1 else math.ceil(len(blocks) / (workers * TASKS_PER_WORKER))
    for lo in range(0, len(blocks), size):
        part = blocks[lo : lo + size]
        yield part[0][0], len(part), sum(kept for _, kept in part)


def _array_task(group: _Group, first: int, n_blocks: int, keep: int, threads: int) -> list[Outcomes]:
    """Blocks ``first`` to ``first + n_blocks - 1`` of each funnel of a group, the first ``keep`` replications."""
    seeds = root_children(group.seed, first, first + n_blocks)
    if group.engine == "queues":
        executor = ThreadPoolExecutor(threads) if threads > 1 and len(group.funnels) > 1 else None
        try:
            parts = queues.simulate_block_variants(list(group.funnels), seeds, executor)
        finally:
            if executor is not None:
                executor.shutdown()
        return [o.head(keep) for o in parts]
    per_block = [vectorized.simulate_block_variants(list(group.funnels), seed) for seed in seeds]
    return [Outcomes.concat([block[f] for block in per_block]).head(keep) for f in range(len(group.funnels))]


def _simpy_task(group: _Group, start: int, stop: int) -> list[Outcomes]:
    return [simpy_engine.run_replications(group.funnels[0], root_children(group.seed, start, stop))]


def _workers(request: Request, kinds: set[str], deals: float, threshold: float = PARALLEL_DEALS) -> int:
    """Worker processes for the work: the SimPy engine always takes what it may; the array engines pay only
    for large work."""
    if "simpy" in kinds or deals >= threshold:
        return request.jobs
    return 1


def _exit_with(parent: int) -> None:
    """In a worker process: end it as soon as ``parent`` (the process that started the workers) has gone.

    loky's workers wait for work as long as their idle timeout and do not watch their
    parent: killed (``kill -9``, an out-of-memory kill), it would leave them and their
    resource trackers behind for the timeout. A worker's parent becomes another process
    when its own dies.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="funnel-sim parent watch", daemon=True).start()


def _config():
    """joblib's settings for the runner's worker processes: every call takes the same, so the pool is reused.

    Each worker watches the process that started it (:func:`_exit_with`), so none outlives it.
    """
    return parallel_config(
        backend="loky", idle_worker_timeout=WORKERS_IDLE_SECONDS, initializer=_exit_with, initargs=(os.getpid(),)
    )


def start_workers(jobs: int = CORES) -> None:
    """Start the worker processes now (a server calls this in the background, so no answer waits for them)."""
    with _config():
        Parallel(n_jobs=min(jobs, CORES))(delayed(int)(0) for _ in range(min(jobs, CORES)))


def run(request: Request, progress: Progress | None = None) -> Simulation:
    """Simulate a request: every scenario's outcomes (a team's reps and total), nothing judged.

    Parameters
    ----------
    request : Request
    progress : callable, optional
        Called as ``progress(done, total)`` as replications (over scenarios and reps) finish.

    Returns
    -------
    Simulation
        Remembered for the same request while :func:`sim.runner.memo.remember` is on.
    """
    remembered = memo.get(("run", request))
    if remembered is not None:
        return remembered
    units = _units(request)
    funnels, engines = [u.scenario for u in units], [u.engine for u in units]
    budget.check(funnels, engines, request.runs)
    groups, same_as = _groups(units)
    workers = budget.workers_that_fit(
        funnels, engines, request.runs, _workers(request, {g.engine for g in groups}, request.deals())
    )
    calls, sizes = [], []
    for g, group in enumerate(groups):
        if group.engine == "simpy":
            for lo in range(0, request.runs, SIMPY_TASK):
                hi = min(request.runs, lo + SIMPY_TASK)
                calls.append((g, delayed(_simpy_task)(group, lo, hi)))
                sizes.append(hi - lo)
            continue
        threads = 1 if workers > 1 else THREADS
        for first, n_blocks, keep in _spans(request.runs, group, workers):
            calls.append((g, delayed(_array_task)(group, first, n_blocks, keep, threads)))
            sizes.append(keep * len(group.funnels))
    parts: list[list[list[Outcomes]]] = [[] for _ in groups]
    total, done = request.runs * sum(len(group.funnels) for group in groups), 0
    with _config():
        answers = Parallel(n_jobs=workers, return_as="generator")(call for _, call in calls)
        for (g, _), size, part in zip(calls, sizes, answers, strict=True):
            parts[g].append(part)
            done += size
            if progress is not None:
                progress(done, total)
    simulation = _assemble(request, units, groups, parts, same_as)
    memo.put(("run", request), simulation, simulation.nbytes())
    return simulation


def _assemble(request: Request, units: list[_Unit], groups: list[_Group], parts, same_as) -> Simulation:
    """Each funnel's tasks in replication order, put back in their places; a team's reps and segments summed."""
    funnel: dict[tuple[int, int, int], Outcomes] = {}
    for group, tasks in zip(groups, parts, strict=True):
        for f, place in enumerate(group.places):
            funnel[place] = Outcomes.concat([task[f] for task in tasks])
    for place, seen in same_as.items():
        funnel[place] = funnel[seen]
    done: list[list[Part]] = [[] for _ in request.scenarios]
    for unit in units:
        if unit.scenario.team is None:
            part = Part(unit.engine, funnel[(unit.index, unit.segment, -1)], None)
        else:
            mine = tuple(funnel[(unit.index, unit.segment, r)] for r in range(unit.scenario.team.reps))
            part = Part(unit.engine, team_total(list(mine)), mine)
        done[unit.index].append(part)
    pairs = list(zip(request.scenarios, done, strict=True))
    wholes = [segments_total(mine) if scenario.segments else mine[0] for scenario, mine in pairs]
    segments = tuple(tuple(mine) if scenario.segments else None for scenario, mine in pairs)
    return Simulation(
        tuple(w.engine for w in wholes), tuple(w.outcomes for w in wholes), tuple(w.reps for w in wholes), segments
    )


# --- inflow thresholds ------------------------------------------------------------------------------


def _threshold_part(scenario: Scenario, seed: int, block: int, max_per_week: float) -> ThresholdBlock:
    part = ThresholdBlock(scenario, root_children(seed, block, block + 1)[0])
    part.extend(max_per_week)
    return part


def inflow_thresholds(
    request: Request, max_per_week: float, previous: InflowThresholds | None = None
) -> InflowThresholds:
    """Each replication's wins as the weekly inflow rises from 0 to ``max_per_week``, from one simulation.

    Parameters
    ----------
    request : Request
        One funnel or team the vectorised engine runs with independent deals
        (:func:`independent_deals`); its inflow's ``per_week`` is ignored. A team's reps
        are simulated each with their own seed, as :func:`run` does.
    max_per_week : float
        The largest inflow looked at (at least).
    previous : InflowThresholds, optional
        Thresholds of the same request simulated as far as a lower inflow: only the deals
        beyond are simulated.

    Returns
    -------
    InflowThresholds
        Simulated as far as ``max_per_week`` or further (reading them only as far as an
        inflow gives exactly the answer of thresholds simulated that far). While
        :func:`sim.runner.memo.remember` is on, the furthest ones of a request are kept
        and extended, whatever quota or target is asked next.
    """
    scenario = request.scenario
    if scenario.segments:
        raise ValueError("segments: each segment has its own inflow, so there is no one curve; ask per segment")
    if len(request.scenarios) != 1 or not independent_deals(scenario, request.engine):
        raise ValueError("engine: the whole curve needs the vectorised engine, which cannot run this scenario")
    # The thresholds do not depend on the inflow: one key for every inflow.
    key = ("thresholds", Request.of(scenario.with_inflow(1.0), runs=request.runs, seed=request.seed))
    known = memo.get(key)
    if known is not None and (previous is None or known.max_per_week > previous.max_per_week):
        previous = known
    if previous is not None:
        answer = previous if previous.max_per_week >= max_per_week else previous.extended(max_per_week)
    else:
        if scenario.team is None:
            funnels = [(scenario, request.seed)]
        else:
            funnels = [(rep, rep_seed(request.seed, r)) for r, rep in enumerate(rep_scenarios(scenario))]
        top = scenario.with_inflow(max_per_week)
        budget.check([top], ["vectorized"], request.runs)
        reps = 1 if scenario.team is None else scenario.team.reps
        deals = request.runs * reps * top.expected_arrivals
        workers = budget.workers_that_fit(
            [top], ["vectorized"], request.runs, _workers(request, {"vectorized"}, deals, PARALLEL_THRESHOLD_DEALS)
        )
        calls = [
            delayed(_threshold_part)(funnel, seed, b, float(max_per_week))
            for b, _ in _blocks(request.runs)
            for funnel, seed in funnels
        ]
        with _config():
            done = Parallel(n_jobs=workers)(calls)
        blocks = tuple(tuple(done[i : i + len(funnels)]) for i in range(0, len(done), len(funnels)))
        answer = InflowThresholds(scenario, request.runs, request.seed, float(max_per_week), blocks)
    if known is None or answer.max_per_week > known.max_per_week:
        memo.put(key, answer, answer.nbytes())
    return answer


# --- the short forms ----------------------------------------------------------------------------------


def simulate(
    scenario: Scenario,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> SimulationResult:
    """Run Monte Carlo replications of a scenario, judged against its quota.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (see :func:`sim.load_scenario`).
    runs : int
        Number of replications.
    seed : int
        Root seed; replication *i* depends only on it and *i*.
    jobs : int
        The most worker processes to use. Results do not depend on it.
    engine : {"auto", "simpy", "vectorized"}
        ``auto`` uses the vectorised engine wherever it models the scenario.
    progress : callable, optional
        Called as ``progress(done, total)`` as replications finish (a team's: rep-replications).

    Returns
    -------
    SimulationResult
        For a scenario with ``[team]``, the team total against the team quota
        (:func:`simulate_team` has every rep's).
    """
    request = Request.of(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine)
    return run(request, progress).result(scenario, request.seed)


def simulate_variants(
    scenarios: list[Scenario], runs: int = 10_000, seed: int = 0, jobs: int = 1, engine: Engine = "auto"
) -> list[SimulationResult]:
    """Replications of several scenarios with one seed: each exactly what :func:`simulate` gives it.

    The runner shares the work where an engine can (:func:`run`). Returns the results in
    the order of ``scenarios``.
    """
    request = Request(tuple(scenarios), runs=runs, seed=seed, jobs=jobs, engine=engine)
    simulation = run(request)
    return [simulation.result(s, request.seed, i) for i, s in enumerate(scenarios)]


def simulate_team(
    scenario: Scenario,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> TeamResult:
    """Replications of a team scenario: every rep's, and the team figures (:class:`TeamResult`).

    Rep *r* runs with :func:`sim.engines.streams.rep_seed` (seed, r); the arguments are
    those of :func:`simulate`.
    """
    if scenario.team is None:
        raise ValueError("team: the scenario has no [team] section")
    request = Request.of(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine)
    return run(request, progress).team(scenario, request.seed)


def critical_inflows(
    scenario: Scenario, runs: int = 10_000, seed: int = 0, max_per_week: float = 100.0, jobs: int = 1
) -> np.ndarray:
    """Per replication, the smallest weekly inflow at which it hits the scenario's quota (``inf``: above the top).

    With the same seed, replication *i* of ``simulate(scenario.with_inflow(x), runs, seed)``
    hits the quota exactly when its critical inflow is <= ``x``, so P(hit) at ``x`` is the
    share of critical inflows <= ``x`` (:func:`inflow_thresholds`). For a team, the team
    total against the team quota.
    """
    request = Request.of(scenario, runs=runs, seed=seed, jobs=jobs)
    return inflow_thresholds(request, max_per_week).critical_inflows(scenario.quota)

"""The work budget: what a request would cost, estimated before anything is simulated, and the runs that fit.

Work is counted in deal-stages: runs x expected deals a run x stages, summed over the
scenarios a request simulates together and a team's reps, and weighted by what a
deal-stage costs on its engine (:data:`COST`: the SimPy engine is slower than the
arrays, much slower where deals wait for reps). Memory is what an engine holds at once:
the array engines work on blocks of :data:`~sim.engines.streams.BLOCK` replications,
every deal of the block side by side, so their peak grows with deals a run and not
with runs; the SimPy engine holds one replication's deals; the results grow with runs.

Two sets of :class:`Limits` apply. :data:`LIBRARY`, generous, is what the runner
refuses beyond (the command line exits 2, saying what would fit); :data:`APP`,
stricter, is what the app caps a page's runs to, so one visitor cannot hold a shared
server. An operator raises either with environment variables (:data:`ENVIRONMENT`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from sim.engines.streams import BLOCK
from sim.model.scenario import Scenario

COST = {"vectorized": 1.0, "queues": 4.0, "simpy": 20.0, "simpy with limited reps": 400.0}
"""Cost of a deal-stage on each kind of engine, relative to the vectorised engine's (about 20 million a second)."""
DEAL_BYTES = {"vectorized": 10, "queues": 130, "simpy": 800, "simpy with limited reps": 800}
"""Memory one deal takes while its replication is simulated, on each kind of engine."""
ENVIRONMENT = {
    "library work": "FUNNEL_SIM_MAX_WORK",
    "library memory": "FUNNEL_SIM_MAX_MEMORY_MB",
    "app work": "FUNNEL_SIM_APP_MAX_WORK",
    "app memory": "FUNNEL_SIM_APP_MAX_MEMORY_MB",
}
"""The environment variables that set the limits (work in deal-stages, memory in MB)."""


@dataclass(frozen=True)
class Limits:
    """The most work (deal-stages, weighted by :data:`COST`) and memory (bytes) one request may take."""

    work: float
    memory: int


def _from_environment(who: str, work: float, memory_mb: int) -> Limits:
    """Limits from the environment variables of ``who`` ("library" or "app"), else the defaults given."""

    def number(name: str, default: float) -> float:
        text = os.environ.get(name, "").replace("_", "").replace(",", "")
        try:
            value = float(text) if text else default
        except ValueError:
            return default
        return value if math.isfinite(value) and value > 0 else default

    return Limits(
        work=number(ENVIRONMENT[f"{who} work"], work),
        memory=int(number(ENVIRONMENT[f"{who} memory"], memory_mb) * 2**20),
    )


LIBRARY = _from_environment("library", 5e10, 4096)
"""The runner's limits: most of an hour of one core, and 4 GB."""
APP = _from_environment("app", 3e8, 512)
"""The app's limits per page: a few seconds of work, and 512 MB."""


def kind(scenario: Scenario, engine: str) -> str:
    """How a scenario is simulated on an engine (``"simpy"`` or ``"vectorized"``, as the runner chose it).

    ``"vectorized"`` (independent deals), ``"queues"`` (the vectorised engine with limited
    reps), ``"simpy"`` or ``"simpy with limited reps"``.
    """
    if engine == "simpy":
        return "simpy with limited reps" if scenario.has_capacity_limits else "simpy"
    return "queues" if scenario.has_capacity_limits else "vectorized"


def deals_per_run(scenario: Scenario) -> float:
    """Expected deals a replication of one funnel (a team: of one rep) holds: new ones and those open on day 0."""
    return scenario.expected_arrivals + sum(stage.open for stage in scenario.stages) + len(scenario.open_deals)


def _reps(scenario: Scenario) -> int:
    return 1 if scenario.team is None else scenario.team.reps


def result_bytes(scenario: Scenario, runs: int) -> int:
    """Memory the per-replication results of ``runs`` replications of a scenario take (every rep of a team)."""
    per_run = scenario.n_weeks + 3 * len(scenario.stages) + 2
    if scenario.has_capacity_limits:  # six figures per stage, and two per stage and week
        per_run += len(scenario.stages) * (6 + 2 * scenario.n_weeks)
    reps = 1 if _reps(scenario) == 1 else _reps(scenario) + 1  # each rep's and the total
    return 8 * per_run * runs * reps


def _simulated_runs(how: str, runs: int) -> int:
    """Replications an engine simulates for ``runs``: the arrays work in whole blocks."""
    return runs if how.startswith("simpy") else BLOCK * math.ceil(runs / BLOCK)


@dataclass(frozen=True)
class Estimate:
    """What a request would take: ``work`` in weighted deal-stages, ``memory`` in bytes at its peak."""

    work: float
    memory: float

    def fits(self, limits: Limits) -> bool:
        """Whether both are within ``limits``."""
        return self.work <= limits.work and self.memory <= limits.memory


def estimate(scenarios: Sequence[Scenario], engines: Sequence[str], runs: int, workers: int = 1) -> Estimate:
    """The work and peak memory of simulating ``scenarios`` together, ``runs`` replications each.

    Parameters
    ----------
    scenarios : sequence of Scenario
        Simulated with one seed (a scenario and its variants), each on its engine.
    engines : sequence of str
        Each scenario's engine, ``"simpy"`` or ``"vectorized"`` (:func:`sim.runner.choose_engine`).
    runs : int
        Replications of each.
    workers : int
        Worker processes: each holds a block (or a replication) of its own at once.

    Returns
    -------
    Estimate
        Work: runs (whole blocks on the array engines) x deals a run x stages x reps,
        weighted by :data:`COST`, summed. Memory: the scenarios' deals of one block (a
        SimPy replication) side by side, per worker, plus every scenario's results.
    """
    work = held = 0.0
    for scenario, engine in zip(scenarios, engines, strict=True):
        how = kind(scenario, engine)
        deals = deals_per_run(scenario)
        work += _simulated_runs(how, runs) * deals * _reps(scenario) * len(scenario.stages) * COST[how]
        at_once = 1 if how.startswith("simpy") else BLOCK
        held += DEAL_BYTES[how] * deals * at_once  # a team's reps are simulated one after the other
    results = sum(result_bytes(s, runs) for s in scenarios)
    return Estimate(work=work, memory=held * max(1, workers) + results)


def runs_that_fit(
    scenarios: Sequence[Scenario], engines: Sequence[str], runs: int, limits: Limits, workers: int = 1
) -> int:
    """The most runs, up to ``runs``, whose :func:`estimate` fits ``limits`` (0 when not even one does).

    Rounded down to two significant figures, so the number can be said and typed.
    """
    if estimate(scenarios, engines, runs, workers).fits(limits):
        return runs
    low, high = 0, runs  # estimate(low) fits (or low is 0), estimate(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if estimate(scenarios, engines, middle, workers).fits(limits):
            low = middle
        else:
            high = middle
    if low < 10:
        return low
    step = 10 ** (int(math.log10(low)) - 1)
    return low // step * step


def check(scenarios: Sequence[Scenario], engines: Sequence[str], runs: int, limits: Limits | None = None) -> None:
    """Refuse a simulation beyond ``limits`` with one line that says what would fit.

    Raises
    ------
    ValueError
        ``runs: ...`` when fewer runs would fit (naming how many), else
        ``inflow.per_week: ...`` when even one block of the scenarios' deals is too much.
    """
    limits = limits or LIBRARY  # read when called, so an operator's (or a test's) setting applies
    need = estimate(scenarios, engines, runs)
    if need.fits(limits):
        return
    fit = runs_that_fit(scenarios, engines, runs, limits)
    deals = max(deals_per_run(s) * _reps(s) for s in scenarios)
    if fit >= 1:
        raise ValueError(
            f"runs: {runs:,} runs of about {deals:,.0f} deals each are more work than the budget allows; at most "
            f"{fit:,} runs fit (ask for {fit:,} or fewer, or lower inflow.per_week)"
        )
    raise ValueError(
        f"inflow.per_week: about {deals:,.0f} deals a run are more than the budget allows at any number of runs "
        f"(it needs about {need.memory / 2**30:.1f} GB at once, limit {limits.memory / 2**30:.1f} GB; work "
        f"{need.work:.2g} deal-stages, limit {limits.work:.2g}); lower inflow.per_week or the horizon"
    )


def workers_that_fit(
    scenarios: Sequence[Scenario], engines: Sequence[str], runs: int, workers: int, limits: Limits | None = None
) -> int:
    """The most worker processes, up to ``workers``, whose blocks fit in ``limits.memory`` together (at least 1)."""
    limits = limits or LIBRARY
    while workers > 1 and estimate(scenarios, engines, runs, workers).memory > limits.memory:
        workers -= 1
    return workers

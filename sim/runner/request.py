"""What a caller asks the runner for: a :class:`Request`, and the checks every request passes.

A request names the scenarios to simulate together (a scenario and, optionally, its
variants: they share one seed, so their comparisons use common random numbers), the
runs, the seed, the engine and the most worker processes it may use. It holds the
scenarios without their quotas (:func:`quota_free`): what a simulation produces does
not depend on the quota, so one request, and one remembered answer, serves every quota.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sim.model.scenario import Scenario, Segment
from sim.model.segments import funnels
from sim.runner.budget import LIBRARY, result_bytes

Engine = Literal["auto", "simpy", "vectorized"]
ENGINES = ("auto", "simpy", "vectorized")
MAX_RUNS = 10_000_000
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
"""The cores this process may run on: more worker processes than these only compete for them."""


def quota_free(scenario: Scenario | Segment) -> Scenario | Segment:
    """The scenario without its quotas (nor a team's rep quota, nor a segment's): all a simulation depends on."""
    update: dict = {"quota": None}
    if scenario.team is not None:
        update["team"] = scenario.team.model_copy(update={"rep_quota": None})
    if isinstance(scenario, Scenario) and scenario.segments:
        update["segments"] = tuple(quota_free(segment) for segment in scenario.segments)
    return scenario.model_copy(update=update)


@dataclass(frozen=True)
class Request:
    """Scenarios to simulate with one seed, and how.

    Parameters
    ----------
    scenarios : tuple of Scenario
        The scenario first, then any variants of it (what-ifs, levers): all are
        simulated with the same seed, and the runner shares the work between them where
        an engine can. Held without their quotas (:func:`quota_free`).
    runs : int
        Replications.
    seed : int
        Root seed; replication *i* depends only on it and *i*.
    engine : {"auto", "simpy", "vectorized"}
        ``auto``: the vectorised engine (with its queues where reps are limited) wherever
        it models the scenario, else the SimPy engine.
    jobs : int
        The most worker processes the runner may use (capped at the machine's cores). The
        numbers never depend on it; the runner uses workers only where the work pays for them.

    Raises
    ------
    ValueError
        A setting no simulation can honour, with a line naming it.
    """

    scenarios: tuple[Scenario, ...]
    runs: int = 10_000
    seed: int = 0
    engine: Engine = "auto"
    jobs: int = field(default=1, compare=False)

    def __post_init__(self):
        if not self.scenarios:
            raise ValueError("scenarios: at least one scenario to simulate")
        runs, seed, jobs = self.runs, self.seed, self.jobs
        if not isinstance(runs, int | np.integer) or isinstance(runs, bool) or not 1 <= runs <= MAX_RUNS:
            raise ValueError(f"runs: must be a whole number from 1 to {MAX_RUNS:,}, got {runs}")
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed: must be a whole number >= 0, got {seed}")
        if not isinstance(jobs, int | np.integer) or isinstance(jobs, bool) or jobs < 1:
            raise ValueError(f"jobs: must be a whole number >= 1, got {jobs}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine: must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        need = sum(result_bytes(f, int(runs)) for s in self.scenarios for f in funnels(s))
        if need > LIBRARY.memory:
            raise ValueError(
                f"runs: {runs:,} runs would need {need / 2**30:.1f} GiB of results "
                f"(limit {LIBRARY.memory / 2**30:.0f} GiB); ask for fewer runs"
            )
        # Frozen: the fields are set once, here, to their canonical form.
        object.__setattr__(self, "scenarios", tuple(quota_free(s) for s in self.scenarios))
        object.__setattr__(self, "runs", int(runs))
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "jobs", min(int(jobs), CORES))

    @classmethod
    def of(cls, scenario: Scenario, variants=(), **settings) -> Request:
        """A request for ``scenario`` and its ``variants`` (``runs``, ``seed``, ``engine``, ``jobs`` as keywords)."""
        return cls((scenario, *variants), **settings)

    @property
    def scenario(self) -> Scenario:
        """The first scenario (the one the variants vary)."""
        return self.scenarios[0]

    def deals(self) -> float:
        """About the new deals the request simulates: over the runs, the scenarios and a team's reps."""
        return sum(
            self.runs * f.expected_arrivals * (1 if f.team is None else f.team.reps)
            for s in self.scenarios
            for f in funnels(s)
        )

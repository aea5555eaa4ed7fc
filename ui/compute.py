"""The app's calls into :mod:`sim`, cached by value.

Every function takes the scenario model and plain numbers; ``st.cache_data`` hashes a
frozen pydantic model by its field values, so the same what-if asked twice (or by two
pages) runs once. Functions never read globals or session state, so the cache key is
the whole question. An answer that is "no answer" (:class:`sim.questions.magic_number.Unreachable`)
is returned as its message rather than raised, so it is cached too.

Simulations are kept without what they do not depend on: the quota (and the current
inflow, for the magic number's thresholds), so a leader dragging the quota reruns
nothing. The thresholds are the one store that grows (:class:`_ThresholdStore`): a
question that looks at higher inflows extends them rather than starting over.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import streamlit as st
from joblib import Parallel, delayed, parallel_config

from sim import Scenario, SimulationResult, simulate
from sim.engines.outcomes import Outcomes
from sim.model.scenario import Quota, with_inflow
from sim.questions.magic_number import MagicNumber, Unreachable, solve_magic_number
from sim.questions.sensitivity import levers as solver_levers
from sim.questions.sensitivity import sensitivity
from sim.runner import (
    InflowThresholds,
    choose_engine,
    independent_deals,
    inflow_thresholds,
    simulate_team,
    simulate_variants,
)
from sim.runner.results import TeamResult, team_result

LONG_RUNS = 20_000
"""From this many runs (or on the SimPy engine) a simulation shows a progress bar."""
SIMPY_JOBS = min(2, os.cpu_count() or 1)
"""Worker processes for the SimPy engine (the numbers do not depend on them); one vectorised run needs none."""
VARIANT_JOBS = SIMPY_JOBS
"""Worker processes sharing the blocks of a scenario simulated with its levers (the same pool as SimPy's)."""
PARALLEL_DEALS = 20_000_000
"""From this many new deals (over the runs, the levers and a team's reps) the levers go to :data:`VARIANT_JOBS`
workers. Below it, one process is about as fast: sending them the work would cost more than they save. (Workers
pay only with cores to spare: on two cores with one busy elsewhere they took nearly twice as long as one process.)"""
PARALLEL_THRESHOLD_DEALS = 5_000_000
"""From this many new deals the inflow thresholds' first simulation goes to :data:`VARIANT_JOBS` workers, if they
are up (an extension stays in this process: sending the blocks' state back and forth cost what they saved)."""
WORKERS_IDLE_SECONDS = 3_600
"""How long the app's worker processes wait for work before they stop (joblib's default is five minutes).

Starting them takes a second or two, more than a page has: they start in the background when a scenario that
needs them is opened (:func:`_start_workers`), and stay for a user who comes back to the page later."""


NO_QUOTA = Quota(deals=1)
"""A stand-in quota: what a simulation produces does not depend on the quota."""
NO_INFLOW = 1.0
"""A stand-in weekly inflow, for the inflow thresholds (they look at every inflow up to a top)."""


def _quota_free(scenario: Scenario) -> Scenario:
    """The scenario with stand-in quotas (the team's rep quota too): the cache key of its simulation."""
    update = {"quota": NO_QUOTA}
    if scenario.team is not None:
        update["team"] = scenario.team.model_copy(update={"rep_quota": 1.0})
    return scenario.model_copy(update=update)


def _workers() -> parallel_config:
    """joblib's settings for the app's worker processes (every call that may use them takes the same, or joblib
    would start new ones): kept :data:`WORKERS_IDLE_SECONDS` when idle."""
    return parallel_config(backend="loky", idle_worker_timeout=WORKERS_IDLE_SECONDS)


def _lever_deals(scenario: Scenario, runs: int) -> float:
    """About the new deals the scenario and its levers simulate (over the runs and a team's reps).

    The levers (:func:`sim.questions.sensitivity.levers`) are two a stage, the inflow and deal values;
    the inflow's few more deals are left out.
    """
    reps = 1 if scenario.team is None else scenario.team.reps
    return runs * reps * scenario.expected_arrivals * (1 + 2 * len(scenario.stages) + 2)


def _needs_workers(scenario: Scenario, runs: int, engine: str) -> bool:
    """Whether the scenario's levers, or (about) its magic number's thresholds, go to worker processes."""
    reps = 1 if scenario.team is None else scenario.team.reps
    thresholds = independent_deals(scenario, engine) and 2 * runs * reps * scenario.expected_arrivals
    return _lever_deals(scenario, runs) >= PARALLEL_DEALS or thresholds >= PARALLEL_THRESHOLD_DEALS


@st.cache_resource(show_spinner=False)
def _start_workers() -> threading.Event:
    """Start the worker processes in the background, once per server (:data:`WORKERS_IDLE_SECONDS`); set when up."""
    ready = threading.Event()

    def start() -> None:
        with _workers():
            Parallel(n_jobs=VARIANT_JOBS)(delayed(os.getpid)() for _ in range(VARIANT_JOBS))
        ready.set()

    threading.Thread(target=start, daemon=True).start()
    return ready


def run(scenario: Scenario, runs: int, seed: int, engine: str) -> SimulationResult:
    """Simulate ``runs`` periods of the scenario (cached; a progress bar for long runs).

    The replications do not depend on the quota (only whether each one hits it does),
    so they are cached under the scenario with a stand-in quota: changing the quota, the
    input leaders drag most, reruns no simulation on any page but the magic number. A
    team scenario's result is its team total (:func:`team`). A scenario whose levers
    will need the worker processes has them started, so that they are ready.
    """
    if VARIANT_JOBS > 1 and _needs_workers(scenario, runs, engine):
        _start_workers()
    if scenario.team is not None:
        return team(scenario, runs, seed, engine).total
    outcomes, engine_name = _outcomes(_quota_free(scenario), runs, seed, engine)
    return SimulationResult(scenario, seed, engine_name, outcomes)


def run_together(scenarios: list[Scenario], runs: int, seed: int, engine: str) -> list[SimulationResult]:
    """:func:`run` of several scenarios (of one team size), simulated together where the engine shares the work.

    :func:`sim.runner.simulate_variants` gives each exactly its own numbers; on the
    vectorised queues, the Forecast's funnel with limited reps and with as many as it
    needs take about a third less time than one after the other. Cached as a set (so a
    page that asks for one of them alone simulates it again, once).
    """
    if len(scenarios) == 1 or any(s.team is not None for s in scenarios):
        return [run(scenario, runs, seed, engine) for scenario in scenarios]
    together = _outcomes_together(tuple(_quota_free(s) for s in scenarios), runs, seed, engine)
    return [SimulationResult(s, seed, name, outcomes) for s, (outcomes, name) in zip(scenarios, together, strict=True)]


@st.cache_data(max_entries=32, show_spinner=False)
def _outcomes_together(scenarios: tuple[Scenario, ...], runs: int, seed: int, engine: str) -> list[tuple]:
    """The outcomes of :func:`run_together`'s scenarios, each with the engine that ran it."""
    if runs >= LONG_RUNS or choose_engine(scenarios[0], engine) == "simpy":  # progress bars: one by one
        return [_outcomes(scenario, runs, seed, engine) for scenario in scenarios]
    with _workers():
        return [(r.outcomes, r.engine) for r in simulate_variants(list(scenarios), runs, seed, engine=engine)]


def team(scenario: Scenario, runs: int, seed: int, engine: str) -> TeamResult:
    """Every rep's replications and the team figures (cached without the quotas, as :func:`run`)."""
    rep_outcomes, engine_name = _outcomes(_quota_free(scenario), runs, seed, engine)
    return team_result(scenario, seed, engine_name, rep_outcomes)


@st.cache_data(max_entries=128, show_spinner=False)
def _outcomes(scenario: Scenario, runs: int, seed: int, engine: str) -> tuple[Outcomes | list[Outcomes], str]:
    """The outcomes of a simulation (a list of each rep's for a team) and the engine that ran."""
    simpy = choose_engine(scenario, engine) == "simpy"
    size = runs * (scenario.team.reps if scenario.team is not None else 1)
    jobs = SIMPY_JOBS if simpy else 1

    def simulated(progress=None):
        if scenario.team is not None:
            result = simulate_team(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine, progress=progress)
            return [rep.outcomes for rep in result.reps], result.engine
        result = simulate(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine, progress=progress)
        return result.outcomes, result.engine

    if size < LONG_RUNS and not simpy:
        with _workers():
            return simulated()
    # Created inside the cached function, so a cache hit replays it (already emptied).
    what = "rep-periods" if scenario.team is not None else "periods"
    bar = st.progress(0.0, text=f"Simulating {size:,} {what}...")
    shown = [-1]

    def tick(done: int, total: int) -> None:
        percent = 100 * done // total
        if percent >= shown[0] + 5:
            shown[0] = percent
            bar.progress(done / total, text=f"Simulating: {done:,} of {total:,} {what}")

    with _workers():
        answer = simulated(tick)
    bar.empty()
    return answer


def p_hit_at(scenario: Scenario, per_week: float, runs: int, seed: int, engine: str) -> float:
    """P(hit) with another weekly inflow and the same seed (a point of the magic-number curve).

    With deals independent on the vectorised engine it is read off the inflow thresholds
    the magic number rests on (:func:`_thresholds`): exactly the P(hit) of a simulation at
    that inflow, with nothing to simulate once the magic number has looked that far.
    """
    if independent_deals(scenario, engine):
        critical = _thresholds(scenario, runs, seed).at(per_week).critical_inflows(scenario.quota, per_week)
        return float(np.mean(critical <= per_week))
    return run(with_inflow(scenario, per_week), runs, seed, engine).p_hit


@st.cache_data(max_entries=64, show_spinner="Solving for the magic number...", show_time=True)
def magic_number(scenario: Scenario, target: float, runs: int, seed: int, engine: str) -> MagicNumber | str:
    """The weekly opportunities for P(hit) = target, or the reason there is no such number.

    The inflow thresholds it rests on depend on neither the quota, the target nor the
    current inflow: they are kept apart (:class:`_ThresholdStore`), so moving any of
    them simulates nothing, or only the deals beyond the inflows simulated so far.
    """
    store = _thresholds(scenario, runs, seed)
    try:
        return solve_magic_number(
            scenario, target, runs=runs, seed=seed, engine=engine, thresholds=lambda top, _previous: store.at(top)
        )
    except Unreachable as reason:
        return str(reason)


def _thresholds(scenario: Scenario, runs: int, seed: int) -> _ThresholdStore:
    """The scenario's inflow thresholds, shared by every quota, target and inflow asked about."""
    # Thresholds depend on neither the quota nor the current inflow (each deal's arrival
    # day is worked out for any inflow): one store serves every value of either.
    return _threshold_store(with_inflow(_quota_free(scenario), NO_INFLOW), runs, seed)


class _ThresholdStore:
    """One scenario's inflow thresholds, simulated as far as any question so far has needed.

    A question that needs a higher inflow extends them, simulating only the deals beyond
    (:meth:`sim.runner.InflowThresholds.extended`); one that needs less reads them as far
    as it asks, which gives exactly the answer of thresholds simulated that far. So a new
    quota or target never simulates again what an earlier one did, whichever inflows each
    looks at: a cached value per inflow could not do that.
    """

    def __init__(self, scenario: Scenario, runs: int, seed: int):
        self._question = (scenario, runs, seed)
        self._lock = threading.Lock()  # sessions share the store
        self._thresholds: InflowThresholds | None = None

    def at(self, top: float) -> InflowThresholds:
        """The thresholds, simulated as far as ``top`` a week at least."""
        with self._lock:
            if self._thresholds is None:
                scenario, runs, seed = self._question
                reps = 1 if scenario.team is None else scenario.team.reps
                deals = runs * reps * top * scenario.expected_arrivals  # the scenario has 1 a week
                # Only workers already up pay here; the first time they start for the next question.
                big = VARIANT_JOBS > 1 and deals >= PARALLEL_THRESHOLD_DEALS
                jobs = VARIANT_JOBS if big and _start_workers().is_set() else 1
                with _workers():
                    self._thresholds = inflow_thresholds(scenario, runs=runs, seed=seed, max_per_week=top, jobs=jobs)
            elif self._thresholds.max_per_week < top:
                self._thresholds = self._thresholds.extended(top)
            return self._thresholds


@st.cache_resource(max_entries=8, show_spinner=False)  # a few MB each
def _threshold_store(scenario: Scenario, runs: int, seed: int) -> _ThresholdStore:
    """The shared :class:`_ThresholdStore` of a scenario without its quota, for these settings."""
    return _ThresholdStore(scenario, runs, seed)


@st.cache_data(max_entries=64, show_spinner="Trying each lever...", show_time=True)
def levers(scenario: Scenario, step: float, runs: int, seed: int, engine: str) -> dict:
    """:func:`sim.questions.sensitivity.sensitivity` of the scenario.

    On the vectorised engine (limited reps included) the scenario and its levers are
    simulated together, cached without the quota (:func:`_lever_outcomes`). On the
    SimPy engine each lever is a cached run, one at a time: each shows a progress bar,
    a page element, which only the script's own thread may draw.
    """
    together = choose_engine(scenario, engine) == "vectorized"

    def run_variants(variants: list[Scenario]) -> list[SimulationResult]:
        outcomes = _lever_outcomes(_quota_free(scenario), step, runs, seed, engine)
        return [SimulationResult(v, seed, "vectorized", o) for v, o in zip(variants, outcomes, strict=True)]

    return sensitivity(
        scenario,
        step=step,
        runs=runs,
        seed=seed,
        engine=engine,
        run=lambda v: run(v, runs, seed, engine),
        run_variants=run_variants if together else None,
    )


@st.cache_data(max_entries=8, show_spinner=False)  # a few MB each
def _lever_outcomes(scenario: Scenario, step: float, runs: int, seed: int, engine: str) -> list[Outcomes]:
    """The outcomes of the scenario and its levers (:func:`sim.questions.sensitivity.levers`), simulated together.

    A team's are its totals: what the team quota is judged on. Worker processes share a
    large simulation (:data:`PARALLEL_DEALS`).
    """
    variants = [scenario, *(variant for _, variant in solver_levers(scenario, step))]
    jobs = VARIANT_JOBS if _lever_deals(scenario, runs) >= PARALLEL_DEALS else 1
    with _workers():
        return [r.outcomes for r in simulate_variants(variants, runs=runs, seed=seed, jobs=jobs, engine=engine)]

"""The app's calls into :mod:`sim`, cached by value.

Every function takes the scenario model and plain numbers; ``st.cache_data`` hashes a
frozen pydantic model by its field values, so the same what-if asked twice (or by two
pages) runs once. Functions never read globals or session state, so the cache key is
the whole question. An answer that is "no answer" (:class:`sim.solvers.Unreachable`)
is returned as its message rather than raised, so it is cached too.
"""

from __future__ import annotations

import os

import numpy as np
import streamlit as st

from sim import Scenario, SimulationResult, simulate
from sim.outcomes import Outcomes
from sim.runner import choose_engine, critical_inflows
from sim.scenario import Quota
from sim.solvers import MagicNumber, Unreachable, sensitivity, solve_magic_number, with_inflow
from sim.team import TeamResult, simulate_team, team_result

LONG_RUNS = 20_000
"""From this many runs (or on the SimPy engine) a simulation shows a progress bar."""
SIMPY_JOBS = min(2, os.cpu_count() or 1)
"""Worker processes for the SimPy engine (the numbers do not depend on them); the vectorised one needs none."""


NO_QUOTA = Quota(deals=1)
"""A stand-in quota: what a simulation produces does not depend on the quota."""


def _quota_free(scenario: Scenario) -> Scenario:
    """The scenario with stand-in quotas (the team's rep quota too): the cache key of its simulation."""
    update = {"quota": NO_QUOTA}
    if scenario.team is not None:
        update["team"] = scenario.team.model_copy(update={"rep_quota": 1.0})
    return scenario.model_copy(update=update)


def run(scenario: Scenario, runs: int, seed: int, engine: str) -> SimulationResult:
    """Simulate ``runs`` periods of the scenario (cached; a progress bar for long runs).

    The replications do not depend on the quota (only whether each one hits it does),
    so they are cached under the scenario with a stand-in quota: changing the quota, the
    input leaders drag most, reruns no simulation on any page but the magic number. A
    team scenario's result is its team total (:func:`team`).
    """
    if scenario.team is not None:
        return team(scenario, runs, seed, engine).total
    outcomes, engine_name = _outcomes(_quota_free(scenario), runs, seed, engine)
    return SimulationResult(scenario, seed, engine_name, outcomes)


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

    answer = simulated(tick)
    bar.empty()
    return answer


def p_hit_at(scenario: Scenario, per_week: float, runs: int, seed: int, engine: str) -> float:
    """P(hit) with another weekly inflow and the same seed (a point of the magic-number curve)."""
    return run(with_inflow(scenario, per_week), runs, seed, engine).p_hit


@st.cache_data(
    max_entries=64, show_spinner="Solving for the magic number: each try is a full simulation...", show_time=True
)
def magic_number(scenario: Scenario, target: float, runs: int, seed: int, engine: str) -> MagicNumber | str:
    """The weekly opportunities for P(hit) = target, or the reason there is no such number.

    The critical inflows it rests on are cached apart: they do not depend on the
    target, so moving the target slider simulates nothing.
    """
    try:
        return solve_magic_number(
            scenario,
            target,
            runs=runs,
            seed=seed,
            engine=engine,
            critical=lambda variant, top: _critical_inflows(variant, runs, seed, top),
        )
    except Unreachable as reason:
        return str(reason)


@st.cache_data(max_entries=32, show_spinner=False)
def _critical_inflows(scenario: Scenario, runs: int, seed: int, top: float) -> np.ndarray:
    return critical_inflows(scenario, runs=runs, seed=seed, max_per_week=top)


@st.cache_data(max_entries=64, show_spinner="Trying each lever: one simulation per lever...", show_time=True)
def levers(scenario: Scenario, step: float, runs: int, seed: int, engine: str) -> dict:
    """:func:`sim.solvers.sensitivity` of the scenario, two levers at a time where that is safe.

    Threads only for the vectorised engine without a progress bar: a bar is a page
    element, which only the script's own thread may draw.
    """
    quiet = runs < LONG_RUNS and choose_engine(scenario, engine) != "simpy"
    return sensitivity(
        scenario,
        step=step,
        runs=runs,
        seed=seed,
        engine=engine,
        run=lambda v: run(v, runs, seed, engine),
        threads=2 if quiet else 1,
    )

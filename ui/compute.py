"""The app's calls into :mod:`sim`: the questions, with the runner remembering what it simulated.

The server turns the runner's memory on once (:func:`sim.runner.remember`): a
simulation is kept under its request, which holds no quota, so the same what-if asked
again, by another page or with another quota or target, simulates nothing, and the magic
number's thresholds are extended rather than simulated again. So this module caches
nothing itself: it asks the runner or a question, and shows a progress bar where a
simulation is long. Worker processes start in the background once the first page is drawn.
"""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from sim import Scenario, SimulationResult
from sim.model.segments import funnels
from sim.questions.magic_number import MagicNumber, Unreachable, solve_magic_number, solve_segment_magic_numbers
from sim.questions.sensitivity import sensitivity
from sim.runner import (
    Request,
    Simulation,
    TeamResult,
    choose_engine,
    independent_deals,
    inflow_thresholds,
    remember,
    run,
    start_workers,
)
from sim.runner.budget import APP, runs_that_fit
from sim.runner.request import CORES
from ui.safe import check_alive

LONG_RUNS = 20_000
"""From this many runs (over a team's reps and the scenarios asked together), or on the SimPy engine, a
simulation shows a progress bar."""
MEMORY_BYTES = 512 * 2**20
"""The simulations the server keeps (their per-run arrays), the least recently used dropped first."""


SCENARIOS_ASKED = {
    "Forecast": lambda s: 2 if s.has_capacity_limits else 1,  # with limited reps, also with as many as it needs
    "Magic number": lambda s: 4,  # the inflow thresholds reach a few times today's inflow
    "Sensitivity": lambda s: 2 * len(s.stages) + 3,
    "Compare": lambda s: 2,
}
"""How many scenarios like the current one a page simulates at once (1 where not listed)."""


def runs_within_budget(page: str, scenario: Scenario, runs: int, engine: str) -> int:
    """The most runs, up to ``runs``, that the page's simulation fits in the app's work budget (:data:`APP`).

    With segments each segment's funnel counts (:func:`sim.model.segments.funnels`); a page that simulates
    variants of them (Sensitivity) simulates only the segment a variant changes.
    """
    parts = funnels(scenario)
    if len(parts) == 1:
        parts = parts * SCENARIOS_ASKED.get(page, lambda s: 1)(scenario)
    elif page in SCENARIOS_ASKED:
        parts = parts + [f for f in parts for _ in range(SCENARIOS_ASKED[page](f) - 1)]
    return runs_that_fit(parts, [choose_engine(f, engine) for f in parts], runs, APP, CORES)


@st.cache_resource(show_spinner=False)
def serve() -> None:
    """Once per server: the runner remembers its simulations."""
    remember(MEMORY_BYTES)


@st.cache_resource(show_spinner=False)
def start_workers_in_background() -> None:
    """Once per server, after its first page is drawn: the worker processes start in the background.

    Each worker imports :mod:`sim` (seconds of CPU); started with the first visit, two of them
    took the cores the first page needed on a two-core machine. The first pages need no
    workers: small simulations run in the server's own process.
    """
    if CORES > 1:
        threading.Thread(target=start_workers, daemon=True).start()


def _request(scenarios: list[Scenario], runs: int, seed: int, engine: str) -> Request:
    return Request(tuple(scenarios), runs=runs, seed=seed, engine=engine, jobs=CORES)


def _progress(request: Request, copies: int = 1):
    """A progress bar's update function and its closing; both stop the work if the visitor has gone.

    ``copies``: how many scenarios like the request's first one are simulated (a scenario and its levers).
    """
    size = copies * request.runs * sum(1 if s.team is None else s.team.reps for s in request.scenarios)
    simpy = any(choose_engine(s, request.engine) == "simpy" for s in request.scenarios)
    if size < LONG_RUNS and not simpy:
        return check_alive, lambda: None
    # A team's size counts each rep's period once; "rep-periods" is no word for a manager.
    what = "periods (one per rep)" if any(s.team is not None for s in request.scenarios) else "periods"
    bar = st.progress(0.0, text=f"Simulating {size:,} {what}...")
    shown = [-1]

    def tick(done: int, total: int) -> None:
        check_alive()
        percent = 100 * done // total
        if percent >= shown[0] + 5:
            shown[0] = percent
            bar.progress(done / total, text=f"Simulating: {done:,} of {total:,} {what}")

    return tick, bar.empty


def simulation(scenarios: list[Scenario], runs: int, seed: int, engine: str) -> Simulation:
    """The runner's simulation of these scenarios together (remembered), with a progress bar when long."""
    request = _request(scenarios, runs, seed, engine)
    tick, close = _progress(request)
    try:
        return run(request, tick)
    finally:
        close()


def run_scenario(scenario: Scenario, runs: int, seed: int, engine: str) -> SimulationResult:
    """The scenario's replications judged against its quota (a team's: its total)."""
    return simulation([scenario], runs, seed, engine).result(scenario, seed)


def run_together(scenarios: list[Scenario], runs: int, seed: int, engine: str) -> list[SimulationResult]:
    """Several scenarios simulated as one request: the runner shares the work, each gets exactly its own numbers."""
    answer = simulation(scenarios, runs, seed, engine)
    return [answer.result(s, seed, i) for i, s in enumerate(scenarios)]


def team(scenario: Scenario, runs: int, seed: int, engine: str) -> TeamResult:
    """Every rep's replications and the team figures."""
    return simulation([scenario], runs, seed, engine).team(scenario, seed)


def p_hit_at(scenario: Scenario, per_week: float, runs: int, seed: int, engine: str) -> float:
    """P(hit) with another weekly inflow and the same seed (a point of the magic-number curve).

    With independent deals it is read off the inflow thresholds the magic number rests
    on: exactly the P(hit) of a simulation at that inflow, and nothing to simulate once the
    magic number has looked that far.
    """
    if independent_deals(scenario, engine):
        thresholds = inflow_thresholds(_request([scenario], runs, seed, engine), per_week)
        return float(np.mean(thresholds.critical_inflows(scenario.quota, per_week) <= per_week))
    return run_scenario(scenario.with_inflow(per_week), runs, seed, engine).p_hit


def magic_number(scenario: Scenario, target: float, runs: int, seed: int, engine: str) -> MagicNumber | str:
    """The weekly opportunities for P(hit) = target, or the reason there is no such number."""
    with st.spinner("Solving for the magic number...", show_time=True):
        try:
            return solve_magic_number(scenario, target, runs=runs, seed=seed, jobs=CORES, engine=engine)
        except Unreachable as reason:
            return str(reason)
        except ValueError as refused:  # the runner's work budget, at an inflow far above today's
            return f"the search needs more work than this server allows ({refused})"


def segment_magic_numbers(scenario: Scenario, target: float, runs: int, seed: int, engine: str) -> list[dict] | str:
    """Each segment's magic number for the total quota (the others as they are), or why the search stopped."""
    with st.spinner("Solving for each segment's magic number...", show_time=True):
        try:
            return solve_segment_magic_numbers(scenario, target, runs=runs, seed=seed, jobs=CORES, engine=engine)
        except ValueError as refused:  # the runner's work budget, at an inflow far above today's
            return f"the search needs more work than this server allows ({refused})"


def levers(scenario: Scenario, step: float, runs: int, seed: int, engine: str) -> dict:
    """:func:`sim.questions.sensitivity.sensitivity` of the scenario: it and its levers, one request."""
    variants = 2 * len(scenario.stages) + 3  # the scenario, two levers a stage, inflow and deal value
    tick, close = _progress(_request([scenario], runs, seed, engine), copies=variants)
    try:
        with st.spinner("Trying each lever...", show_time=True):
            return sensitivity(scenario, step=step, runs=runs, seed=seed, jobs=CORES, engine=engine, progress=tick)
    finally:
        close()

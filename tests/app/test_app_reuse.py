"""The app simulates only what is new: the quota and the page's slider reuse what was simulated.

The inflow thresholds behind the magic number and the simulations behind the levers do
not depend on the quota, so the runner remembers them without it (:mod:`sim.runner.memo`,
which the app turns on). Here the runner's new simulations are counted while the inputs
move, and the numbers shown are the library's own for the new inputs.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest
import streamlit as st

from sim import load_scenario, simulate
from sim.questions.magic_number import solve_magic_number
from sim.questions.sensitivity import sensitivity
from sim.runner import InflowThresholds, memo
from sim.runner import execute as runner
from sim.words import human
from tests.app_helpers import metric, new_app, no_exception, number, open_page
from ui import compute

RUNS, SEED = 2_000, 0  # the app's defaults


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Counts of new threshold simulations, their extensions and lever simulations, from empty caches."""
    counts: Counter = Counter()

    def counted(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)

        return wrapper

    def assemble(request, *args):
        counts["levers" if len(request.scenarios) > 2 else "simulate"] += 1
        return assemble_simulation(request, *args)

    assemble_simulation = runner._assemble  # called once per new simulation
    monkeypatch.setattr(runner, "_assemble", assemble)
    monkeypatch.setattr(runner, "InflowThresholds", counted("thresholds", InflowThresholds))  # new ones only
    monkeypatch.setattr(InflowThresholds, "extended", counted("extended", InflowThresholds.extended))
    memo.forget()
    memo.remember(compute.MEMORY_BYTES)  # as the app's server does
    st.cache_data.clear()
    st.cache_resource.clear()
    return counts


def set_quota(at, value: float) -> None:
    at.number_input(key="quota_revenue" if at.session_state["quota_unit"] == "revenue" else "quota_deals").set_value(
        value
    ).run()
    no_exception(at)


@pytest.mark.parametrize("name", ["reference_quarter", "outbound_sdr", "team_quarter"])
def test_a_new_quota_or_target_reuses_the_thresholds_of_the_magic_number(calls, name):
    scenario = load_scenario(f"scenarios/{name}.toml")
    at = new_app({"file": f"{name}.toml"}).run()
    open_page(at, "Magic number")
    no_exception(at)
    assert calls["thresholds"] == 1
    for factor, target in ((0.9, 80), (1.06, 80), (1.06, 90)):
        quota = scenario.quota.model_copy(update={scenario.quota.unit: round(factor * scenario.quota.target)})
        set_quota(at, quota.target)
        at.slider(key="target").set_value(target).run()
        no_exception(at)
        expected = solve_magic_number(scenario.model_copy(update={"quota": quota}), target / 100, runs=RUNS, seed=SEED)
        # Shown to three significant figures, as the library writes it.
        assert number(metric(at, "Magic number (simulation)")) == number(human(expected.weekly_opportunities))
    # Nothing simulated again from the start: at most the deals beyond the inflows looked at so far.
    assert calls["thresholds"] == 1


def test_a_lower_quota_simulates_nothing_for_the_magic_number(calls):
    at = new_app({"file": "outbound_sdr.toml"}).run()
    open_page(at, "Magic number")
    before = dict(calls)
    set_quota(at, 80)
    assert dict(calls) == before and calls["thresholds"] == 1


def test_a_new_quota_reuses_the_levers_simulated_together(calls):
    scenario = load_scenario("scenarios/outbound_sdr.toml")
    at = new_app({"file": "outbound_sdr.toml"}).run()
    open_page(at, "Sensitivity")
    no_exception(at)
    assert calls["levers"] == 1
    set_quota(at, 90)
    assert calls["levers"] == 1
    easier = scenario.model_copy(update={"quota": scenario.quota.model_copy(update={"deals": 90})})
    expected = sensitivity(easier, step=0.1, runs=RUNS, seed=SEED)
    assert number(metric(at, "P(hit quota) now")) == round(100 * expected["base"]["p_hit"], 1)


@pytest.mark.parametrize("name", ["follow_up_trainer", "team_quarter", "capacity_quarter"])
def test_p_hit_at_an_inflow_is_the_simulation_at_that_inflow(calls, name):
    # With independent deals it is read off the magic number's thresholds (none simulated
    # again for an inflow looked at already); with limited reps it is a simulation.
    scenario = load_scenario(f"scenarios/{name}.toml")
    engine = "vectorized"
    for factor in (0.5, 1.0, 1.7, 0.8):
        per_week = factor * scenario.inflow.per_week
        expected = simulate(scenario.with_inflow(per_week), runs=RUNS, seed=SEED, engine=engine).p_hit
        assert compute.p_hit_at(scenario, per_week, RUNS, SEED, engine) == expected, factor
    shortcut = not scenario.has_capacity_limits
    # Simulated as far as 0.5, then extended to 1.0 and to 1.7; 0.8 reads what is there.
    assert calls["thresholds"] == int(shortcut) and calls["extended"] == 2 * int(shortcut)


def test_the_forecast_simulates_limited_and_unlimited_reps_together(monkeypatch):
    # ui.compute.run_together: one request for both funnels, each with exactly its own numbers.
    scenario = load_scenario("scenarios/capacity_quarter.toml")
    unlimited = scenario.with_enough_reps()
    limited_p, unlimited_p = (
        simulate(s, runs=RUNS, seed=SEED, engine="vectorized").p_hit for s in (scenario, unlimited)
    )
    counts: Counter = Counter()
    assemble_simulation = runner._assemble

    def assemble(request, *args):
        counts.update(["simulate_variants" if len(request.scenarios) > 1 else "simulate"])
        return assemble_simulation(request, *args)

    monkeypatch.setattr(runner, "_assemble", assemble)
    memo.forget()
    at = new_app({"file": "capacity_quarter.toml"}).run()
    no_exception(at)
    assert counts == {"simulate_variants": 1}
    assert number(metric(at, "P(hit quota)")) == round(100 * limited_p, 1)
    assert f"P(hit) would be {100 * unlimited_p:.1f}%" in " ".join(info.value for info in at.info)
    at.run()  # the same inputs: nothing simulated again
    assert counts == {"simulate_variants": 1}
    open_page(at, "Quota setting")  # the limited funnel on its own: simulated once more
    no_exception(at)
    assert counts == {"simulate_variants": 1, "simulate": 1}

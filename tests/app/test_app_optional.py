"""The optional sections of the app through AppTest: rep capacity, follow-ups, no-shows, stalls, a team.

Each what-if here changes a scenario in a way whose direction is certain under common
random numbers (the same seed on both sides), not merely likely: persistence, fewer
no-shows or a later stall limit can only add wins (see sim.streams). Limited reps run on
the vectorised queues, whose streams are their own, so one rep for a whole funnel is
checked to cost P(hit) by far more than the noise.
"""

from __future__ import annotations

import sys

import pytest
from pydantic import TypeAdapter

from sim import load_scenario, simulate
from sim.model.distributions import Distribution
from sim.model.scenario import scenario_from_toml
from sim.questions.quota import realistic_rep_quota
from sim.runner import simulate_team
from tests.app_helpers import (
    captured_downloads,
    edit_behaviour,
    edit_stages,
    metric,
    new_app,
    no_exception,
    number,
    open_page,
)
from ui import form

REFERENCE = "reference_quarter.toml"
TRAINER = "follow_up_trainer.toml"
TEAM = "team_quarter.toml"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


def opened(query: dict) -> object:
    at = new_app(query).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def valid(at):
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at.session_state["last_valid"]


def toml_download(files: dict) -> str:
    data = next(data for name, data in files.items() if name.endswith(".toml"))
    return data.decode() if isinstance(data, bytes) else data


# --- rep capacity ----------------------------------------------------------------------------


def test_turning_rep_capacity_on_limits_the_reps():
    at = opened({"file": REFERENCE})
    unlimited = number(metric(at, "P(hit quota)"))
    assert not at.toggle(key="capacity_on").value
    at.toggle(key="capacity_on").set_value(True).run()
    at.number_input(key="capacity_reps").set_value(1).run()
    edit_behaviour(at, {0: {"per_rep": 10}, 1: {"per_rep": 10}})  # one rep: 10 deals at a time
    scenario = valid(at)
    assert scenario.capacity.reps == 1 and [s.per_rep for s in scenario.stages] == [10, 10, None]
    assert "Rep capacity" in [s.value for s in at.subheader]
    # The vectorised queues run the default runs; on the slower SimPy engine the default means 500.
    assert any("out 2,000 times" in c.value for c in at.caption)
    assert number(metric(at, "P(hit quota)")) < unlimited
    assert number(metric(at, "Discovery: utilisation")) > 50
    at.selectbox(key="engine").set_value("simpy").run()
    assert any("out 500 times" in c.value for c in at.caption)
    at.selectbox(key="engine").set_value("auto").run()
    # Turned off again, the limits stay in the table but no longer apply.
    at.toggle(key="capacity_on").set_value(False).run()
    assert valid(at).capacity is None and all(s.per_rep is None for s in valid(at).stages)
    assert number(metric(at, "P(hit quota)")) == unlimited


def test_a_max_wait_of_zero_means_no_limit():
    at = opened({"file": "capacity_quarter.toml", "runs": "100"})
    assert at.number_input(key="max_wait_days").value == 14
    at.number_input(key="max_wait_days").set_value(0.0).run()
    assert valid(at).capacity.max_wait_days is None


# --- follow-ups, no-shows, stalls, lost durations -----------------------------------------------


def test_persistence_raises_p_hit_in_the_trainer():
    at = opened({"file": TRAINER})
    quitter = number(metric(at, "P(hit quota)"))
    assert at.session_state["behaviours"]["0"]["max_touches"] == 1
    edit_behaviour(at, {0: {"max_touches": 5}})
    scenario = valid(at)
    assert scenario.stages[0].max_touches == 5
    expected = simulate(scenario, runs=form.DEFAULT_RUNS, seed=0).p_hit
    assert metric(at, "P(hit quota)") == f"{100 * expected:.1f}%"
    assert number(metric(at, "P(hit quota)")) > quitter + 30


@pytest.mark.parametrize(
    ("row", "change"),
    [
        (1, {"no_show": 50.0}),  # half the proposal meetings never happen (typed as a percentage)
        (1, {"stale_after_days": 10.0}),  # proposals take 14 days on average: many go stale
        (0, {"touches_needed": "3", "max_touches": 2}),  # every deal needs more touches than the rep makes
    ],
    ids=["no-shows", "stalls", "give-up"],
)
def test_each_stage_behaviour_lowers_p_hit(row, change):
    at = opened({"file": REFERENCE})
    before = number(metric(at, "P(hit quota)"))
    edit_behaviour(at, {row: change})
    stage = valid(at).stages[row]
    for key, value in change.items():
        got = getattr(stage, key)
        wanted = form.from_percent(value) if key in form.CHANCE_COLUMNS else float(value)  # a fraction from 50%
        assert (float(got.mean()) if key == "touches_needed" else got) == wanted
    assert number(metric(at, "P(hit quota)")) < before


def test_behaviour_follows_its_stage_and_round_trips(monkeypatch):
    with captured_downloads(monkeypatch) as files:
        at = opened({"file": TRAINER})
        edit_behaviour(at, {2: {"lost_duration": "gamma(mean=25, sd=12)", "stale_after_days": 40.0}})
        # Move Proposal first and rename Meeting: every stage keeps its own keys.
        edit_stages(at, edited_rows={2: {"order": 0}, 1: {"name": "First meeting"}})
        scenario = valid(at)
        files.clear()
        at.number_input(key="per_week").set_value(41.0).run()  # a change, so the download is drawn again
        text = toml_download(files)
    scenario = valid(at)
    names = [s.name for s in scenario.stages]
    assert names == ["Proposal", "Follow-up", "First meeting"]
    proposal, follow_up, meeting = scenario.stages
    assert proposal.stale_after_days == 40.0 and proposal.lost_duration.mean() == pytest.approx(25.0)
    assert follow_up.max_touches == 1 and follow_up.touch_interval_days == 3
    assert meeting.no_show == 0.3 and meeting.lost_after_reschedule == 0.8
    assert scenario_from_toml(text) == scenario
    assert form.decode_scenario(dict(at.query_params)["s"]) == scenario
    again = new_app(dict(at.query_params)).run()
    assert valid(again) == scenario


def test_distribution_text_reads_back_exactly():
    shipped = load_scenario(f"scenarios/{TRAINER}")
    for stage in shipped.stages:
        for key in form.DISTRIBUTION_COLUMNS:
            model = getattr(stage, key)
            if model is not None:
                text = form.distribution_text(model.model_dump(mode="json", by_alias=True))
                assert TypeAdapter(Distribution).validate_python(form.parse_distribution_text(text)) == model, text
    assert form.parse_distribution_text("lognormal(mean=20, sd=10)") == {"dist": "lognormal", "mean": 20.0, "sd": 10.0}
    assert form.parse_distribution_text(" 5 ") == {"dist": "fixed", "value": 5.0}
    assert form.parse_distribution_text("1, 3, 5") == {"dist": "empirical", "values": [1.0, 3.0, 5.0]}
    assert form.parse_distribution_text("") is None


@pytest.mark.parametrize(
    ("row", "change", "problem"),
    [
        (1, {"no_show": 150.0}, "Proposal no-show chance: must be between 0% and 100%, got 150%"),
        (0, {"touches_needed": "lots"}, "Discovery touches needed: unknown distribution 'lots'"),
        (2, {"lost_duration": "lognormal(mean=20)"}, "Negotiation days to a loss (sd): needs a value"),
        (1, {"reschedule": 50.0}, "Proposal rescheduled chance: needs a no-show chance (the chance of a no-show)"),
    ],
    ids=["rate", "text", "missing", "needs"],
)
def test_a_bad_stage_value_is_named_and_the_results_stay(row, change, problem):
    at = opened({"file": REFERENCE})
    shown, kept = metric(at, "P(hit quota)"), at.session_state["last_valid"]
    edit_behaviour(at, {row: change})
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith(problem) for e in errors), errors
    assert at.session_state["last_valid"] == kept
    assert metric(at, "P(hit quota)") == shown


# --- a team -------------------------------------------------------------------------------------


def test_the_team_page_matches_the_library():
    at = open_page(opened({"file": TEAM}), "Team")
    scenario = valid(at)
    result = simulate_team(scenario, runs=form.DEFAULT_RUNS, seed=0)
    summary = result.team_summary()
    assert metric(at, "Reps at quota") == f"{100 * summary['share_at_quota']:.1f}%"
    assert metric(at, "P(team hits the team quota)") == f"{100 * summary['p_team_hit']:.1f}%"
    assert metric(at, "P(team hits the team quota)") == open_page(at, "Forecast").metric[0].value
    at = open_page(at, "Team")
    at.slider(key="rep_share").set_value(50).run()
    quota = realistic_rep_quota(result, 0.5)["quota"]
    assert number(metric(at, "Rep quota that 50% of reps make")) == pytest.approx(quota, rel=0.01)
    # A lower rep quota: more reps make it (the same simulated reps, judged again).
    before = number(metric(at, "Reps at quota"))
    at.number_input(key="rep_quota").set_value(scenario.team.rep_quota * 0.8).run()
    assert number(metric(at, "Reps at quota")) > before


def test_turning_a_team_on_gives_the_team_page_its_figures(monkeypatch):
    at = open_page(opened({"file": REFERENCE}), "Team")
    assert not at.metric and any("A team of reps" in i.value for i in at.info)
    at.toggle(key="team_on").set_value(True).run()
    at.number_input(key="team_reps").set_value(4).run()
    at.number_input(key="new_reps").set_value(1).run()
    with captured_downloads(monkeypatch) as files:
        at.number_input(key="cost_per_year").set_value(120_000.0).run()
    scenario = valid(at)
    assert scenario.team.reps == 4 and scenario.team.new_reps == 1 and scenario.team.cost_per_year == 120_000
    assert 0 <= number(metric(at, "Reps at quota")) <= 100
    assert "Value ratio per rep" in [s.value for s in at.subheader]
    groups = [t.value for t in at.table if "how many" in t.value.columns]
    assert list(groups[0]["reps"]) == ["experienced", "new"] and list(groups[0]["how many"]) == ["3", "1"]
    table = files["funnel_sim_team.csv"]()
    assert len(table.splitlines()) == 1 + form.DEFAULT_RUNS * 4


def test_a_team_cannot_share_rep_capacity():
    at = opened({"file": REFERENCE})
    at.toggle(key="team_on").set_value(True).run()
    team = valid(at)
    shown = metric(at, "P(hit quota)")
    at.toggle(key="capacity_on").set_value(True).run()
    no_exception(at)
    assert any(e.value.startswith("Team of reps: cannot be combined with rep capacity") for e in at.error)
    assert at.session_state["last_valid"] == team and team.capacity is None
    assert metric(at, "P(hit quota)") == shown

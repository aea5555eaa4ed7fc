"""The app on a scenario with segments: the Segments page, the other pages on the total, and editing segments."""

from __future__ import annotations

import pytest

from sim import load_scenario, simulate
from tests.app_helpers import metric, new_app, no_exception, number, open_page
from ui.form import decode_scenario

ORGANISATION = "organisation_year.toml"


@pytest.fixture(scope="module")
def expected():
    return simulate(load_scenario(f"scenarios/{ORGANISATION}"), runs=2_000, seed=0).summary()


def segments_page():
    at = new_app({"file": ORGANISATION}).run()
    no_exception(at)
    return open_page(at, "Segments")


def test_the_segments_page_gives_each_segment_and_the_biggest_risk(expected):
    at = segments_page()
    no_exception(at)
    assert not at.error
    assert number(metric(at, "Chance of the total quota")) == pytest.approx(100 * expected["p_hit"], abs=0.05)
    risk = max(expected["segments"], key=lambda s: s["spread_share"])["name"]
    assert risk in metric(at, "Biggest risk")
    table = next(d.value for d in at.dataframe if "Share of the swing" in d.value.columns)
    assert list(table["Segment"]) == [s["name"] for s in expected["segments"]]
    assert list(table["Share of the swing"]) == [f"{s['spread_share']:.0%}" for s in expected["segments"]]


def test_the_forecast_is_the_total_and_points_to_the_segments(expected):
    at = new_app({"file": ORGANISATION}).run()
    no_exception(at)
    assert number(metric(at, "P(hit quota)")) == pytest.approx(100 * expected["p_hit"], abs=0.05)
    assert any("This scenario has segments" in i.value for i in at.info)


def test_funnel_math_and_team_take_one_segment_at_a_time():
    at = new_app({"file": ORGANISATION}).run()
    open_page(at, "Team")
    no_exception(at)
    assert at.selectbox(key="team_segment").value == 0  # North America's team
    assert at.metric
    at.selectbox(key="team_segment").set_value(3).run()  # Partners: no team
    assert any("A team of reps" in i.value for i in at.info)


def test_editing_a_segment_makes_a_new_current_scenario():
    at = segments_page()
    key = f"segments_editor_{at.session_state['stages_version']}"
    at.session_state[key] = {"edited_rows": {1: {"per_week": 6.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="use_segments").click().run()
    no_exception(at)
    assert not at.error
    scenario = decode_scenario(
        at.query_params["s"][0] if isinstance(at.query_params["s"], list) else at.query_params["s"]
    )
    assert scenario.segment(1).inflow.per_week == 6.0
    assert scenario.segment(0) == load_scenario(f"scenarios/{ORGANISATION}").segment(0)


def test_a_bad_segment_edit_is_named_and_changes_nothing():
    at = segments_page()
    before = at.session_state["last_valid"]
    key = f"segments_editor_{at.session_state['stages_version']}"
    at.session_state[key] = {"edited_rows": {0: {"name": "EMEA"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="use_segments").click().run()
    no_exception(at)
    assert any("names must be unique" in e.value for e in at.error)
    assert at.session_state["last_valid"] == before

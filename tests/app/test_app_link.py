"""The share link reproduces the screen (issue 16): the scenario, how to simulate, the open page and its choices.

A link carries only what differs from the defaults, so the link of an untouched session
names the file alone. Opened in a fresh session it restores each page's own choices (the
target chance, the confidence, the lever step, the share of reps, the barometer's pace,
Compare's baseline), and the page shows the same numbers. A hostile or mistyped value is
refused or clamped with a plain notice, never a traceback.
"""

from __future__ import annotations

import sys

import pytest

from sim import load_scenario
from tests.app_helpers import ROOT, metric, new_app, no_exception, open_page
from ui import form
from ui.form import PAGE_SETTINGS, encode_scenario, link_settings, read_setting, settings_query

REFERENCE = load_scenario(ROOT / "scenarios" / "reference_quarter.toml")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py"])


def opened(query: dict) -> object:
    """A fresh session opened with a link (its ``page`` too, as the browser's tabs read it)."""
    at = new_app(query)
    if "page" in query:
        at.session_state["page"] = query["page"]
    return at.run()


def errors(at) -> list[str]:
    return [e.value for e in at.error]


# --- reading and writing the settings ------------------------------------------------------------------


def test_only_settings_off_their_defaults_go_into_the_link():
    defaults = {key: setting.default for key, setting in (form.LINK_SETTINGS | PAGE_SETTINGS).items()}
    assert settings_query(defaults) == {}
    assert settings_query(defaults | {"target": 90, "step": 20, "capacity_magic": True, "seed": 7}) == {
        "seed": "7",
        "target": "90",
        "capacity_magic": "1",
        "step": "20",
    }
    values, notices = link_settings({"target": "90", "step": "20", "capacity_magic": "1", "seed": "7"})
    assert values == {"runs": 2000, "seed": 7, "engine": "auto", "target": 90, "step": 20, "capacity_magic": True}
    assert notices == []


@pytest.mark.parametrize(
    ("key", "text", "used", "notice"),
    [
        ("target", "120", 95, "cannot be 120% (it goes from 50% to 95% in steps of 5); using 95%"),
        ("target", "83", 85, "cannot be 83% (it goes from 50% to 95% in steps of 5); using 85%"),
        ("step", "15", 10, "cannot be 15% (it is 5%, 10%, 20% or 30%); using 10%"),
        ("confidence", "nan", 70, "must be a number, got 'nan'; using 70%"),
        ("rep_share", "<b>hi</b>", 70, "must be a number, got '<b>hi</b>'; using 70%"),
        ("capacity_magic", "maybe", False, "must be on (1) or off (0), got 'maybe'; it is off"),
    ],
)
def test_a_value_no_page_offers_is_clamped_or_refused_with_a_notice(key, text, used, notice):
    value, said = read_setting(text, PAGE_SETTINGS[key])
    assert value == used
    assert said.startswith(f"link: {PAGE_SETTINGS[key].label} ") and said.endswith(notice), said


def test_the_link_settings_are_the_pages_own_defaults():
    """The defaults the link leaves out are the ones each page's widget starts at (else a link would drift)."""
    at = opened({})
    for page, widget, key in (
        ("Magic number", "slider", "target"),
        ("Quota setting", "slider", "confidence"),
        ("Sensitivity", "select_slider", "step"),
    ):
        open_page(at, page)
        no_exception(at)
        assert getattr(at, widget)(key=key).value == PAGE_SETTINGS[key].default, key
    assert dict(at.query_params) == {"file": "reference_quarter.toml", "page": "Sensitivity"}  # a short link
    at = opened({"file": "team_quarter.toml", "page": "Team"})
    no_exception(at)
    assert at.slider(key="rep_share").value == PAGE_SETTINGS["rep_share"].default
    assert dict(at.query_params) == {"file": "team_quarter.toml", "page": "Team"}


# --- in the app ----------------------------------------------------------------------------------------


def test_a_link_restores_the_magic_number_page():
    at = opened({"page": "Magic number"})
    at.slider(key="target").set_value(90).run()
    barometer = next(n for n in at.number_input if n.key == form.barometer_key(REFERENCE.inflow.per_week))
    barometer.set_value(20.0).run()
    no_exception(at)
    link = dict(at.query_params)
    assert link == {"file": "reference_quarter.toml", "page": "Magic number", "target": "90", "actual": "20"}
    shown = {label: metric(at, label) for label in ("Magic number (simulation)", "Activity barometer")}
    again = opened(link)
    no_exception(again)
    assert not errors(again)
    assert again.slider(key="target").value == 90
    assert {label: metric(again, label) for label in shown} == shown
    assert dict(again.query_params) == link  # and the link it writes is the same


def test_a_link_restores_quota_setting_and_sensitivity():
    at = opened({"page": "Quota setting"})
    at.slider(key="confidence").set_value(85).run()
    open_page(at, "Sensitivity")
    at.select_slider(key="step").set_value(20).run()
    no_exception(at)
    link = dict(at.query_params)
    assert link["confidence"] == "85" and link["step"] == "20" and link["page"] == "Sensitivity"
    lever_lines = [m.value for m in at.markdown if "adds" in m.value]
    again = opened(link)
    no_exception(again)
    assert again.select_slider(key="step").value == 20
    assert [m.value for m in again.markdown if "adds" in m.value] == lever_lines
    open_page(again, "Quota setting")
    assert metric(again, "Realistic quota at 85%") == metric(open_page(at, "Quota setting"), "Realistic quota at 85%")


def test_a_link_restores_compares_baseline():
    at = opened({"page": "Compare"})
    at.button[[b.label for b in at.button].index("Pin the current scenario as the baseline")].click().run()
    at.number_input(key="quota_revenue").set_value(1_400_000.0).run()
    no_exception(at)
    link = dict(at.query_params)
    assert form.decode_scenario(link["baseline"]) == REFERENCE and "s" in link
    changed = [m.value for m in at.markdown if "What changed" in m.value]
    assert changed and "Quota (won revenue)" in changed[0]
    again = opened(link)
    no_exception(again)
    assert again.session_state["baseline"] == REFERENCE
    assert [m.value for m in again.markdown if "What changed" in m.value] == changed
    assert metric(again, "Baseline P(hit)") == metric(at, "Baseline P(hit)")
    again.button[[b.label for b in again.button].index("Clear the baseline")].click().run()
    assert "baseline" not in again.query_params


def test_hostile_page_settings_give_plain_notices_and_a_working_page():
    at = opened({"page": "Magic number", "target": "1e999", "actual": "-5", "confidence": "[x](https://evil.example)"})
    no_exception(at)
    said = errors(at)
    assert any("the chance of hitting quota you want (Magic number) must be a number" in e for e in said), said
    assert any("cannot be -5 (it goes from 0 to 160); using 0" in e for e in said), said
    assert not any("](" in e.replace("\\](", "") for e in said)  # the link's Markdown shown as text
    assert at.slider(key="target").value == 80 and at.metric
    assert "target" not in at.query_params and at.query_params["actual"] == "0"  # what the page shows


def test_a_damaged_or_heavy_baseline_is_refused_with_a_notice():
    at = opened({"page": "Compare", "baseline": "not-a-scenario"})
    no_exception(at)
    assert any(e.startswith("link: Compare's baseline: the scenario in the link is damaged") for e in errors(at))
    assert "baseline" not in at.session_state and "baseline" not in at.query_params
    heavy = REFERENCE.with_inflow(60_000)  # about 780,000 deals a run, next to about 200
    at = opened({"page": "Compare", "baseline": encode_scenario(heavy)})
    no_exception(at)
    assert any("Compare's baseline is too much work for this server" in e for e in errors(at)), errors(at)
    assert "baseline" not in at.session_state

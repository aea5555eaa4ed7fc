"""Rep capacity in the app, through Streamlit's AppTest: the section, its chart, and the keys carried.

``scenarios/capacity_quarter.toml`` runs on the vectorised queues (:mod:`sim.engines.queues`:
the app's ``auto``), with the default runs. The directions checked (more reps: less
waiting, lower utilisation, a better P(hit)) are large changes under one seed, not close
calls.
"""

from __future__ import annotations

import sys

import pytest

from sim import load_scenario
from sim.model.scenario import scenario_from_toml, scenario_to_toml
from tests.app_helpers import captured_downloads, edit_stages, metric, new_app, no_exception, number, open_page
from ui import explain as say
from ui import form

FILE = "capacity_quarter.toml"
LIMITED = ("Discovery", "Proposal", "Negotiation")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


@pytest.fixture(scope="module")
def shipped():
    return load_scenario(f"scenarios/{FILE}")


def with_reps(scenario, reps: int):
    return scenario.model_copy(update={"capacity": scenario.capacity.model_copy(update={"reps": reps})})


def open_app(scenario=None):
    query = {"file": FILE}
    if scenario is not None:
        query["s"] = form.encode_scenario(scenario)
    at = new_app(query).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def figures(at) -> dict[str, tuple[float, float]]:
    """Per limited stage: (mean wait in days, utilisation in %)."""
    return {s: (number(metric(at, f"{s}: mean wait")), number(metric(at, f"{s}: utilisation"))) for s in LIMITED}


def toml_download(files: dict) -> str:
    data = next(data for name, data in files.items() if name.endswith(".toml"))
    return data.decode() if isinstance(data, bytes) else data


def test_the_forecast_shows_rep_capacity_and_its_chart(monkeypatch):
    with captured_downloads(monkeypatch) as files:
        at = open_app()
    assert "Rep capacity" in [s.value for s in at.subheader]
    for stage in LIMITED:
        assert metric(at, f"{stage}: mean wait").endswith("days")
        assert 0 <= number(metric(at, f"{stage}: utilisation")) <= 100
        assert metric(at, f"{stage}: neglected").endswith("deals a period")
    assert at.toggle(key="capacity_on").value and at.number_input(key="capacity_reps").value == 2
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Deals wait when reps have more than they can work") for c in captions)
    assert any("would be" in i.value and "cost" in i.value for i in at.info)  # against no limit, same luck
    assert {"forecast_capacity.png", "forecast_capacity.svg"} <= set(files)
    svg = files["forecast_capacity.svg"]()
    assert svg.lstrip().startswith("<svg") and "deals waiting" in svg and "slots in use" in svg
    header = files["funnel_sim_runs.csv"]().splitlines()[0]
    assert "wait_days[Proposal]" in header and "neglected[Negotiation]" in header


@pytest.mark.parametrize("page", ["Magic number", "Quota setting", "Compare", "Funnel math"])
def test_other_pages_render_a_capacity_scenario(page):
    at = open_page(open_app(), page)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.metric or (page == "Compare" and at.info)
    assert "Rep capacity" not in [s.value for s in at.subheader]  # only the Forecast has the section
    if page == "Magic number":  # with limited reps the search takes seconds: it is explained, not run
        assert any("limited number of reps" in i.value for i in at.info)
        assert metric(at, say.AVERAGE_PACE).endswith("a week")


def _no_empty_slot_and_no_verdict_on_a_pace_that_promises_nothing(at) -> None:
    """Every column holds something; without a magic number no figure is coloured good or bad."""
    assert all(column.children for column in at.columns), "an empty column"
    assert not any(m.label == "Activity barometer" for m in at.metric)
    assert not any(m.delta for m in at.metric)  # no green "+6 points" next to a 34% chance
    compared = metric(at, f"Your pace against the {say.AVERAGE_PACE.lower()}")
    chance = number(metric(at, "Chance of hitting quota at that pace"))
    assert number(compared) > 100 and chance < 50  # above the average-math pace, and still short of even odds
    assert any("no promise of the quota" in c.value for c in at.caption)


def test_the_magic_number_page_shows_only_figures_it_has():
    at = open_page(open_app(), "Magic number")
    no_exception(at)
    assert not any(m.label == "Magic number (simulation)" for m in at.metric)
    assert [m.label for m in at.metric][:2] == [say.AVERAGE_PACE, "Your plan now"]
    _no_empty_slot_and_no_verdict_on_a_pace_that_promises_nothing(at)


def test_the_magic_number_search_says_what_caps_the_odds_and_what_would_lift_them(shipped):
    at = open_page(open_app(), "Magic number")
    at.toggle(key="capacity_magic").set_value(True).run()
    no_exception(at)
    # Two reps cannot make 80%: the search stops where more inflow wins no more, and the page says why in words.
    best = number(metric(at, "Best chance with 2 reps"))
    assert number(metric(at, "Chance of hitting quota at that pace")) <= best < 80
    said = " ".join(w.value for w in at.warning)
    assert f"2 reps cap the chance at about {best:.0f}%" in said
    assert "What caps it is the reps' time in Discovery" in said and "(9 deals a rep, 18 in all)" in said
    assert "after 14 days they are lost" in said
    assert "another rep, or each rep working more Discovery deals at once" in said
    shown = said + " ".join(i.value for i in at.info) + " ".join(c.value for c in at.caption)
    assert "per_rep" not in shown and "P(hit)" not in shown  # the words of the file and of statistics stay out
    _no_empty_slot_and_no_verdict_on_a_pace_that_promises_nothing(at)
    # The fullest stage is read off the Forecast's own simulation of the scenario.
    at_forecast = open_page(at, "Forecast")
    fullest = max(LIMITED, key=lambda s: number(metric(at_forecast, f"{s}: utilisation")))
    assert fullest == "Discovery"


def test_more_reps_wait_less_and_are_less_busy(shipped):
    at_two, at_three = open_app(), open_app(with_reps(shipped, 3))
    two, three = figures(at_two), figures(at_three)
    for stage in ("Discovery", "Proposal"):  # the stages where two reps are short
        assert three[stage][0] < two[stage][0], stage
        assert three[stage][1] < two[stage][1], stage
    assert number(metric(at_three, "P(hit quota)")) > number(metric(at_two, "P(hit quota)"))


def test_without_capacity_the_section_goes_and_p_hit_rises(shipped):
    p_limited = number(metric(open_app(), "P(hit quota)"))
    stages = tuple(stage.model_copy(update={"per_rep": None}) for stage in shipped.stages)
    at = open_app(shipped.model_copy(update={"capacity": None, "stages": stages}))
    assert "Rep capacity" not in [s.value for s in at.subheader]
    assert not any(m.label.endswith(": utilisation") for m in at.metric)
    assert number(metric(at, "P(hit quota)")) > p_limited


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "reps = 2",
            "reps = 0",
            "Reps sharing the funnel: must be a whole number, 1 or more, got 0 (capacity.reps in bad.toml)",
        ),
        (
            "per_rep = 11",
            "per_rep = 0",
            "Stage 2 deals per rep: must be a whole number, 1 or more, got 0 (stages[1].per_rep in bad.toml)",
        ),
    ],
)
def test_a_bad_capacity_value_is_named_with_its_file_path_and_keeps_the_results(shipped, old, new, problem):
    at = open_app()
    shown = metric(at, "Proposal: utilisation")
    bad = scenario_to_toml(shipped).replace(old, new)
    at.file_uploader(key="upload").upload("bad.toml", bad.encode(), "application/toml").run()
    no_exception(at)
    assert problem in [e.value for e in at.error]
    assert at.session_state["last_valid"] == shipped
    assert metric(at, "Proposal: utilisation") == shown


def test_capacity_survives_edits_and_round_trips_in_the_download_and_link(shipped, monkeypatch):
    with captured_downloads(monkeypatch) as files:
        at = open_app()
        files.clear()
        at.number_input(key="quota_revenue").set_value(1_000_000.0).run()
        # Rename Proposal and move Negotiation first: each per_rep follows its row.
        edit_stages(at, edited_rows={1: {"name": "Pitch"}, 2: {"order": 0}})
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        text = toml_download(files)
    edited = at.session_state["last_valid"]
    assert edited.quota.revenue == 1_000_000.0
    assert edited.capacity == shipped.capacity
    assert [(s.name, s.per_rep) for s in edited.stages] == [("Negotiation", 5), ("Discovery", 9), ("Pitch", 11)]
    assert scenario_from_toml(text) == edited and "[capacity]" in text
    link = dict(at.query_params)
    assert form.decode_scenario(link["s"]) == edited
    again = new_app(link).run()
    no_exception(again)
    assert again.session_state["last_valid"] == edited
    assert metric(again, "Pitch: utilisation") == metric(at, "Pitch: utilisation")
    # A deleted stage takes its per_rep with it; a row added later has no limit.
    edit_stages(
        again,
        deleted_rows=[0],
        added_rows=[{"order": 9, "name": "Contract", "conversion": 90.0, "duration": "fixed", "mean": 3.0}],
    )
    no_exception(again)
    assert [(s.name, s.per_rep) for s in again.session_state["last_valid"].stages] == [
        ("Discovery", 9),
        ("Pitch", 11),
        ("Contract", None),
    ]

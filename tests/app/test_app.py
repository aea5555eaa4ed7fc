"""The app through Streamlit's AppTest: pages render, numbers move the right way, bad input is caught.

Each test opens a fresh session of ``app.py``; simulations are cached per process, so
the shipped scenarios are simulated once however many tests look at them. Runs are the
app's default (2,000) and the seed is fixed, so every number here is reproducible; where
a number should move, the change is large enough that common random numbers make the
direction certain, not merely likely.
"""

from __future__ import annotations

import sys

import pytest

from sim import load_scenario
from sim.model.scenario import scenario_from_toml, scenario_to_toml
from tests.app_helpers import (
    PAGES,
    SCENARIO_FILES,
    captured_downloads,
    edit_stages,
    metric,
    new_app,
    no_exception,
    number,
    open_page,
)
from ui.form import encode_scenario

REFERENCE = "reference_quarter.toml"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


def toml_download(files: dict) -> str:
    """The text of the scenario download (exactly one .toml file is offered)."""
    tomls = [data for name, data in files.items() if name.endswith(".toml")]
    assert len(tomls) == 1, list(files)
    data = tomls[0]
    return data.decode() if isinstance(data, bytes) else data


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_every_page_renders_for_every_shipped_scenario(path):
    scenario = load_scenario(path)
    at = new_app({"file": path.name}).run()
    no_exception(at)
    assert at.session_state["file"] == path.name
    for label in PAGES:
        open_page(at, label)
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        assert at.session_state["page"] == label
        if label == "Compare":
            assert at.info  # "no baseline yet"
            at.button[[b.label for b in at.button].index("Pin the current scenario as the baseline")].click().run()
            no_exception(at)
        if label == "Team" and scenario.team is None and not scenario.segments:
            assert any("A team of reps" in i.value for i in at.info)  # how to turn one on
            continue
        if label == "Segments" and not scenario.segments:
            assert any("This scenario is one funnel" in i.value for i in at.info)
            continue
        if label == "Magic number" and scenario.segments:
            assert any("one magic number per segment" in i.value for i in at.info)
            continue
        assert at.metric, label
    # Back on a page visited before: its headline is there again (from the cache).
    open_page(at, "Funnel math")
    assert 0 <= number(metric(at, "The plan makes the target in")) <= 100


def test_forecast_headline_matches_the_library():
    at = new_app().run()
    from sim import simulate

    expected = simulate(load_scenario(f"scenarios/{REFERENCE}"), runs=2000, seed=0)
    assert metric(at, "P(hit quota)") == f"{100 * expected.p_hit:.1f}%"
    assert any("95% sure it lies between" in c.value for c in at.caption)


def test_a_better_conversion_rate_raises_p_hit():
    at = new_app().run()
    before = number(metric(at, "P(hit quota)"))
    plan_before = number(metric(at, "Average-math forecast"))
    edit_stages(at, edited_rows={1: {"conversion": 65.0}})  # Proposal 50% -> 65%
    no_exception(at)
    assert not at.error
    assert number(metric(at, "P(hit quota)")) > before
    assert number(metric(at, "Average-math forecast")) > plan_before
    assert "s" in at.query_params  # the what-if is in the link


def test_a_higher_quota_lowers_p_hit_but_not_the_realistic_quota():
    at = new_app().run()
    p_before = number(metric(at, "P(hit quota)"))
    open_page(at, "Quota setting")
    assert not any(m.label == "P(hit quota)" for m in at.metric)  # hidden pages are not drawn
    realistic = metric(at, "Realistic quota at 70%")
    assert metric(at, "Current quota") == "$1.2M"
    at.number_input(key="quota_revenue").set_value(1_500_000.0).run()
    no_exception(at)
    assert metric(at, "Current quota") == "$1.5M"
    assert metric(at, "Realistic quota at 70%") == realistic  # it depends on the results, not the quota
    reached = [number(c.value) for c in at.caption if c.value.startswith("Reached in")]
    assert reached[0] >= 70 and reached[1] < p_before  # at the realistic quota; at the current one
    assert number(metric(at, "Median attainment")) < 97  # the same results over a bigger quota
    open_page(at, "Forecast")
    assert number(metric(at, "P(hit quota)")) < p_before


def test_a_higher_target_needs_a_bigger_magic_number():
    at = new_app().run()
    open_page(at, "Magic number")
    no_exception(at)
    magic_80 = number(metric(at, "Magic number (simulation)"))
    average = metric(at, "Average-math pace")
    at.slider(key="target").set_value(90).run()
    no_exception(at)
    assert number(metric(at, "Magic number (simulation)")) > magic_80
    assert metric(at, "Average-math pace") == average
    # The barometer is actual / magic number: the same actual is a smaller share of a bigger number.
    assert number(metric(at, "Activity barometer")) == pytest.approx(
        round(100 * 16 / number(metric(at, "Magic number (simulation)"))), abs=1
    )


def test_unreachable_magic_number_is_explained():
    # Quota already covered by the open pipeline: no new opportunities are needed.
    scenario = load_scenario(f"scenarios/{REFERENCE}")
    easy = scenario.model_copy(update={"quota": scenario.quota.model_copy(update={"revenue": 1000.0})})
    at = new_app({"file": REFERENCE, "s": encode_scenario(easy), "page": "Magic number"})
    at.session_state["page"] = "Magic number"
    at.run()
    no_exception(at)
    assert any("no magic number" in i.value.lower() and "open pipeline" in i.value for i in at.info)


def test_an_invalid_value_is_named_in_plain_words_and_keeps_the_last_results():
    at = new_app().run()
    shown = metric(at, "P(hit quota)")
    at.number_input(key="quota_revenue").set_value(-5.0).run()
    no_exception(at)
    assert any("Quota (won revenue): must be more than 0, got -5" in e.value for e in at.error)
    assert any("last valid" in w.value for w in at.warning)
    assert metric(at, "P(hit quota)") == shown
    # A rate out of range in the table: the stage's name and its row, the rate as a percentage.
    at.number_input(key="quota_revenue").set_value(1_200_000.0).run()
    edit_stages(at, edited_rows={1: {"conversion": 130.0, "certainty": None}})  # a fixed rate of 130%
    no_exception(at)
    errors = [e.value for e in at.error]
    assert "Proposal rate: must be between 0% and 100%, got 130% (row 2 of the funnel table)" in errors, errors
    edit_stages(at, edited_rows={1: {"conversion": 130.0}})  # a Beta rate with a mean of 130%
    errors = [e.value for e in at.error]
    assert any(e.startswith("Proposal rate: must be more than 0% and less than 100%, got 130%") for e in errors)
    assert metric(at, "P(hit quota)") == shown
    # Fixed again: the error goes and the results follow the inputs.
    edit_stages(at, edited_rows={1: {"conversion": 50.0}})
    assert not at.error and not at.warning
    assert metric(at, "P(hit quota)") == shown


def test_stage_table_problems_name_the_field():
    at = new_app().run()
    edit_stages(at, edited_rows={0: {"name": "Proposal"}})
    errors = [e.value for e in at.error]
    assert any(e.startswith("Stages: names must be unique, repeated: Proposal") for e in errors)
    at = new_app().run()
    edit_stages(at, edited_rows={2: {"duration": "uniform"}})
    errors = [e.value for e in at.error]
    assert any(e.startswith("Negotiation days (low): needs a value") for e in errors), errors


def test_stages_can_be_added_removed_and_reordered(monkeypatch):
    with captured_downloads(monkeypatch) as files:
        at = new_app().run()
        edit_stages(
            at,
            edited_rows={2: {"order": 0}},  # Negotiation first
            added_rows=[{"order": 9, "name": "Contract", "conversion": 90.0, "duration": "fixed", "mean": 3.0}],
            deleted_rows=[0],  # no more Discovery
        )
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        scenario = scenario_from_toml(toml_download(files))
    assert scenario.stage_names == ["Negotiation", "Proposal", "Contract"]
    assert scenario.stages[2].conversion == 0.9 and scenario.stages[2].duration.mean() == 3.0
    assert scenario.stages[0].open == 6


def test_the_toml_download_round_trips(monkeypatch):
    original = load_scenario(f"scenarios/{REFERENCE}")
    with captured_downloads(monkeypatch) as files:
        at = new_app().run()
        text = toml_download(files)
        assert scenario_from_toml(text) == original
        assert scenario_to_toml(scenario_from_toml(text)) == text
        files.clear()
        at.number_input(key="quota_revenue").set_value(1_000_000.0).run()
        edit_stages(at, edited_rows={0: {"certainty": None, "conversion": 70.0}})
        text = toml_download(files)
    edited = scenario_from_toml(text)
    assert edited.quota.revenue == 1_000_000.0
    assert edited.stages[0].conversion == 0.7  # a fixed rate now
    assert edited.model_copy(update={"quota": original.quota, "stages": original.stages}) == original
    assert scenario_to_toml(edited) == text


def test_the_link_reproduces_the_what_if(monkeypatch):
    at = new_app().run()
    at.number_input(key="quota_revenue").set_value(1_100_000.0).run()
    edit_stages(at, edited_rows={2: {"conversion": 80.0}})
    at.number_input(key="seed").set_value(7).run()
    no_exception(at)
    link = dict(at.query_params)
    assert link["file"] == REFERENCE and link["seed"] == "7" and "s" in link
    shown = metric(at, "P(hit quota)")
    with captured_downloads(monkeypatch) as files:
        again = new_app(link).run()
        no_exception(again)
        assert metric(again, "P(hit quota)") == shown
        scenario = scenario_from_toml(toml_download(files))
    assert scenario.quota.revenue == 1_100_000.0 and scenario.stages[2].conversion.mean() == 0.8
    assert again.number_input(key="seed").value == 7
    # Back to the file's own scenario: the link drops the edit.
    again.button[[b.label for b in again.button].index("Undo my changes")].click().run()
    assert "s" in again.query_params  # undo returns to what was loaded: the link's scenario
    again.selectbox(key="file").set_value("ae_year.toml").run()
    assert "s" not in again.query_params and again.query_params["file"] == "ae_year.toml"


def test_a_damaged_link_is_reported_not_raised():
    at = new_app({"file": "no_such.toml", "s": "not-a-scenario"}).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("link: unknown scenario file 'no_such.toml'") for e in errors)
    assert any(e.startswith("link: the scenario in the link is damaged") for e in errors)
    assert at.metric  # the default scenario is shown


def test_an_uploaded_scenario_is_loaded_and_a_bad_one_explained():
    scenario = load_scenario("scenarios/ae_year.toml")
    at = new_app().run()
    at.file_uploader(key="upload").upload("mine.toml", scenario_to_toml(scenario).encode(), "application/toml").run()
    no_exception(at)
    assert at.session_state["last_valid"] == scenario
    at = new_app().run()
    bad = scenario_to_toml(scenario).replace("conversion = 0.25", "conversion = 1.3")
    at.file_uploader(key="upload").upload("bad.toml", bad.encode(), "application/toml").run()
    no_exception(at)
    problem = "Stage 1 rate: must be between 0% and 100%, got 130% (stages[0].conversion in bad.toml)"
    assert problem in [e.value for e in at.error]  # plain, with the path into the file


def test_the_command_line_scenario_is_the_start(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py", "scenarios/ae_year.toml"])
    at = new_app().run()
    assert at.session_state["file"] == "ae_year.toml"
    monkeypatch.setattr(sys, "argv", ["app.py", "/nowhere/missing.toml"])
    at = new_app().run()
    no_exception(at)
    assert any("missing.toml: no such file" in e.value for e in at.error)
    assert at.session_state["file"] == REFERENCE


def test_charts_and_runs_download(monkeypatch):
    with captured_downloads(monkeypatch) as files:
        new_app().run()
    assert {"forecast_distribution.png", "forecast_distribution.svg", "forecast_by_week.png"} <= set(files)
    png = files["forecast_by_week.png"]()
    svg = files["forecast_distribution.svg"]()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert svg.lstrip().startswith("<svg") and "won revenue" in svg
    csv = files["funnel_sim_runs.csv"]()
    header, *rows = csv.splitlines()
    assert header.startswith("replication,seed,won_deals,revenue,hit") and len(rows) == 2000


def test_sensitivity_reads_in_plain_words():
    at = new_app().run()
    open_page(at, "Sensitivity")
    text = "\n".join(m.value for m in at.markdown)
    assert "Raising Proposal conversion by 10% (50% → 55%) adds" in text
    assert "points of P(hit)." in text


def test_funnel_math_reproduces_the_domain_example():
    at = new_app({"file": "ae_year.toml"})
    open_page(at, "Funnel math")
    no_exception(at)
    text = "\n".join(m.value for m in at.markdown)
    assert "$5,000,000 ÷ $100,000 average deal = **50 won deals**" in text
    assert "Opportunity: 50 ÷ 25% = **200** must enter Opportunity" in text
    assert "200 new opportunities ÷ 52 weeks = **3.85 a week**" in text
    assert 0 < number(metric(at, "The plan makes the target in")) < 60  # averages: a coin flip at best


def test_compare_pairs_baseline_and_current():
    at = new_app().run()
    open_page(at, "Compare")
    at.button[[b.label for b in at.button].index("Pin the current scenario as the baseline")].click().run()
    at.number_input(key="quota_revenue").set_value(1_400_000.0).run()
    no_exception(at)
    text = "\n".join(m.value for m in at.markdown)
    assert "- Quota (won revenue) \\$1.2M → \\$1.4M" in text  # Markdown source: the dollar signs escaped
    baseline, current = number(metric(at, "Baseline P(hit)")), number(metric(at, "Current P(hit)"))
    assert current < baseline
    delta = next(m for m in at.metric if m.label == "Current P(hit)").delta
    assert delta.startswith("-") and number(delta) == pytest.approx(current - baseline, abs=0.11)

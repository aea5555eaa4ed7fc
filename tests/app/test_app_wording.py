"""The app speaks to managers: inputs follow the scenario, answers can be used, charts and words read plainly.

Each test opens a fresh session of ``app.py`` through AppTest (see :mod:`tests.app_helpers`);
runs are the app's default and the seed is fixed, so every number is reproducible.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from sim import load_scenario
from sim.model.distributions import Fixed
from sim.words import human
from tests.app_helpers import ROOT, metric, new_app, no_exception, number, open_page
from ui import charts, compute, safe
from ui import explain as say
from ui.form import encode_scenario

REFERENCE = "reference_quarter.toml"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


def _input(at, label: str):
    found = [w for w in at.number_input if w.label == label]
    assert len(found) == 1, [w.label for w in at.number_input]
    return found[0]


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]


ACTUAL = "Opportunities you actually create a week"


def test_the_barometer_input_follows_the_scenario():
    at = open_page(new_app().run(), "Magic number")
    _input(at, ACTUAL).set_value(16.0).run()
    at.selectbox(key="file").set_value("outbound_sdr.toml").run()
    no_exception(at)
    plan = load_scenario("scenarios/outbound_sdr.toml").inflow.per_week
    assert _input(at, ACTUAL).value == plan
    magic = number(metric(at, "Magic number (simulation)"))
    assert number(metric(at, "Activity barometer")) == pytest.approx(100 * plan / magic, abs=1)


def test_use_this_quota_sets_the_quota_every_page_reads():
    at = open_page(new_app().run(), "Quota setting")
    realistic = metric(at, "Realistic quota at 70%")
    _button(at, "Use this quota").click().run()
    no_exception(at)
    quota = at.number_input(key="quota_revenue").value
    assert quota == pytest.approx(number(realistic), rel=0.01)  # shown to three significant figures
    assert metric(at, "Current quota") == realistic
    # Made in at least 70% of the same runs, as the page said.
    reached = [number(c.value) for c in at.caption if c.value.startswith("Reached in")]
    assert reached[1] >= 70
    open_page(at, "Forecast")
    assert number(metric(at, "P(hit quota)")) >= 70


def test_use_this_pace_sets_the_inflow_to_the_magic_number():
    at = open_page(new_app().run(), "Magic number")
    magic = number(metric(at, "Magic number (simulation)"))
    _button(at, "Use this pace").click().run()
    no_exception(at)
    per_week = at.number_input(key="per_week").value
    assert per_week == pytest.approx(magic, abs=0.06)  # the metric shows one decimal, the input two
    assert number(metric(at, "Your plan now")) == pytest.approx(per_week, abs=0.06)
    # The barometer input follows the new plan, and the plan now gives at least the chance wanted.
    assert _input(at, ACTUAL).value == per_week
    assert number(metric(at, "Chance of hitting quota at that pace")) >= 80


# --- charts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [8, 150, 900])
def test_histograms_of_won_deals_bin_on_whole_numbers(mean):
    deals = np.random.default_rng(1).poisson(mean, 2000)
    edges = charts.bin_edges(deals, whole=True)
    widths = np.diff(edges)
    assert np.all(widths == widths[0]) and widths[0] == int(widths[0])  # every bin holds as many integers
    assert np.all(edges % 1 == 0.5)  # no integer on an edge
    assert edges[0] < deals.min() and edges[-1] > deals.max() and len(edges) <= 42
    assert charts.histogram_frame(deals, whole=True)["runs"].sum() == len(deals)


def _svg_texts(chart) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", charts.to_svg(chart))


def test_revenue_axis_spans_the_data_and_reads_like_money():
    revenue = np.random.default_rng(2).normal(1.1e6, 1.5e5, 2000)
    markers = [("Quota", 1.2e6, charts.QUOTA), ("Average math", 1.18e6, charts.AVERAGE)]
    chart = charts.distribution_chart(revenue, markers, "won revenue", charts.axis_format("revenue"))
    texts = _svg_texts(chart)
    money = [t for t in texts if t.startswith("$")]
    assert "$1.2M" in money and "$1M" in money
    assert not any(t.startswith("$0") for t in money)  # the axis does not start at 0, far below the data
    assert "$0" in _svg_texts(charts.fan_chart(np.cumsum(np.ones((5, 3)), axis=1) * 1e5, 21, 3e5, "won", "revenue"))


def test_close_reference_lines_have_labels_on_different_rows():
    assert charts.label_rows([1.2e6, 1.18e6], (4e5, 1.8e6)) == [1, 0]  # close: the second one drops a row
    assert charts.label_rows([1.2e6, 6e5], (4e5, 1.8e6)) == [0, 0]  # far apart: both on the top row
    revenue = np.random.default_rng(2).normal(1.1e6, 1.5e5, 2000)
    markers = [("Quota", 1.2e6, charts.QUOTA), ("Average math", 1.18e6, charts.AVERAGE)]
    layers = charts.distribution_chart(revenue, markers, "won revenue", "$,.3~s")["layer"]
    texts = [layer for layer in layers if layer["mark"]["type"] == "text"]
    rows = {text["data"]["values"][0]["label"]: text["encoding"]["y"]["value"] for text in texts}
    sides = {text["data"]["values"][0]["label"]: text["mark"]["align"] for text in texts}
    assert rows["Quota"] > rows["Average math"] and sides["Quota"] != sides["Average math"]


def test_the_rep_capacity_chart_fits_its_column():
    scenario = load_scenario("scenarios/capacity_quarter.toml")
    result = compute.run_scenario(scenario, 200, 0, "auto")
    o = result.outcomes
    frame = charts.capacity_frame(
        o.queue_by_week, o.busy_by_week, scenario.slots(), scenario.stage_names, scenario.horizon
    )
    chart = charts.capacity_chart(frame)
    queue, utilisation = charts.panel_specs(chart)
    # The queue axis reaches the top of the widest band, so no band is cut off.
    assert (
        queue["layer"][1]["encoding"]["y"]["scale"]["domain"][1] >= frame.loc[frame["measure"] == "queue", "p90"].max()
    )
    # The page draws the panels one by one (each stretches to the column); one legend, on the top panel.
    assert queue["layer"][1]["encoding"]["color"]["legend"]["title"].startswith("Stage")
    assert all(layer["encoding"]["color"]["legend"] is None for layer in utilisation["layer"])
    at = new_app({"file": "capacity_quarter.toml", "runs": "200"}).run()
    no_exception(at)
    assert len(at.get("vega_lite_chart")) == 5  # distribution, weeks, funnel, and the two capacity panels


def test_visitors_get_no_developer_menu(monkeypatch):
    from streamlit import config

    monkeypatch.chdir(ROOT)  # Streamlit reads .streamlit/config.toml from where it is started
    config.get_config_options(force_reparse=True)
    assert config.get_option("client.toolbarMode") == "viewer"
    assert config.get_where_defined("client.toolbarMode") == str(ROOT / ".streamlit" / "config.toml")
    # Served, not developed: no file watching and no full garbage collection after every click.
    assert config.get_option("server.fileWatcherType") == "none"
    assert config.get_option("runner.postScriptGC") is False


# --- wording --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "shown"),
    [(21.66, "21.7"), (14.114, "14.1"), (3.846, "3.85"), (0.4123, "0.412"), (250.4, "250"), (1234.5, "1,230"),
     (16.0, "16"), (9.996, "10"), (0.0, "0")],
)  # fmt: skip
def test_every_figure_gets_three_significant_figures(x, shown):
    assert say.count(x) == shown == human(x, "count" if float(x).is_integer() else "figure")


def test_money_reads_to_three_significant_figures():
    assert [say.money_short(x) for x in (1_204_000, 950_400, 12_340, 800)] == ["$1.2M", "$950k", "$12.3k", "$800"]


def test_a_fixed_deal_value_is_not_said_to_vary():
    scenario = load_scenario(f"scenarios/{REFERENCE}")
    fixed = scenario.model_copy(update={"deal_value": Fixed(value=20_000.0)})
    assert say.deal_values(fixed) == "every won deal is worth $20,000"
    assert say.deal_values(fixed.model_copy(update={"deal_value_dispersion": 0.1})).endswith("different amounts")
    at = new_app({"s": encode_scenario(fixed)}).run()
    no_exception(at)
    words = " ".join(c.value for c in at.caption)
    assert "every won deal is worth $20,000" in words and "different amounts" not in words
    at = new_app().run()
    assert "won deals are worth different amounts" in " ".join(c.value for c in at.caption)


def test_small_tables_show_names_as_text_and_figures_as_the_app_writes_them():
    from sim.model.average_math import activity_per_stage, deterministic_weekly_opportunities

    scenario = load_scenario(f"scenarios/{REFERENCE}")
    hostile = "[Log in](https://evil.example) *now*"
    stages = (scenario.stages[0].model_copy(update={"name": hostile}), *scenario.stages[1:])
    scenario = scenario.model_copy(update={"stages": stages})
    at = open_page(new_app({"s": encode_scenario(scenario)}), "Funnel math")
    no_exception(at)
    activity = next(t.value for t in at.table if "per working day" in t.value.columns)
    rows = activity_per_stage(scenario, deterministic_weekly_opportunities(scenario))
    assert list(activity["per week"]) == [say.count(r["per_week"]) for r in rows]
    assert activity["entering"].iloc[0] == safe.text(hostile) != hostile  # escaped: shown as its characters
    at = open_page(at, "Forecast")
    stage_by_stage = next(t.value for t in at.table if "entered (simulation)" in t.value.columns)
    assert len(stage_by_stage) == len(stages)
    assert all(re.fullmatch(r"[\d,]+(\.\d+)?", x) for x in stage_by_stage["entered (simulation)"])


def test_statistics_are_in_tooltips_and_labels_say_what_they_mean():
    at = new_app({"file": "team_quarter.toml"}).run()
    open_page(at, "Team")
    no_exception(at)
    captions = [c for c in at.caption]
    words = " ".join(c.value for c in captions)
    assert "rep-period" not in words and "reps in a period" in words
    assert any("rep-periods" in (c.help or "") for c in captions)
    assert "How alike (c)" not in [w.label for w in at.number_input]
    alike = at.number_input(key="rate_concentration")
    assert alike.label == "How alike the reps are" and "Beta" in alike.help
    open_page(at, "Sensitivity")
    captions = [c for c in at.caption]
    assert not any("standard error" in c.value for c in captions)
    assert any("standard errors of the paired difference" in (c.help or "") for c in captions)


# --- the headline first ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["capacity_quarter.toml", "team_quarter.toml"])
def test_the_optional_section_starts_closed_and_says_what_is_on(name):
    at = new_app({"file": name}).run()
    no_exception(at)
    optional = [e for e in at.expander if e.label.startswith("**Optional**")]
    assert len(optional) == 1 and not optional[0].proto.expanded
    assert ("rep capacity" if name.startswith("capacity") else "a team of reps") in optional[0].label.split("in use:")[
        1
    ]
    assert number(metric(at, "P(hit quota)")) >= 0


# --- one name for each number ---------------------------------------------------------------------


def test_each_number_has_one_name_on_every_page():
    at = new_app().run()
    assert metric(at, say.AVERAGE_FORECAST) == "$1.18M"  # the period's result on averages, timing counted
    assert not any(m.label == "Average math says" for m in at.metric)
    open_page(at, "Magic number")
    pace = metric(at, say.AVERAGE_PACE)
    labels = [m.label for m in at.metric]
    assert "Magic number (simulation)" in labels and "Average-math number" not in labels
    open_page(at, "Funnel math")
    steps = " ".join(m.value for m in at.markdown)
    # The back-calculation ends on the same number under the same name; the magic number is the simulated one.
    assert f"**{pace}**: the {say.AVERAGE_PACE.lower()}" in steps
    assert "magic number" not in steps.lower()


def test_the_command_line_and_the_readme_use_the_same_names(capsys):
    from sim.cli import main

    assert main(["run", f"scenarios/{REFERENCE}", "--runs", "200"]) == 0
    run = capsys.readouterr().out
    assert main(["solve", f"scenarios/{REFERENCE}", "--runs", "200"]) == 0
    solve = capsys.readouterr().out
    # run's figure counts timing (a forecast of the period); solve's does not (a weekly pace): named apart.
    assert "Average-math forecast" in run and "Average-math pace" not in run
    assert "Average-math pace: 15.1 a week" in solve and "run's average-math forecast counts" in solve
    assert "Average math says" not in solve
    readme = (ROOT / "README.md").read_text().lower()
    assert "average-math number" not in readme and "average-math answer" not in readme
    assert "**average-math pace**" in readme and "**average-math forecast**" in readme


def test_compare_says_same_luck_not_paired():
    at = open_page(new_app().run(), "Compare")
    next(b for b in at.button if b.label.startswith("Pin the current")).click().run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert "Change in revenue (same luck)" in labels and not any("Paired" in label for label in labels)

"""The Calibrate page's backtest, through Streamlit's AppTest: the chart and the figures in words.

A small synthetic export (about 450 deals) and three dates keep it fast. The page's
words must be the library's figures (:func:`sim.crm.backtest.backtest` at the same dates,
runs and seed), and its chart must draw the bands as areas, the actuals as points and
the run-rate as a line.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from sim.crm.backtest import backtest
from sim.crm.reader import read_deals
from tests.app_helpers import new_app, no_exception, open_page
from tests.crm_synth import World, export_csv
from ui.calibrate_page import BACKTEST_RUNS, backtest_words
from ui.charts import BACKTEST_LABELS


@pytest.fixture(scope="module", autouse=True)
def plain_argv():
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["app.py"])
        yield


@pytest.fixture(scope="module")
def export() -> str:
    """A year and a half of a small flat funnel, exported on 2024-06-30."""
    return export_csv(World(per_week=6, start="2023-01-01").deals("2024-06-30", seed=1), "2024-06-30")


@pytest.fixture(scope="module")
def page(export, plain_argv):
    """The page after a three-date backtest (one session for the tests below: it is the slow part)."""
    at = open_page(new_app().run(), "Calibrate")
    at = at.file_uploader(key="crm_upload").upload("deals.csv", export.encode(), "text/csv").run()
    at.number_input(key="crm_count").set_value(3).run()
    labels = [b.label for b in at.button]
    return at.button[labels.index("Run the backtest")].click().run()


def shown_dates(at) -> list[str]:
    caption = next(c.value for c in at.caption if c.value.startswith("Dates: "))
    return re.findall(r"\d{4}-\d{2}-\d{2}", caption)


def plain_words(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**In plain words.**"))


def backtest_spec(at) -> dict:
    charts = list(at.get("arrow_vega_lite_chart")) + list(at.get("vega_lite_chart"))
    specs = [json.loads(c.proto.spec) for c in charts]
    found = [s for s in specs if any("run_rate" in json.dumps(layer) for layer in s.get("layer", []))]
    assert len(found) == 1, [s.get("layer") for s in specs]
    return found[0]


def test_the_words_are_the_library_figures(page, export):
    no_exception(page)
    dates = shown_dates(page)
    assert len(dates) == 3
    answer = backtest(
        read_deals(export.encode()), dates, 91.0, runs=BACKTEST_RUNS, seed=int(page.session_state["seed"])
    )
    words = plain_words(page)
    assert words == backtest_words(answer, "revenue")
    held = sum(r["inside_p10_p90"] for r in answer["dates"])
    assert f"the P10–P90 band held the actual {held} time" in words and "in 3" in words
    assert "the simulation's middle estimate was off by" in words.lower() and "the run-rate by" in words


def test_the_chart_draws_bands_as_areas_actuals_as_points_and_the_run_rate_as_a_line(page):
    layers = backtest_spec(page)["layer"]
    marks = [layer["mark"]["type"] for layer in layers]
    assert marks.count("area") == 2 and "point" in marks and marks.count("line") == 2
    encoded = {json.dumps(layer["encoding"]["y"]["field"]): layer["mark"]["type"] for layer in layers}
    assert encoded['"p10"'] == "area" and encoded['"p25"'] == "area"
    assert encoded['"actual"'] == "point" and encoded['"run_rate"'] == "line"
    assert backtest_spec(page)["layer"][0]["encoding"]["color"]["scale"]["domain"] == list(BACKTEST_LABELS)


def test_won_deals_have_their_own_words(page, export):
    page.segmented_control(key="crm_measure").set_value("deals").run()
    no_exception(page)
    words = plain_words(page)
    assert words.startswith("**In plain words.** For won deals,")
    answer = backtest(
        read_deals(export.encode()), shown_dates(page), 91.0, runs=BACKTEST_RUNS, seed=int(page.session_state["seed"])
    )
    assert words == backtest_words(answer, "deals")

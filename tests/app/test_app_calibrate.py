"""The Calibrate page and the scenario keys no input shows, through Streamlit's AppTest.

The CRM exports are synthetic (:mod:`tests.crm_synth`), drawn once per module with a
fixed seed. Reads, fits and backtests are cached per process, so each export is fitted
once however many tests upload it. Pages that simulate a calibrated scenario run with
``runs=200`` from the link: these tests check that things are carried and shown, not
the numbers, which the library's own tests check.
"""

from __future__ import annotations

import io
import sys

import pytest

from sim.crm.calibrate import calibrate
from sim.crm.reader import read_deals
from sim.model.scenario import scenario_from_dict, scenario_from_toml, scenario_to_toml
from tests.app_helpers import PAGES, captured_downloads, edit_stages, metric, new_app, no_exception, open_page
from tests.crm_synth import World, export_csv
from ui import form

FEW_RUNS = {"runs": "200"}
SEASONS = (0.6, 0.8, 1.0, 1.2, 1.4, 1.2, 1.0, 0.8, 0.9, 1.1, 1.0, 1.0)


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


@pytest.fixture(scope="module")
def export() -> str:
    """Two years of a flat funnel, as a Salesforce export on 2024-12-31."""
    deals = World(per_week=10, start="2023-01-01").deals("2024-12-31", seed=1)
    return export_csv(deals, "2024-12-31")


@pytest.fixture(scope="module")
def seasonal():
    """A calibrated scenario with everything the inputs do not show: listed deals, lost_duration, seasons."""
    deals = World(per_week=10, start="2022-01-01", monthly=SEASONS).deals("2024-12-31", seed=2)
    scenario = calibrate(read_deals(export_csv(deals, "2024-12-31").encode()), "2024-12-30").scenario
    assert scenario.open_deals and scenario.inflow.multipliers and scenario.stages[0].lost_duration
    return scenario


def click(at, label: str):
    labels = [b.label for b in at.button]
    assert label in labels, labels
    return at.button[labels.index(label)].click().run()


def upload(at, text: str | bytes, name: str = "deals.csv"):
    data = text.encode() if isinstance(text, str) else text
    return at.file_uploader(key="crm_upload").upload(name, data, "text/csv").run()


def as_text(data) -> str:
    return data.decode() if isinstance(data, bytes) else data


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def charts(at) -> list:
    return list(at.get("vega_lite_chart")) + list(at.get("arrow_vega_lite_chart"))


def rows(text: str) -> int:
    """Data rows of a CSV export (one line each, below the header)."""
    return len(text.splitlines()) - 1


def library_calibration(text: str, as_of: str, name: str = "deals.csv"):
    """What :func:`sim.crm.calibrate.calibrate` makes of an upload, for the page to agree with."""
    source = io.BytesIO(text.encode())
    source.name = name
    return calibrate(read_deals(source), as_of)


def calibrate_page(query: dict | None = None):
    at = new_app(query).run()
    return open_page(at, "Calibrate")


# --- the page --------------------------------------------------------------------------------


def test_without_an_upload_the_page_says_what_to_upload():
    at = calibrate_page()
    no_exception(at)
    assert at.session_state["page"] == "Calibrate"
    assert any("What to upload" in i.value and "CreatedDate" in i.value for i in at.info)
    assert not at.error


def test_an_upload_is_read_fitted_reported_and_charted(export):
    at = upload(calibrate_page(), export)
    no_exception(at)
    assert not errors(at)
    # The select boxes are pre-filled by recognition.
    assert at.selectbox(key=next(k for k in at.session_state if k.startswith("crm_column_created_"))).value == (
        "CreatedDate"
    )
    text = "\n".join(m.value for m in at.markdown)
    assert "What the calibration did" in text and "still open" in text
    n = rows(export)
    assert f"{n:,} read, {n:,} used, 0 skipped" in text
    assert metric(at, "Deals used") == f"{n:,}"
    assert 25 < float(metric(at, "Win rate").rstrip("%")) < 35  # the world's p is 0.3
    fits = next(d.value for d in at.dataframe if "KS distance" in d.value.columns)
    assert list(fits["what"]) == ["Days to win", "Days to lose", "Won deal value"]
    assert set(fits["family"]) <= {"lognormal", "gamma", "exponential"} and fits["KS distance"].max() < 0.1
    assert len(charts(at)) == 3  # days to win, days to lose, deal value
    at.segmented_control(key="crm_view").set_value("Cumulative").run()
    no_exception(at)
    assert len(charts(at)) == 3


def test_skipped_rows_are_listed_with_their_line_numbers(export):
    bad = export + "X1,2024-01-05T00:00:00,2024-02-01T00:00:00,Closed Won,-5,005A\nX2,soon,,Prospecting,10,005A\n"
    at = upload(calibrate_page(), bad)
    no_exception(at)
    text = "\n".join(m.value for m in at.markdown)
    n = rows(export)  # the header is line 1, so the two bad rows are lines n + 2 and n + 3
    assert f"{n + 2:,} read, {n:,} used, 2 skipped" in text
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert dict(zip(skipped["reason"], skipped["lines"], strict=True)) == {
        "negative amount in Amount": str(n + 2),
        "unparseable date in CreatedDate": str(n + 3),
    }


def test_a_column_can_be_remapped(export):
    # An export whose create-date column has a name nobody recognises.
    renamed = export.replace("CreatedDate", "Opened On", 1)
    at = upload(calibrate_page(), renamed)
    no_exception(at)
    assert any(e.startswith("No column chosen for created date") for e in errors(at))
    key = next(k for k in at.session_state if k.startswith("crm_column_created_"))
    at.selectbox(key=key).set_value("Opened On").run()
    no_exception(at)
    assert not errors(at)
    assert metric(at, "Deals used") == f"{rows(export):,}"
    # Choosing one column twice is refused in words.
    at.selectbox(key=key).set_value("CloseDate").run()
    assert any("chosen for both" in e for e in errors(at))


def test_use_as_the_current_scenario_feeds_every_page_the_link_and_the_download(export, monkeypatch):
    at = upload(calibrate_page(FEW_RUNS), export)
    click(at, "Use as the current scenario")
    no_exception(at)
    scenario = at.session_state["last_valid"]
    # By default the page calibrates as of the last date in the file.
    assert scenario == library_calibration(export, "2024-12-30").scenario
    assert scenario.name == "Calibrated from deals.csv as of 2024-12-30"
    assert scenario.open_deals and scenario.stages[0].lost_duration is not None
    assert any("is the current scenario" in s.value for s in at.success)
    assert "deals.csv" in at.session_state["origin"]
    assert form.decode_scenario(at.query_params["s"]) == scenario  # the link carries it
    with captured_downloads(monkeypatch) as files:
        open_page(at, "Forecast")
        no_exception(at)
        assert not at.error
        assert any(c.value.startswith(f"**{scenario.name}**") for c in at.caption)
        assert any(c.value.startswith(f"Plus {len(scenario.open_deals)} listed open deals") for c in at.caption)
        assert metric(at, "P(hit quota)").endswith("%")
        text = as_text(files["calibrated_from_deals_csv_as_of_2024_12_30.toml"])
    # Rounded open deals are short enough for tomli_w to write one inline table a line (open_deals = [...]).
    assert scenario_from_toml(text) == scenario and "open_deals = [" in text


def test_bad_files_show_the_problem_and_keep_the_scenario(export):
    at = calibrate_page()
    before = at.session_state["last_valid"]
    upload(at, b"\x89PNG\r\n\x1a\n\x00\x00binary", "picture.csv")
    no_exception(at)
    assert any(e.startswith("picture.csv: not a UTF-8 text file") for e in errors(at))
    upload(at, "name,value\nAcme,10\n", "other.csv")
    no_exception(at)
    assert any(e.startswith("No column chosen for deal id") for e in errors(at))
    dates_gone = export.replace("T", " ").replace("-", "/")  # no longer a date either reader accepts
    upload(at, dates_gone, "dates.csv")
    no_exception(at)
    assert any(e.startswith(f"dates.csv: no usable rows: all {rows(export):,} rows were skipped") for e in errors(at))
    upload(at, export)
    key = next(k for k in at.session_state if k.startswith("crm_as_of_"))
    at.date_input(key=key).set_value("2020-01-01").run()
    no_exception(at)
    assert any(e.startswith("as_of 2020-01-01: no deal was created by then") for e in errors(at))
    assert at.session_state["last_valid"] == before


def test_the_backtest_shows_coverage_against_actuals(export):
    at = upload(calibrate_page(), export)
    at.number_input(key="crm_count").set_value(4).run()
    click(at, "Run the backtest")
    no_exception(at)
    assert not errors(at)
    coverage = metric(at, "Coverage of the P10–P90 band")
    assert coverage.endswith("%") and 0 <= float(coverage.rstrip("%")) <= 100
    assert metric(at, "Typical miss of P50 (MAPE)").endswith("%")
    assert any("middle-80% band" in c.value for c in at.caption)
    assert len(charts(at)) == 4  # the three fits and the backtest
    at.segmented_control(key="crm_measure").set_value("deals").run()
    no_exception(at)
    assert metric(at, "Coverage of the P10–P90 band").endswith("%")


# --- keys with no input: open deals, lost_duration, seasonal multipliers ------------------------


def test_the_form_round_trips_what_no_input_shows(seasonal):
    behaviours = {str(i): cells for i, cells in enumerate(form.behaviour_cells(seasonal))}  # lost_duration
    values = form.widget_values(seasonal) | form.carried(seasonal) | {"behaviours": behaviours}
    assert scenario_from_dict(form.scenario_document(values, form.stages_frame(seasonal))) == seasonal
    dropped = form.carried(seasonal, keep_open_deals=False, keep_multipliers=False)
    assert dropped["open_deals"] is None and dropped["multipliers"] is None


def test_edits_keep_listed_deals_lost_duration_and_seasons(seasonal, monkeypatch):
    at = new_app({"s": form.encode_scenario(seasonal), **FEW_RUNS}).run()
    no_exception(at)
    assert at.session_state["last_valid"] == seasonal
    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"Plus {len(seasonal.open_deals)} listed open deals") for c in captions)
    assert any(c.startswith("The inflow is seasonal: one factor per month") for c in captions)
    with captured_downloads(monkeypatch) as files:
        at.number_input(key="quota_revenue").set_value(500_000.0).run()
        edit_stages(at, edited_rows={0: {"name": "Pipeline", "conversion": 40.0}})
        no_exception(at)
        # The listed deals point at the old name: the validator says so, no traceback.
        assert any(
            e.startswith("Listed open deal 1 (stage): unknown stage 'Open pipeline'; the stages are Pipeline")
            for e in errors(at)
        ), errors(at)
        edit_stages(at, edited_rows={0: {"conversion": 40.0}})
        no_exception(at)
        assert not at.error
        text = as_text(next(data for name, data in files.items() if name.endswith(".toml")))
    edited = at.session_state["last_valid"]
    assert edited.quota.revenue == 500_000.0 and edited.stages[0].conversion.mean() == 0.4  # 40% typed
    assert edited.open_deals == seasonal.open_deals
    assert edited.stages[0].lost_duration == seasonal.stages[0].lost_duration
    assert edited.inflow.multipliers == seasonal.inflow.multipliers
    assert scenario_from_toml(text) == edited
    assert form.decode_scenario(at.query_params["s"]) == edited
    # A longer period needs other multipliers: the message says so, and unticking them fixes it.
    at.number_input(key="horizon").set_value(182.0).run()
    assert any(e.startswith("Seasonal inflow factors: give one per week (26) or one per month (6)") for e in errors(at))
    at.checkbox(key="keep_multipliers").uncheck().run()
    no_exception(at)
    assert not at.error
    assert at.session_state["last_valid"].inflow.multipliers is None
    assert at.session_state["last_valid"].open_deals == seasonal.open_deals


def test_every_page_renders_a_calibrated_scenario(seasonal):
    at = new_app({"s": form.encode_scenario(seasonal), **FEW_RUNS}).run()
    for label in PAGES:
        open_page(at, label)
        no_exception(at)
        assert not at.error, (label, errors(at))
        # Compare waits for a baseline; Team and Segments explain how to turn them on.
        assert at.metric or (label in ("Compare", "Team", "Segments") and at.info), label
    assert at.session_state["last_valid"] == seasonal


def test_one_line_per_missing_stage_not_per_listed_deal():
    lines = [f"open_deals[{i}].stage: unknown stage 'Open pipeline'; the stages are X" for i in range(3)]
    assert form.condense_problems(["quota.revenue: missing (required)", *lines]) == [
        "quota.revenue: missing (required)",
        f"{lines[0]} (and 2 more listed open deals in 'Open pipeline')",
    ]


def test_an_uploaded_scenario_keeps_its_listed_deals(seasonal):
    at = new_app(FEW_RUNS).run()
    at.file_uploader(key="upload").upload("mine.toml", scenario_to_toml(seasonal).encode(), "application/toml").run()
    no_exception(at)
    assert at.session_state["last_valid"] == seasonal
    at.checkbox(key="keep_open_deals").uncheck().run()
    no_exception(at)
    assert at.session_state["last_valid"].open_deals == ()


def test_recent_months_can_count_more_and_the_page_says_how_much_periods_differ(export):
    at = upload(calibrate_page(), export)
    text = "\n".join(m.value for m in at.markdown)
    assert "How much the next months can differ" in text or "no more month-to-month change than chance" in text
    assert at.selectbox(key="crm_recency").value == "A deal 3 months old counts half"  # the default
    at.selectbox(key="crm_recency").set_value("No: every deal counts the same").run()
    no_exception(at)
    assert not errors(at)
    as_of = at.session_state[next(k for k in at.session_state if k.startswith("crm_as_of_"))].isoformat()
    source = io.BytesIO(export.encode())
    source.name = "deals.csv"
    flat = calibrate(read_deals(source), as_of, half_life_weeks=None)
    weighted = library_calibration(export, as_of)
    assert flat.report.rate.mean != weighted.report.rate.mean
    assert float(metric(at, "Win rate").rstrip("%")) == pytest.approx(100 * flat.report.rate.mean, abs=0.05)

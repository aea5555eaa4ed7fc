"""Rates as percentages and problems in plain words (issue 16): the form's two directions, the tables, the messages.

A visitor types 35 for a 35% rate; the scenario holds 0.35. The form's two directions
stay exact inverses: every shipped scenario, and one whose rates have all 17 digits (as a
calibration writes them), loaded into the inputs and read back, equals itself. Problems
name the input a visitor sees ("Proposal rate"), never the file's field path, and say
rates as percentages.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import load_scenario
from sim.model.scenario import scenario_from_dict
from tests.app_helpers import SCENARIO_FILES, edit_behaviour, edit_stages, new_app, no_exception
from ui import form
from ui.form import encode_scenario
from ui.wording import field_label, plain_problem

REFERENCE = load_scenario(SCENARIO_FILES[0].parent / "reference_quarter.toml")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py"])


def read_back(scenario):
    """The scenario loaded into the inputs (widgets, stage table, optional table) and validated again."""
    behaviours = {str(i): cells for i, cells in enumerate(form.behaviour_cells(scenario))}
    values = form.widget_values(scenario) | form.carried(scenario) | {"behaviours": behaviours}
    return scenario_from_dict(form.scenario_document(values, form.stages_frame(scenario)))


def with_rates(scenario, rates):
    """The scenario with other (fixed) conversion rates, one per stage."""
    stages = tuple(s.model_copy(update={"conversion": r}) for s, r in zip(scenario.stages, rates, strict=True))
    return scenario.model_copy(update={"stages": stages})


# --- the two directions -----------------------------------------------------------------------------------


def test_percent_moves_the_decimal_point_not_the_binary_one():
    assert 0.07 * 100 != 7.0  # the naive product: 7.000000000000001
    assert form.to_percent(0.07) == 7.0 and form.from_percent(7) == 0.07
    assert form.to_percent(0.355) == 35.5 and form.from_percent(35.5) == 0.355
    assert form.from_percent(4000) == 40.0  # out of range is passed on for the validator to name
    assert form.from_percent(None) is None and form.from_percent("high") == "high"


@given(st.decimals(min_value=0, max_value=1, places=13, allow_nan=False, allow_infinity=False))
def test_any_rate_people_type_comes_back_exactly(rate):
    """Up to 15 significant digits (a 13-place fraction, a percent with 11 places) both ways are exact."""
    fraction = float(rate)
    percent = form.to_percent(fraction)
    assert percent == float(Decimal(rate).scaleb(2))  # the percentage the rate's decimal says
    assert form.from_percent(percent) == fraction


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_every_shipped_scenario_reads_back_as_itself(path):
    scenario = load_scenario(path)
    assert read_back(scenario) == scenario
    frame = form.stages_frame(scenario)
    rates = [s.conversion if isinstance(s.conversion, float) else s.conversion.mean() for s in scenario.stages]
    assert list(frame["conversion"]) == [form.to_percent(r) for r in rates]  # the table shows percentages


def test_seventeen_digit_rates_and_chances_read_back_exactly():
    # A calibration writes rates such as 40/97; no percentage of a float holds every one of them.
    rates = [40 / 97, 0.1 + 0.2, 2 / 3]
    naive = [float(Decimal(repr(r * 100)) / 100) for r in rates]
    assert any(n != r for n, r in zip(naive, rates, strict=True))  # so the hidden rate as loaded is needed
    scenario = with_rates(REFERENCE, rates)
    stages = list(scenario.stages)
    stages[1] = stages[1].model_copy(update={"no_show": 1 / 7, "reschedule": 0.3 + 0.6, "lost_after_reschedule": 0.8})
    inflow = scenario.inflow.model_copy(update={"dispersion": 1 / 3})  # the swings are percentages too
    scenario = scenario.model_copy(
        update={"stages": tuple(stages), "inflow": inflow, "deal_value_dispersion": 0.1 + 0.2}
    )
    assert read_back(scenario) == scenario
    # An edited percentage is the visitor's: 41.2 is 0.412 exactly.
    frame = form.stages_frame(scenario)
    frame.loc[0, "conversion"] = 41.2
    values = form.widget_values(scenario) | form.carried(scenario)
    values["behaviours"] = {str(i): c for i, c in enumerate(form.behaviour_cells(scenario))}
    assert scenario_from_dict(form.scenario_document(values, frame)).stages[0].conversion == 0.412


def test_the_optional_table_shows_chances_as_percentages():
    scenario = load_scenario(SCENARIO_FILES[0].parent / "follow_up_trainer.toml")
    cells = form.behaviour_cells(scenario)
    frame = form.behaviour_frame(scenario.stage_names, cells, [str(i) for i in range(len(cells))])
    shown = [(frame[key].iloc[i], cells[i][key]) for i in range(len(cells)) for key in form.CHANCE_COLUMNS]
    assert any(value is not None for _, value in shown)  # the scenario has no-shows
    for percent, value in shown:
        assert percent == form.to_percent(value) if value is not None else percent != percent  # NaN: blank
    assert form.behaviour_edit({"no_show": 20.0, "max_touches": 3}) == {"no_show": 0.2, "max_touches": 3}


# --- in the app -------------------------------------------------------------------------------------------


def test_a_rate_typed_as_a_percentage_reaches_the_scenario():
    at = new_app().run()
    assert list(at.session_state["stages_base"]["conversion"]) == [65.0, 50.0, 75.0]
    edit_stages(at, edited_rows={1: {"conversion": 65.0}})  # Proposal 50% -> 65%
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["last_valid"].stages[1].conversion.mean() == 0.65


def test_a_calibrated_rate_survives_editing_something_else():
    rates = [40 / 97, 0.1 + 0.2, 2 / 3]
    scenario = with_rates(REFERENCE, rates)
    at = new_app({"s": encode_scenario(scenario)}).run()
    no_exception(at)
    edit_stages(at, edited_rows={2: {"open": 9}})  # the hidden rate as loaded rides along in the editor
    no_exception(at)
    kept = at.session_state["last_valid"]
    assert [s.conversion for s in kept.stages] == rates and kept.stages[2].open == 9


def test_a_chance_typed_as_a_percentage_reaches_the_scenario():
    at = new_app().run()
    edit_behaviour(at, {1: {"no_show": 20.0}})
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["last_valid"].stages[1].no_show == 0.2
    edit_behaviour(at, {1: {"no_show": 150.0}})
    errors = [e.value for e in at.error]
    assert "Proposal no-show chance: must be between 0% and 100%, got 150% (row 2 of the funnel table)" in errors


def test_problems_name_the_input_in_plain_words():
    at = new_app().run()
    edit_stages(at, edited_rows={0: {"conversion": 4000.0, "certainty": None}})
    errors = [e.value for e in at.error]
    assert "Discovery rate: must be between 0% and 100%, got 4,000% (row 1 of the funnel table)" in errors, errors
    assert not any("stages[" in e for e in errors)
    at = new_app().run()
    at.segmented_control(key="quota_unit").set_value("deals").run()
    at.number_input(key="quota_deals").set_value(0).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("Quota (won deals): must be more than 0") for e in errors), errors


@pytest.mark.parametrize(
    ("line", "plain"),
    [
        ("stages[0].conversion: must be between 0 and 1, got 40.0", "Reach rate: must be between 0% and 100%, got "
         "4,000%"),
        ("quota.deals: must be a number > 0, got 0", "Quota (won deals): must be more than 0, got 0"),
        (
            "stages[1].conversion.mean: must be strictly between 0 and 1, got 1.3",
            "Pass rate: must be more than 0% and less than 100%, got 130%",
        ),
        ("stages[2].duration.low: missing (required)", "Pipe days (low): needs a value"),
        ("deal_value.sd: must be a finite number > 0, got -3.0", "Deal value (sd): must be more than 0, got -3"),
        ("stages[1].reschedule: needs no_show (the chance of a no-show); add it", "Pass rescheduled chance: needs a "
         "no-show chance (the chance of a no-show); add it"),
        ("capacity.reps: must be a whole number >= 1, got 0", "Reps sharing the funnel: must be a whole number, 1 or "
         "more, got 0"),
        ("team.new_reps: must be <= team.reps (8), got 9", "New reps (ramping): must be at most the reps in the team "
         "(8), got 9"),
        ("stages[0].mystery_key: unknown key (check the spelling)", "Reach mystery key: is not a setting the scenario "
         "knows (check the spelling)"),
        ("a_new_thing[2].part: something", "A new thing 3 part: something"),  # unknown: the path in words
        ("segments[1].stages[0].conversion: must be between 0 and 1, got 1.3", "Segment 2: Stage 1 rate: must be "
         "between 0% and 100%, got 130%"),
        ("inflow.dispersion: must be a finite number between 0 and 3, got 5.0", "Inflow swings between periods (±): "
         "must be between 0% and 300%, got 500%"),
    ],
)  # fmt: skip
def test_plain_problem(line, plain):
    assert plain_problem(line, ["Reach", "Pass", "Pipe"]) == plain


def test_a_file_keeps_its_path_and_a_file_name_is_no_field():
    line = "stages[0].conversion: must be between 0 and 1, got 1.3"
    assert plain_problem(line, where="bad.toml") == (
        "Stage 1 rate: must be between 0% and 100%, got 130% (stages[0].conversion in bad.toml)"
    )
    assert plain_problem("bad.toml: line 3: invalid", where="bad.toml") == "bad.toml: line 3: invalid"


def test_field_labels_use_the_stage_names():
    names = ["Appointment", "Proposal", "Close"]
    assert field_label("stages[0].conversion", names) == "Appointment rate"
    assert field_label("stages[0].conversion.concentration", names) == "Appointment rate from (deals)"
    assert field_label("stages[2].duration.mode", names) == "Close days (most likely)"
    assert field_label("stages[5].conversion", names) == "Stage 6 rate"
    assert field_label("inflow.per_week") == "New opportunities a week"
    assert field_label("deal_value.mean") == "Deal value (mean)"


def test_compare_lists_changes_in_the_inputs_words():
    from sim.model.distributions import Fixed
    from ui.wording import change_lines

    before = load_scenario(SCENARIO_FILES[0].parent / "outbound_sdr.toml")
    stages = list(before.stages)
    stages[0] = stages[0].model_copy(update={"conversion": 0.45})
    after = before.model_copy(update={"stages": tuple(stages), "deal_value": Fixed(value=30_000)}).with_inflow(260.0)
    assert change_lines(before, after) == [
        "New opportunities a week 250 → 260",
        "Deal value $25k → $30k",
        "Activity rate 40% → 45%",
    ]
    # Rounded figures that look alike give way to the exact ones; a stage added is named as the scenario after.
    nudged = after.with_inflow(260.4).model_copy(
        update={"stages": (*after.stages, stages[0].model_copy(update={"name": "Contract"}))}
    )
    lines = change_lines(after, nudged)
    assert lines[0] == "New opportunities a week 260.0 → 260.4"
    assert "Stage 4 name (none) → Contract" in lines and "Contract rate (none) → 45%" in lines

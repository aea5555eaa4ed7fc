"""Generated hostile scenario documents: oversized, deeply nested, mistyped and overflowing.

Whatever the document, loading it either gives a scenario or raises :class:`ScenarioError`
with a few one-line problems of bounded length; never another exception. A number given
as a string or a boolean is always refused; values that would overflow are refused, so
every scenario that loads gives finite averages and strict JSON. Hypothesis runs
derandomized, without an example database, with modest example counts.
"""

from __future__ import annotations

import copy
import json
import math

import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim import ScenarioError, simulate
from sim.errors import MAX_LINE, MAX_PROBLEMS
from sim.model.average_math import average_math
from sim.model.scenario import scenario_from_dict, scenario_from_toml
from tests.model.test_validation import SIMULATE_UP_TO, nodes, valid_documents

SETTINGS = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)

TEXT_KEYS = {"name", "description", "dist", "process", "stage"}
"""Keys whose values are text: every other leaf of a valid document is a number."""


def numeric_leaves(doc) -> list[tuple[object, object]]:
    """(container, key) of every number in a document (booleans and text left out)."""
    out = []
    for _, container in nodes(doc):
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, int | float) and not isinstance(value, bool) and key not in TEXT_KEYS:
                out.append((container, key))
    return out


def check_outcome(load) -> object | None:
    """Call ``load``: a scenario, or a ScenarioError of short single lines; anything else fails the test."""
    try:
        scenario = load()
    except ScenarioError as error:
        event("refused")
        assert 1 <= len(error.problems) <= MAX_PROBLEMS
        assert all(len(line) <= MAX_LINE and "\n" not in line and ": " in line for line in error.problems)
        return None
    event("loaded")
    json.dumps(average_math(scenario), allow_nan=False)  # finite: nothing overflowed
    if scenario.expected_arrivals + sum(stage.open for stage in scenario.stages) <= SIMULATE_UP_TO:
        json.dumps(simulate(scenario, runs=3, seed=0).summary(), allow_nan=False)
    return scenario


@st.composite
def mistyped(draw):
    """A valid document with one number replaced by its text, a boolean or nothing useful."""
    doc = copy.deepcopy(draw(valid_documents()))
    container, key = draw(st.sampled_from(numeric_leaves(doc)))
    value = container[key]
    container[key] = draw(st.sampled_from([str(value), f"{value}", True, False, [value], {"value": value}]))
    return doc


@given(mistyped())
@SETTINGS
def test_a_number_given_as_text_or_a_boolean_is_refused(doc):
    assert check_outcome(lambda: scenario_from_dict(doc)) is None


OVERFLOWING = st.sampled_from(
    [1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e200, 10**400, 2**63, math.inf, math.nan]
)


@st.composite
def overflowing(draw):
    """A valid document with one to three numbers replaced by huge, tiny or non-finite ones."""
    doc = copy.deepcopy(draw(valid_documents()))
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(numeric_leaves(doc)))
        container[key] = draw(OVERFLOWING)
    return doc


@given(overflowing())
@SETTINGS
def test_overflowing_numbers_are_refused_or_stay_finite(doc):
    check_outcome(lambda: scenario_from_dict(doc))


@st.composite
def nested(draw):
    """TOML text with a value nested 5 to 2,000 levels deep (arrays or inline tables) somewhere."""
    doc = draw(valid_documents())
    depth = draw(st.integers(5, 2000))
    kind = draw(st.sampled_from(["array", "table"]))
    value = "[" * depth + "1" + "]" * depth if kind == "array" else "{a = " * depth + "1" + "}" * depth
    key = draw(st.sampled_from(["name", "extra", "horizon_days"]))
    text = tomli_w.dumps({k: v for k, v in doc.items() if k != key and not k.startswith("horizon")})
    return f"{key} = {value}\nhorizon_days = 30\n" + text


@given(nested())
@SETTINGS
def test_deep_nesting_is_refused(text):
    assert check_outcome(lambda: scenario_from_toml(text)) is None


@st.composite
def nested_dicts(draw):
    """A valid document with one value wrapped in 5 to 5,000 lists or tables (built without recursion)."""
    doc = copy.deepcopy(draw(valid_documents()))
    container, key = draw(st.sampled_from(numeric_leaves(doc)))
    value = container[key]
    for _ in range(draw(st.integers(5, 5000))):
        value = [value] if draw(st.booleans()) else {"x": value}
    container[key] = value
    return doc


@given(nested_dicts())
@SETTINGS
def test_deeply_nested_dictionaries_are_refused(doc):
    assert check_outcome(lambda: scenario_from_dict(doc)) is None


@st.composite
def oversized(draw):
    """A valid document with a long text, a long list or many stages in it."""
    doc = copy.deepcopy(draw(valid_documents()))
    kind = draw(st.sampled_from(["name", "stage name", "key", "stages", "values", "multipliers", "open deals"]))
    size = draw(st.sampled_from([81, 201, 10_000, 1_000_000]))
    if kind == "name":
        doc["name"] = "N" * size
    elif kind == "stage name":
        doc["stages"][0]["name"] = "S" * size
    elif kind == "key":
        doc["stages"][0]["k" * size] = 1
    elif kind == "stages":
        stage = doc["stages"][0]
        doc["stages"] = [dict(stage, name=f"Stage {i}") for i in range(min(size, 5000))]
    elif kind == "values":
        doc["deal_value"] = {"dist": "empirical", "values": [1.0] * min(size, 200_000)}
    elif kind == "multipliers":
        doc["inflow"]["multipliers"] = [1.0] * min(size, 10_000)
    else:
        doc["open_deals"] = [{"stage": "x" * 100, "age_days": "old"} for _ in range(min(size, 2000))]
    return doc


@given(oversized())
@SETTINGS
def test_oversized_documents_get_short_answers(doc):
    check_outcome(lambda: scenario_from_dict(doc))


def test_a_thousand_problems_are_told_in_twenty_lines():
    stages = [{"name": f"S{i}", "conversion": "high", "duration": 1} for i in range(25)]
    document = {"name": "x", "horizon_days": 30, "quota": {"deals": 1}, "inflow": {"per_week": 1}}
    document |= {"deal_value": 1, "stages": stages, "open_deals": [{"stage": "S0", "bad": 1}] * 1000}
    try:
        scenario_from_dict(document)
    except ScenarioError as error:
        assert len(error.problems) == MAX_PROBLEMS
        assert error.problems[-1].startswith("... and ") and "more problems" in error.problems[-1]
    else:
        raise AssertionError("a document with 1,025 problems loaded")

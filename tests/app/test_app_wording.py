"""The app speaks to managers: inputs follow the scenario, answers can be used, charts and words read plainly.

Each test opens a fresh session of ``app.py`` through AppTest (see :mod:`tests.app_helpers`);
runs are the app's default and the seed is fixed, so every number is reproducible.
"""

from __future__ import annotations

import sys

import pytest

from sim import load_scenario
from tests.app_helpers import metric, new_app, no_exception, number, open_page

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

"""The swings between periods through AppTest: they reach the scenario and widen the forecast band.

With one seed, a replication's arrivals at a dispersed inflow are its steady arrivals
scaled by its own level, and its deal values at a dispersed average its steady values
times its own level, so the spread of the period's revenue grows with either swing: on
the reference quarter (about 208 opportunities) an inflow swing of 50%, or an average
deal swing of 30%, makes the P10-P90 band of revenue far wider than without.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from sim import simulate
from sim.model.scenario import scenario_from_toml
from tests.app_helpers import captured_downloads, new_app, no_exception, number

REFERENCE = "reference_quarter.toml"
BAND = re.compile(r"8 runs in 10 end between (?P<low>\S+) and (?P<high>\S+?)\.$")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


def band(at) -> float:
    """The forecast's P90 - P10 of revenue, as the page shows it."""
    shown = [BAND.search(c.value) for c in at.caption]
    match = next(m for m in shown if m is not None)
    return number(match["high"]) - number(match["low"])


@pytest.mark.parametrize(
    ("key", "swing", "read"),
    [
        ("dispersion", 50.0, lambda scenario: scenario.inflow.dispersion),  # typed as a percentage
        ("value_dispersion", 30.0, lambda scenario: scenario.deal_value_dispersion),
    ],
    ids=["inflow", "deal value"],
)
def test_a_swing_widens_the_forecast_band(monkeypatch, key, swing, read):
    with captured_downloads(monkeypatch) as files:
        at = new_app({"file": REFERENCE}).run()
        no_exception(at)
        assert at.number_input(key=key).value == 0.0
        steady = band(at)
        files.clear()
        at.number_input(key=key).set_value(swing).run()
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        scenario = at.session_state["last_valid"]
        text = next(data for name, data in files.items() if name.endswith(".toml"))
    assert read(scenario) == swing / 100
    assert scenario_from_toml(text.decode() if isinstance(text, bytes) else text) == scenario
    swinging = band(at)
    assert swinging > 1.2 * steady, (steady, swinging)
    # The page's band is the library's, at the runs and seed the page uses.
    revenue = simulate(scenario, runs=2000, seed=0).outcomes.revenue
    p10, p90 = np.percentile(revenue, [10, 90])
    assert swinging == pytest.approx(p90 - p10, rel=0.05)

"""The deal value's dispersion through AppTest: it reaches the scenario and widens the forecast band.

With one seed, a replication's deal values at a dispersed average are its steady values
times its own level, so the spread of the period's revenue grows with the swing; on the
reference quarter a swing of 0.3 in the average deal value makes the P10-P90 band of
revenue wider than with independent values alone.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sim import simulate
from sim.model.scenario import scenario_from_toml
from tests.app.test_app_dispersion import REFERENCE, band
from tests.app_helpers import captured_downloads, new_app, no_exception


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """The app reads a scenario path from sys.argv[1:]; under pytest that would be pytest's."""
    monkeypatch.setattr(sys, "argv", ["app.py"])


def test_deal_value_swing_widens_the_forecast_band(monkeypatch):
    with captured_downloads(monkeypatch) as files:
        at = new_app({"file": REFERENCE}).run()
        no_exception(at)
        assert at.number_input(key="value_dispersion").value == 0.0
        steady = band(at)
        files.clear()
        at.number_input(key="value_dispersion").set_value(0.3).run()
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        scenario = at.session_state["last_valid"]
        text = next(data for name, data in files.items() if name.endswith(".toml"))
    assert scenario.deal_value_dispersion == 0.3
    assert scenario_from_toml(text.decode() if isinstance(text, bytes) else text) == scenario
    swinging = band(at)
    assert swinging > 1.2 * steady, (steady, swinging)
    # The page's band is the library's, at the runs and seed the page uses.
    revenue = simulate(scenario, runs=2000, seed=0).outcomes.revenue
    p10, p90 = np.percentile(revenue, [10, 90])
    assert swinging == pytest.approx(p90 - p10, rel=0.05)

"""Every shipped scenario loads, round-trips through TOML and runs on both engines."""

from __future__ import annotations

import pytest

from sim import load_scenario, simulate
from sim.scenario import scenario_from_toml, scenario_to_toml
from tests.conftest import ENGINES, SCENARIOS_DIR

FILES = sorted(SCENARIOS_DIR.glob("*.toml"))


def test_there_are_scenarios():
    names = {f.name for f in FILES}
    assert {"reference_quarter.toml", "outbound_sdr.toml", "ae_year.toml"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_loads_and_round_trips(path):
    scenario = load_scenario(path)
    assert scenario_from_toml(scenario_to_toml(scenario)) == scenario
    assert path.read_text().lstrip().startswith("#"), "each scenario says where its numbers come from"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_runs(path, engine):
    result = simulate(load_scenario(path), runs=200 if engine == "vectorized" else 40, seed=0, engine=engine)
    summary = result.summary()
    assert 0 <= summary["p_hit"] <= 1
    assert summary["revenue"]["mean"] > 0
    assert len(summary["stages"]) == len(result.scenario.stages)


def test_reference_quarter_is_the_issue_scenario():
    s = load_scenario(SCENARIOS_DIR / "reference_quarter.toml")
    assert s.horizon == 91 and s.inflow.per_week == 16 and s.inflow.process == "poisson"
    assert s.quota.revenue == 1_200_000
    assert [(st.name, st.conversion.mean(), st.conversion.concentration, st.open) for st in s.stages] == [
        ("Discovery", 0.65, 50, 20),
        ("Proposal", 0.50, 50, 12),
        ("Negotiation", 0.75, 50, 6),
    ]
    moments = [m for st in s.stages for m in (st.duration.mean(), st.duration.std())]
    assert moments == pytest.approx([7, 4, 14, 8, 10, 6])
    assert (s.deal_value.mean(), s.deal_value.std()) == pytest.approx((25_000, 15_000))

"""Every shipped scenario loads, round-trips through TOML and runs on both engines.

The shipped numbers are also checked against where they come from (DOMAIN.md): the
outbound SDR ratios, the $5M / $100,000 / 25% account-executive year and the reference
quarter with its open pipeline.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import Scenario, load_scenario, simulate
from sim.model.average_math import activity_per_stage, deterministic_weekly_opportunities
from sim.model.scenario import scenario_from_toml, scenario_to_toml
from tests.conftest import ENGINES, SCENARIOS_DIR

FILES = sorted(SCENARIOS_DIR.glob("*.toml"))
IDS = [f.stem for f in FILES]


def test_the_issue_scenarios_are_shipped():
    assert {"reference_quarter.toml", "outbound_sdr.toml", "ae_year.toml"} <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_loads_and_round_trips(path, tmp_path):
    scenario = load_scenario(path)
    assert isinstance(scenario, Scenario)
    text = scenario_to_toml(scenario)
    assert scenario_from_toml(text) == scenario
    # Written to a file and read back, too; and writing is stable (a fixed point).
    copy = tmp_path / path.name
    copy.write_text(text)
    assert load_scenario(copy) == scenario
    assert scenario_to_toml(load_scenario(copy)) == text


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_each_scenario_says_where_its_numbers_come_from(path):
    assert path.read_text().lstrip().startswith("#")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_runs(path, engine):
    scenario = load_scenario(path)
    result = simulate(scenario, runs=200, seed=0, engine=engine)
    assert result.runs == 200 and result.engine == engine
    # A scenario with segments: each segment is a funnel with its own stages, the total their sum.
    funnels = result.segment_totals() if scenario.segments else [result]
    for part in funnels:
        o = part.outcomes
        assert (o.won_deals >= 0).all() and (o.revenue >= 0).all()
        assert (o.converted <= o.entered).all()
        np.testing.assert_array_equal(o.won_deals, o.converted[:, -1])
        assert [s["name"] for s in part.summary()["stages"]] == part.scenario.stage_names
    np.testing.assert_array_equal(result.outcomes.won_deals, sum(p.outcomes.won_deals for p in funnels))
    summary = result.summary()
    low, high = summary["p_hit_ci"]
    assert 0 <= low <= summary["p_hit"] <= high <= 1
    assert summary["revenue"]["mean"] > 0 and summary["deals"]["mean"] > 0


def test_reference_quarter_is_the_issue_scenario():
    s = load_scenario(SCENARIOS_DIR / "reference_quarter.toml")
    assert s.horizon == 91 and s.inflow.per_week == 16 and s.inflow.process == "poisson"
    assert s.quota.unit == "revenue" and s.quota.target == 1_200_000
    assert [(st.name, st.conversion.mean(), st.conversion.concentration, st.open) for st in s.stages] == [
        ("Discovery", 0.65, 50, 20),
        ("Proposal", 0.50, 50, 12),
        ("Negotiation", 0.75, 50, 6),
    ]
    moments = [m for st in s.stages for m in (st.duration.mean(), st.duration.std())]
    assert moments == pytest.approx([7, 4, 14, 8, 10, 6])
    assert (s.deal_value.mean(), s.deal_value.std()) == pytest.approx((25_000, 15_000))


def test_outbound_sdr_is_the_domain_funnel():
    # DOMAIN.md: 100 activities -> 40 conversations -> 4.4 qualified -> 3.2 pipeline opportunities.
    s = load_scenario(SCENARIOS_DIR / "outbound_sdr.toml")
    assert [st.conversion for st in s.stages] == [0.40, 0.11, 0.73]
    volumes = [row["per_week"] for row in activity_per_stage(s, 100)]
    assert volumes == pytest.approx([100, 40, 4.4, 3.212])
    assert s.quota.unit == "deals"
    assert s.inflow.per_week == 250  # 50 calls a day, 5 days a week


def test_ae_year_is_the_magic_number_example():
    # DOMAIN.md: $5M at $100,000 a deal is 50 wins; at 25% that is 200 opportunities a year, ~3.85 a week.
    s = load_scenario(SCENARIOS_DIR / "ae_year.toml")
    assert s.quota.target == 5_000_000 and s.deal_value.mean() == pytest.approx(100_000)
    assert [st.conversion for st in s.stages] == [0.25]
    assert s.horizon == 364
    assert deterministic_weekly_opportunities(s) == pytest.approx(200 / 52)
    assert s.inflow.per_week == pytest.approx(200 / 52, rel=1e-9)
    assert math.isclose(s.expected_arrivals, 200, rel_tol=1e-9)

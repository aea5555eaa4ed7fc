"""Every example plan shipped under examples/ loads and runs (at few runs: the point is that it works)."""

from __future__ import annotations

import pytest

from sim.plan.execute import execute
from sim.plan.spec import load_plan
from tests.conftest import ROOT

PLANS = sorted((ROOT / "examples").glob("*plan*.toml"))


def test_there_are_example_plans():
    assert {p.name for p in PLANS} >= {"team_plan.toml", "segments_plan.toml", "organisation_plan.toml"}


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.name)
def test_an_example_plan_loads_and_runs(path):
    plan = load_plan(path).with_settings(runs=50)
    table, simulated = execute(plan, workers=0)
    assert simulated == len(plan.cells) == len(table) >= 5
    assert table["p_hit"].between(0, 1).all() and (table["cost"] > 0).all()

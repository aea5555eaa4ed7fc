"""Shared helpers: small scenario documents and the shipped scenario files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sim.scenario import Scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS_DIR = ROOT / "scenarios"
ENGINES = ("vectorized", "simpy")

BASE_DOCUMENT = {
    "name": "test funnel",
    "horizon_days": 70,
    "quota": {"revenue": 100_000},
    "inflow": {"per_week": 7, "process": "poisson"},
    "deal_value": {"dist": "lognormal", "mean": 10_000, "sd": 4_000},
    "stages": [
        {"name": "Discovery", "conversion": 0.6, "duration": {"dist": "lognormal", "mean": 7, "sd": 4}},
        {"name": "Proposal", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 10, "sd": 5}},
    ],
}


def document(**changes) -> dict:
    """A deep copy of the base scenario document with top-level keys replaced."""
    out = copy.deepcopy(BASE_DOCUMENT)
    out.update(copy.deepcopy(changes))
    return out


def make_scenario(**changes) -> Scenario:
    """A validated scenario: the base document with top-level keys replaced."""
    return scenario_from_dict(document(**changes))


@pytest.fixture
def scenario() -> Scenario:
    return make_scenario()

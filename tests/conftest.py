"""Shared helpers: small scenario documents, the shipped scenario files, z * SE checks.

Statistical checks across the suite use ``Z = 4``: a two-sided false alarm about once
in 16,000 checks. Seeds are fixed, so every run of the suite draws the same numbers.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import tomli_w

from sim.model.scenario import Scenario, scenario_from_dict
from sim.runner import memo

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS_DIR = ROOT / "scenarios"
ENGINES = ("vectorized", "simpy")
RUNS = {"vectorized": 20_000, "simpy": 3_000}
"""Replications for the statistical checks: the SimPy engine is the slower reference."""
Z = 4.0

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


def fixed_stages(*pairs: tuple[float, float], open_deals: tuple[int, ...] = ()) -> list[dict]:
    """Stages ``S0, S1, ...`` from ``(conversion, fixed days)`` pairs, with optional open deals."""
    stages = [{"name": f"S{i}", "conversion": p, "duration": d} for i, (p, d) in enumerate(pairs)]
    for stage, n in zip(stages, open_deals, strict=False):
        stage["open"] = n
    return stages


def write_toml(directory: Path, doc: dict, name: str = "scenario.toml") -> Path:
    """Write a scenario document as a TOML file and return its path."""
    path = directory / name
    path.write_text(tomli_w.dumps(doc))
    return path


def within(estimate: float, exact: float, se: float, z: float = Z) -> None:
    """Assert ``|estimate - exact| <= z * se``, with a message that shows all three."""
    assert math.isfinite(estimate), estimate
    assert abs(estimate - exact) <= z * se, f"estimate {estimate:.6g} vs exact {exact:.6g}: SE {se:.4g}, z {z}"


def within_proportion(hits, exact: float, z: float = Z) -> None:
    """A share of replications against its exact probability, SE = sqrt(p (1 - p) / n)."""
    n = len(hits)
    # At p = 0 or 1 the SE is 0 and the share must then be exact.
    within(float(hits.mean()), exact, math.sqrt(exact * (1 - exact) / n) + 1e-12, z)


@pytest.fixture(autouse=True)
def runner_memory_off():
    """Every test starts and ends with the runner remembering nothing (the app turns it on for its server):
    a remembered answer would make a comparison of two runs compare one with itself."""
    memo.remember(0)
    yield
    memo.remember(0)


@pytest.fixture
def scenario() -> Scenario:
    return make_scenario()


@pytest.fixture(name="make_scenario")
def make_scenario_fixture():
    """The :func:`make_scenario` builder, for tests that prefer a fixture."""
    return make_scenario

"""The vectorised engine's own guarantees: bounded memory, chunking that changes nothing."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from sim import simulate, vectorized
from tests.conftest import ROOT, make_scenario

SCENARIO = make_scenario(
    inflow={"per_week": 40},
    stages=[
        {
            "name": "A",
            "conversion": {"mean": 0.6, "concentration": 25},
            "duration": {"dist": "lognormal", "mean": 6, "sd": 3},
            "open": 30,
        },
        {
            "name": "B",
            "conversion": 0.5,
            "duration": {"dist": "triangular", "low": 2, "mode": 5, "high": 12},
            "open": 9,
        },
    ],
)


def test_chunking_changes_nothing(monkeypatch):
    default = simulate(SCENARIO, runs=1_500, seed=4).outcomes
    monkeypatch.setattr(vectorized, "MAX_CELLS", 4 * vectorized.BLOCK)  # four rows at a time
    chunked = simulate(SCENARIO, runs=1_500, seed=4).outcomes
    for field in fields(default):
        np.testing.assert_array_equal(getattr(default, field.name), getattr(chunked, field.name))


@pytest.mark.parametrize("runs", [1, 7, vectorized.BLOCK + 3])
def test_shapes_and_invariants(runs):
    o = simulate(SCENARIO, runs=runs, seed=1).outcomes
    assert len(o) == runs and o.weekly_revenue.shape == (runs, SCENARIO.n_weeks)
    assert (o.converted <= o.entered).all()
    assert (o.entered[:, 1] == o.converted[:, 0] + 9).all()  # stage B: converts from A, plus its open deals
    assert (o.won_deals == o.converted[:, -1]).all()
    np.testing.assert_allclose(o.weekly_revenue[:, -1], o.revenue)


def test_no_inflow_and_fixed_inflow():
    quiet = simulate(
        SCENARIO.model_copy(update={"inflow": SCENARIO.inflow.model_copy(update={"per_week": 0})}), runs=100, seed=0
    ).outcomes
    assert (quiet.entered[:, 0] == 30).all()
    fixed = SCENARIO.model_copy(update={"inflow": SCENARIO.inflow.model_copy(update={"process": "fixed"})})
    o = simulate(fixed, runs=100, seed=0).outcomes
    assert (o.entered[:, 0] == 30 + int(40 / 7 * SCENARIO.horizon)).all()


@pytest.mark.slow
def test_a_million_runs_stay_under_2_gib():
    code = (
        "import resource; from sim import load_scenario, simulate; "
        "r = simulate(load_scenario('scenarios/reference_quarter.toml'), runs=1_000_000, seed=0); "
        "print(r.runs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    runs, peak_kib = map(int, done.stdout.split())
    assert runs == 1_000_000
    assert peak_kib < 2 * 2**20, f"peak RSS {peak_kib / 2**20:.2f} GiB"

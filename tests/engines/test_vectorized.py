"""The vectorised engine's own guarantees: bounded memory, chunking that changes nothing,
and the shapes and bookkeeping of its results at the edges (one run, runs that are not
a multiple of the block, no inflow, evenly spaced inflow).

Agreement with the SimPy engine and with closed forms is tested elsewhere; here every
check is exact, because the quantities are counts or the same numbers computed twice.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import fields
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sim import simulate
from sim.engines import vectorized
from sim.engines.outcomes import Outcomes
from sim.model.scenario import Scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]
GIB_IN_KIB = 2**20


def scenario(stages: list[dict], *, per_week: float = 40.0, process: str = "poisson", horizon_days: float = 70):
    return scenario_from_dict(
        {
            "name": "vectorised test",
            "horizon_days": horizon_days,
            "quota": {"revenue": 100_000},
            "inflow": {"per_week": per_week, "process": process},
            "deal_value": {"dist": "lognormal", "mean": 10_000, "sd": 4_000},
            "stages": stages,
        }
    )


STAGES = [
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
    {"name": "C", "conversion": 0.8, "duration": {"dist": "gamma", "mean": 4, "sd": 2}, "open": 4},
]
FUNNEL = scenario(STAGES)
OPEN = np.array([s["open"] for s in STAGES])


def assert_identical(a: Outcomes, b: Outcomes) -> None:
    for field in fields(a):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


def assert_bookkeeping(s: Scenario, o: Outcomes, runs: int) -> None:
    """Shapes, and the counts that must add up in every replication."""
    n_stages, opened = len(s.stages), np.array([stage.open for stage in s.stages])
    assert len(o) == runs
    assert o.won_deals.shape == o.revenue.shape == (runs,)
    assert o.weekly_revenue.shape == (runs, s.n_weeks)
    assert o.entered.shape == o.converted.shape == o.rates.shape == (runs, n_stages)
    assert np.issubdtype(o.won_deals.dtype, np.integer) and np.issubdtype(o.entered.dtype, np.integer)
    assert (o.converted >= 0).all() and (o.converted <= o.entered).all()
    assert (o.entered[:, 0] >= opened[0]).all()
    # A stage's entries are its open deals plus the previous stage's conversions.
    np.testing.assert_array_equal(o.entered[:, 1:], o.converted[:, :-1] + opened[1:])
    np.testing.assert_array_equal(o.won_deals, o.converted[:, -1])
    assert (o.won_deals <= o.entered[:, -1]).all()
    assert (o.revenue >= 0).all() and (o.revenue[o.won_deals == 0] == 0).all()
    assert (np.diff(o.weekly_revenue, axis=1) >= 0).all()
    # The last week ends at the horizon: the same wins, summed in another order.
    np.testing.assert_allclose(o.weekly_revenue[:, -1], o.revenue, rtol=1e-12, atol=0)
    assert ((o.rates >= 0) & (o.rates <= 1)).all()
    for j, stage in enumerate(s.stages):
        if isinstance(stage.conversion, float):
            assert (o.rates[:, j] == stage.conversion).all()


# --- bounded memory ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_runs_of_the_reference_quarter_stay_under_2_gib():
    code = (
        "import resource\n"
        "from sim import load_scenario, simulate\n"
        "r = simulate(load_scenario('scenarios/reference_quarter.toml'), runs=1_000_000, seed=0, engine='vectorized')\n"
        "print(r.runs, r.engine, r.p_hit, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    runs, engine, p_hit, peak_kib = done.stdout.split()
    print(f"1,000,000 runs in {elapsed:.1f} s, peak RSS {int(peak_kib) / GIB_IN_KIB:.2f} GiB")
    assert int(runs) == 1_000_000 and engine == "vectorized" and 0 < float(p_hit) < 1
    assert int(peak_kib) < 2 * GIB_IN_KIB, f"peak RSS {int(peak_kib) / GIB_IN_KIB:.2f} GiB (ru_maxrss in KiB)"


# --- chunking changes nothing --------------------------------------------------------------


@pytest.mark.parametrize("process", ["poisson", "fixed"])
@pytest.mark.parametrize("max_cells", [4096, vectorized.BLOCK], ids=["8 rows", "1 row"])
def test_chunking_changes_nothing(monkeypatch, max_cells, process):
    # 30 open deals and about 400 arrivals per replication: with 8 rows (or 1) per chunk
    # both the open pipeline and the inflow are cut into many chunks and top-ups.
    s = scenario(STAGES, process=process)
    runs = 1_100  # three blocks, the last one partial
    default = simulate(s, runs=runs, seed=4, engine="vectorized").outcomes
    monkeypatch.setattr(vectorized, "MAX_CELLS", max_cells)
    chunked = simulate(s, runs=runs, seed=4, engine="vectorized").outcomes
    assert_identical(default, chunked)
    assert default.won_deals.sum() > 0


# --- shapes and invariants ------------------------------------------------------------------


@pytest.fixture(scope="module")
def many() -> Outcomes:
    return simulate(FUNNEL, runs=1_100, seed=1, engine="vectorized").outcomes


@pytest.mark.parametrize("runs", [1, 7, vectorized.BLOCK - 1, vectorized.BLOCK + 1, 1_100])
def test_shapes_and_bookkeeping_for_any_number_of_runs(runs, many):
    o = simulate(FUNNEL, runs=runs, seed=1, engine="vectorized").outcomes
    assert_bookkeeping(FUNNEL, o, runs)
    assert_identical(o, many.head(runs))  # replication i does not depend on how many are run


def test_no_inflow_leaves_only_the_open_pipeline():
    quiet = scenario(STAGES, per_week=0.0)
    o = simulate(quiet, runs=600, seed=2, engine="vectorized").outcomes
    assert_bookkeeping(quiet, o, 600)
    assert (o.entered[:, 0] == OPEN[0]).all()
    # Every deal converts, and all of them in time: the open deals are exactly the wins.
    certain = scenario(
        [
            {"name": "A", "conversion": 1.0, "duration": 3.0, "open": 4},
            {"name": "B", "conversion": 1.0, "duration": 5.0, "open": 2},
        ],
        per_week=0.0,
        horizon_days=30,
    )
    o = simulate(certain, runs=513, seed=2, engine="vectorized").outcomes
    assert_bookkeeping(certain, o, 513)
    assert (o.entered == [4, 6]).all() and (o.won_deals == 6).all() and (o.revenue > 0).all()
    # B's two open deals are won at day 5 (week 1), A's four at day 3 + 5 = 8 (week 2).
    assert ((0 < o.weekly_revenue[:, 0]) & (o.weekly_revenue[:, 0] < o.revenue)).all()
    assert (o.weekly_revenue[:, 1:] == o.weekly_revenue[:, 1:2]).all()


@pytest.mark.parametrize("per_week", [16, 10.5, 17])
def test_fixed_inflow_is_evenly_spaced(per_week):
    # Arrivals at k * 7 / per_week days, k = 1, 2, ...: floor(per_week * H / 7) of them by
    # the horizon H (inclusive), in every replication. With a certain conversion and a
    # fixed 3-day stage, arrival k is won if k * 7 / per_week + 3 <= H.
    horizon = 91
    s = scenario(
        [{"name": "Only", "conversion": 1.0, "duration": 3.0}],
        per_week=per_week,
        process="fixed",
        horizon_days=horizon,
    )
    rate = Fraction(per_week) / 7
    arrivals, won = math.floor(rate * horizon), math.floor(rate * (horizon - 3))
    o = simulate(s, runs=515, seed=3, engine="vectorized").outcomes
    assert_bookkeeping(s, o, 515)
    assert (o.entered[:, 0] == arrivals).all(), f"{sorted(set(o.entered[:, 0]))} arrivals, expected {arrivals}"
    assert (o.won_deals == won).all()


def test_fixed_inflow_with_open_deals_and_uncertain_rates():
    s = scenario(STAGES, process="fixed")
    o = simulate(s, runs=700, seed=5, engine="vectorized").outcomes
    assert_bookkeeping(s, o, 700)
    # 40 a week for 70 days: exactly 400 arrivals (the last one at day 70), plus 30 open.
    assert (o.entered[:, 0] == 400 + OPEN[0]).all()

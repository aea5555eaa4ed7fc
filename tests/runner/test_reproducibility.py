"""Same seed, same numbers: on one worker or many, and however many runs are asked for.

Every check compares whole per-replication arrays for exact equality (no tolerance):
``SeedSequence(seed).spawn(runs)`` gives replication i its own stream, so nothing
about the other replications, the number of runs or the number of workers can move it.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from sim import simulate
from sim.engines.outcomes import Outcomes
from tests.conftest import ENGINES, make_scenario

# Every source of randomness at once: Poisson arrivals, Beta and fixed rates, open
# deals in two stages, lognormal and gamma durations, lognormal deal values.
SCENARIO = make_scenario(
    stages=[
        {
            "name": "A",
            "conversion": {"mean": 0.6, "concentration": 30},
            "duration": {"dist": "lognormal", "mean": 5, "sd": 3},
            "open": 6,
        },
        {"name": "B", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 8, "sd": 4}, "open": 3},
    ]
)


def assert_same(a: Outcomes, b: Outcomes) -> None:
    assert len(a) == len(b)
    for field in fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert x.dtype == y.dtype, field.name
        np.testing.assert_array_equal(x, y, err_msg=field.name)


@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_same_numbers(engine):
    a = simulate(SCENARIO, runs=300, seed=5, engine=engine)
    b = simulate(SCENARIO, runs=300, seed=5, engine=engine)
    assert_same(a.outcomes, b.outcomes)
    assert a.summary() == b.summary()
    assert a.outcomes.won_deals.sum() > 0  # the comparison is not between empty runs


@pytest.mark.parametrize("engine", ENGINES)
def test_one_worker_or_two(engine):
    # Several tasks for each worker: 5 blocks of 512 (vectorised), 3 tasks of 100 (SimPy).
    runs = 2_500 if engine == "vectorized" else 250
    assert_same(
        simulate(SCENARIO, runs=runs, seed=3, jobs=1, engine=engine).outcomes,
        simulate(SCENARIO, runs=runs, seed=3, jobs=2, engine=engine).outcomes,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_replication_i_does_not_change_when_runs_grow(engine):
    small = simulate(SCENARIO, runs=300, seed=9, engine=engine).outcomes
    large = simulate(SCENARIO, runs=700, seed=9, engine=engine).outcomes
    assert_same(small, large.head(300))


def test_runs_that_span_blocks_are_the_same_replications():
    # 513 runs need a second vectorised block; its first replication is replication 512
    # of any longer run.
    a = simulate(SCENARIO, runs=513, seed=2).outcomes
    b = simulate(SCENARIO, runs=1_100, seed=2).outcomes
    assert_same(a, b.head(513))


@pytest.mark.parametrize("engine", ENGINES)
def test_different_seeds_differ(engine):
    a = simulate(SCENARIO, runs=200, seed=1, engine=engine).outcomes
    b = simulate(SCENARIO, runs=200, seed=2, engine=engine).outcomes
    assert not np.array_equal(a.revenue, b.revenue)
    assert not np.array_equal(a.rates, b.rates)


@pytest.mark.parametrize("engine", ENGINES)
def test_replications_differ_from_each_other(engine):
    # One stream per replication, not one stream reused: the rows are not copies.
    o = simulate(SCENARIO, runs=200, seed=4, engine=engine).outcomes
    assert len(np.unique(o.revenue)) > 150
    assert len(np.unique(o.rates[:, 0])) == 200


def test_engine_choice_is_recorded_and_auto_is_vectorised():
    assert simulate(SCENARIO, runs=20, seed=0, engine="simpy").engine == "simpy"
    auto = simulate(SCENARIO, runs=20, seed=0)
    assert auto.engine == "vectorized"
    assert_same(auto.outcomes, simulate(SCENARIO, runs=20, seed=0, engine="vectorized").outcomes)


def test_table_records_the_seed():
    table = simulate(SCENARIO, runs=50, seed=11).table()
    assert len(table) == 50
    assert (table["seed"] == 11).all()
    assert list(table["replication"]) == list(range(50))
    assert {"won_deals", "revenue", "hit", "entered[A]", "converted[B]", "rate[A]"} <= set(table.columns)

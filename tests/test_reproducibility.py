"""Same seed, same numbers: on one worker or many, and however many runs are asked for."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from sim import simulate
from tests.conftest import ENGINES, make_scenario

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


def _same(a, b) -> None:
    for field in fields(a):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_same_numbers(engine):
    _same(
        simulate(SCENARIO, runs=300, seed=5, engine=engine).outcomes,
        simulate(SCENARIO, runs=300, seed=5, engine=engine).outcomes,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_one_worker_or_two(engine):
    runs = 2_500 if engine == "vectorized" else 250  # several tasks for each worker
    _same(
        simulate(SCENARIO, runs=runs, seed=3, jobs=1, engine=engine).outcomes,
        simulate(SCENARIO, runs=runs, seed=3, jobs=2, engine=engine).outcomes,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_replication_i_does_not_change_when_runs_grow(engine):
    small = simulate(SCENARIO, runs=300, seed=9, engine=engine).outcomes
    large = simulate(SCENARIO, runs=1_300, seed=9, engine=engine).outcomes
    _same(small, large.head(300))


@pytest.mark.parametrize("engine", ENGINES)
def test_different_seeds_differ(engine):
    a = simulate(SCENARIO, runs=200, seed=1, engine=engine).outcomes.revenue
    b = simulate(SCENARIO, runs=200, seed=2, engine=engine).outcomes.revenue
    assert not np.array_equal(a, b)


def test_table_records_the_seed():
    table = simulate(SCENARIO, runs=50, seed=11).table()
    assert len(table) == 50
    assert (table["seed"] == 11).all()
    assert list(table["replication"]) == list(range(50))
    assert {"won_deals", "revenue", "hit", "entered[A]", "converted[B]", "rate[A]"} <= set(table.columns)

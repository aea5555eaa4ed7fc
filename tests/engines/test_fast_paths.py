"""The engines' shortcuts give exactly the numbers of the plain way, to the bit.

Drawing in blocks of any size, scipy's draws without scipy's checks, a whole task's
Beta rates in one lookup, and SimPy wins started at day 0 instead of on arrival: each
is compared here with the straightforward version, with exact equality (no tolerance).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from pydantic import TypeAdapter

from sim import load_scenario, simulate
from sim.engines import simpy_engine as engine
from sim.engines.draws import unit_rate_cap
from sim.engines.outcomes import Outcomes
from sim.engines.simpy_engine import DealDraws, FunnelModel, arrival_times, replication_rates
from sim.engines.streams import root_children, stream
from sim.engines.tables import conversion_rates
from sim.model.distributions import Distribution, Lognormal
from tests.conftest import SCENARIOS_DIR, make_scenario
from tests.engines.test_stage_behaviour import ALL_KEYS  # follow-ups, no-shows and stalls


def assert_identical(a: Outcomes, b: Outcomes) -> None:
    for field in fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert x.dtype == y.dtype and x.shape == y.shape, field.name
        np.testing.assert_array_equal(x, y, err_msg=field.name)


@pytest.mark.parametrize(("mean", "sd"), [(25_000, 15_000), (7, 4), (1e-3, 0.5), (3, 3e-5), (100, 1e5)])
@pytest.mark.parametrize("size", [1, 128, (7, 5)])
def test_lognormal_draws_are_scipys(mean, sd, size):
    dist = Lognormal(dist="lognormal", mean=mean, sd=sd)
    fast = dist.rvs(size, random_state=np.random.default_rng(3))
    plain = dist.scipy().rvs(size=size, random_state=np.random.default_rng(3))
    assert fast.dtype == plain.dtype and fast.shape == plain.shape
    np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("scenario", [make_scenario(), ALL_KEYS], ids=["basic", "follow-ups, no-shows, stalls"])
def test_deal_paths_do_not_depend_on_the_block_size(scenario):
    rates = np.array([0.6, 0.45, 0.7])[: len(scenario.stages)]

    def draws(block: int) -> DealDraws:
        effects = None
        if scenario is ALL_KEYS:
            effects = (np.random.default_rng(5), np.random.default_rng(6))
        return DealDraws(scenario, rates, np.random.default_rng(4), effects, block=block)

    whole = draws(1_000).take(300)
    small = draws(7)
    pieces = np.concatenate([small.take(5), small.take(0), small.take(40), small.take(255)])
    np.testing.assert_array_equal(whole, pieces)
    one_by_one = draws(3)
    rows = np.array([one_by_one.next() for _ in range(300)], dtype=float)  # None (lost) becomes NaN
    np.testing.assert_array_equal(whole, rows)
    assert np.isnan(whole).any() and not np.isnan(whole).all()


@pytest.mark.parametrize("process", ["poisson", "fixed"])
def test_arrival_days_do_not_depend_on_the_block_size(monkeypatch, process):
    scenario = make_scenario(inflow={"per_week": 30, "process": process})
    default = arrival_times(scenario, np.random.default_rng(8))
    monkeypatch.setattr(engine, "DRAW_BLOCK", 3)
    monkeypatch.setattr(engine, "planned_arrivals", lambda cap: 1)  # top-ups of 3 from the start
    np.testing.assert_array_equal(default, arrival_times(scenario, np.random.default_rng(8)))
    # The definition: cumulative unit-rate gaps up to the horizon, turned into days.
    gaps = np.ones(1_000) if process == "fixed" else np.random.default_rng(8).standard_exponential(1_000)
    units = np.cumsum(gaps)
    np.testing.assert_array_equal(default, units[units <= unit_rate_cap(scenario)] / (30 / 7.0))


def test_wins_started_at_day_zero_land_exactly_on_their_win_days():
    # Every winning deal starts at day 0 and waits its win day out: the clock reaches
    # 0 + win_day, the exact sum of its arrival and stage days (as in the vectorised engine).
    model = FunnelModel(make_scenario(), root_children(4, 0, 1)[0])
    model.run()
    arrivals = model._arrivals
    paths = DealDraws(model.scenario, np.array(model.rates), stream(root_children(4, 0, 1)[0], 2), block=len(arrivals))
    _, expected = model.follow(0, arrivals, paths.take(len(arrivals)))
    assert sorted(day for day, _ in model.wins) == sorted(expected.tolist())


def test_a_tasks_rates_are_each_replications_own():
    scenario = load_scenario(SCENARIOS_DIR / "reference_quarter.toml")
    seeds = root_children(3, 0, 40)
    together = replication_rates(scenario, seeds)
    alone = [conversion_rates(scenario, stream(seed, 0).random((3, 1)))[:, 0] for seed in root_children(3, 0, 40)]
    np.testing.assert_array_equal(together, np.array(alone))
    assert FunnelModel(scenario, root_children(3, 5, 6)[0]).rates == together[5].tolist()  # drawn by the model


@pytest.mark.parametrize("name", ["reference_quarter", "capacity_quarter"])
def test_the_simpy_engine_does_not_depend_on_its_block_sizes(monkeypatch, name):
    scenario = load_scenario(SCENARIOS_DIR / f"{name}.toml")
    default = simulate(scenario, runs=12, seed=6, engine="simpy").outcomes
    monkeypatch.setattr(engine, "DRAW_BLOCK", 2)  # values, lost days and arrival top-ups two at a time
    monkeypatch.setattr(engine, "planned_arrivals", lambda cap: 1)
    assert_identical(default, simulate(scenario, runs=12, seed=6, engine="simpy").outcomes)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "gamma", "mean": 7, "sd": 4},
        {"dist": "gamma", "mean": 1e-3, "sd": 0.5},
        {"dist": "gamma", "mean": 30, "sd": 3},
        {"dist": "triangular", "low": 3, "mode": 7, "high": 21},
        {"dist": "triangular", "low": 0, "mode": 0, "high": 5},
        {"dist": "triangular", "low": 2, "mode": 9, "high": 9},
    ],
    ids=lambda spec: "-".join(str(v) for v in spec.values()),
)
def test_closed_form_quantiles_are_scipys(spec):
    dist = TypeAdapter(Distribution).validate_python(spec)
    q = np.concatenate(
        [np.random.default_rng(0).random(100_000), [0.0, 1.0, 2.0**-53, 1 - 2.0**-53, -0.1, 1.1, np.nan]]
    )
    np.testing.assert_array_equal(dist.ppf(q), dist.scipy().ppf(q))
    assert dist.ppf(0.3) == dist.scipy().ppf(0.3)

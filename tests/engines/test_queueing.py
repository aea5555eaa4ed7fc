"""The vectorised queues (:mod:`sim.engines.queues`) against the SimPy engine, and their reproducibility.

The two engines draw from different streams, so they agree in distribution, not run for
run: every per-run figure's mean must match within ``Z`` standard errors of the
difference of two independent means, and the revenue distributions must pass a
two-sample KS test. Queueing theory (Erlang C and B) and the exact paths with fixed
durations are checked for both engines in :mod:`tests.engines.test_capacity`. Scenarios
simulated together (a scenario and its levers) must give exactly their own numbers.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import numpy as np
import pytest
from scipy import stats

from sim import simulate
from sim.engines import queues as queueing
from sim.engines.streams import root_children
from sim.model.scenario import load_scenario, scenario_from_dict
from sim.questions.sensitivity import levers
from sim.runner import simulate_variants
from tests.conftest import ROOT, Z, document

ALPHA = 0.001


def behaviour_funnel() -> dict:
    """Two limited stages around a free one, with follow-ups, no-shows, stalls and lost durations."""
    return document(
        horizon_days=91,
        quota={"revenue": 300_000},
        inflow={"per_week": 12},
        stages=[
            {
                "name": "Discovery",
                "conversion": {"mean": 0.6, "concentration": 40},
                "duration": {"dist": "lognormal", "mean": 6, "sd": 3},
                "lost_duration": {"dist": "exponential", "mean": 4},
                "open": 10,
                "per_rep": 4,
                "touches_needed": {"dist": "empirical", "values": [1, 2, 3, 5]},
                "max_touches": 3,
                "touch_interval_days": 2,
            },
            {"name": "Demo", "conversion": 0.7, "duration": {"dist": "gamma", "mean": 5, "sd": 2}, "open": 4},
            {
                "name": "Proposal",
                "conversion": 0.5,
                "duration": {"dist": "triangular", "low": 4, "mode": 8, "high": 20},
                "per_rep": 3,
                "no_show": 0.2,
                "reschedule": 0.5,
                "lost_after_reschedule": 0.5,
                "stale_after_days": 18,
            },
        ],
        capacity={"reps": 2, "max_wait_days": 10},
        deal_value={"dist": "lognormal", "mean": 20_000, "sd": 8_000},
    )


SCENARIOS = {
    "capacity_quarter": lambda: load_scenario(ROOT / "scenarios" / "capacity_quarter.toml"),
    "behaviour_funnel": lambda: scenario_from_dict(behaviour_funnel()),
}


def per_run_figures(result) -> dict[str, np.ndarray]:
    """Every per-run figure worth comparing, as (runs, k) arrays."""
    o = result.outcomes
    return {
        "hit": result.hit[:, None].astype(float),
        "won_deals": o.won_deals[:, None],
        "revenue": o.revenue[:, None],
        "entered": o.entered,
        "converted": o.converted,
        "served": o.served,
        "queued": o.queued,
        "neglected": o.neglected,
        "wait_days": o.wait_days,
        "busy_days": o.busy_days,
        "mean_queue": o.mean_queue,
        "queue at the horizon": o.queue_by_week[:, :, -1],
        "busy in week 5": o.busy_by_week[:, :, 4],
        "weekly revenue": o.weekly_revenue[:, ::4],
    }


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_vectorised_queues_agree_with_the_simpy_engine(name):
    scenario = SCENARIOS[name]()
    fast = simulate(scenario, runs=4_000, seed=11, engine="vectorized")
    slow = simulate(scenario, runs=1_000, seed=12, engine="simpy", jobs=2)
    assert fast.engine == "vectorized" and slow.engine == "simpy"
    a, b = per_run_figures(fast), per_run_figures(slow)
    worst = 0.0
    for figure in a:
        x, y = np.asarray(a[figure], float), np.asarray(b[figure], float)
        se = np.sqrt(x.var(axis=0, ddof=1) / len(x) + y.var(axis=0, ddof=1) / len(y))
        gap = np.abs(x.mean(axis=0) - y.mean(axis=0))
        # A figure that never varies (a stage nobody waits in) must be equal outright.
        assert np.all((gap <= Z * se) | ((se == 0) & (gap == 0))), (figure, x.mean(axis=0), y.mean(axis=0), se)
        worst = max(worst, float(np.max(np.where(se > 0, gap / np.where(se > 0, se, 1), 0))))
    print(f"{name}: largest gap {worst:.2f} SE over {sum(v.shape[1] for v in a.values())} figures")
    assert stats.ks_2samp(fast.outcomes.revenue, slow.outcomes.revenue).pvalue > ALPHA
    # The reps really bind in both: deals wait, and some are lost to waiting.
    assert fast.outcomes.queued.sum() > 0 and fast.outcomes.neglected.sum() > 0


def test_the_same_seed_gives_the_same_numbers_on_any_number_of_workers():
    # Workers take different groups of blocks side by side (sim.engines.queues.blocks_at_once);
    # each block draws from its own seed and each replication is walked on its own.
    scenario = scenario_from_dict(behaviour_funnel())
    one = simulate(scenario, runs=1_300, seed=3, engine="vectorized", jobs=1).outcomes
    three = simulate(scenario, runs=1_300, seed=3, engine="vectorized", jobs=3).outcomes
    again = simulate(scenario, runs=1_300, seed=3, engine="vectorized", jobs=1).outcomes
    other = simulate(scenario, runs=1_300, seed=4, engine="vectorized", jobs=1).outcomes
    for field in fields(one):
        np.testing.assert_array_equal(getattr(one, field.name), getattr(three, field.name), err_msg=field.name)
        np.testing.assert_array_equal(getattr(one, field.name), getattr(again, field.name), err_msg=field.name)
    assert not np.array_equal(one.revenue, other.revenue)
    # The first runs of a longer simulation are the shorter one's.
    longer = simulate(scenario, runs=2_000, seed=3, engine="vectorized").outcomes
    np.testing.assert_array_equal(longer.head(1_300).revenue, one.revenue)


def test_a_replication_keeps_its_figures_consistent():
    o = simulate(scenario_from_dict(behaviour_funnel()), runs=600, seed=5, engine="vectorized").outcomes
    # Every deal that entered a limited stage got a slot, gave up, or still waits at the horizon.
    for j in (0, 2):
        np.testing.assert_array_equal(o.entered[:, j], o.served[:, j] + o.neglected[:, j] + o.queue_by_week[:, j, -1])
    assert (o.converted <= o.served).all() and (o.neglected <= o.queued).all()
    np.testing.assert_array_equal(o.entered[:, 1], o.served[:, 1])  # no limit: served on arrival
    assert (o.queued[:, 1] == 0).all() and (o.busy_days[:, 1] == 0).all()
    np.testing.assert_array_equal(o.entered[:, 1:], o.converted[:, :-1] + [4, 0])  # plus the open deals
    np.testing.assert_allclose(o.busy_by_week.sum(axis=2), o.busy_days)
    slots = np.array([8, 1, 6])  # 2 reps x per_rep; a week holds at most slots x 7 slot-days
    assert (o.busy_by_week <= 7.0 * slots[None, :, None] + 1e-9).all()
    assert o.won_deals.sum() == o.converted[:, -1].sum()
    assert math.isclose(o.revenue.sum(), o.weekly_revenue[:, -1].sum(), rel_tol=1e-12)


def test_slots_for_every_deal_are_the_unlimited_funnel_with_the_same_luck():
    # The app's "as many reps as the deals need" (ui.pages): more slots than deals never bind,
    # so nobody waits, and the funnel is the basic model's in distribution.
    doc = behaviour_funnel()
    for stage in doc["stages"]:
        stage["per_rep"] = 10**9
    unlimited = simulate(scenario_from_dict(doc), runs=4_000, seed=7, engine="vectorized")
    limited = simulate(scenario_from_dict(behaviour_funnel()), runs=4_000, seed=7, engine="vectorized")
    o = unlimited.outcomes
    assert o.queued.sum() == 0 and o.wait_days.sum() == 0 and o.neglected.sum() == 0
    np.testing.assert_array_equal(o.served, o.entered)
    # The same draws: the first stage's new and open deals are the same, only waiting differs.
    np.testing.assert_array_equal(o.entered[:, 0], limited.outcomes.entered[:, 0])
    assert unlimited.p_hit > limited.p_hit
    del doc["capacity"]
    for stage in doc["stages"]:
        del stage["per_rep"]
    basic = simulate(scenario_from_dict(doc), runs=4_000, seed=8, engine="vectorized")
    for x, y in ((o.won_deals, basic.outcomes.won_deals), (o.revenue, basic.outcomes.revenue)):
        se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
        assert abs(x.mean() - y.mean()) <= Z * se


@pytest.mark.parametrize("name", SCENARIOS)
def test_levers_simulated_together_are_each_exactly_its_own_simulation(name):
    # simulate_variants shares the draws, each stage's days and the walk through the
    # stages before a lever's (sim.engines.queues.simulate_block_variants): bit for bit the
    # numbers of separate runs, however many threads walk them.
    scenario = SCENARIOS[name]()
    variants = [scenario, *(variant for _, variant in levers(scenario, 0.2))]
    variants.append(variants[1].model_copy(update={"deal_value": variants[-1].deal_value}))  # two levers at once
    together = simulate_variants(variants, runs=1_100, seed=2, engine="vectorized")
    for variant, shared in zip(variants, together, strict=True):
        alone = simulate(variant, runs=1_100, seed=2, engine="vectorized")
        for field in fields(alone.outcomes):
            np.testing.assert_array_equal(
                getattr(shared.outcomes, field.name), getattr(alone.outcomes, field.name), err_msg=field.name
            )
    one_thread = queueing.simulate_block_variants(variants, root_children(2, 0, 2))
    with ThreadPoolExecutor(2) as threads:
        two_threads = queueing.simulate_block_variants(variants, root_children(2, 0, 2), threads)
    for a, b in zip(one_thread, two_threads, strict=True):
        for field in fields(a):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)
    # The levers really change the numbers (the comparison above is not between equals).
    assert len({shared.outcomes.revenue.tobytes() for shared in together}) == len(variants)

"""Shared rep capacity: ``[capacity]`` reps, per-stage ``per_rep`` slots, FIFO queues, patience.

A limited stage is a multi-server queue, so both engines (the SimPy model and the
vectorised queues of :mod:`sim.engines.queues`) are checked against queueing theory where a
closed form exists, and against exact paths with fixed durations:

* one stage, Poisson arrivals at rate lambda, exponential durations of mean 1/mu and c
  slots is M/M/c: the chance to wait is Erlang C, ``C(c, a)`` with ``a = lambda / mu``, the
  mean wait ``C / (c mu - lambda)``, the mean queue ``C a / (c - a)`` and the utilisation
  ``a / c``;
* with a vanishing ``max_wait_days`` a deal that finds every slot taken is lost at once:
  M/M/c/c, whose loss probability is Erlang B.

Each replication starts empty, so early deals wait less than in steady state. Rather
than cut a warm-up (the engine counts from day 0), the horizon is long: the start-up
deficit lasts a few relaxation times (tens of days at 80% load with three slots), so
over 2,000 days it moves the per-run estimates by well under their standard error.
Deals still waiting at the horizon are not in the mean wait (it is over deals that got
a slot): a bias of the same small order. Standard errors come from the run-to-run spread
of per-run estimates (runs are independent), and checks use ``Z = 4``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim import simulate
from sim.cli import main
from sim.model.scenario import ScenarioError, load_scenario, scenario_from_dict, scenario_to_toml
from sim.runner import choose_engine, critical_inflows
from tests.conftest import Z, document, make_scenario, within, write_toml

ENGINES = ("simpy", "vectorized")


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c with offered load ``a = lambda / mu < c``."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def erlang_b(c: int, a: float) -> float:
    """P(all c slots busy) for an arrival in M/M/c/c: the loss probability."""
    return (a**c / math.factorial(c)) / sum(a**k / math.factorial(k) for k in range(c + 1))


def one_stage(lam: float, mean_days: float, slots: int, horizon: float, **capacity) -> dict:
    """One stage, conversion 1, Poisson arrivals at ``lam`` a day, exponential days, ``slots`` reps."""
    return document(
        horizon_days=horizon,
        quota={"deals": 1},
        inflow={"per_week": 7 * lam},
        stages=[
            {"name": "Work", "conversion": 1.0, "duration": {"dist": "exponential", "mean": mean_days}, "per_rep": 1}
        ],
        capacity={"reps": slots, **capacity},
    )


def mean_and_se(per_run: np.ndarray) -> tuple[float, float]:
    """The mean of per-run estimates and its standard error from their spread."""
    return float(per_run.mean()), float(per_run.std(ddof=1) / math.sqrt(len(per_run)))


# --- queueing theory ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_one_stage_is_erlang_c(engine):
    lam, mu, c, horizon = 2.4, 1.0, 3, 2_000.0
    a = lam / mu
    result = simulate(scenario_from_dict(one_stage(lam, 1 / mu, c, horizon)), runs=30, seed=1, engine=engine)
    o = result.outcomes
    assert result.engine == engine
    expected = erlang_c(c, a)
    checks = {
        "P(wait)": (o.queued[:, 0] / o.entered[:, 0], expected),
        "mean wait": (o.wait_days[:, 0] / o.served[:, 0], expected / (c * mu - lam)),
        "mean queue": (o.mean_queue[:, 0], expected * a / (c - a)),
        "utilisation": (o.busy_days[:, 0] / (c * horizon), a / c),
    }
    for name, (per_run, exact) in checks.items():
        estimate, se = mean_and_se(per_run)
        print(f"{name}: exact {exact:.4f}, simulated {estimate:.4f}, SE {se:.4f}")
        within(estimate, exact, se)
    # The summary pools all runs: the same figures, ratio of totals.
    stage = result.summary()["stages"][0]
    assert stage["mean_wait_days"] == pytest.approx(o.wait_days.sum() / o.served.sum())
    assert stage["utilisation"] == pytest.approx(o.busy_days.sum() / (c * horizon * 30))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_vanishing_patience_is_erlang_loss(engine):
    lam, mu, c = 1.5, 1.0, 2
    result = simulate(
        scenario_from_dict(one_stage(lam, 1 / mu, c, 1_000.0, max_wait_days=1e-7)), runs=30, seed=2, engine=engine
    )
    o = result.outcomes
    estimate, se = mean_and_se(o.neglected[:, 0] / o.entered[:, 0])
    print(f"P(lost): exact {erlang_b(c, lam / mu):.4f}, simulated {estimate:.4f}, SE {se:.4f}")
    within(estimate, erlang_b(c, lam / mu), se)
    assert o.wait_days.sum() <= 1e-7 * o.served.sum()  # nobody served waited longer than the patience


@pytest.mark.parametrize("engine", ENGINES)
def test_more_patience_loses_fewer_deals_and_only_those_that_waited_too_long(engine):
    shares, waits = [], []
    for patience in (1e-7, 0.3, 2.0, 1e6):
        doc = one_stage(2.7, 1.0, 3, 400.0, max_wait_days=patience)
        o = simulate(scenario_from_dict(doc), runs=20, seed=3, engine=engine).outcomes
        # Every deal that entered got a slot, gave up, or is still in line at the horizon.
        np.testing.assert_array_equal(o.entered[:, 0], o.served[:, 0] + o.neglected[:, 0] + o.queue_by_week[:, 0, -1])
        assert o.neglected.sum() <= o.queued.sum()
        shares.append(o.neglected.sum() / o.entered.sum())
        waits.append(o.wait_days.sum() / o.served.sum())
        assert waits[-1] <= patience
    assert shares[0] > shares[1] > shares[2] > shares[3] == 0
    assert waits[0] < waits[1] < waits[2] < waits[3]


# --- exact paths with fixed durations -------------------------------------------------


def fixed_stage(days: float, open_deals: int, per_rep: int = 1, horizon: float = 10, **capacity) -> dict:
    stage = {"name": "Work", "conversion": 1.0, "duration": days, "open": open_deals, "per_rep": per_rep}
    return document(
        horizon_days=horizon,
        quota={"deals": 1},
        inflow={"per_week": 0},
        stages=[stage],
        capacity={"reps": 1, **capacity},
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_one_slot_works_deals_first_in_first_out_and_a_win_at_the_horizon_counts(engine):
    # Three deals at day 0, one slot, five days each: wins at 5 and 10 (the horizon), the
    # third gets the slot at day 10 after waiting 10 days.
    result = simulate(scenario_from_dict(fixed_stage(5.0, 3, horizon=14)), runs=2, seed=0, engine=engine)
    o = result.outcomes
    np.testing.assert_array_equal(o.won_deals, [2, 2])
    np.testing.assert_array_equal(o.served[:, 0], [3, 3])
    np.testing.assert_array_equal(o.queued[:, 0], [2, 2])
    np.testing.assert_allclose(o.wait_days[:, 0], 15.0)  # 0 + 5 + 10
    np.testing.assert_allclose(o.busy_days[:, 0], 14.0)  # busy all along
    np.testing.assert_allclose(o.mean_queue[:, 0], (2 * 5 + 1 * 5) / 14)
    np.testing.assert_array_equal(o.queue_by_week[0, 0], [1, 0])  # at days 7 and 14
    np.testing.assert_allclose(o.busy_by_week[0, 0], [7.0, 7.0])
    stage = result.summary()["stages"][0]
    assert stage["mean_wait_days"] == pytest.approx(5.0)
    assert stage["utilisation"] == pytest.approx(1.0)

    at_horizon = simulate(scenario_from_dict(fixed_stage(5.0, 3, horizon=10)), runs=1, seed=0, engine=engine).outcomes
    assert at_horizon.won_deals[0] == 2  # the second win falls exactly on the horizon


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lost_deal_holds_its_slot_for_its_lost_duration(engine):
    doc = fixed_stage(5.0, 2, horizon=10)
    doc["stages"][0].update(conversion=0.0, lost_duration=4.0)
    o = simulate(scenario_from_dict(doc), runs=1, seed=0, engine=engine).outcomes
    assert o.won_deals[0] == 0
    assert o.wait_days[0, 0] == pytest.approx(4.0)  # the second deal waits for the first to be lost
    assert o.busy_days[0, 0] == pytest.approx(8.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deal_that_waits_longer_than_max_wait_days_is_lost(engine):
    o = simulate(
        scenario_from_dict(fixed_stage(5.0, 3, horizon=20, max_wait_days=3.0)), runs=1, seed=0, engine=engine
    ).outcomes
    assert o.won_deals[0] == 1
    assert o.neglected[0, 0] == 2
    assert o.busy_days[0, 0] == pytest.approx(5.0)
    np.testing.assert_allclose(o.mean_queue[0, 0], 2 * 3 / 20)


@pytest.mark.parametrize("engine", ENGINES)
def test_two_reps_double_the_slots_and_a_stage_without_per_rep_has_no_limit(engine):
    doc = fixed_stage(5.0, 4, per_rep=1, horizon=5)
    doc["capacity"]["reps"] = 2
    doc["stages"].insert(0, {"name": "Free", "conversion": 1.0, "duration": 1.0, "open": 5})
    result = simulate(scenario_from_dict(doc), runs=1, seed=0, engine=engine)
    o = result.outcomes
    # Work: 4 open deals on 2 slots, 2 won at day 5; the 5 deals from Free arrive at day 1 and wait.
    assert o.won_deals[0] == 2
    np.testing.assert_array_equal(o.entered[0], [5, 9])
    np.testing.assert_array_equal(o.queued[0], [0, 7])
    free, work = result.summary()["stages"]
    assert free["mean_wait_days"] == 0 and free["utilisation"] is None
    assert work["utilisation"] == pytest.approx(1.0)


# --- the basic model is untouched -----------------------------------------------------


def test_capacity_that_never_binds_gives_the_basic_model_deal_for_deal():
    # The capacity path uses the same streams and draws as the basic model (see
    # sim.engine), so slots that are never all taken change nothing, not only on average.
    base = document(
        stages=[
            {
                "name": "Discovery",
                "conversion": {"mean": 0.6, "concentration": 30},
                "duration": {"dist": "lognormal", "mean": 7, "sd": 4},
                "open": 4,
                "per_rep": 100_000,
            },
            {
                "name": "Proposal",
                "conversion": 0.5,
                "duration": {"dist": "gamma", "mean": 10, "sd": 5},
                "lost_duration": {"dist": "exponential", "mean": 6},
            },
        ],
        open_deals=[{"stage": "Proposal", "age_days": 12, "amount": 5_000}, {"stage": "Discovery", "age_days": 3}],
    )
    unlimited = dict(base, stages=[{k: v for k, v in s.items() if k != "per_rep"} for s in base["stages"]])
    limited = simulate(scenario_from_dict({**base, "capacity": {"reps": 1}}), runs=150, seed=4).outcomes
    basic = simulate(scenario_from_dict(unlimited), runs=150, seed=4, engine="simpy").outcomes
    assert not basic.has_capacity and limited.has_capacity
    np.testing.assert_array_equal(limited.won_deals, basic.won_deals)
    np.testing.assert_array_equal(limited.entered, basic.entered)
    np.testing.assert_array_equal(limited.converted, basic.converted)
    np.testing.assert_allclose(limited.revenue, basic.revenue, rtol=1e-12)
    np.testing.assert_allclose(limited.weekly_revenue, basic.weekly_revenue, rtol=1e-12)
    assert limited.queued.sum() == 0 and limited.wait_days.sum() == 0
    # And P(hit) itself is the same, within sampling error of one run: exactly.
    assert (limited.revenue >= 100_000).mean() == (basic.revenue >= 100_000).mean()


def test_binding_capacity_lowers_wins_and_stays_reproducible():
    doc = document(
        stages=[
            {"name": "Discovery", "conversion": 0.6, "duration": {"dist": "lognormal", "mean": 7, "sd": 4}},
            {"name": "Proposal", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 10, "sd": 5}, "per_rep": 2},
        ],
        capacity={"reps": 1, "max_wait_days": 14},
    )
    scenario = scenario_from_dict(doc)
    one = simulate(scenario, runs=250, seed=6, jobs=1)
    two = simulate(scenario, runs=250, seed=6, jobs=2)
    for name in ("won_deals", "revenue", "served", "wait_days", "busy_days", "mean_queue", "busy_by_week"):
        np.testing.assert_array_equal(getattr(one.outcomes, name), getattr(two.outcomes, name), err_msg=name)
    free = simulate(make_scenario(), runs=250, seed=6, engine="simpy")
    # Same draws, and waiting only delays a deal: never more wins than without the limit.
    diff = free.outcomes.won_deals - one.outcomes.won_deals
    assert diff.min() >= 0 and diff.mean() > Z * diff.std(ddof=1) / math.sqrt(len(diff))
    assert one.summary()["stages"][1]["neglected"] > 0


def test_without_capacity_the_summary_has_no_capacity_keys():
    stages = simulate(make_scenario(), runs=50, seed=0).summary()["stages"]
    assert "utilisation" not in stages[0] and "mean_wait_days" not in stages[0]


# --- the scenario format and engine choice --------------------------------------------


def with_per_rep(per_rep, capacity=None) -> dict:
    doc = document()
    doc["stages"][1]["per_rep"] = per_rep
    if capacity is not None:
        doc["capacity"] = capacity
    return doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (with_per_rep(0, {"reps": 2}), "stages[1].per_rep: must be a whole number >= 1, got 0"),
        (with_per_rep(1.5, {"reps": 2}), "stages[1].per_rep: must be a whole number >= 1, got 1.5"),
        (with_per_rep(2), "stages[1].per_rep: needs a [capacity] section"),
        (with_per_rep(2, {"reps": 0}), "capacity.reps: must be a whole number >= 1, got 0"),
        (with_per_rep(2, {}), "capacity.reps: missing (required)"),
        (with_per_rep(2, {"reps": 2, "max_wait_days": 0}), "capacity.max_wait_days: must be a finite number > 0"),
        (with_per_rep(2, {"reps": 2, "max_wait": 3}), "capacity.max_wait: unknown key"),
    ],
)
def test_bad_capacity_is_refused_with_the_field_path(doc, expected):
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(doc)
    assert any(line.startswith(expected) for line in error.value.problems), error.value.problems


def test_capacity_round_trips_through_toml(tmp_path):
    for capacity in ({"reps": 3}, {"reps": 3, "max_wait_days": 7.5}):
        scenario = scenario_from_dict(with_per_rep(4, capacity))
        text = scenario_to_toml(scenario)
        assert "per_rep = 4" in text and "[capacity]" in text
        assert ("max_wait_days" in text) == ("max_wait_days" in capacity)
        path = tmp_path / "s.toml"
        path.write_text(text)
        assert load_scenario(path) == scenario
    assert "capacity" not in scenario_to_toml(make_scenario()) and "per_rep" not in scenario_to_toml(make_scenario())


def test_limited_reps_run_on_the_queues_unless_the_simpy_engine_is_asked_for():
    scenario = scenario_from_dict(with_per_rep(2, {"reps": 1}))
    assert choose_engine(scenario, "auto") == "vectorized"  # the queues, wherever they model the scenario
    assert choose_engine(scenario, "simpy") == "simpy"  # the discrete-event reference
    assert choose_engine(scenario, "vectorized") == "vectorized"
    # Listed open deals with limited reps: the SimPy engine only.
    listed = scenario_from_dict({**with_per_rep(2, {"reps": 1}), "open_deals": [{"stage": "Proposal", "age_days": 3}]})
    assert choose_engine(listed, "auto") == "simpy"
    with pytest.raises(ValueError, match="^engine: .*listed open deals"):
        choose_engine(listed, "vectorized")
    # Deals wait for each other, so no inflow threshold is a replication's own.
    with pytest.raises(ValueError, match="^engine: "):
        critical_inflows(scenario, runs=10)
    # A [capacity] section that limits no stage changes nothing: still vectorised.
    assert choose_engine(make_scenario(capacity={"reps": 3}), "auto") == "vectorized"


def test_cli_run_shows_wait_and_utilisation(tmp_path, capsys):
    path = write_toml(tmp_path, with_per_rep(2, {"reps": 1, "max_wait_days": 10}))
    assert main(["run", str(path), "--runs", "30", "--engine", "simpy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "simpy"
    first, second = out["stages"]
    assert first["mean_wait_days"] == 0 and first["utilisation"] is None
    assert second["mean_wait_days"] > 0 and 0 < second["utilisation"] <= 1
    assert main(["run", str(path), "--runs", "30", "--engine", "vectorized", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "vectorized" and out["stages"][1]["mean_wait_days"] > 0
    listed = dict(with_per_rep(2, {"reps": 1}), open_deals=[{"stage": "Proposal", "age_days": 3}])
    listed_path = write_toml(tmp_path, listed, "listed.toml")
    assert main(["run", str(listed_path), "--runs", "30", "--engine", "vectorized"]) == 2
    assert "error: engine:" in capsys.readouterr().err
    assert main(["run", str(path), "--runs", "30"]) == 0
    text = capsys.readouterr().out
    assert "wait days" in text and "utilisation" in text

"""Follow-ups, no-shows and stalled deals: closed forms, common random numbers, both engines.

With Poisson arrivals of rate lambda a day and a deal's time in the funnel fixed at D
days, the wins by the horizon H are Poisson with mean lambda * (H - D) * prod(p), each
stage's p the chance a deal converts there (Poisson thinning). The stage keys of
:class:`sim.model.scenario.Stage` multiply a stage's rate by P(touches needed <= max_touches)
and P(meeting held) = (1 - ns) + ns * r * (1 - l), and add days to the time in the
stage; stalls make the rate p * F(s) for a stage whose duration has cdf F. Statistical
checks are |estimate - exact| <= Z * SE with Z = 4 (see tests/conftest.py); the
engine comparison is that of tests/engines/test_equivalence.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from sim import load_scenario, simulate
from sim.model.average_math import average_math, deterministic_weekly_opportunities, funnel_rates
from sim.model.funnel import meeting_held_probability, stage_effects, touch_ok_probability
from sim.model.scenario import ScenarioError, scenario_from_dict, scenario_from_toml, scenario_to_toml
from sim.runner import critical_inflows
from tests.conftest import ENGINES, ROOT, Z, document, make_scenario, within

RUNS = {"vectorized": 20_000, "simpy": 2_000}
TOUCHES = {"dist": "empirical", "values": [1, 2, 3, 5, 8]}
"""Needs 1, 2, 3, 5 or 8 touches, each with chance 1/5: P(needed <= 3) = 0.6."""


def check_poisson(counts: np.ndarray, mu: float) -> None:
    """Mean and variance of Poisson(mu) counts: Var(s^2) ~ (mu + 2 mu^2) / n."""
    n = len(counts)
    within(counts.mean(), mu, math.sqrt(mu / n))
    within(counts.var(ddof=1), mu, math.sqrt((mu + 2 * mu * mu) / n))


def one_day_inflow(stages, horizon_days=70, **changes):
    """Poisson inflow of one deal a day (lambda = 1) through ``stages``."""
    return make_scenario(horizon_days=horizon_days, inflow={"per_week": 7}, stages=stages, **changes)


# --- closed forms ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_wins_are_poisson_thinned_by_persistence_and_meetings(engine):
    scenario = one_day_inflow(
        [
            {"name": "Follow-up", "conversion": 0.6, "duration": 5, "touches_needed": TOUCHES, "max_touches": 3},
            {
                "name": "Meeting",
                "conversion": 0.5,
                "duration": 10,
                "no_show": 0.4,
                "reschedule": 0.5,
                "lost_after_reschedule": 0.8,
                "reschedule_days": 0,
            },
        ]
    )
    p_touch, p_meeting = 0.6, (1 - 0.4) + 0.4 * 0.5 * (1 - 0.8)
    assert touch_ok_probability(scenario.stages[0]) == pytest.approx(p_touch)
    assert meeting_held_probability(scenario.stages[1]) == pytest.approx(p_meeting)
    mu = 1.0 * (70 - 15) * 0.6 * p_touch * 0.5 * p_meeting
    outcomes = simulate(scenario, runs=RUNS[engine], seed=3, engine=engine).outcomes
    check_poisson(outcomes.won_deals, mu)
    # Deals that fail their touches or meeting are lost in that stage: no more than the rate lets through.
    assert funnel_rates(scenario) == pytest.approx([0.6 * p_touch, 0.5 * p_meeting])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("keys", "window"),
    [
        # Four touches three days apart: every win takes 9 days longer.
        ({"touches_needed": 4, "touch_interval_days": 3}, lambda h: h - 5 - 9),
        # Every no-show rescheduled and held, 10 days later: half the wins take 10 days longer.
        ({"no_show": 0.5, "reschedule": 1.0, "reschedule_days": 10}, lambda h: 0.5 * (h - 5) + 0.5 * (h - 15)),
    ],
    ids=["touches", "reschedules"],
)
def test_follow_ups_and_reschedules_shrink_the_window(engine, keys, window):
    scenario = one_day_inflow([{"name": "Only", "conversion": 0.5, "duration": 5, **keys}])
    outcomes = simulate(scenario, runs=RUNS[engine], seed=5, engine=engine).outcomes
    check_poisson(outcomes.won_deals, 1.0 * 0.5 * window(70.0))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stalled_deal_is_lost(engine):
    # Lognormal time in the stage, lost past s days: wins arriving at t need D <= min(s, H - t).
    duration, s, p, horizon = {"dist": "lognormal", "mean": 7, "sd": 4}, 8.0, 0.6, 42.0
    scenario = one_day_inflow(
        [{"name": "Only", "conversion": p, "duration": duration, "stale_after_days": s}], horizon_days=horizon
    )
    law = scenario.stages[0].duration
    mu = p * integrate.quad(lambda t: float(law.cdf(min(s, horizon - t))), 0, horizon, points=[horizon - s])[0]
    outcomes = simulate(scenario, runs=RUNS[engine], seed=8, engine=engine).outcomes
    check_poisson(outcomes.won_deals, mu)  # 15.5 a run; without the stall rule 21.0


def test_stage_effects_partition_the_meeting_uniform():
    scenario = one_day_inflow(
        [
            {
                "name": "Only",
                "conversion": 0.5,
                "duration": 5,
                "no_show": 0.5,
                "reschedule": 0.6,
                "lost_after_reschedule": 0.5,
                "reschedule_days": 4,
            }
        ]
    )
    # [0, 0.2) no-show lost, [0.2, 0.35) rescheduled then lost, [0.35, 0.5) rescheduled and held, [0.5, 1) held.
    u = np.array([0.0, 0.19, 0.21, 0.34, 0.36, 0.49, 0.51, 0.99])
    kept, days = stage_effects(scenario.stages[0], np.full(len(u), 5.0), None, u)
    np.testing.assert_array_equal(kept, [False, False, False, False, True, True, True, True])
    np.testing.assert_array_equal(days[kept], [9, 9, 5, 5])


# --- common random numbers ---------------------------------------------------------------


def with_keys(**keys):
    return document(
        stages=[
            {
                "name": "Discovery",
                "conversion": 0.6,
                "duration": {"dist": "lognormal", "mean": 7, "sd": 4},
                "open": 3,
                **keys,
            },
            {"name": "Proposal", "conversion": 0.5, "duration": {"dist": "gamma", "mean": 10, "sd": 5}},
        ],
        open_deals=[{"stage": "Discovery", "age_days": 4}, {"stage": "Proposal", "age_days": 2, "amount": 7_000}],
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_neutral_keys_change_nothing(engine):
    # The new streams are fixed seed children after the old ones, so keys that keep every
    # deal and add no time give the old numbers deal for deal.
    runs = 400
    plain = simulate(scenario_from_dict(with_keys()), runs=runs, seed=9, engine=engine).outcomes
    neutral = scenario_from_dict(
        with_keys(touches_needed=TOUCHES, max_touches=100, no_show=0.0, reschedule=0.0, stale_after_days=1e9)
    )
    assert neutral.stages[0].has_behaviour
    same = simulate(neutral, runs=runs, seed=9, engine=engine).outcomes
    for name in ("won_deals", "revenue", "entered", "converted", "weekly_revenue"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(same, name), err_msg=name)


@pytest.mark.parametrize("engine", ENGINES)
def test_more_persistence_only_adds_wins(engine):
    runs = {"vectorized": 2_000, "simpy": 300}[engine]
    won = [
        simulate(
            scenario_from_dict(with_keys(touches_needed=TOUCHES, touch_interval_days=1, max_touches=m, no_show=0.2)),
            runs=runs,
            seed=13,
            engine=engine,
        ).outcomes.won_deals
        for m in (1, 2, 3, 5, 8)
    ]
    for fewer, more in zip(won, won[1:], strict=False):
        assert (more >= fewer).all()
    assert won[-1].mean() > won[0].mean()


# --- the engines agree -------------------------------------------------------------------

ALL_KEYS = scenario_from_dict(
    document(
        horizon_days=91,
        inflow={"per_week": 9},
        quota={"revenue": 120_000},
        stages=[
            {
                "name": "Follow-up",
                "conversion": {"mean": 0.55, "concentration": 40},
                "duration": {"dist": "exponential", "mean": 3},
                "touches_needed": {"dist": "lognormal", "mean": 4, "sd": 2},
                "max_touches": 5,
                "touch_interval_days": 2,
                "open": 6,
            },
            {
                "name": "Meeting",
                "conversion": 0.7,
                "duration": {"dist": "gamma", "mean": 6, "sd": 3},
                "no_show": 0.3,
                "reschedule": 0.5,
                "lost_after_reschedule": 0.8,
                "reschedule_days": 7,
            },
            {
                "name": "Proposal",
                "conversion": 0.5,
                "duration": {"dist": "lognormal", "mean": 14, "sd": 8},
                "stale_after_days": 30,
            },
        ],
        open_deals=[
            {"stage": "Meeting", "age_days": 3},
            {"stage": "Proposal", "age_days": 20, "amount": 15_000},
            {"stage": "Follow-up", "age_days": 1},
        ],
    )
)


def test_engines_agree_with_every_key():
    simpy_runs, vector_runs = 1_500, 6_000
    a = simulate(ALL_KEYS, runs=simpy_runs, seed=11, engine="simpy")
    b = simulate(ALL_KEYS, runs=vector_runs, seed=12, engine="vectorized")
    pa, pb = a.p_hit, b.p_hit
    pooled = (pa * simpy_runs + pb * vector_runs) / (simpy_runs + vector_runs)
    se_p = math.sqrt(pooled * (1 - pooled) * (1 / simpy_runs + 1 / vector_runs))
    assert 0.05 < pooled < 0.95
    assert abs(pa - pb) <= Z * se_p, (pa, pb, se_p)
    ra, rb = a.outcomes.revenue, b.outcomes.revenue
    se_mean = math.sqrt(ra.var(ddof=1) / len(ra) + rb.var(ddof=1) / len(rb))
    assert abs(ra.mean() - rb.mean()) <= Z * se_mean, (ra.mean(), rb.mean(), se_mean)
    for j in range(len(ALL_KEYS.stages)):
        for name in ("entered", "converted"):
            ea, eb = getattr(a.outcomes, name)[:, j], getattr(b.outcomes, name)[:, j]
            se = math.sqrt(ea.var(ddof=1) / len(ea) + eb.var(ddof=1) / len(eb))
            assert abs(ea.mean() - eb.mean()) <= Z * se, (name, j)
    assert stats.ks_2samp(ra, rb).pvalue > 0.001


def test_the_inflow_curve_equals_separate_simulations():
    runs, seed, top = 1_000, 4, 3.0 * ALL_KEYS.inflow.per_week
    critical = critical_inflows(ALL_KEYS, runs=runs, seed=seed, max_per_week=top)
    for per_week in np.linspace(0.0, top, 6):
        direct = simulate(ALL_KEYS.with_inflow(per_week), runs=runs, seed=seed, engine="vectorized").hit
        np.testing.assert_array_equal(critical <= per_week, direct, err_msg=f"at {per_week:.3f} a week")


def test_capacity_that_never_binds_keeps_the_behaviour_deal_for_deal():
    # The capacity path follows the same paths (DealDraws), effects included.
    doc = with_keys(touches_needed=TOUCHES, max_touches=3, touch_interval_days=2, no_show=0.3, stale_after_days=15)
    doc["stages"][0]["per_rep"] = 100_000
    limited = simulate(scenario_from_dict({**doc, "capacity": {"reps": 1}}), runs=150, seed=4).outcomes
    del doc["stages"][0]["per_rep"]
    basic = simulate(scenario_from_dict(doc), runs=150, seed=4, engine="simpy").outcomes
    for name in ("won_deals", "entered", "converted"):
        np.testing.assert_array_equal(getattr(limited, name), getattr(basic, name), err_msg=name)


# --- average math, the shipped trainer, the file format ----------------------------------


def test_average_math_uses_the_effective_rates_and_the_extra_days():
    scenario = one_day_inflow(
        [
            {
                "name": "Only",
                "conversion": 0.5,
                "duration": 5,
                "touches_needed": TOUCHES,
                "max_touches": 3,
                "touch_interval_days": 2,
                "no_show": 0.5,
                "reschedule": 1.0,
                "reschedule_days": 10,
            }
        ],
        quota={"deals": 10},
    )
    # Touches given <= 3: 1, 2 or 3, mean 2, so 2 extra days; half the meetings rescheduled: 5 more.
    assert funnel_rates(scenario) == pytest.approx([0.5 * 0.6])
    assert average_math(scenario)["won_deals"] == pytest.approx(0.3 * (70 - 5 - 2 - 5))
    assert deterministic_weekly_opportunities(scenario) == pytest.approx(10 / 0.3 / 10)


def test_the_trainer_shows_what_persistence_is_worth():
    trainer = load_scenario(ROOT / "scenarios" / "follow_up_trainer.toml")
    follow_up = trainer.stages[0]
    assert follow_up.max_touches == 1
    assert 1 - float(follow_up.touches_needed.cdf(4.0)) == pytest.approx(0.8)  # 80% need five or more
    meeting = trainer.stages[1]
    assert meeting.lost_after_reschedule == pytest.approx(0.8)  # four in five never heard from again
    persistent = trainer.model_copy(
        update={"stages": (follow_up.model_copy(update={"max_touches": 5}), *trainer.stages[1:])}
    )
    quitter = simulate(trainer, runs=2_000, seed=1, engine="vectorized")
    keeper = simulate(persistent, runs=2_000, seed=1, engine="vectorized")
    assert (keeper.outcomes.won_deals >= quitter.outcomes.won_deals).all()
    assert keeper.p_hit > quitter.p_hit + 0.3


def test_the_keys_round_trip_through_toml():
    text = scenario_to_toml(ALL_KEYS)
    assert scenario_from_toml(text) == ALL_KEYS
    assert "touch_interval_days = 2" in text and "lost_after_reschedule = 0.8" in text
    # A fixed number of touches is written as a bare number, defaults are left out.
    bare = one_day_inflow([{"name": "Only", "conversion": 0.5, "duration": 5, "touches_needed": 4, "no_show": 0.1}])
    text = scenario_to_toml(bare)
    assert "touches_needed = 4" in text
    assert "touch_interval_days" not in text and "reschedule_days" not in text and "lost_after" not in text
    assert scenario_from_toml(text) == bare


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"no_show": 1.2}, "stages[0].no_show: must be between 0 and 1, got 1.2"),
        ({"no_show": 0.1, "reschedule": -0.1}, "stages[0].reschedule: must be between 0 and 1, got -0.1"),
        ({"max_touches": 3}, "stages[0].max_touches: needs touches_needed"),
        ({"touches_needed": 4, "max_touches": 0}, "stages[0].max_touches: must be a whole number >= 1, got 0"),
        ({"touches_needed": 4, "max_touches": 2.5}, "stages[0].max_touches: must be a whole number >= 1, got 2.5"),
        (
            {"touches_needed": 4, "touch_interval_days": -1},
            "stages[0].touch_interval_days: must be a finite number >= 0",
        ),
        ({"touch_interval_days": 2}, "stages[0].touch_interval_days: needs touches_needed"),
        ({"reschedule": 0.5}, "stages[0].reschedule: needs no_show"),
        ({"no_show": 0.2, "lost_after_reschedule": 0.8}, "stages[0].lost_after_reschedule: needs reschedule"),
        ({"stale_after_days": 0}, "stages[0].stale_after_days: must be a finite number > 0, got 0"),
        ({"touches_needed": {"dist": "poisson"}}, "stages[0].touches_needed: unknown distribution 'poisson'"),
        ({"no_shows": 0.1}, "stages[0].no_shows: unknown key"),
    ],
)
def test_bad_keys_are_refused_with_the_field_path(keys, expected):
    stage = {"name": "Only", "conversion": 0.5, "duration": 5, **keys}
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(document(stages=[stage]))
    assert any(line.startswith(expected) for line in error.value.problems), error.value.problems

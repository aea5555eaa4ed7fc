"""Teams of reps: closed forms, the spread effect, the ramp, the value ratio, seeding, validation, CLI.

Closed forms: with fixed rates (a huge ``rate_concentration``), Poisson inflow and fixed
durations, a rep's wins are Poisson, so the share of reps at quota and P(team hits) are
Poisson tails; with one stage and a Beta spread of the rate they are Beta-mixed Poisson
tails (one integral). Tolerances are z * SE with z = 4 (tests/conftest.py).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from sim import simulate
from sim.cli import main
from sim.engines.streams import rep_seed
from sim.model.average_math import deterministic_weekly_opportunities, team_inflow_reps
from sim.model.scenario import DAYS_PER_MONTH, ScenarioError, scenario_from_toml, scenario_to_toml
from sim.model.team import ramp_multipliers, rep_scenarios
from sim.questions.quota import realistic_rep_quota
from sim.runner import simulate_team
from tests.conftest import RUNS, SCENARIOS_DIR, Z, make_scenario, within, write_toml

FIXED = 1e9
"""A rate concentration so large the reps' rates are the mean (sd ~ 1.6e-5 at 0.5)."""


def one_stage(rate, days: float = 1.0) -> list[dict]:
    return [{"name": "Deal", "conversion": rate, "duration": days}]


def team_scenario(team: dict, rate=0.5, days: float = 1.0, **changes):
    """Deals quota, Poisson inflow of 7 a week per rep over 70 days, one stage of fixed days."""
    doc = {"quota": {"deals": 180}, "inflow": {"per_week": 7}, "stages": one_stage(rate, days), **changes}
    return make_scenario(team={"rate_concentration": FIXED, **team}, **doc)


def test_fixed_rates_give_poisson_reps_and_team():
    # Each rep: arrivals Poisson(1 a day) that are won by day 70 if they arrive by day 69,
    # thinned at 0.5: wins ~ Poisson(34.5). The team of 5: Poisson(172.5).
    scenario = team_scenario({"reps": 5, "rep_quota": 37})
    runs = 4000
    team = simulate_team(scenario, runs=runs, seed=11)
    mu = 69 * 0.5
    share = stats.poisson.sf(36, mu)
    got, se = team.share_at_quota()
    within(got, share, math.sqrt(share * (1 - share) / (runs * 5)))
    assert se == pytest.approx(math.sqrt(share * (1 - share) / (runs * 5)), rel=0.1)
    p_team = stats.poisson.sf(179, 5 * mu)
    within(team.p_team_hit, p_team, math.sqrt(p_team * (1 - p_team) / runs))
    within(float(team.won_deals.mean()), mu, math.sqrt(mu / (runs * 5)))
    np.testing.assert_array_equal(team.total.outcomes.won_deals, team.won_deals.sum(axis=1))


def test_simpy_engine_runs_teams_too():
    scenario = team_scenario({"reps": 3, "rep_quota": 37})
    runs = RUNS["simpy"] // 3
    team = simulate_team(scenario, runs=runs, seed=5, engine="simpy")
    assert team.engine == "simpy"
    share = stats.poisson.sf(36, 34.5)
    within(team.share_at_quota()[0], share, math.sqrt(share * (1 - share) / (runs * 3)))


def test_rate_spread_lowers_the_share_at_an_average_rep_quota():
    # One stage, rate ~ Beta(1.5, 3.5) per rep (mean 0.3), 200 arrivals expected by the
    # cut-off: wins | p ~ Poisson(200 p). A quota at the average rep's 60 wins is made by
    # about half of identical reps, but by fewer real ones: the Beta is right-skewed, so
    # most reps sit below the mean rate.
    scenario = make_scenario(
        horizon_days=141,
        quota={"deals": 300},
        inflow={"per_week": 7 * 200 / 140},
        stages=one_stage(0.3),
        team={"reps": 4, "rep_quota": 60, "rate_concentration": 5},
    )
    runs = 5000
    team = simulate_team(scenario, runs=runs, seed=3)
    beta = stats.beta(1.5, 3.5)
    exact, _ = integrate.quad(lambda p: stats.poisson.sf(59, 200 * p) * beta.pdf(p), 0, 1, limit=200)
    got, se = team.share_at_quota()
    within(got, exact, se)
    average_rep = stats.poisson.sf(59, 60)
    assert got + Z * se < average_rep
    # The rates really differ between reps of one replication.
    rates = np.stack([r.outcomes.rates[:, 0] for r in team.reps], axis=1)
    assert rates.std() == pytest.approx(beta.std(), rel=0.05)


@pytest.mark.parametrize("ramp_months", [2.0, 4.0])
def test_ramp_cuts_new_reps_wins_by_the_ramp_integral(ramp_months):
    # Rate 1, one fixed day: a rep wins every arrival of days [0, 90] of a 91-day quarter.
    # A new rep's inflow is full rate times min(t / R, 1), so its expected wins are the
    # rate times the integral of the ramp up to day 90.
    horizon, cutoff, per_day = 91.0, 90.0, 1.0
    scenario = make_scenario(
        horizon_days=horizon,
        quota={"deals": 300},
        inflow={"per_week": 7 * per_day},
        stages=one_stage(1.0),
        team={"reps": 4, "rep_quota": 80, "rate_concentration": 10, "new_reps": 2, "ramp_months": ramp_months},
    )
    ramp = ramp_months * DAYS_PER_MONTH
    integral = cutoff - ramp / 2 if ramp <= cutoff else cutoff**2 / (2 * ramp)
    runs = 4000
    team = simulate_team(scenario, runs=runs, seed=8)
    new, old = team.won_deals[:, 2:], team.won_deals[:, :2]
    within(float(new.mean()), per_day * integral, math.sqrt(per_day * integral / new.size))
    within(float(old.mean()), per_day * cutoff, math.sqrt(per_day * cutoff / old.size))
    assert not team.is_new[:2].any() and team.is_new[2:].all()
    assert set(team.team_summary()["by_group"]) == {"experienced", "new"}


def test_ramp_multipliers_integrate_exactly_with_seasonality():
    scenario = make_scenario(horizon_days=100, inflow={"per_week": 7, "multipliers": [1.5, 0.5, 2.0, 1.0]})
    factors = ramp_multipliers(scenario, 1.5)
    assert len(factors) == scenario.n_weeks == 15
    weeks = np.minimum(np.arange(16) * 7.0, 100)
    got = float(np.sum(np.asarray(factors) * np.diff(weeks)))
    ramp_days = 1.5 * DAYS_PER_MONTH

    def integrand(t):
        season = [1.5, 0.5, 2.0, 1.0][min(int(t // DAYS_PER_MONTH), 3)]
        return season * min(t / ramp_days, 1.0)

    breaks = sorted({*(DAYS_PER_MONTH * k for k in range(1, 4)), ramp_days})
    exact, _ = integrate.quad(integrand, 0, 100, points=breaks, limit=200)
    assert got == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("ramp_months", [2.0, 4.0])
def test_average_math_for_a_team_is_per_rep(ramp_months):
    # The deterministic magic number of a team is per rep: the single-funnel number shared by
    # the reps' inflow, a new rep counting for the ramp's share of a full one (its multipliers).
    team = {"reps": 4, "rep_quota": 20, "new_reps": 1, "ramp_months": ramp_months}
    scenario = team_scenario(team, horizon_days=91)
    ramp_share = float(np.sum(np.asarray(ramp_multipliers(scenario, ramp_months)) * np.diff(week_edges(91.0))))
    reps = team_inflow_reps(scenario)
    assert reps == pytest.approx(3 + ramp_share / 91.0, rel=1e-12)
    alone = scenario.model_copy(update={"team": None})
    assert deterministic_weekly_opportunities(scenario) == pytest.approx(
        deterministic_weekly_opportunities(alone) / reps
    )
    assert team_inflow_reps(alone) == 1.0


def week_edges(horizon: float) -> np.ndarray:
    return np.minimum(np.arange(math.ceil(horizon / 7) + 1) * 7.0, horizon)


def test_value_ratio_is_annualised_revenue_over_cost():
    # Fixed arrivals every day, all won a day later at $1,000: each rep wins days 1..69.
    scenario = make_scenario(
        inflow={"per_week": 7, "process": "fixed"},
        deal_value=1000,
        stages=one_stage(1.0),
        team={"reps": 3, "rep_quota": 50_000, "rate_concentration": 10, "cost_per_year": 50_000},
    )
    team = simulate_team(scenario, runs=50, seed=0)
    assert (team.revenue == 69_000).all()
    np.testing.assert_allclose(team.value_ratio, 69_000 * 365.25 / 70 / 50_000, rtol=1e-12)
    summary = team.team_summary()["value_ratio"]
    assert summary["mean"] == pytest.approx(69_000 * 365.25 / 70 / 50_000)
    assert team.share_at_quota() == (1.0, 0.0)
    no_cost = make_scenario(team={"reps": 2, "rep_quota": 1, "rate_concentration": 10})
    assert simulate_team(no_cost, runs=20).value_ratio is None


def test_same_seed_same_numbers_any_jobs_and_reps_do_not_depend_on_team_size():
    base = {"rep_quota": 60_000, "rate_concentration": 20}
    a = simulate_team(make_scenario(team={"reps": 3, **base}), runs=600, seed=4)
    b = simulate_team(make_scenario(team={"reps": 3, **base}), runs=600, seed=4, jobs=2)
    np.testing.assert_array_equal(a.revenue, b.revenue)
    np.testing.assert_array_equal(a.won_deals, b.won_deals)
    bigger = simulate_team(make_scenario(team={"reps": 5, **base}), runs=600, seed=4)
    np.testing.assert_array_equal(bigger.revenue[:, :3], a.revenue)
    other = simulate_team(make_scenario(team={"reps": 3, **base}), runs=600, seed=5)
    assert not np.array_equal(other.revenue, a.revenue)
    # Reps use streams of their own, not those of an ordinary run with the same seed.
    assert len({rep_seed(4, r) for r in range(3)} | {4}) == 4


def test_open_pipeline_is_split_across_reps():
    scenario = make_scenario(
        stages=[
            {"name": "A", "conversion": 0.6, "duration": 7, "open": 7},
            {"name": "B", "conversion": 0.5, "duration": 7, "open": 2},
        ],
        open_deals=[{"stage": "B", "age_days": 3}] * 4,
        team={"reps": 3, "rep_quota": 1, "rate_concentration": 10},
    )
    reps = rep_scenarios(scenario)
    assert [[s.open for s in r.stages] for r in reps] == [[3, 1], [2, 1], [2, 0]]
    assert [len(r.open_deals) for r in reps] == [2, 1, 1]
    assert all(r.team is None and r.quota.target == 1 for r in reps)


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ({"reps": 0}, "team.reps: must be a whole number >= 1, got 0"),
        ({"reps": 2.5}, "team.reps: must be a whole number >= 1, got 2.5"),
        ({"new_reps": 9, "ramp_months": 3}, "team.new_reps: must be <= team.reps (8), got 9"),
        ({"new_reps": -1}, "team.new_reps: must be a whole number >= 0, got -1"),
        ({"new_reps": 2}, "team.ramp_months: new reps need ramp_months"),
        ({"rate_concentration": 0}, "team.rate_concentration: must be a finite number > 0, got 0"),
        ({"rep_quota": -5}, "team.rep_quota: must be a finite number > 0, got -5"),
        ({"cost_per_year": 0}, "team.cost_per_year: must be a finite number > 0, got 0"),
        ({"ramp_months": 0}, "team.ramp_months: must be a finite number > 0, got 0"),
        ({"repz": 3}, "team.repz: unknown key (check the spelling)"),
    ],
)
def test_validation_names_the_field(team, message):
    full = {"reps": 8, "rep_quota": 10_000, "rate_concentration": 20, **team}
    with pytest.raises(ScenarioError) as error:
        make_scenario(team=full)
    assert any(line.startswith(message) for line in error.value.problems), error.value.problems


def test_validation_against_the_rest_of_the_scenario():
    team = {"reps": 4, "rep_quota": 2.5, "rate_concentration": 20}
    with pytest.raises(ScenarioError, match=r"team.rep_quota: the quota counts won deals, so give a whole number"):
        make_scenario(quota={"deals": 10}, team=team)
    with pytest.raises(ScenarioError, match=r"team: cannot be combined with \[capacity\]"):
        make_scenario(capacity={"reps": 2}, team={**team, "rep_quota": 3})
    with pytest.raises(ValueError, match="team: the scenario has no"):
        simulate_team(make_scenario(), runs=10)


@pytest.mark.parametrize("new_reps", [0, 2])
def test_toml_round_trip(new_reps):
    extra = {"ramp_months": 2.5} if new_reps else {}
    scenario = make_scenario(
        team={"reps": 6, "rep_quota": 30_000, "rate_concentration": 15, "new_reps": new_reps, "cost_per_year": 9e4}
        | extra
    )
    text = scenario_to_toml(scenario)
    assert "[team]" in text and ("new_reps" in text) == bool(new_reps)
    assert scenario_from_toml(text) == scenario


def test_shipped_team_scenario_makes_the_trainers_point():
    from sim import load_scenario

    scenario = load_scenario(SCENARIOS_DIR / "team_quarter.toml")
    team = simulate_team(scenario, runs=2000, seed=0)
    summary = team.team_summary()
    # The average experienced rep's plan makes the rep quota, yet most reps miss it.
    assert summary["average_rep"]["hit"]
    assert summary["by_group"]["experienced"]["share_at_quota"] < 0.5
    assert summary["by_group"]["new"]["share_at_quota"] < summary["by_group"]["experienced"]["share_at_quota"]
    assert summary["p_team_hit"] < 0.5
    # `simulate` alone still runs it (as one rep against the team quota).
    assert simulate(scenario, runs=100).runs == 100


def test_realistic_rep_quota_is_the_share_quantile():
    scenario = team_scenario({"reps": 4, "rep_quota": 37})
    team = simulate_team(scenario, runs=2000, seed=2)
    answer = realistic_rep_quota(team, 0.7)
    values = team.won_deals.ravel()
    assert (values >= answer["quota"]).mean() >= 0.7 > (values > answer["quota"]).mean()
    assert answer["share_at_rep_quota"] == pytest.approx(team.share_at_quota()[0])
    with pytest.raises(ValueError, match="confidence"):
        realistic_rep_quota(team, 1.0)


def test_cli_run_and_quota_json(tmp_path, capsys):
    doc = {
        "name": "cli team",
        "horizon_days": 70,
        "quota": {"revenue": 200_000},
        "inflow": {"per_week": 5},
        "deal_value": 10_000,
        "stages": one_stage(0.5, 3),
        "team": {
            "reps": 3,
            "rep_quota": 60_000,
            "rate_concentration": 20,
            "new_reps": 1,
            "ramp_months": 1,
            "cost_per_year": 100_000,
        },
    }
    path = str(write_toml(tmp_path, doc))
    assert main(["run", path, "--runs", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"p_hit", "p_hit_ci", "deals", "revenue", "stages", "average_math", "team"} <= set(out)
    team = out["team"]
    assert {"attainment", "share_at_quota", "share_at_quota_se", "p_team_hit", "value_ratio", "by_group"} <= set(team)
    assert team["p_team_hit"] == out["p_hit"]
    assert main(["quota", path, "--runs", "300", "--confidence", "0.6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"quota", "p_hit_at_quota", "per_rep"} <= set(out)
    assert {"quota", "share_at_quota", "share_at_rep_quota", "by_group"} <= set(out["per_rep"])
    assert main(["run", path, "--runs", "100"]) == 0
    assert "P(team hits its quota)" in capsys.readouterr().out

"""The inverse questions: the magic number, a realistic quota, and which lever matters.

Monte Carlo answers are compared with closed forms wherever one exists. With Poisson
inflow of ``per_week`` a week, fixed conversion rates p_j and FIXED stage durations of
total D < H, the deals won by the horizon H are Poisson with mean

    mu = per_week / 7 * prod(p_j) * (H - D)        (Poisson thinning),

so P(hit a deals quota q) = P(Poisson(mu) >= q) = ``poisson.sf(q - 1, mu)``, the magic
number solves that for ``per_week``, and a realistic quota is a Poisson quantile.

Every statistical check is |estimate - exact| <= Z * SE with Z = 4 (a two-sided false
alarm about once in 16,000 checks). The SE of a proportion from n runs is
sqrt(t (1 - t) / n); the SE of the magic number comes from it by the delta method,
SE(lambda) = SE(P) / (dP / dlambda), with dP / dmu = Poisson pmf(q - 1, mu). Paired
differences (sensitivity) use their own SE. Monotonicity under common random numbers is
not statistical: it is checked exactly, replication by replication, with the same seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from sim import simulate
from sim.cli import main
from sim.engines.outcomes import Outcomes
from sim.model.average_math import activity_per_stage, deterministic_weekly_opportunities
from sim.model.scenario import BetaRate, Scenario, load_scenario, scenario_from_dict, scenario_to_toml
from sim.questions.magic_number import Unreachable, solve_magic_number
from sim.questions.quota import p_hit_by_quota, realistic_quota
from sim.questions.sensitivity import levers, paired_difference, sensitivity
from sim.runner import SimulationResult

Z = 4.0
"""Standard errors allowed between an estimate and its exact value."""
ROOT = Path(__file__).resolve().parents[2]
REFERENCE = str(ROOT / "scenarios" / "reference_quarter.toml")
ENGINES = ("vectorized", "simpy")
VALUE = {"dist": "lognormal", "mean": 10_000, "sd": 4_000}


def scenario(
    stages: list[dict],
    *,
    horizon_days: float = 70,
    quota: dict | None = None,
    per_week: float = 5.0,
    process: str = "poisson",
    deal_value: dict | float = VALUE,
) -> Scenario:
    """A validated scenario built the way a user writes one."""
    return scenario_from_dict(
        {
            "name": "solver test",
            "horizon_days": horizon_days,
            "quota": quota or {"deals": 10},
            "inflow": {"per_week": per_week, "process": process},
            "deal_value": deal_value,
            "stages": stages,
        }
    )


def exit_code(argv: list[str]) -> int:
    """``main``'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


# --- the closed form of a Poisson funnel ------------------------------------------------


@dataclass(frozen=True)
class PoissonFunnel:
    """Fixed rates, fixed durations, Poisson inflow, no open deals, a deals quota."""

    horizon: float
    rates: tuple[float, ...]
    durations: tuple[float, ...]
    quota: int

    def scenario(self, per_week: float = 5.0) -> Scenario:
        return scenario(
            [
                {"name": f"S{j}", "conversion": p, "duration": d}
                for j, (p, d) in enumerate(zip(self.rates, self.durations, strict=True))
            ],
            horizon_days=self.horizon,
            quota={"deals": self.quota},
            per_week=per_week,
        )

    @property
    def mu_per_weekly(self) -> float:
        """d mu / d per_week: prod(p) * (H - D) / 7."""
        return math.prod(self.rates) * (self.horizon - sum(self.durations)) / 7

    def p_hit(self, per_week: float) -> float:
        """P(Poisson(mu) >= q)."""
        return float(stats.poisson.sf(self.quota - 1, per_week * self.mu_per_weekly))

    def exact_inflow(self, target: float) -> float:
        """The weekly inflow at which P(hit) is exactly ``target``."""
        mu = optimize.brentq(lambda m: stats.poisson.sf(self.quota - 1, m) - target, 1e-9, 10 * self.quota + 50)
        return mu / self.mu_per_weekly

    def inflow_se(self, target: float, runs: int) -> float:
        """Delta method: SE(P) / (dP / dlambda) at the exact answer."""
        mu = self.exact_inflow(target) * self.mu_per_weekly
        slope = stats.poisson.pmf(self.quota - 1, mu) * self.mu_per_weekly
        return math.sqrt(target * (1 - target) / runs) / slope


ONE_STAGE = PoissonFunnel(horizon=56.0, rates=(0.4,), durations=(7.0,), quota=10)
TWO_STAGES = PoissonFunnel(horizon=70.0, rates=(0.5, 0.6), durations=(4.0, 6.0), quota=12)


@pytest.mark.parametrize("model", [ONE_STAGE, TWO_STAGES], ids=["one stage", "two stages"])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_magic_number_matches_the_poisson_closed_form(model, target):
    runs = 20_000
    answer = solve_magic_number(model.scenario(), target, runs=runs, seed=11)
    exact, se = model.exact_inflow(target), model.inflow_se(target, runs)
    assert abs(answer.weekly_opportunities - exact) <= Z * se, (answer.weekly_opportunities, exact, se)
    assert answer.p_hit_at_solution >= target
    # The closed-form P(hit) at the Monte Carlo answer is the target, up to the MC error.
    assert abs(model.p_hit(answer.weekly_opportunities) - target) <= Z * math.sqrt(target * (1 - target) / runs)
    assert answer.target == target
    assert answer.activity_per_stage[0]["per_week"] == answer.weekly_opportunities
    # The average-math answer ignores timing: quota / prod(p) per week of the horizon.
    average = model.quota / math.prod(model.rates) / (model.horizon / 7)
    assert answer.deterministic_weekly_opportunities == pytest.approx(average, rel=1e-12)


# --- monotone under common random numbers -----------------------------------------------


def assert_dominates(worse: SimulationResult, better: SimulationResult) -> None:
    """Replication by replication, ``better`` has at least the wins, revenue and hits of ``worse``.

    Exact comparisons: with common random numbers the better scenario wins a superset of
    deals, each no later, and revenue is the sum of the first W values of a replication's
    value stream. The only slack is for the order in which floating-point sums are added
    (1e-12 relative, far below one deal's value).
    """
    a, b = worse.outcomes, better.outcomes
    assert len(a) == len(b)
    assert (b.won_deals >= a.won_deals).all()
    assert (b.revenue >= a.revenue * (1 - 1e-12)).all()
    assert (b.converted >= a.converted).all()
    assert (better.hit >= worse.hit).all()
    assert better.p_hit >= worse.p_hit


def _mixed(a_mean: float = 0.6, b_rate: float = 0.5, per_week: float = 7.0) -> Scenario:
    """A Beta and a fixed rate, lognormal durations, an open pipeline, a revenue quota."""
    return scenario(
        [
            {
                "name": "A",
                "conversion": {"mean": a_mean, "concentration": 20},
                "duration": {"dist": "lognormal", "mean": 6, "sd": 3},
                "open": 5,
            },
            {
                "name": "B",
                "conversion": b_rate,
                "duration": {"dist": "lognormal", "mean": 9, "sd": 5},
                "open": 3,
            },
        ],
        quota={"revenue": 80_000},
        per_week=per_week,
    )


def _runs(engine: str) -> int:
    return 2_000 if engine == "vectorized" else 100


def _along(grid: list[Scenario], engine: str) -> list[float]:
    """Simulate each scenario with one seed; check each dominates the one before it."""
    results = [simulate(s, runs=_runs(engine), seed=3, engine=engine) for s in grid]
    for worse, better in zip(results, results[1:], strict=False):
        assert_dominates(worse, better)
    return [r.p_hit for r in results]


@pytest.mark.parametrize("engine", ENGINES)
def test_p_hit_never_falls_as_inflow_rises(engine):
    p = _along([_mixed(per_week=x) for x in (0.0, 2.0, 5.0, 5.01, 9.0, 15.0, 30.0)], engine)
    assert p == sorted(p) and p[-1] > p[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_p_hit_never_falls_as_a_fixed_rate_rises(engine):
    p = _along([_mixed(b_rate=r) for r in (0.0, 0.1, 0.35, 0.5, 0.501, 0.9, 1.0)], engine)
    assert p == sorted(p) and p[-1] > p[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_p_hit_never_falls_as_a_beta_mean_rises(engine):
    p = _along([_mixed(a_mean=m) for m in (0.05, 0.3, 0.6, 0.601, 0.9, 0.99)], engine)
    assert p == sorted(p) and p[-1] > p[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_p_hit_never_falls_as_stages_get_shorter(engine):
    base = _mixed()

    def shorter(factor: float) -> Scenario:
        stages = tuple(s.model_copy(update={"duration": s.duration.scaled(factor)}) for s in base.stages)
        return base.model_copy(update={"stages": stages})

    p = _along([shorter(f) for f in (2.0, 1.0, 0.9, 0.5, 0.1)], engine)
    assert p == sorted(p) and p[-1] > p[0]


_DURATIONS = st.one_of(
    st.floats(0.0, 30.0),  # a bare number: fixed days
    st.builds(lambda m, cv: {"dist": "lognormal", "mean": m, "sd": m * cv}, st.floats(0.5, 30), st.floats(0.05, 2)),
    st.builds(lambda m, cv: {"dist": "gamma", "mean": m, "sd": m * cv}, st.floats(0.5, 30), st.floats(0.1, 2)),
    st.builds(lambda m: {"dist": "exponential", "mean": m}, st.floats(0.5, 30)),
    st.builds(lambda lo, w: {"dist": "uniform", "low": lo, "high": lo + w}, st.floats(0, 20), st.floats(0.5, 20)),
    st.builds(
        lambda lo, a, b: {"dist": "triangular", "low": lo, "mode": lo + a, "high": lo + a + b},
        st.floats(0, 10),
        st.floats(0, 10),
        st.floats(0.5, 10),
    ),
    st.lists(st.floats(0, 40), min_size=1, max_size=6).map(lambda v: {"dist": "empirical", "values": v}),
)


@st.composite
def rate_pairs(draw) -> tuple[Scenario, Scenario]:
    """A random scenario, and the same one with one stage's rate (fixed or Beta mean) raised."""
    n = draw(st.integers(1, 3))
    beta = [draw(st.booleans()) for _ in range(n)]
    stages = [
        {
            "name": f"S{j}",
            "conversion": (
                {"mean": draw(st.floats(0.02, 0.98)), "concentration": draw(st.floats(1, 100))}
                if beta[j]
                else draw(st.floats(0.0, 1.0))
            ),
            "duration": draw(_DURATIONS),
            "open": draw(st.integers(0, 6)),
        }
        for j in range(n)
    ]
    j = draw(st.integers(0, n - 1))
    bounds = (0.01, 0.99) if beta[j] else (0.0, 1.0)
    low, high = sorted(draw(st.floats(*bounds)) for _ in range(2))
    common = {
        "horizon_days": draw(st.floats(7, 120)),
        "quota": {"deals": draw(st.integers(1, 15))},
        "per_week": draw(st.one_of(st.just(0.0), st.floats(0.05, 12))),
        "process": draw(st.sampled_from(["poisson", "fixed"])),
    }
    pair = []
    for rate in (low, high):
        changed = [dict(s) for s in stages]
        changed[j]["conversion"] = {**stages[j]["conversion"], "mean": rate} if beta[j] else rate
        pair.append(scenario(changed, **common))
    return pair[0], pair[1]


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(pair=rate_pairs())
def test_a_better_rate_never_loses_a_win_on_either_engine(pair):
    worse, better = pair
    for engine, runs in (("vectorized", 512), ("simpy", 20)):
        assert_dominates(
            simulate(worse, runs=runs, seed=5, engine=engine),
            simulate(better, runs=runs, seed=5, engine=engine),
        )


# --- convergence and cost of the solver --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "runs", "seed"),
    [("two stages", 5_000, 1), ("two stages", 2_003, 1), ("reference", 2_000, 0)],
)
def test_solver_converges_on_a_monotone_curve_within_20_runs(name, runs, seed):
    s = TWO_STAGES.scenario() if name == "two stages" else load_scenario(REFERENCE)
    target = 0.8
    answer = solve_magic_number(s, target, runs=runs, seed=seed)
    xs, ps = zip(*answer.curve, strict=True)
    assert list(xs) == sorted(xs) and list(ps) == sorted(ps)  # monotone in the inflow
    assert answer.evaluations <= 20
    assert dict(answer.curve)[answer.weekly_opportunities] == answer.p_hit_at_solution >= target
    assert answer.weekly_opportunities == min(x for x, p in answer.curve if p >= target)
    # Exact, not within a tolerance: a hair less inflow and fewer runs hit than the target needs.
    just_below = s.with_inflow(answer.weekly_opportunities * (1 - 1e-6))
    assert simulate(just_below, runs=runs, seed=seed).p_hit < target


def test_answer_is_stable_across_runs_and_seeds():
    target, answers = 0.8, []
    for runs, seed in ((4_000, 1), (8_000, 2), (3_003, 3)):
        answer = solve_magic_number(TWO_STAGES.scenario(), target, runs=runs, seed=seed).weekly_opportunities
        answers.append((answer, TWO_STAGES.inflow_se(target, runs)))
    exact = TWO_STAGES.exact_inflow(target)
    for x, se in answers:
        assert abs(x - exact) <= Z * se
    for (x, se_x), (y, se_y) in zip(answers, answers[1:], strict=False):
        assert abs(x - y) <= Z * math.hypot(se_x, se_y)


def test_a_higher_target_needs_more_inflow():
    s = TWO_STAGES.scenario()
    answers = [solve_magic_number(s, t, runs=5_000, seed=2).weekly_opportunities for t in (0.5, 0.8, 0.9)]
    assert answers[0] < answers[1] < answers[2]


def test_solver_handles_a_pipeline_just_below_a_target_that_is_not_a_multiple_of_one_over_runs():
    # The open pipeline alone hits in k of n runs with k / n < target, but k > target * n - 1/2
    # (target * n is not a whole number). P(hit) then has to rise by one more run to reach
    # the target: the solver must still find that inflow, not fail.
    s = scenario(
        [{"name": "Only", "conversion": 0.8, "duration": 7.0, "open": 10}],
        horizon_days=56,
        quota={"deals": 8},
        per_week=1.0,
    )
    target = 0.7
    cumulative = np.cumsum(simulate(s.with_inflow(0.0), runs=5_000, seed=0).hit)
    awkward = [n for n in range(500, 5_001) if cumulative[n - 1] < target * n and target * n - cumulative[n - 1] < 0.5]
    assert awkward, "no run count puts the open pipeline just below the target"
    runs = awkward[0]
    answer = solve_magic_number(s, target, runs=runs, seed=0)
    assert answer.p_hit_at_solution >= target
    just_below = s.with_inflow(answer.weekly_opportunities * (1 - 1e-6))
    assert simulate(just_below, runs=runs, seed=0).p_hit < target
    # The root finder of the SimPy engine gets there too, within its tolerance.
    found = solve_magic_number(s, target, runs=runs, seed=0, engine="simpy")
    below = max(x for x, p in found.curve if p < target)
    assert found.p_hit_at_solution >= target
    assert found.weekly_opportunities - below <= 1e-3 * (max(x for x, _ in found.curve) + found.weekly_opportunities)


def test_target_must_be_a_probability():
    for bad in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="target"):
            solve_magic_number(TWO_STAGES.scenario(), bad, runs=100)


# --- impossible targets ------------------------------------------------------------------

ALREADY = "open pipeline alone already hits"
TOO_SLOW = "no new opportunity can be won"
UNREACHABLE = {
    # 10 open deals that all convert (rate 1) within 5 days of a 30-day horizon: 10 >= 3 wins.
    "pipeline already hits": (
        [{"name": "Only", "conversion": 1.0, "duration": 5.0, "open": 10}],
        ALREADY,
    ),
    "a stage longer than the horizon": ([{"name": "Only", "conversion": 0.9, "duration": 45.0}], TOO_SLOW),
    "stages together longer than the horizon": (
        [
            {"name": "A", "conversion": 0.9, "duration": 20.0},
            {"name": "B", "conversion": 0.9, "duration": 15.0},
        ],
        TOO_SLOW,
    ),
    "durations that start after the horizon": (
        [{"name": "Only", "conversion": 0.9, "duration": {"dist": "uniform", "low": 31, "high": 40}}],
        TOO_SLOW,
    ),
    "a conversion rate of 0": (
        [
            {"name": "A", "conversion": 0.9, "duration": 2.0},
            {"name": "B", "conversion": 0.0, "duration": 2.0},
        ],
        TOO_SLOW,
    ),
}


def test_stages_far_longer_than_the_horizon_are_refused_without_simulating_huge_inflows():
    # A 1,000-day stage in a 70-day horizon: P(a deal is won in time) is about 1e-100, so
    # no inflow under the size limit can reach the target. The bound says so at once,
    # instead of doubling the inflow up to a million deals a run.
    slow = scenario(
        [{"name": "Only", "conversion": 0.5, "duration": {"dist": "lognormal", "mean": 1000, "sd": 100}}],
        horizon_days=70,
        quota={"deals": 3},
        per_week=5.0,
    )
    with pytest.raises(Unreachable, match="no new opportunity can be won"):
        solve_magic_number(slow, target=0.8, runs=200, seed=0)


def one_rep(quota_deals: int) -> Scenario:
    """One rep who works one deal at a time for 7 days and drops deals left waiting a day: 4 weeks."""
    doc = {
        "name": "one rep",
        "horizon_days": 28,
        "quota": {"deals": quota_deals},
        "inflow": {"per_week": 1.0},
        "deal_value": 1000,
        "stages": [{"name": "Only", "conversion": 1.0, "duration": 7.0, "per_rep": 1}],
        "capacity": {"reps": 1, "max_wait_days": 1.0},
    }
    return scenario_from_dict(doc)


def test_with_limited_reps_a_target_beyond_their_capacity_is_unreachable():
    # One slot for 28 days at 7 days a deal: 3 wins at most (the first arrival comes after
    # day 0), so 4 are never won, however many opportunities arrive; the search stops once
    # doubling the inflow wins no more runs, instead of simulating ever larger inflows.
    with pytest.raises(Unreachable, match="the reps' capacity caps P\\(hit\\): it levels off at 0.0%"):
        solve_magic_number(one_rep(4), target=0.5, runs=100, seed=0)


def test_with_limited_reps_a_reachable_target_is_solved_on_the_simpy_engine():
    simpy = {"runs": 200, "seed": 1, "engine": "simpy"}
    answer = solve_magic_number(one_rep(2), target=0.7, relative_tolerance=0.01, **simpy)
    assert answer.p_hit_at_solution >= 0.7
    at = simulate(one_rep(2).with_inflow(answer.weekly_opportunities), **simpy)
    below = simulate(one_rep(2).with_inflow(0.97 * answer.weekly_opportunities), **simpy)
    assert at.engine == "simpy" and at.p_hit == answer.p_hit_at_solution
    assert below.p_hit < 0.7 <= at.p_hit


def _unreachable(name: str) -> Scenario:
    stages, _ = UNREACHABLE[name]
    return scenario(stages, horizon_days=30, quota={"deals": 3}, per_week=2.0)


@pytest.mark.parametrize("name", list(UNREACHABLE))
def test_impossible_targets_raise_unreachable_with_the_reason(name):
    _, reason = UNREACHABLE[name]
    with pytest.raises(Unreachable, match=reason) as raised:
        solve_magic_number(_unreachable(name), 0.8, runs=500)
    if reason == ALREADY:
        assert "100.0% >= the target 80%" in str(raised.value)


@pytest.mark.parametrize("name", list(UNREACHABLE))
def test_cli_solve_without_an_answer_exits_1(name, tmp_path, capsys):
    path = tmp_path / "impossible.toml"
    path.write_text(scenario_to_toml(_unreachable(name)))
    assert exit_code(["solve", str(path), "--target", "0.8", "--runs", "300", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["weekly_opportunities"] is None and out["reachable"] is False
    assert UNREACHABLE[name][1] in out["reason"]
    assert exit_code(["solve", str(path), "--runs", "300"]) == 1
    assert "No magic number" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "abc", "-0.1", "nan"])
def test_cli_solve_rejects_a_bad_target(bad, capsys):
    assert exit_code(["solve", REFERENCE, "--target", bad, "--runs", "100"]) == 2
    assert "--target" in capsys.readouterr().err


def test_cli_solve_json(capsys):
    assert exit_code(["solve", REFERENCE, "--target", "0.8", "--runs", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        "weekly_opportunities",
        "p_hit_at_solution",
        "target",
        "deterministic_weekly_opportunities",
        "activity_per_stage",
        "evaluations",
        "curve",
    } <= set(out)
    assert out["target"] == 0.8 and out["p_hit_at_solution"] >= 0.8 and out["weekly_opportunities"] > 0
    assert out["evaluations"] <= 20
    assert [row["name"] for row in out["activity_per_stage"]] == ["Discovery", "Proposal", "Negotiation", "won"]
    assert out["activity_per_stage"][0]["per_week"] == out["weekly_opportunities"]


# --- DOMAIN.md's worked examples ------------------------------------------------------------


@pytest.mark.parametrize(
    "deal_value",
    [
        100_000,
        {"dist": "uniform", "low": 50_000, "high": 150_000},
        {"dist": "triangular", "low": 50_000, "mode": 100_000, "high": 150_000},
        {"dist": "exponential", "mean": 100_000},
        {"dist": "lognormal", "mean": 100_000, "sd": 40_000},
        {"dist": "gamma", "mean": 100_000, "sd": 30_000},
        {"dist": "empirical", "values": [50_000, 100_000, 150_000]},
    ],
    ids=["fixed", "uniform", "triangular", "exponential", "lognormal", "gamma", "empirical"],
)
def test_deterministic_magic_number_is_domain_md_worked_example(deal_value):
    # $5M at a mean deal of $100,000 and a 25% win rate: 200 opportunities a year.
    ae_year = scenario_from_dict(
        {
            "name": "AE year",
            "horizon_weeks": 52,
            "quota": {"revenue": 5_000_000},
            "inflow": {"per_week": 3.85},
            "deal_value": deal_value,
            "stages": [{"name": "Opportunity", "conversion": 0.25, "duration": 60}],
        }
    )
    assert deterministic_weekly_opportunities(ae_year) == pytest.approx(200 / 52, rel=1e-12, abs=0)


def test_shipped_ae_year_is_the_worked_example():
    ae_year = load_scenario(ROOT / "scenarios" / "ae_year.toml")
    assert deterministic_weekly_opportunities(ae_year) == pytest.approx(200 / 52, rel=1e-12, abs=0)


def test_activity_per_stage_is_domain_md_outbound_sdr_funnel():
    sdr = load_scenario(ROOT / "scenarios" / "outbound_sdr.toml")
    rows = activity_per_stage(sdr, 100)
    assert [row["name"] for row in rows] == ["Activity", "Conversation", "Qualified", "won"]
    # 100 activities -> 40 conversations -> 4.4 qualified -> 3.212 pipeline, in exact arithmetic.
    exact = [Fraction(100), Fraction(40), Fraction(44, 10), Fraction(3212, 1000)]
    for row, value in zip(rows, exact, strict=True):
        assert row["per_week"] == pytest.approx(float(value), rel=1e-12, abs=0)


# --- a realistic quota --------------------------------------------------------------------


def _result_of(values, unit: str = "deals", current: float = 10) -> SimulationResult:
    """A SimulationResult holding given per-replication results (a pure-function check)."""
    values = np.asarray(values)
    n = len(values)
    quota = {"deals": int(current)} if unit == "deals" else {"revenue": float(current)}
    s = scenario([{"name": "Only", "conversion": 0.5, "duration": 1.0}], quota=quota)
    won = values.astype(np.int64) if unit == "deals" else np.zeros(n, dtype=np.int64)
    revenue = np.zeros(n) if unit == "deals" else values.astype(float)
    outcomes = Outcomes(
        won_deals=won,
        revenue=revenue,
        weekly_revenue=np.repeat(revenue[:, None], s.n_weeks, axis=1),
        entered=won[:, None].copy(),
        converted=won[:, None].copy(),
        rates=np.full((n, 1), 0.5),
    )
    return SimulationResult(s, 0, "vectorized", outcomes)


def assert_largest_quota(result: SimulationResult, confidence: float) -> dict:
    """The returned quota is hit in >= confidence of runs; every larger result value in fewer.

    A share of runs is k / n, as ``p_hit_at_quota`` reports it: 55 of 100 runs is 55%, so
    it meets a confidence of 0.55.
    """
    answer = realistic_quota(result, confidence)
    values = result.result
    n = len(values)
    assert answer["quota"] in values
    assert answer["p_hit_at_quota"] == np.count_nonzero(values >= answer["quota"]) / n >= confidence
    larger = np.unique(values[values > answer["quota"]])
    shares = (n - np.searchsorted(np.sort(values), larger, side="left")) / n  # P(result >= each)
    assert (shares < confidence).all(), f"quota {answer['quota']}, but {larger[0]} is hit in {shares[0]:.6g} of runs"
    np.testing.assert_allclose(p_hit_by_quota(result, larger), shares, rtol=0, atol=1e-12)
    return answer


@pytest.fixture(scope="module")
def poisson_wins() -> SimulationResult:
    # The two-stage Poisson funnel at 5 a week: wins ~ Poisson(5 * prod(p) * (H - D) / 7).
    return simulate(TWO_STAGES.scenario(per_week=5.0), runs=20_000, seed=2)


@pytest.mark.parametrize("confidence", [0.5, 0.7, 0.9])
def test_realistic_quota_matches_the_poisson_quantile(poisson_wins, confidence):
    answer = assert_largest_quota(poisson_wins, confidence)
    mu = 5.0 * TWO_STAGES.mu_per_weekly
    quota = answer["quota"]
    assert quota == int(quota)
    # The closed form: the largest q with P(Poisson(mu) >= q) >= c. The returned quota is a
    # whole number found from n runs, so allow the MC error of a proportion on either side.
    se = math.sqrt(confidence * (1 - confidence) / poisson_wins.runs)
    assert stats.poisson.sf(quota - 1, mu) >= confidence - Z * se
    assert stats.poisson.sf(quota, mu) <= confidence + Z * se
    assert answer["unit"] == "deals" and answer["confidence"] == confidence


def test_attainment_is_result_over_the_current_quota(poisson_wins):
    answer = realistic_quota(poisson_wins, 0.7)
    attainment = poisson_wins.result / TWO_STAGES.quota
    assert answer["current_quota"] == TWO_STAGES.quota
    assert answer["attainment"]["mean"] == pytest.approx(poisson_wins.result.mean() / TWO_STAGES.quota, rel=1e-12)
    p10, p50, p90 = np.percentile(attainment, [10, 50, 90])
    assert answer["attainment"] == pytest.approx({"mean": attainment.mean(), "p10": p10, "p50": p50, "p90": p90})
    assert answer["p_hit_at_current_quota"] == poisson_wins.p_hit


def test_realistic_revenue_quota_on_the_reference_scenario():
    result = simulate(load_scenario(REFERENCE), runs=2_000, seed=1)
    answer = assert_largest_quota(result, 0.7)
    assert answer["unit"] == "revenue"
    assert answer["quota"] < answer["current_quota"]  # the reference quota is hit less than 70% of the time


@pytest.mark.parametrize(
    ("confidence", "runs"),
    # c * n is a whole number, but in floating point 0.07 * 100 = 7.000000000000001.
    [(0.7, 20_000), (0.5, 1), (0.99, 7), (0.07, 100), (0.55, 100), (0.56, 100), (0.81, 20_000)],
)
def test_realistic_quota_is_the_largest_for_every_confidence_and_run_count(confidence, runs):
    assert_largest_quota(_result_of(np.arange(runs)), confidence)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    values=st.lists(st.integers(0, 30), min_size=1, max_size=300),
    confidence=st.floats(0.001, 0.999),
)
def test_realistic_quota_property(values, confidence):
    assert_largest_quota(_result_of(values), confidence)


def test_cli_quota_json(tmp_path, capsys):
    assert exit_code(["quota", REFERENCE, "--confidence", "0.7", "--runs", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"quota", "confidence", "unit", "attainment"} <= set(out)
    assert set(out["attainment"]) == {"mean", "p10", "p50", "p90"}
    assert out["unit"] == "revenue" and out["confidence"] == 0.7
    path = tmp_path / "deals.toml"
    path.write_text(scenario_to_toml(TWO_STAGES.scenario()))
    assert exit_code(["quota", str(path), "--confidence", "0.9", "--runs", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unit"] == "deals" and out["quota"] == int(out["quota"])
    for bad in ("0", "1", "2", "x"):
        assert exit_code(["quota", REFERENCE, "--confidence", bad]) == 2


# --- sensitivity ----------------------------------------------------------------------------


def test_conversion_levers_stay_within_0_and_1():
    s = scenario(
        [
            {"name": "A", "conversion": 0.95, "duration": 3},
            {"name": "B", "conversion": {"mean": 0.97, "concentration": 40}, "duration": 3},
            {"name": "C", "conversion": {"mean": 0.5, "concentration": 40}, "duration": 3},
            {"name": "D", "conversion": 1.0, "duration": 3},
        ]
    )
    conversion = {d["stage"]: (d, variant) for d, variant in levers(s, 0.1) if d["kind"] == "conversion"}
    description, variant = conversion["A"]
    assert description["to"] == 1.0 and variant.stages[0].conversion == 1.0  # 0.95 * 1.1 capped
    description, variant = conversion["B"]
    rate = variant.stages[1].conversion
    assert isinstance(rate, BetaRate) and 0.97 < rate.mean() == description["to"] < 1.0
    assert 0.0 < min(rate.beta_parameters())  # still a proper Beta
    assert conversion["C"][0]["to"] == pytest.approx(0.55, rel=1e-12)
    assert conversion["D"][0]["to"] == 1.0
    for _, variant in levers(s, 0.9):
        for stage in variant.stages:
            mean = stage.conversion.mean() if isinstance(stage.conversion, BetaRate) else stage.conversion
            assert 0.0 <= mean <= 1.0


def test_sensitivity_matches_the_poisson_closed_form():
    # One stage, fixed rate p, fixed duration D, deals quota q: won ~ Poisson(lambda/7 * p * (H - D)).
    horizon, per_week, rate, delay, quota, step, runs = 70.0, 5.0, 0.4, 7.0, 18, 0.1, 20_000
    s = scenario(
        [{"name": "Only", "conversion": rate, "duration": delay}],
        horizon_days=horizon,
        quota={"deals": quota},
        per_week=per_week,
    )
    answer = sensitivity(s, step=step, runs=runs, seed=3)
    rows = {row["kind"]: row for row in answer["levers"]}

    def mu(lam=per_week, p=rate, d=delay):
        return lam / 7 * p * (horizon - d)

    def p_hit(m):
        return stats.poisson.sf(quota - 1, m)

    value = VALUE["mean"]
    improved = {  # the mean number of wins once each lever has improved
        "conversion": mu(p=rows["conversion"]["to"]),
        "duration": mu(d=rows["duration"]["to"]),
        "inflow": mu(lam=rows["inflow"]["to"]),
    }
    # (change in P(hit), change in mean revenue), exactly.
    exact = {kind: (p_hit(m) - p_hit(mu()), (m - mu()) * value) for kind, m in improved.items()}
    exact["deal_value"] = (0.0, mu() * value * step)
    # A better rate scales E[won] linearly: the change is mean revenue * step.
    assert exact["conversion"][1] == pytest.approx(mu() * value * step, rel=1e-9)
    for kind, (d_hit, d_revenue) in exact.items():
        row = rows[kind]
        assert abs(row["p_hit_change"] - d_hit) <= Z * row["p_hit_change_se"], (kind, row, d_hit)
        assert abs(row["revenue_change"] - d_revenue) <= Z * row["revenue_change_se"], (kind, row, d_revenue)
    assert rows["deal_value"]["p_hit_change"] == 0.0  # a deals quota does not care about value
    assert answer["base"]["p_hit"] == simulate(s, runs=runs, seed=3).p_hit


@pytest.mark.parametrize("engine", ENGINES)
def test_sensitivity_is_sorted_and_improvements_never_hurt(engine):
    answer = sensitivity(_mixed(), step=0.1, runs=_runs(engine), seed=4, engine=engine)
    effects = [abs(row["p_hit_change"]) for row in answer["levers"]]
    assert effects == sorted(effects, reverse=True)
    assert len(answer["levers"]) == 2 * 2 + 2
    for row in answer["levers"]:
        assert row["p_hit_change"] >= 0 and row["revenue_change"] >= 0, row
        assert row["p_hit_change_se"] >= 0 and row["revenue_change_se"] >= 0


def test_sensitivity_on_two_workers_or_lever_by_lever_gives_the_same_answer():
    one = sensitivity(_mixed(), step=0.1, runs=1_000, seed=4)
    assert sensitivity(_mixed(), step=0.1, runs=1_000, seed=4, jobs=2) == one
    # Lever by lever: each change is the paired difference of two separate simulations.
    base = simulate(_mixed(), runs=1_000, seed=4)
    for description, variant in levers(_mixed(), 0.1):
        row = next(r for r in one["levers"] if r["lever"] == description["lever"])
        alone = simulate(variant, runs=1_000, seed=4)
        assert (row["p_hit_change"], row["p_hit_change_se"]) == paired_difference(alone.hit, base.hit)


def test_cli_sensitivity_json(capsys):
    assert exit_code(["sensitivity", REFERENCE, "--step", "0.1", "--runs", "1000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"base", "step", "runs", "seed", "levers"} <= set(out)
    assert set(out["base"]) == {"p_hit", "revenue_mean"} and out["step"] == 0.1
    assert len(out["levers"]) == 2 * 3 + 2
    keys = {
        "lever",
        "kind",
        "stage",
        "from",
        "to",
        "p_hit_change",
        "p_hit_change_se",
        "revenue_change",
        "revenue_change_se",
    }
    assert all(set(row) == keys for row in out["levers"])
    assert {row["kind"] for row in out["levers"]} == {"conversion", "duration", "inflow", "deal_value"}
    for bad in ("0", "1", "-0.1", "x"):
        assert exit_code(["sensitivity", REFERENCE, "--step", bad]) == 2

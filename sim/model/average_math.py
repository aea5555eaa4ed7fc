"""The plan on averages: every quantity at its mean, as a spreadsheet would, and what it implies.

Pure arithmetic on a scenario (no simulation): the expected funnel, the average-math
weekly opportunities for the quota, the weekly activity per stage, and the bound on a
new deal's chance of being won in time that the magic number starts from.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.funnel import effective_conversion, mean_extra_days
from sim.model.scenario import DAYS_PER_MONTH, Scenario, rate_mean
from sim.model.team import is_new, rep_scenarios


def funnel_rates(scenario: Scenario) -> list[float]:
    """Mean effective conversion rate of each stage.

    The stage's mean rate times P(the touches a deal needs are within ``max_touches``)
    times P(its meeting is held): ``p * F(max_touches) * ((1 - ns) + ns * r * (1 - l))``
    (:func:`sim.model.funnel.effective_conversion`); the plain mean rate for a stage without
    follow-ups or no-shows. ``stale_after_days`` is left out: average math ignores timing
    beyond mean durations, and at the mean a deal never stalls.
    """
    return [effective_conversion(stage, rate_mean(stage.conversion)) for stage in scenario.stages]


def average_math(scenario: Scenario) -> dict:
    """The plan built on averages: every quantity at its mean, including stage durations.

    New opportunities arrive at the mean rate; one that arrives at day t is won at
    t + (sum of mean stage durations) with probability (product of mean rates), so only
    those arriving early enough count. An open deal in stage j is won if the mean
    remaining time fits in the horizon. Deals are worth the mean deal value. Rates are
    the effective ones of :func:`funnel_rates`, and a stage's mean time adds what
    follow-ups and reschedules add for a converting deal
    (:func:`sim.model.funnel.mean_extra_days`).

    Returns
    -------
    dict
        ``won_deals``, ``revenue``, ``hit`` (whether that plan meets the quota) and
        ``stages`` (deals entering and converting per stage, in the same plan).
    """
    rates = funnel_rates(scenario)
    means = [stage.duration.mean() + mean_extra_days(stage) for stage in scenario.stages]
    horizon, per_day = scenario.horizon, scenario.inflow.per_week / 7.0
    n = len(rates)

    def flow_weight(days: float) -> float:  # arrivals of a unit flow in the first `days` days
        return float(scenario.weight_at(days)) if days > 0 else 0.0

    entered = [0.0] * n
    converted = [0.0] * n
    # Deals entering stage j at day `start` (a new cohort or the open pipeline).
    # Listed open deals count like anonymous ones here: averages know no ages.
    listed = [sum(deal.stage == stage.name for deal in scenario.open_deals) for stage in scenario.stages]
    cohorts = [(0, per_day, 0.0, True)] + [
        (j, float(stage.open + listed[j]), 0.0, False) for j, stage in enumerate(scenario.stages)
    ]
    for first, count, start, is_flow in cohorts:
        day = start
        volume = count
        for j in range(first, n):
            # A flow of `per_day` deals a day keeps entering stage j until the horizon.
            # (W(t) = t without seasonal multipliers.)
            entered[j] += volume * flow_weight(horizon - day) if is_flow else volume * (day <= horizon)
            day += means[j]
            volume *= rates[j]
            converted[j] += volume * flow_weight(horizon - day) if is_flow else volume * (day <= horizon)
    won = converted[-1]
    revenue = won * scenario.deal_value.mean()
    result = revenue if scenario.quota.unit == "revenue" else won
    return {
        "won_deals": won,
        "revenue": revenue,
        "hit": bool(result >= scenario.quota.target),
        "stages": [
            {"name": stage.name, "entered": entered[j], "converted": converted[j]}
            for j, stage in enumerate(scenario.stages)
        ],
    }


def team_inflow_reps(scenario: Scenario) -> float:
    """How many full reps' inflow a ``[team]`` brings over the horizon (1 without a team).

    A new rep's inflow is 0 until it is hired, ``S = hire_month`` months in, then rises
    linearly to full over ``R = ramp_months`` months (:mod:`sim.model.team`). With
    ``x = T - S`` days of the horizon ``T`` after the hire, it brings ``x**2 / (2 R T)`` of a
    full rep's inflow when ``x <= R`` and ``(x - R / 2) / T`` after (0 when ``x <= 0``).
    """
    team = scenario.team
    if team is None:
        return 1.0
    if not team.new_reps:
        return float(team.reps)
    ramp, horizon = team.ramp_months * DAYS_PER_MONTH, scenario.horizon
    after = max(0.0, horizon - team.hire_month * DAYS_PER_MONTH)
    share = (after**2 / (2 * ramp) if after <= ramp else after - ramp / 2) / horizon
    return team.reps - team.new_reps + team.new_reps * share


def deterministic_weekly_opportunities(scenario: Scenario) -> float:
    """DOMAIN.md's magic number: weekly new opportunities that average math says it takes.

    Quota divided by the mean deal value (for a revenue quota) and by the product of
    the mean conversion rates, spread over the weeks of the horizon; timing and the
    open pipeline are ignored, as in the worked example ($5M / $100,000 / 25% = 200 a
    year, about 3.85 a week). With a ``[team]`` the inflow is each rep's, so the number
    is per rep: divided by :func:`team_inflow_reps`.
    """
    deals = scenario.quota.target
    if scenario.quota.unit == "revenue":
        deals = deals / scenario.deal_value.mean()
    product = math.prod(funnel_rates(scenario))
    if product <= 0:
        return math.inf
    return deals / product / (scenario.horizon / 7.0) / team_inflow_reps(scenario)


def activity_per_stage(scenario: Scenario, weekly_opportunities: float) -> list[dict]:
    """Weekly volume entering each stage when ``weekly_opportunities`` enter the first."""
    out, volume = [], weekly_opportunities
    for stage, rate in zip(scenario.stages, funnel_rates(scenario), strict=True):
        out.append({"name": stage.name, "per_week": volume})
        volume *= rate
    out.append({"name": "won", "per_week": volume})
    return out


def team_average_math(scenario: Scenario) -> dict:
    """The plan on averages for the whole team: the sum of every rep's average math.

    Returns the keys of :func:`sim.model.average_math.average_math` (``won_deals``, ``revenue``,
    ``hit`` against the team quota, ``stages``) plus ``average_rep``: the average math of
    the average experienced rep (won deals, revenue) and whether it makes ``rep_quota``:
    a quota set from the average rep is what this plan "makes".
    """
    team = scenario.team
    plans = [average_math(rep) for rep in rep_scenarios(scenario)]
    won = sum(p["won_deals"] for p in plans)
    revenue = sum(p["revenue"] for p in plans)
    result = revenue if scenario.quota.unit == "revenue" else won
    stages = [
        {
            "name": stage.name,
            "entered": sum(p["stages"][j]["entered"] for p in plans),
            "converted": sum(p["stages"][j]["converted"] for p in plans),
        }
        for j, stage in enumerate(scenario.stages)
    ]
    # The average experienced rep (the open pipeline's remainder makes reps differ slightly);
    # with only new reps, the average new one.
    experienced = [p for p, new in zip(plans, is_new(scenario), strict=True) if not new] or plans
    rep_won = float(np.mean([p["won_deals"] for p in experienced]))
    rep_revenue = float(np.mean([p["revenue"] for p in experienced]))
    rep_result = rep_revenue if scenario.quota.unit == "revenue" else rep_won
    return {
        "won_deals": won,
        "revenue": revenue,
        "hit": bool(result >= scenario.quota.target),
        "stages": stages,
        "average_rep": {"won_deals": rep_won, "revenue": rep_revenue, "hit": bool(rep_result >= team.rep_quota)},
    }


def new_deal_win_bound(scenario: Scenario) -> float:
    """An upper bound on the probability that a new deal is won within the horizon.

    A deal is won only if it converts at every stage (mean rates multiply, the stages
    being independent) and every stage's duration fits in the horizon on its own; the
    product of those probabilities bounds P(won in time) from above. It is 0 when the
    stages' shortest durations add up to more than the horizon.
    """
    if sum(float(stage.duration.ppf(0.0)) for stage in scenario.stages) > scenario.horizon:
        return 0.0
    bound = math.prod(funnel_rates(scenario))
    for stage in scenario.stages:
        bound *= float(stage.duration.cdf(scenario.horizon))
    return bound

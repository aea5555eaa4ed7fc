"""A team of reps as one ordinary scenario per rep: rates drawn from the team's spread, ramp, pipeline split.

A scenario with a ``[team]`` section describes ``team.reps`` reps drawn from one
population. :func:`simulate_team` turns it into one scenario per rep
(:func:`rep_scenarios`) and runs each with :func:`sim.runner.simulate`, so both engines
run teams and every rep's numbers are those of an ordinary scenario:

* each stage's conversion rate becomes a Beta rate with the stage's mean m and the
  team's ``rate_concentration`` c. A Beta rate is drawn once per replication, so in
  every replication each rep is a fresh draw from the population Beta(m c, (1 - m) c):
  the spread of the rates is the spread between reps. A stage whose rate is already a
  Beta keeps its mean and takes c (the team's spread replaces the scenario's
  uncertainty about the rate; reps do not share a common draw). A rate of exactly 0 or
  1 stays fixed: it has no spread;
* ``[inflow] per_week`` is each rep's inflow. The last ``new_reps`` reps are new: their
  inflow is 0 until ``hire_month`` (default 0), then rises linearly to full over
  ``ramp_months`` months, given to
  the engines as one ``[inflow] multipliers`` factor per week, each the ramp's average
  over that week (times the scenario's own seasonal factor when it has one), so a new
  rep's expected inflow is exactly the integral of the ramp;
* with ``[inflow] dispersion`` each rep's funnel keeps it, and each rep draws its own
  inflow level from its own seed (below): reps' inflows swing independently, so a
  team's total swings less, relatively, than one rep's;
* ``deal_value_dispersion`` likewise: each rep keeps it and draws its own deal value
  level, so reps' average deal values swing independently;
* the scenario's open pipeline is the team's, split evenly: ``open = n`` in a stage
  gives each rep ``n // reps`` deals and one more to the first ``n % reps`` reps, and
  listed open deal *i* goes to rep ``i % reps`` (``reps``: the reps there on day 0, so
  without new reps hired later, with ``hire_month``);
* rep *r* is simulated with its own root seed, drawn from
  ``SeedSequence(seed, spawn_key=(TEAM_STREAM, r))``: it depends only on the seed and
  *r*, never on the number of reps, runs or workers, and it shares no stream with
  another rep or with an ordinary run of the same seed. So reps are independent, the
  same seed gives the same team, and adding a rep leaves the others as they were.

Reps do not interact (no shared capacity: a ``[team]`` cannot be combined with
``[capacity]``), so the team total of a replication is the sum of its reps' results.
"""

from __future__ import annotations

import numpy as np

from sim.model.scenario import DAYS_PER_MONTH, BetaRate, Quota, Scenario, rate_mean

DAYS_PER_YEAR = 365.25


def _team(scenario: Scenario):
    if scenario.team is None:
        raise ValueError("team: the scenario has no [team] section")
    return scenario.team


def is_new(scenario: Scenario) -> np.ndarray:
    """Per rep, whether it is new (ramping): the last ``new_reps`` reps."""
    team = _team(scenario)
    return np.arange(team.reps) >= team.reps - team.new_reps


def ramp_multipliers(scenario: Scenario, ramp_months: float, hire_month: float = 0.0) -> tuple[float, ...]:
    """Weekly inflow factors of a new rep: the linear ramp (times any seasonality) averaged per week.

    The ramp is ``clip((t - H) / R, 0, 1)``, with H = ``hire_month`` (the rep starts then)
    and R = ``ramp_months``, in months of :data:`~sim.model.scenario.DAYS_PER_MONTH` days.
    The factor of week k is the integral of ramp x seasonal factor over that week (the
    last week ends at the horizon) divided by its length, so the expected inflow of the
    rep is exact; only its timing within a
    week is flattened.

    Returns
    -------
    tuple of float, one per week of the horizon (``scenario.n_weeks``)
    """
    ramp_days, start = ramp_months * DAYS_PER_MONTH, hire_month * DAYS_PER_MONTH
    weeks = np.minimum(np.arange(scenario.n_weeks + 1) * 7.0, scenario.horizon)
    seasons = scenario.inflow_knots()[0]
    # On each piece between consecutive cuts the seasonal factor is constant and the ramp
    # linear, so the ramp at the midpoint times the seasonal weight of the piece is exact.
    kinks = np.minimum([start, start + ramp_days], scenario.horizon)
    cuts = np.unique(np.concatenate([weeks, seasons, kinks]))
    low, high = cuts[:-1], cuts[1:]
    ramp = np.clip(((low + high) / 2 - start) / ramp_days, 0.0, 1.0)
    weight = (scenario.weight_at(high) - scenario.weight_at(low)) * ramp
    week = np.clip(np.searchsorted(weeks, low, side="right") - 1, 0, scenario.n_weeks - 1)
    per_week = np.bincount(week, weights=weight, minlength=scenario.n_weeks)
    return tuple(float(x) for x in per_week / np.diff(weeks))


def _rep_rate(conversion, concentration: float):
    m = rate_mean(conversion)
    return BetaRate(mean=m, concentration=concentration) if 0.0 < m < 1.0 else float(m)


def _share(total: int, reps: int, rep: int) -> int:
    """Rep ``rep``'s part of ``total`` deals split evenly (the remainder to the first reps)."""
    return total // reps + (rep < total % reps)


def rep_scenarios(scenario: Scenario) -> list[Scenario]:
    """One ordinary scenario per rep (no ``[team]``): its rates, inflow, open deals and quota.

    The rep's quota is ``team.rep_quota`` in the scenario's unit, so the rep scenario's
    P(hit) is the rep's chance of making quota. See the module docstring for the rest.
    """
    team = _team(scenario)
    new = is_new(scenario)
    ramped = None
    if team.new_reps:
        multipliers = ramp_multipliers(scenario, team.ramp_months, team.hire_month)
        ramped = scenario.inflow.model_copy(update={"multipliers": multipliers})
    if scenario.quota is None or team.rep_quota is None:  # a team without quotas (what the runner simulates)
        quota = None
    elif scenario.quota.unit == "revenue":
        quota = Quota(revenue=team.rep_quota)
    else:
        quota = Quota(deals=int(team.rep_quota))
    # The open pipeline is held by the reps there on day 0 (new reps hired later hold none).
    holders = team.reps - team.new_reps if team.hire_month > 0 and team.new_reps < team.reps else team.reps
    out = []
    for rep in range(team.reps):
        held = rep < holders
        stages = tuple(
            stage.model_copy(
                update={
                    "conversion": _rep_rate(stage.conversion, team.rate_concentration),
                    "open": _share(stage.open, holders, rep) if held else 0,
                }
            )
            for stage in scenario.stages
        )
        update = {
            "team": None,
            "quota": quota,
            "stages": stages,
            "open_deals": scenario.open_deals[rep::holders] if held else (),
        }
        if new[rep]:
            update["inflow"] = ramped
        out.append(scenario.model_copy(update=update))
    return out


def team_cost(scenario: Scenario) -> float | None:
    """What the team's reps cost over the horizon: each rep's ``cost_per_year`` for the days employed.

    Experienced reps are paid for the whole horizon, new reps from ``hire_month`` on. None
    without a ``[team]`` or without ``cost_per_year``.
    """
    team = scenario.team
    if team is None or team.cost_per_year is None:
        return None
    new_days = max(0.0, scenario.horizon - team.hire_month * DAYS_PER_MONTH)
    days = (team.reps - team.new_reps) * scenario.horizon + team.new_reps * new_days
    return team.cost_per_year * days / DAYS_PER_YEAR

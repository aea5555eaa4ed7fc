"""An organisation of segments (territories, product lines, channels) as the funnels that are simulated.

A scenario with ``[[segments]]`` is several independent funnels over one horizon:
:meth:`~sim.model.scenario.Scenario.segment` makes each an ordinary scenario, and the
total of a replication is the sum of the segments'. Segment *i* is simulated with its
own root seed (:func:`sim.engines.streams.segment_seed`), so it gives the same numbers
inside the organisation as on its own, and adding a segment leaves the others as they were.
"""

from __future__ import annotations

from sim.model.average_math import average_math, team_average_math
from sim.model.scenario import Scenario
from sim.model.team import team_cost


def segment_scenarios(scenario: Scenario) -> list[Scenario]:
    """Each segment as an ordinary scenario (see :meth:`Scenario.segment`); empty without segments."""
    return [scenario.segment(i) for i in range(len(scenario.segments))]


def funnels(scenario: Scenario) -> list[Scenario]:
    """The scenarios simulated on their own: each segment's, or the scenario itself without segments."""
    return segment_scenarios(scenario) or [scenario]


def funnel_count(scenario: Scenario) -> int:
    """The funnels a simulation of the scenario runs, for progress: each rep of a team, in each segment."""
    return sum(1 if f.team is None else f.team.reps for f in funnels(scenario))


def funnel_plan(funnel: Scenario) -> dict:
    """Average math of one funnel (no segments): a team's is the sum over its reps."""
    return team_average_math(funnel) if funnel.team is not None else average_math(funnel)


def plan_on_averages(scenario: Scenario) -> dict:
    """Average math of the whole scenario: the sum over its segments (a team's: over its reps).

    Returns ``won_deals``, ``revenue`` and ``hit`` (whether the sum makes the scenario's
    quota). Each segment's timing counts, as in :func:`sim.model.average_math.average_math`.
    """
    plans = [funnel_plan(s) for s in funnels(scenario)]
    won = sum(p["won_deals"] for p in plans)
    revenue = sum(p["revenue"] for p in plans)
    result = revenue if scenario.quota.unit == "revenue" else won
    return {"won_deals": won, "revenue": revenue, "hit": bool(result >= scenario.quota.target)}


def reps(scenario: Scenario) -> int | None:
    """Reps over the whole scenario: each funnel's team or ``[capacity]`` reps; None if no funnel says."""
    known = [s.team.reps if s.team else s.capacity.reps for s in funnels(scenario) if s.team or s.capacity]
    return sum(known) if known else None


def cost_of_reps(scenario: Scenario) -> float | None:
    """What the reps cost over the horizon (:func:`sim.model.team.team_cost`), summed; None if no team gives a cost."""
    costs = [c for c in (team_cost(s) for s in funnels(scenario)) if c is not None]
    return sum(costs) if costs else None

"""The magic number: the weekly new opportunities at which P(hit quota) reaches a target.

With one seed for every inflow (common random numbers) P(hit) is a non-decreasing step
function of the inflow. Where deals do not wait for each other the answer is exact
from one simulation of each deal's threshold inflow; otherwise Brent's method finds the
step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from sim.engines.streams import segment_seed
from sim.model.average_math import (
    activity_per_stage,
    deterministic_weekly_opportunities,
    new_deal_win_bound,
)
from sim.model.scenario import Quota, Scenario, max_weekly_inflow
from sim.model.segments import funnel_count, funnel_plan, segment_scenarios
from sim.runner import Engine, InflowThresholds, Request, independent_deals, inflow_thresholds, run
from sim.runner.execute import Progress
from sim.runner.results import quota_result


class Unreachable(ValueError):
    """The question has no numeric answer for this scenario; the message says why."""


@dataclass
class MagicNumber:
    """Weekly new opportunities needed for P(hit) to reach a target."""

    weekly_opportunities: float
    p_hit_at_solution: float
    target: float
    deterministic_weekly_opportunities: float
    activity_per_stage: list[dict]
    evaluations: int
    curve: list[tuple[float, float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready form (the curve of evaluated points included)."""
        return {
            "weekly_opportunities": self.weekly_opportunities,
            "p_hit_at_solution": self.p_hit_at_solution,
            "target": self.target,
            "deterministic_weekly_opportunities": self.deterministic_weekly_opportunities,
            "activity_per_stage": self.activity_per_stage,
            "evaluations": self.evaluations,
            "curve": [{"weekly_opportunities": x, "p_hit": p} for x, p in self.curve],
        }


def solve_magic_number(
    scenario: Scenario,
    target: float,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    relative_tolerance: float = 1e-3,
    progress: Progress | None = None,
) -> MagicNumber:
    """Weekly new opportunities at which P(hit quota) reaches ``target``.

    With one seed for every evaluation, P(hit) is a non-decreasing step function of the
    inflow. Where deals do not wait for reps (:func:`sim.runner.independent_deals`), one
    simulation gives each replication's critical inflow (:func:`sim.runner.inflow_thresholds`;
    for a team, the team total against the team quota) and the answer is exact: their
    ``target`` quantile. Otherwise (the SimPy engine, or limited reps) Brent's method
    (``scipy.optimize.brentq``) finds the step where P(hit) crosses the target,
    bracketed from the average-math answer, to ``relative_tolerance``.

    Parameters
    ----------
    scenario : Scenario
    target : float
        Wanted P(hit), strictly between 0 and 1.
    runs, seed, jobs, engine
        As for :func:`sim.runner.simulate`.
    relative_tolerance : float
        Width of the final bracket relative to the answer (root finding).
    progress : callable, optional
        Called as ``progress(done, total)`` as replications finish, over every simulation
        of the search; ``total`` grows as the search asks for another simulation.

    Returns
    -------
    MagicNumber

    Raises
    ------
    Unreachable
        If the open pipeline alone already reaches the target, or if no inflow can
        (deals cannot close in time, or the size limit is reached first).
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target: must be strictly between 0 and 1, got {target}")
    if scenario.segments:
        raise ValueError("segments: each segment has its own inflow; ask solve_segment_magic_numbers")
    request = Request.of(scenario, runs=runs, seed=seed, jobs=jobs, engine=engine)
    limits = _Limits.of(scenario, target, runs)
    tally = _Tally(progress)
    if independent_deals(scenario, engine):
        solution, p_hit, simulations, curve = _solve_by_critical_inflows(scenario, limits, request, tally)
    else:
        solution, p_hit, simulations, curve = _solve_by_root_finding(
            scenario, limits, request, relative_tolerance, tally
        )
    return MagicNumber(
        weekly_opportunities=solution,
        p_hit_at_solution=p_hit,
        target=target,
        deterministic_weekly_opportunities=limits.deterministic,
        activity_per_stage=activity_per_stage(scenario, solution),
        evaluations=simulations,
        curve=curve,
    )


class _Tally:
    """The search's progress over its simulations: each one's replications added to what came before."""

    def __init__(self, progress: Progress | None):
        self.progress, self.before = progress, 0

    def simulation(self, size: int) -> Progress | None:
        """The callback for the next simulation, of ``size`` replications (the runner's count)."""
        if self.progress is None:
            return None
        before = self.before
        self.before += size

        def update(done: int, total: int) -> None:
            self.progress(before + done, before + total)

        update(0, size)
        return update

    def finished(self) -> None:
        """The simulation asked for last is done (a remembered one reports nothing of its own)."""
        if self.progress is not None:
            self.progress(self.before, self.before)


@dataclass(frozen=True)
class _Limits:
    """What bounds the magic number before any simulation: the target in runs, and the inflows that can matter."""

    target: float
    needed_hits: int
    deterministic: float
    ceiling: float
    weeks: float
    win_bound: float

    @classmethod
    def of(cls, scenario: Scenario, target: float, runs: int) -> _Limits:
        return cls(
            target=target,
            # P(hit) moves in steps of 1 / runs: count hits, so that comparisons sit exactly
            # at the step that reaches the target (0.7 * 100 runs is 70 hits, not 70.0000001).
            needed_hits=math.ceil(target * runs - 1e-9),
            deterministic=deterministic_weekly_opportunities(scenario),
            ceiling=max_weekly_inflow(scenario),
            # The horizon in weeks, weighted by seasonality; a team's reps each bring at most
            # the full inflow, so the bound on new wins below counts them all.
            weeks=scenario.inflow_weight / 7.0 * (1 if scenario.team is None else scenario.team.reps),
            win_bound=new_deal_win_bound(scenario),
        )

    def first_guess(self) -> float:
        """An inflow to start from: a little above the average-math answer."""
        guess = 1.25 * self.deterministic if math.isfinite(self.deterministic) else 1.0
        return min(self.ceiling, max(1.0, guess))

    def check(self, p_hit_without_inflow: float, runs: int) -> float:
        """Refuse hopeless questions; return the least inflow that can reach the target.

        P(hit) <= P(the pipeline alone hits) + P(some new deal is won)
               <= p_hit(0) + E[new wins]                              (Markov),
        and E[new wins] <= weekly inflow * weeks * win_bound: below the returned inflow
        the target cannot be reached, and if the size limit is below it, no inflow can.
        """
        if round(p_hit_without_inflow * runs) >= self.needed_hits:
            raise Unreachable(
                f"the open pipeline alone already hits the quota with probability {p_hit_without_inflow:.1%} "
                f">= the target {self.target:.0%}: no new opportunities are needed"
            )
        if self.win_bound <= 0 or p_hit_without_inflow + self.ceiling * self.weeks * self.win_bound < self.target:
            raise Unreachable(
                "no new opportunity can be won within the horizon often enough (the stages take "
                "longer than the horizon, or a conversion rate is 0), so no inflow reaches the target"
            )
        return min(self.ceiling, (self.target - p_hit_without_inflow) / (self.weeks * self.win_bound))

    def beyond(self, p_hit_at_ceiling: float) -> Unreachable:
        """The answer when even the size limit's inflow falls short."""
        return Unreachable(
            f"even {self.ceiling:,.0f} new opportunities a week (the size limit) reach only "
            f"P(hit) = {p_hit_at_ceiling:.1%} < the target {self.target:.0%}: deals cannot close in time"
        )


CURVE_POINTS = 61
"""Points of the P(hit)-by-inflow curve reported with an exact magic number."""


CURVE_SPAN = 1.25
"""The exact curve reaches at least this multiple of the magic number (where P(hit) has mostly levelled off)."""


TIE_MARGIN = 1e-9
"""Relative margin above a critical inflow, so floating-point rounding cannot undo a tie."""


RUNGS_PER_DOUBLING = 4
"""Steps of the ladder of inflows the exact magic number simulates as far as (see :func:`_rung`)."""


def _rung(per_week: float) -> float:
    """The smallest inflow ``2 ** (k / RUNGS_PER_DOUBLING)`` (k a whole number) at or above ``per_week``.

    The exact magic number simulates as far as such inflows only: a fixed ladder, so the
    inflows looked at (and the curve's reach) stay put when the quota or the target moves
    a little, and thresholds simulated for one question serve the next.
    """
    return 2.0 ** (math.ceil(RUNGS_PER_DOUBLING * math.log2(per_week) - 1e-9) / RUNGS_PER_DOUBLING)


def _solve_by_critical_inflows(scenario: Scenario, limits: _Limits, request: Request, tally: _Tally):
    """The magic number as the ``needed_hits``-th smallest critical inflow (vectorised engine).

    Each replication hits the quota from its critical inflow on, so the smallest inflow
    at which ``needed_hits`` replications hit needs no root finding. The simulation
    looks as far as ``top`` a week, a rung of the ladder (:func:`_rung`) at least
    :data:`CURVE_SPAN` times the answer, for the curve: first as far as that for the
    first guess, then, while too few runs hit, as far as that for where the curve is
    heading (:func:`_heading`), until the size limit. Each step extends the last one's
    thresholds, simulating only the deals beyond.
    """
    runs = request.runs
    top = min(limits.ceiling, _rung(CURVE_SPAN * limits.first_guess()))
    data: InflowThresholds | None = None
    simulations = 0
    while True:
        tally.simulation(request.runs)
        data = inflow_thresholds(request, top, previous=data)
        tally.finished()
        simulations += 1
        critical = np.sort(data.critical_inflows(scenario.quota, max_per_week=top))
        least = limits.check(float(np.mean(critical <= 0.0)), runs)
        solution = float(critical[limits.needed_hits - 1])
        if math.isfinite(solution):
            wanted = min(limits.ceiling, _rung(CURVE_SPAN * solution))
            if top >= wanted:
                break
            top = wanted  # the answer is found and stays: this is for the curve
            continue
        if top >= limits.ceiling:
            raise limits.beyond(float(np.mean(critical <= limits.ceiling)))
        heading = CURVE_SPAN * _heading(critical, top, limits.target)
        top = min(
            limits.ceiling, _rung(min(4.0 * top, max(heading, 1.1 * least, top * 2.0 ** (1 / RUNGS_PER_DOUBLING))))
        )
    # A hair above the step, where the simulation's own arithmetic agrees (see TIE_MARGIN).
    solution = min(top, solution * (1.0 + TIE_MARGIN))
    grid = np.unique(np.concatenate([np.linspace(0.0, min(top, 2.0 * solution), CURVE_POINTS), [solution]]))
    share = np.searchsorted(critical, grid, side="right") / runs
    p_hit = float(share[np.searchsorted(grid, solution)])
    return solution, p_hit, simulations, list(zip(grid.tolist(), share.tolist(), strict=True))


def _heading(critical: np.ndarray, top: float, target: float) -> float:
    """Where P(hit) reaches ``target``, by a normal curve through the runs that hit by ``top``.

    Only a guess of how far to simulate next (twice ``top`` when too few runs hit to
    draw a curve through): the answer itself is always the exact one.
    """
    runs, hits = len(critical), int(np.searchsorted(critical, top, side="right"))
    half = math.ceil(hits / 2)
    if half < 1 or hits == runs:
        return 2.0 * top
    low, z_low, z_top = float(critical[half - 1]), special.ndtri(half / runs), special.ndtri(hits / runs)
    if not low < top or not z_low < z_top:
        return 2.0 * top
    return top + (special.ndtri(target) - z_top) * (top - low) / (z_top - z_low)


CAPACITY_FLAT_DOUBLINGS = 2
"""With limited reps, doublings of the inflow that win no more runs before the search stops."""
CAPACITY_NOISE_SE = 2.0
"""A doubling "wins no more" when P(hit) rises by less than this many standard errors of a proportion:
at 10,000 runs a capped funnel still gains a few runs a doubling, and each doubling costs twice the last."""


def _capacity_bound(target: float, curve: dict[float, float]) -> Unreachable:
    """With limited reps P(hit) levels off: more new opportunities only wait in line or are neglected."""
    best_inflow, best = max(curve.items(), key=lambda item: (item[1], -item[0]))
    return Unreachable(
        f"the reps' capacity caps P(hit): it levels off at {best:.1%} (from about {best_inflow:,.1f} new "
        f"opportunities a week; twice and four times as many win almost no more) < the target {target:.0%}. More "
        "opportunities only wait in line or are neglected: add reps or raise per_rep"
    )


def _solve_by_root_finding(
    scenario: Scenario, limits: _Limits, request: Request, relative_tolerance: float, tally: _Tally | None = None
):
    """The magic number by Brent's method on P(hit), one simulation per evaluation; ``tally`` reports progress."""
    tally = _Tally(None) if tally is None else tally
    runs = request.runs

    def p_hit(per_week: float) -> float:
        variant = scenario.with_inflow(per_week)
        asked = Request.of(variant, runs=runs, seed=request.seed, jobs=request.jobs, engine=request.engine)
        simulation = run(asked, tally.simulation(runs * funnel_count(scenario)))
        tally.finished()
        return simulation.result(variant, request.seed).p_hit

    return _root_search(p_hit, limits, runs, relative_tolerance, scenario.has_capacity_limits)


def _root_search(
    evaluate: Callable[[float], float], limits: _Limits, runs: int, relative_tolerance: float, capped: bool
) -> tuple[float, float, int, list[tuple[float, float]]]:
    """The least weekly inflow where ``evaluate`` (P(hit) at an inflow, common random numbers) reaches the target.

    Doubles from the first guess until the target is reached, then Brent's method finds
    the step. ``capped``: reps are limited, so P(hit) may level off below the target.
    Returns the solution, P(hit) there, the evaluations and the curve evaluated.
    """
    curve: dict[float, float] = {}

    def p_hit(per_week: float) -> float:
        if per_week not in curve:
            curve[per_week] = evaluate(per_week)
        return curve[per_week]

    def reaches(p: float) -> bool:
        return round(p * runs) >= limits.needed_hits

    low = limits.check(p_hit(0.0), runs)
    high = min(limits.ceiling, max(low, limits.first_guess()))
    flat = 0  # doublings in a row that won no more runs
    while not reaches(p_hit(high)):
        if high >= limits.ceiling:
            raise limits.beyond(curve[high])
        best = max(p for x, p in curve.items() if x < high)
        if capped and curve[high] <= best + CAPACITY_NOISE_SE * math.sqrt(best * (1 - best) / runs):
            flat += 1
            if flat == CAPACITY_FLAT_DOUBLINGS:
                raise _capacity_bound(limits.target, curve)
        else:
            flat = 0
        low, high = high, min(limits.ceiling, 2.0 * high)
    if reaches(p_hit(low)):  # only if the Markov bound is tight: low is the answer
        answer = low
    else:
        answer = optimize.brentq(
            lambda x: round(p_hit(x) * runs) - limits.needed_hits + 0.5,
            low,
            high,
            xtol=relative_tolerance * high,
            rtol=relative_tolerance,
        )
    # brentq returns a point within the tolerance of the step; report the side that hits.
    solution = min(
        (x for x, p in curve.items() if reaches(p) and x >= answer - relative_tolerance * high), default=high
    )
    return solution, curve[solution], len(curve), sorted(curve.items())


def solve_segment_magic_numbers(
    scenario: Scenario, target: float, relative_tolerance: float = 1e-3, progress: Progress | None = None, **settings
) -> list[dict]:
    """For a scenario with segments: each segment's magic number for the total's quota, the others held.

    Segment *i*'s answer is the weekly inflow of that segment (per rep, for a team) at
    which P(total hits the total quota) reaches ``target`` while every other segment stays
    as it is. The others are simulated once; with common random numbers (segment *i* always
    with :func:`sim.engines.streams.segment_seed` (seed, i)) each evaluation simulates
    segment *i* alone, and is exactly what simulating the whole scenario with that inflow
    gives. Brent's method finds the step, as for :func:`solve_magic_number` with limited reps,
    whose ``runs``, ``seed``, ``jobs`` and ``engine`` it takes as keywords.

    Returns
    -------
    list of dict
        Per segment: ``name``, ``per_rep`` (the inflow is each rep's), ``current``
        (today's weekly inflow), ``reachable``; when reachable ``weekly_opportunities`` and
        ``p_hit_at_solution``, else ``reason``; and ``deterministic_weekly_opportunities``:
        average math for the quota less the other segments' average math.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target: must be strictly between 0 and 1, got {target}")
    tally = _Tally(progress)
    funnels = segment_scenarios(scenario)
    runs, seed = settings.pop("runs", 10_000), settings.pop("seed", 0)
    settings["runs"] = runs
    base = run(Request.of(scenario, seed=seed, **settings), tally.simulation(runs * funnel_count(scenario)))
    tally.finished()
    whole = base.result(scenario, seed)
    quota, unit = scenario.quota.target, scenario.quota.unit
    key = "revenue" if unit == "revenue" else "won_deals"
    plans = [funnel_plan(f)[key] for f in funnels]
    out = []
    for i, (funnel, mine) in enumerate(zip(funnels, whole.segment_totals(), strict=True)):
        others = whole.result - quota_result(scenario, mine.outcomes.won_deals, mine.outcomes.revenue)
        own_seed = segment_seed(seed, i)

        def p_hit(per_week: float, funnel=funnel, others=others, own_seed=own_seed) -> float:
            variant = funnel.with_inflow(per_week)
            simulation = run(
                Request.of(variant, seed=own_seed, **settings), tally.simulation(runs * funnel_count(variant))
            )
            tally.finished()
            o = simulation.outcomes[0]
            return float(np.mean(others + quota_result(scenario, o.won_deals, o.revenue) >= quota))

        rest = quota - (sum(plans) - plans[i])
        alone = funnel.model_copy(update={"quota": Quota.model_construct(**{unit: max(rest, 1.0)})})
        answer = {
            "name": funnel.name,
            "per_rep": funnel.team is not None,
            "current": funnel.inflow.per_week,
            "deterministic_weekly_opportunities": deterministic_weekly_opportunities(alone) if rest > 0 else 0.0,
        }
        without = p_hit(0.0)
        if round(without * runs) >= math.ceil(target * runs - 1e-9):
            reason = (
                f"the other segments (and this one's open pipeline) already reach P(hit) {without:.1%} >= the target "
                f"{target:.0%} without new opportunities here"
            )
            out.append({**answer, "reachable": False, "reason": reason})
            continue
        try:
            limits = _Limits.of(alone, target, runs)
            solution, p, _, _ = _root_search(
                functools.cache(p_hit), limits, runs, relative_tolerance, funnel.has_capacity_limits
            )
        except Unreachable as reason:
            out.append({**answer, "reachable": False, "reason": str(reason)})
            continue
        out.append({**answer, "reachable": True, "weekly_opportunities": solution, "p_hit_at_solution": p})
    return out

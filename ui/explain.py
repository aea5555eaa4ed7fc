"""Numbers in plain words: formats, the sentences the pages say, the funnel math written out.

Pure functions over :mod:`sim`'s results and plain numbers, so the wording can be tested
without a browser. Money is shown in dollars, as in DOMAIN.md's examples; the scenario
itself has no currency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sim.model.average_math import (
    activity_per_stage,
    deterministic_weekly_opportunities,
    funnel_rates,
    team_inflow_reps,
)
from sim.model.distributions import Fixed
from sim.model.scenario import Scenario
from sim.words import human
from ui.safe import text

WORKING_DAYS_PER_WEEK = 5

# --- the names of the numbers ---------------------------------------------------------------
# One name for each, on every page (and in the command line's and the README's words).
# The magic number is the simulated weekly pace that gives the chance wanted; average math
# gives two numbers of its own, a pace and a forecast, and neither promises any chance.

AVERAGE_PACE = "Average-math pace"
"""Quota ÷ mean deal value ÷ the mean conversion rates, per week (timing and open deals ignored):
:func:`sim.model.average_math.deterministic_weekly_opportunities`."""
AVERAGE_PACE_MEANS = "Quota ÷ deal value ÷ conversion rates, per week: ignores timing, luck and the open pipeline."
AVERAGE_PACE_HELP = (
    "The back-calculation of the Funnel math page. It counts every new opportunity as if it closed at once at "
    "the average rate, so it asks less than it takes: deals opened late in the period close after it."
)
AVERAGE_FORECAST = "Average-math forecast"
"""The period's result with every quantity at its mean, counting only the deals that close within the period
(mean stage times) and the open pipeline: :func:`sim.model.average_math.average_math`."""
AVERAGE_FORECAST_HELP = (
    "Every number at its mean: the weekly new opportunities, the conversion rates, the days in each stage, the "
    "deal value. A deal counts if its average journey ends within the period; the deals already open count too. "
    "Not the same as the average-math pace (Magic number and Funnel math pages), which ignores timing."
)


# --- formats ------------------------------------------------------------------------------


def money(x: float) -> str:
    """Whole dollars with thousands separators: ``$1,200,000``."""
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def figure(x: float) -> str:
    """A number in text, to three significant figures: ``1,230``, ``3.85`` (:func:`sim.words.human`)."""
    return human(x)


def money_short(x: float) -> str:
    """Compact dollars: ``$1.2M``, ``$950k``, ``$12.3k``, ``$800`` (:func:`sim.words.human`)."""
    return human(x, "money")


def count(x: float) -> str:
    """A count: whole numbers in full (``1,234``), others as a :func:`figure` (``3.85``, ``21.7``)."""
    if math.isinf(x):
        return "infinitely many"
    return human(x, "count") if float(x).is_integer() else human(x)


def percent(p: float, digits: int = 1) -> str:
    """A probability as a percentage: ``44.8%``."""
    return f"{100 * p:.{digits}f}%"


def rate(p: float) -> str:
    """A conversion rate as a percentage without needless decimals: ``25%``, ``12.5%``."""
    text = f"{100 * p:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def points(d: float) -> str:
    """A change in probability in percentage points: ``7 points``, ``0.4 points``."""
    x = abs(100 * d)
    return f"{x:.0f} points" if x >= 1.5 else f"{x:.1f} points"


def unit_noun(unit: str) -> str:
    """What the quota counts, for labels: ``won revenue`` or ``won deals``."""
    return "won revenue" if unit == "revenue" else "won deals"


def amount(x: float, unit: str, short: bool = False) -> str:
    """A result in the quota's unit: dollars or deals."""
    if unit == "revenue":
        return money_short(x) if short else money(x)
    return f"{count(x)} deals"


def period(scenario: Scenario) -> str:
    """The horizon in words: ``a quarter``, ``a year``, ``8 weeks``, ``45 days``."""
    days = scenario.horizon
    if abs(days - 91) < 1e-9:
        return "a quarter"
    if abs(days - 364) < 1e-9 or abs(days - 365) < 1e-9:
        return "a year"
    if abs(days / 7 - round(days / 7)) < 1e-9:
        return f"{round(days / 7)} weeks"
    return f"{count(days)} days"


# --- sentences ----------------------------------------------------------------------------


def deal_values(scenario: Scenario) -> str:
    """What won deals are worth, for the Forecast's opening sentence: one value, or values that vary."""
    value = scenario.deal_value
    if isinstance(value, Fixed) and scenario.deal_value_dispersion == 0:
        return f"every won deal is worth {money(value.value)}"
    return "won deals are worth different amounts"


def why_they_differ(average: dict, p_hit: float, median: float, unit: str, runs: int) -> str:
    """One sentence on why the average-math forecast and the simulation disagree."""
    plan = amount(average["revenue"] if unit == "revenue" else average["won_deals"], unit)
    if average["hit"] and p_hit < 0.5:
        return (
            f"The {AVERAGE_FORECAST.lower()} lands on {plan}, enough for the quota, yet only {percent(p_hit, 0)} "
            "of the simulated periods make it: a plan that needs the average outcome fails whenever deals slip past "
            "the end of the period or rates come in low, and that happens about half the time or more."
        )
    if not average["hit"] and p_hit > 0:
        return (
            f"The {AVERAGE_FORECAST.lower()} lands on {plan}, short of the quota, yet {percent(p_hit, 0)} of the "
            "simulated periods make it: averages hide the good luck as well as the bad, and the simulation counts "
            "both."
        )
    return (
        f"The {AVERAGE_FORECAST.lower()} is one number ({plan}); the simulation plays the period out {runs:,} "
        f"times with arrivals, conversions, cycle times and deal sizes varying, so it gives the spread and the odds "
        f"(middle outcome {amount(median, unit)})."
    )


def wait_days(days: float | None) -> str:
    """A mean wait in days: ``3.2 days``, ``under 0.1 days``; a dash when no deal got a slot."""
    if days is None:
        return "-"
    return "under 0.1 days" if 0 < days < 0.05 else f"{figure(days)} days"


def capacity_caption(scenario: Scenario) -> str:
    """What the rep-capacity figures mean, for the Forecast page's section."""
    capacity = scenario.capacity
    reps = f"{capacity.reps:,} rep{'s' if capacity.reps != 1 else ''}"
    lost = (
        f" A deal left waiting more than {count(capacity.max_wait_days)} days is lost: neglected."
        if capacity.max_wait_days
        else " Deals wait as long as it takes; one still waiting at the end of the period is not won."
    )
    return (
        f"The funnel is worked by {reps}, and each rep works only so many deals at a time in a limited stage. "
        "A deal that arrives when every rep in its stage is full waits its turn, and its days in the stage start "
        "when a rep takes it up." + lost
    )


def neglect_caption(max_wait_days: float | None) -> str:
    """Under the neglected-deals metric."""
    if max_wait_days:
        return f"Deals lost per period because nobody took them up within {count(max_wait_days)} days."
    return "No wait limit is set (max_wait_days), so no deal is lost to waiting: it waits instead."


def capacity_cost(p_hit: float, p_hit_unlimited: float, reps: int) -> str:
    """One sentence on what the rep limit costs in P(hit), against the same funnel with no limit."""
    gap = p_hit_unlimited - p_hit
    if gap <= 0.005:
        return (
            f"With as many reps as the deals need, P(hit) would be {percent(p_hit_unlimited)}, the same as with "
            f"{reps:,}: the limits rarely bind here."
        )
    return (
        f"With as many reps as the deals need, P(hit) would be {percent(p_hit_unlimited)} instead of "
        f"{percent(p_hit)} (the same luck in both): deals waiting for a rep cost {points(gap)}."
    )


CAPACITY_MAGIC = (
    "This funnel is worked by a limited number of reps, so more new opportunities mostly wait in line and some "
    "are neglected: past a point they add little or nothing, and no weekly number may reach the chance you want. "
    "Searching for the magic number means simulating ever larger inflows, funnels full of waiting deals, for a few "
    "seconds, so it runs only when you ask for it (the average-math pace and the chance at your own pace, below, "
    "are always there). "
    "The Forecast page's Rep capacity section shows where the reps run short."
)


CAPACITY_CHART = (
    "Deals wait when reps have more than they can work: the top panel counts the deals waiting for a rep at "
    "each week's end, the bottom the share of the stage's slots in use during the week (line: the median run; "
    "band: the middle 80% of runs). A stage that sits near 100% with a queue is where another rep would pay."
)


NO_TEAM = (
    "This scenario is one funnel. Turn on **A team of reps** under *Optional* (below the funnel table) to see a "
    "team: reps differ from one another, so some make their quota and some miss it even when the team as a whole "
    "is on plan. The page then shows each rep's attainment, the share of reps at quota, the team's chance and, "
    "with a cost per rep, each rep's value ratio."
)


def team_reading(share: float, average_rep_hits: bool, p_team: float) -> str:
    """One paragraph on why a quota set from the average rep is missed by many reps."""
    plan = "makes" if average_rep_hits else "misses"
    return (
        f"On averages, the typical rep {plan} the rep quota. In the simulation {percent(share, 0)} of reps make it "
        f"in a typical period, and the team makes its own quota in {percent(p_team, 0)} of periods: reps differ, "
        "so a quota that the average rep just makes is missed by many of them (surveys find about half of reps at "
        "quota)."
    )


def lever_sentence(row: dict, step: float, unit: str) -> str:
    """A sensitivity row in words: "Raising Proposal conversion by 10% (50% → 55%) adds 7 points of P(hit)"."""
    kind, by = row["kind"], f"{step:.0%}"
    if kind == "conversion":
        what = f"Raising {text(row['stage'])} conversion by {by} ({rate(row['from'])} → {rate(row['to'])})"
    elif kind == "duration":
        what = (
            f"Cutting the time deals spend in {text(row['stage'])} by {by} "
            f"({count(row['from'])} → {count(row['to'])} days on average)"
        )
    elif kind == "inflow":
        what = f"{by} more new opportunities a week ({count(row['from'])} → {count(row['to'])})"
    else:
        what = f"{by} bigger deals ({money(row['from'])} → {money(row['to'])} on average)"
    change, se = row["p_hit_change"], row["p_hit_change_se"]
    if abs(change) <= 2 * se or abs(change) < 0.0005:
        if kind == "deal_value" and unit == "deals":
            return f"{what} changes nothing here: the quota counts deals, not dollars."
        return f"{what} makes no clear difference to P(hit) (less than {points(2 * se or 0.0005)})."
    verb = "adds" if change > 0 else "takes away"
    return f"{what} {verb} {points(change)} of P(hit)."


def barometer(actual: float, magic: float) -> float:
    """DOMAIN.md's activity barometer: actual weekly opportunities / magic number."""
    return actual / magic if magic > 0 else math.inf


def against_average_pace(actual: float, average: float, limited: bool) -> str:
    """Under the ratio of a pace to the average-math pace: what it compares, and that it promises nothing."""
    ignores = "timing, luck and the reps' capacity" if limited else "timing and luck"
    return (
        f"{count(actual)} ÷ {count(average)}, the {AVERAGE_PACE.lower()}, which ignores {ignores}: 100% here is no "
        "promise of the quota. The chance at this pace, on the right, is the figure to go by."
    )


def reps(n: int) -> str:
    """``1 rep``, ``2 reps``."""
    return f"{n:,} rep{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class CapacityCap:
    """Where limited reps stop P(hit) rising: the best chance, and the weekly inflow it is reached from."""

    p_hit: float
    per_week: float


_CAP = re.compile(r"levels off at ([\d.]+)% \(from about ([\d,.]+) new opportunities a week")


def capacity_cap(reason: str) -> CapacityCap | None:
    """The cap in the magic-number search's answer when the reps' capacity stops it, else None.

    Read off :class:`sim.questions.magic_number.Unreachable`'s message ("the reps' capacity caps
    P(hit): it levels off at 33.8% (from about 20.0 new opportunities a week; ...").
    """
    found = _CAP.search(reason)
    if found is None:
        return None
    return CapacityCap(float(found.group(1)) / 100, float(found.group(2).replace(",", "")))


def capacity_caps_the_odds(scenario: Scenario, cap: CapacityCap, target: float, stage: str) -> str:
    """What caps the chance with limited reps, and what would lift it, in a manager's words."""
    capacity = scenario.capacity
    per_rep = next((s.per_rep for s in scenario.stages if s.name == stage), None)
    slots = f" ({count(per_rep)} deals a rep, {count(per_rep * capacity.reps)} in all)" if per_rep else ""
    fate = (
        f"wait in line, and after {count(capacity.max_wait_days)} days they are lost"
        if capacity.max_wait_days
        else "wait in line, and those still waiting when the period ends are not won"
    )
    return (
        f"**{reps(capacity.reps).capitalize()} cap the chance at about {percent(cap.p_hit, 0)}**, short of the "
        f"{percent(target, 0)} you want: more new opportunities barely move it (it reaches that at about "
        f"{count(cap.per_week)} a week, and twice or four times as many win no more). What caps it is the reps' "
        f"time in {text(stage)}: their slots{slots} are full, so more opportunities only {fate}. "
        f"**What would lift it:** another rep, or each rep working more {text(stage)} deals at once (Deals per rep "
        "in the Per stage table under Optional). The Forecast page's Rep capacity section shows each stage's queue."
    )


# --- the funnel math ------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelMath:
    """The back-calculation from the target to weekly opportunities, each step's numbers kept."""

    unit: str
    target: float
    deal_value: float
    wins: float
    entering: list[tuple[str, float, float]]
    """Per stage from first to last: (name, mean conversion rate, deals that must enter it)."""
    weeks: float
    per_week: float
    """Per rep, with a team (see ``reps``)."""
    reps: float
    """Full reps' inflow the plan is shared by (:func:`sim.model.average_math.team_inflow_reps`; 1 without a team)."""
    activity: list[dict]
    """Weekly volume entering each stage, and won (:func:`sim.model.average_math.activity_per_stage`)."""

    @property
    def opportunities(self) -> float:
        """New opportunities needed over the whole horizon."""
        return self.entering[0][2]


def funnel_math(scenario: Scenario) -> FunnelMath:
    """Work back from the quota to the new opportunities a week it takes, on averages.

    Wins = quota / mean deal value (a revenue quota) or the quota (a deals quota); then
    each stage, last to first, needs wins / its conversion rate entering it; the first
    stage's number spread over the weeks of the horizon is the magic number. Timing and
    the open pipeline are ignored, as in DOMAIN.md's example, so the last figure equals
    :func:`sim.model.average_math.deterministic_weekly_opportunities`.
    """
    unit, target = scenario.quota.unit, scenario.quota.target
    value = float(scenario.deal_value.mean())
    wins = target / value if unit == "revenue" else target
    rates = funnel_rates(scenario)
    needed, entering = wins, []
    for stage, p in zip(reversed(scenario.stages), reversed(rates), strict=True):
        needed = needed / p if p > 0 else math.inf
        entering.append((stage.name, p, needed))
    entering.reverse()
    weeks = scenario.horizon / 7.0
    per_week = deterministic_weekly_opportunities(scenario)
    return FunnelMath(
        unit=unit,
        target=target,
        deal_value=value,
        wins=wins,
        entering=entering,
        weeks=weeks,
        per_week=per_week,
        reps=team_inflow_reps(scenario),
        activity=activity_per_stage(scenario, per_week) if math.isfinite(per_week) else [],
    )


def funnel_math_steps(scenario: Scenario) -> list[str]:
    """The back-calculation as numbered Markdown sentences, one per step."""
    m = funnel_math(scenario)
    when = period(scenario)
    steps = []
    if m.unit == "revenue":
        steps.append(f"**The target.** {money(m.target)} of won revenue in {when}.")
        steps.append(
            f"**Wins needed.** {money(m.target)} ÷ {money(m.deal_value)} average deal = **{count(m.wins)} won deals**."
        )
    else:
        steps.append(f"**The target.** {count(m.target)} won deals in {when}, so **{count(m.wins)} wins**.")
    chain = []
    after = m.wins
    for name, p, needed in reversed(m.entering):
        chain.append(f"{text(name)}: {count(after)} ÷ {rate(p)} = **{count(needed)}** must enter {text(name)}")
        after = needed
    steps.append(
        "**Work back through the funnel**, last stage first: each stage's conversion rate says how many "
        "must enter it to get the number out of it.  \n" + "  \n".join(f"- {line}" for line in chain)
    )
    if m.reps == 1:
        steps.append(
            f"**Spread over the period.** {count(m.opportunities)} new opportunities ÷ {count(m.weeks)} weeks = "
            f"**{count(m.per_week)} a week**: the {AVERAGE_PACE.lower()}"
            + (f" (about {count(m.per_week / WORKING_DAYS_PER_WEEK)} each working day)." if m.per_week else ".")
        )
        return steps
    team = m.opportunities / m.weeks
    ramp = " (new reps count for part of a rep while they ramp up)" if scenario.team.new_reps else ""
    steps.append(
        f"**Spread over the period.** {count(m.opportunities)} new opportunities ÷ {count(m.weeks)} weeks = "
        f"{count(team)} a week for the team."
    )
    steps.append(
        f"**Per rep.** {count(team)} ÷ {count(m.reps)} reps{ramp} = **{count(m.per_week)} a week each**: "
        f"the {AVERAGE_PACE.lower()}"
        + (f" (about {count(m.per_week / WORKING_DAYS_PER_WEEK)} each working day)." if m.per_week else ".")
    )
    return steps


LIMITS_SECTION = "an operator can raise it: see 'Limits on a shared server' in the README"


def capped_runs(wanted: int, runs: int) -> str:
    """The notice above a page whose runs were capped to the app's work budget."""
    return (
        f"This page simulates {runs:,} runs, not the {wanted:,} asked for: that is the most this server's work "
        f"budget allows for it ({LIMITS_SECTION})."
    )


def too_much_work(least: int) -> str:
    """The notice instead of a page whose scenario is too much work even at the fewest runs."""
    return (
        f"This scenario is too much work for this server on this page, even at {least:,} runs: lower the weekly "
        f"new opportunities or the period, or use the auto engine ({LIMITS_SECTION})."
    )

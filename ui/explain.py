"""Numbers in plain words: formats, the sentences the pages say, the funnel math written out.

Pure functions over :mod:`sim`'s results and plain numbers, so the wording can be tested
without a browser. Money is shown in dollars, as in DOMAIN.md's examples; the scenario
itself has no currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.analysis import activity_per_stage, deterministic_weekly_opportunities, funnel_rates
from sim.scenario import Scenario

WORKING_DAYS_PER_WEEK = 5


# --- formats ------------------------------------------------------------------------------


def money(x: float) -> str:
    """Whole dollars with thousands separators: ``$1,200,000``."""
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def money_short(x: float) -> str:
    """Compact dollars for big numbers: ``$1.20M``, ``$950k``, ``$800``."""
    sign, x = ("-" if x < 0 else ""), abs(x)
    if x >= 1e6:
        return f"{sign}${x / 1e6:,.2f}M"
    if x >= 1e4:
        return f"{sign}${x / 1e3:,.0f}k"
    return f"{sign}${x:,.0f}"


def count(x: float, digits: int = 2) -> str:
    """A count: whole numbers without decimals (``200``), others with ``digits`` (``3.85``)."""
    if math.isinf(x):
        return "infinitely many"
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):,}"
    return f"{x:,.{digits}f}"


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
    return f"{count(x, 1)} deals"


def period(scenario: Scenario) -> str:
    """The horizon in words: ``a quarter``, ``a year``, ``8 weeks``, ``45 days``."""
    days = scenario.horizon
    if abs(days - 91) < 1e-9:
        return "a quarter"
    if abs(days - 364) < 1e-9 or abs(days - 365) < 1e-9:
        return "a year"
    if abs(days / 7 - round(days / 7)) < 1e-9:
        return f"{round(days / 7)} weeks"
    return f"{count(days, 1)} days"


# --- sentences ----------------------------------------------------------------------------


def why_they_differ(average: dict, p_hit: float, median: float, unit: str, runs: int) -> str:
    """One sentence on why the average-math answer and the simulation disagree."""
    plan = amount(average["revenue"] if unit == "revenue" else average["won_deals"], unit)
    if average["hit"] and p_hit < 0.5:
        return (
            f"Average math lands on {plan}, enough for the quota, yet only {percent(p_hit, 0)} of the simulated "
            f"periods make it: a plan that needs the average outcome fails whenever deals slip past the end of "
            f"the period or rates come in low, and that happens about half the time or more."
        )
    if not average["hit"] and p_hit > 0:
        return (
            f"Average math lands on {plan}, short of the quota, yet {percent(p_hit, 0)} of the simulated periods "
            f"make it: averages hide the good luck as well as the bad, and the simulation counts both."
        )
    return (
        f"Average math gives one number ({plan}); the simulation plays the period out {runs:,} times with "
        f"arrivals, conversions, cycle times and deal sizes varying, so it gives the spread and the odds "
        f"(middle outcome {amount(median, unit)})."
    )


def lever_sentence(row: dict, step: float, unit: str) -> str:
    """A sensitivity row in words: "Raising Proposal conversion by 10% (50% → 55%) adds 7 points of P(hit)"."""
    kind, by = row["kind"], f"{step:.0%}"
    if kind == "conversion":
        what = f"Raising {row['stage']} conversion by {by} ({rate(row['from'])} → {rate(row['to'])})"
    elif kind == "duration":
        what = (
            f"Cutting the time deals spend in {row['stage']} by {by} "
            f"({count(row['from'], 1)} → {count(row['to'], 1)} days on average)"
        )
    elif kind == "inflow":
        what = f"{by} more new opportunities a week ({count(row['from'], 1)} → {count(row['to'], 1)})"
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
    activity: list[dict]
    """Weekly volume entering each stage, and won (:func:`sim.analysis.activity_per_stage`)."""

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
    :func:`sim.analysis.deterministic_weekly_opportunities`.
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
        chain.append(f"{name}: {count(after)} ÷ {rate(p)} = **{count(needed)}** must enter {name}")
        after = needed
    steps.append(
        "**Work back through the funnel**, last stage first: each stage's conversion rate says how many "
        "must enter it to get the number out of it.  \n" + "  \n".join(f"- {line}" for line in chain)
    )
    steps.append(
        f"**Spread over the period.** {count(m.opportunities)} new opportunities ÷ {count(m.weeks)} weeks = "
        f"**{count(m.per_week)} a week**: the magic number"
        + (f" (about {count(m.per_week / WORKING_DAYS_PER_WEEK)} each working day)." if m.per_week else ".")
    )
    return steps

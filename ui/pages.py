"""The seven pages. Each takes the scenario and the settings and draws itself.

A page asks :mod:`ui.compute` for what it needs (cached by value), words it with
:mod:`ui.explain` and draws it with :mod:`ui.charts`. ``app.py`` calls only the page
that is open, so hidden pages cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from sim import Scenario
from sim.model.average_math import activity_per_stage, deterministic_weekly_opportunities, team_average_math
from sim.model.distributions import Fixed
from sim.questions.quota import p_hit_by_quota, realistic_quota, realistic_rep_quota
from sim.questions.sensitivity import paired_difference
from sim.runner.results import quota_result, wilson_interval
from ui import charts, compute, inputs, safe
from ui import explain as say
from ui.form import barometer_key, differences
from ui.wording import change_lines


@dataclass(frozen=True)
class Context:
    """What every page works on: the (last valid) scenario and how to simulate it."""

    scenario: Scenario
    runs: int
    seed: int
    engine: str

    def run(self, scenario: Scenario | None = None):
        """The simulation of this (or another) scenario with these settings, cached."""
        return compute.run_scenario(scenario or self.scenario, self.runs, self.seed, self.engine)

    @property
    def unit(self) -> str:
        return self.scenario.quota.unit


def show_chart(chart, name: str, title: str) -> None:
    """Draw a chart, with PNG and SVG downloads rendered only when clicked.

    A stack of panels is drawn panel by panel (:func:`ui.charts.panel_specs`): Vega-Lite gives
    a stack no container width, so only single panels stretch to fit the column. The downloads
    hold the whole stack.
    """
    for spec in charts.panel_specs(chart):
        st.vega_lite_chart(spec, width="stretch")
    with st.container(horizontal=True, gap="small"):
        for label, render, mime in (("PNG", charts.to_png, "image/png"), ("SVG", charts.to_svg, "image/svg+xml")):
            extension = label.lower()
            st.download_button(
                label,
                data=lambda render=render: render(chart, title),  # rendered only when clicked
                file_name=f"{name}.{extension}",
                mime=mime,
                key=f"{extension}_{name}",
                on_click="ignore",
                type="tertiary",
                icon=":material/download:",
            )


def show_table(frame: pd.DataFrame) -> None:
    """Draw a small table as it is: names as their characters, numbers as :func:`ui.explain.count` writes them.

    A static table is drawn at once; the interactive grid (``st.dataframe``) measures itself
    again and rewrites its hidden copy for screen readers a third of a second after the page
    is drawn, so a page with one was busy for that long after every click.
    """
    shown = frame.apply(lambda column: column.map(say.count if pd.api.types.is_numeric_dtype(column) else safe.text))
    st.table(shown, hide_index=True, width="content")


def csv_download(label: str, table: Callable[[], pd.DataFrame], file_name: str, help: str | None = None) -> None:
    """A CSV download of a table, built only when clicked."""
    st.download_button(
        label,
        data=lambda: table().to_csv(index=False),
        file_name=file_name,
        mime="text/csv",
        key=f"csv_{file_name}",
        on_click="ignore",
        icon=":material/download:",
        help=help,
    )


def _result_title(unit: str) -> str:
    return "won revenue in the period ($)" if unit == "revenue" else "won deals in the period"


# --- 1. Forecast --------------------------------------------------------------------------------


def forecast(ctx: Context) -> None:
    scenario, unit, target = ctx.scenario, ctx.unit, ctx.scenario.quota.target
    # With limited reps the page shows the funnel with as many reps as it needs too: both simulated at once.
    segmented = bool(scenario.segments)
    twins = [scenario, scenario.with_enough_reps()] if scenario.has_capacity_limits and not segmented else [scenario]
    result, *unlimited = compute.run_together(twins, ctx.runs, ctx.seed, ctx.engine)
    summary = result.summary()
    low, high = summary["p_hit_ci"]
    spread = summary["revenue" if unit == "revenue" else "deals"]
    # A team's plan is the sum of its reps' plans (a new rep's inflow ramps up).
    average = summary["average_math"] if scenario.team is None or segmented else team_average_math(scenario)
    planned = average["revenue"] if unit == "revenue" else average["won_deals"]
    st.caption(
        f"We played {say.period(scenario)} out {ctx.runs:,} times. In each run new opportunities arrive at random, "
        "every deal converts or drops out at each stage and takes its own number of days, and "
        f"{say.deal_values(scenario)}. The share of runs that reach the quota is the chance of hitting it."
    )
    a, b, c = st.columns(3)
    with a:
        st.metric("P(hit quota)", say.percent(result.p_hit), border=True)
        st.caption(f"95% sure it lies between {say.percent(low)} and {say.percent(high)} (more runs narrow this).")
    with b:
        st.metric("Middle outcome (P50)", say.amount(spread["p50"], unit, short=True), border=True)
        st.caption(
            f"Quota {say.amount(target, unit)}. 8 runs in 10 end between {say.amount(spread['p10'], unit, True)} "
            f"and {say.amount(spread['p90'], unit, True)}."
        )
    with c:
        st.metric(say.AVERAGE_FORECAST, say.amount(planned, unit, short=True), border=True)
        st.caption(
            "Every number at its average, as a spreadsheet would, counting the deals that close within the period: "
            + ("enough for the quota." if average["hit"] else "short of the quota."),
            help=say.AVERAGE_FORECAST_HELP,
        )
    st.info(say.why_they_differ(average, result.p_hit, spread["p50"], unit, ctx.runs), icon=":material/lightbulb:")

    st.subheader("How the period could end")
    st.caption(
        "Each bar is the share of simulated periods that ended with that result; the dashed lines are the quota "
        "and the average-math forecast. Everything right of the quota line is a hit."
    )
    markers = [("Quota", target, charts.QUOTA), (say.AVERAGE_FORECAST, planned, charts.AVERAGE)]
    show_chart(
        charts.distribution_chart(
            result.result, markers, _result_title(unit), charts.axis_format(unit), unit == "deals"
        ),
        "forecast_distribution",
        f"{scenario.name}: {_result_title(unit)}",
    )

    st.subheader("Week by week")
    weekly, pace, y_title, fan_unit = result.outcomes.weekly_revenue, target, "won revenue so far ($)", "revenue"
    note = ""
    if unit == "deals":
        value = scenario.deal_value
        if isinstance(value, Fixed) and value.value > 0:
            weekly, y_title, fan_unit = weekly / value.value, "won deals so far", "deals"
        else:
            pace = target * value.mean()
            note = (
                f" The quota counts deals; the pace line is {say.amount(target, 'deals')} at the average deal "
                f"value, {say.money(pace)}."
            )
    st.caption(
        "The band holds the middle 80% of simulated periods, the line the median. When the median runs below "
        "the dashed straight line to the quota, most periods are behind the pace it needs." + note
    )
    show_chart(
        charts.fan_chart(weekly, scenario.horizon, pace, y_title, fan_unit),
        "forecast_by_week",
        f"{scenario.name}: {y_title} by week",
    )

    if segmented:
        st.info(SEGMENTS_ELSEWHERE, icon=":material/account_tree:")
    else:
        _stage_by_stage(ctx, result, unlimited, summary, average)
    csv_download(
        f"Download all {ctx.runs:,} runs (CSV)",
        result.table,
        "funnel_sim_runs.csv",
        help="One row per simulated period: deals won, revenue, hit, and per stage the deals that entered and "
        "moved on and the conversion rate that run used (with rep capacity: deals served, days waited, deals "
        "neglected and busy slot-days; with segments, each segment's won deals and revenue).",
    )


SEGMENTS_ELSEWHERE = (
    "This scenario has segments, each with its own funnel: the Segments page gives each one's chance, spread and "
    "share of the risk; the figures here are the organisation's total."
)


def _stage_by_stage(ctx: Context, result, unlimited, summary: dict, average: dict) -> None:
    """The Forecast page's funnel: deals per stage, simulated and on average math, and the reps' capacity."""
    scenario = ctx.scenario
    st.subheader("The funnel, stage by stage")
    st.caption(
        "Deals entering each stage in a period, on average over the runs, next to the average-math forecast. "
        "They differ when deals are still in a stage at the end of the period, or when rates vary."
    )
    rows = []
    for sim_stage, plan_stage in zip(summary["stages"], average["stages"], strict=True):
        rows.append({"stage": sim_stage["name"], "source": "Simulation (average)", "deals": sim_stage["entered"]})
        rows.append({"stage": sim_stage["name"], "source": say.AVERAGE_FORECAST, "deals": plan_stage["entered"]})
    rows.append({"stage": "won", "source": "Simulation (average)", "deals": summary["stages"][-1]["converted"]})
    rows.append({"stage": "won", "source": say.AVERAGE_FORECAST, "deals": average["stages"][-1]["converted"]})
    show_chart(charts.funnel_chart(pd.DataFrame(rows)), "forecast_funnel", f"{scenario.name}: deals per stage")
    table = pd.DataFrame(
        {
            "stage": [s["name"] for s in summary["stages"]],
            "entered (simulation)": [s["entered"] for s in summary["stages"]],
            "moved on (simulation)": [s["converted"] for s in summary["stages"]],
            "entered (average-math forecast)": [s["entered"] for s in average["stages"]],
            "moved on (average-math forecast)": [s["converted"] for s in average["stages"]],
        }
    )
    show_table(table)
    if scenario.has_capacity_limits and result.outcomes.has_capacity:
        _rep_capacity(ctx, result, unlimited[0], summary)


def _rep_capacity(ctx: Context, result, unlimited, summary: dict) -> None:
    """Forecast's section on limited reps: waits, slot use and neglect per stage, and by week (``unlimited``: the
    same funnel with as many reps as it needs, :meth:`sim.model.scenario.Scenario.with_enough_reps`)."""
    scenario = ctx.scenario
    capacity = scenario.capacity
    st.subheader("Rep capacity")
    st.caption(say.capacity_caption(scenario))
    for stage, figures, slots in zip(scenario.stages, summary["stages"], scenario.slots(), strict=True):
        if slots is None:
            continue
        a, b, c = st.columns(3)
        a.metric(f"{safe.text(stage.name)}: mean wait", say.wait_days(figures["mean_wait_days"]), border=True)
        a.caption(
            f"Days a deal waits for a free rep before work starts; {say.count(figures['mean_queue'])} deals "
            "wait at any moment, on average."
        )
        b.metric(f"{safe.text(stage.name)}: utilisation", say.percent(figures["utilisation"], 0), border=True)
        b.caption(
            f"Share of the {slots:,} slots ({capacity.reps:,} reps × {stage.per_rep:,} deals) in use over the period."
        )
        c.metric(
            f"{safe.text(stage.name)}: neglected", f"{say.count(figures['neglected'])} deals a period", border=True
        )
        c.caption(say.neglect_caption(capacity.max_wait_days))
    st.info(say.capacity_cost(result.p_hit, unlimited.p_hit, capacity.reps), icon=":material/groups:")
    st.caption(say.CAPACITY_CHART)
    o = result.outcomes
    frame = charts.capacity_frame(
        o.queue_by_week, o.busy_by_week, scenario.slots(), scenario.stage_names, scenario.horizon
    )
    show_chart(charts.capacity_chart(frame), "forecast_capacity", f"{scenario.name}: queue and rep utilisation by week")


# --- 2. Magic number --------------------------------------------------------------------------


def _curve_points(ctx: Context, magic) -> pd.DataFrame:
    """The solver's curve; where it is only a few root-finding points (a team, limited reps), a few more."""
    points = dict(magic.curve)
    solution = magic.weekly_opportunities
    if len(points) < 20:
        for fraction in (0.4, 0.6, 0.75, 0.85, 0.93):
            x = fraction * solution
            if all(abs(x - known) > 0.03 * solution for known in points):
                points[x] = compute.p_hit_at(ctx.scenario, x, ctx.runs, ctx.seed, ctx.engine)
    frame = pd.DataFrame(sorted(points.items()), columns=["per_week", "p_hit"])
    return frame[frame["per_week"] <= 2.2 * solution]


def magic_number(ctx: Context) -> None:
    scenario = ctx.scenario
    if scenario.segments:
        st.info(
            "Each segment has its own inflow, so there is one magic number per segment: the Segments page finds "
            "each one for the total quota, the other segments as they are.",
            icon=":material/account_tree:",
        )
        return
    st.caption(
        "The magic number is how many new opportunities you need to create each week for the chance of making "
        f"quota you choose, found by playing the period out many times. The {say.AVERAGE_PACE.lower()} is the "
        "spreadsheet's answer: quota ÷ deal value ÷ conversion rates, per week, with no timing and no luck."
    )
    target = (
        st.slider(
            "Chance of hitting quota you want", 50, 95, 80, step=5, format="%d%%", key="target", persist_state="session"
        )
        / 100
    )
    # With limited reps every try is a full simulation of more and more deals, most of which only wait in line
    # (the root finder: no exact shortcut when deals wait for each other): seconds, so it runs only when asked for.
    limited = scenario.has_capacity_limits
    search = not limited
    if limited:
        st.info(say.CAPACITY_MAGIC, icon=":material/groups:")
        search = st.toggle("Search for the magic number anyway (a few seconds)", key="capacity_magic")
    magic = compute.magic_number(scenario, target, ctx.runs, ctx.seed, ctx.engine) if search else None
    average = deterministic_weekly_opportunities(scenario)
    current = scenario.inflow.per_week
    number = None if magic is None or isinstance(magic, str) else magic.weekly_opportunities
    cap = say.capacity_cap(magic) if limited and isinstance(magic, str) else None
    if isinstance(magic, str) and cap is None:
        st.info(f"There is no magic number for a {target:.0%} chance here: {safe.text(magic)}.", icon=":material/info:")
    # Only the figures there are: no empty slot while the search has not run or found nothing.
    columns = iter(st.columns(2 + (number is not None or cap is not None)))
    if number is not None:
        a = next(columns)
        a.metric("Magic number (simulation)", f"{say.count(number)} a week", border=True)
        a.caption(
            f"New opportunities a week for a {target:.0%} chance (it gives {say.percent(magic.p_hit_at_solution)})."
        )
        a.button(
            "Use this pace",
            on_click=inputs.use_inflow,
            args=(number,),
            icon=":material/north_east:",
            help="Set the new opportunities per week in the sidebar to the magic number; every page follows.",
        )
    elif cap is not None:
        a = next(columns)
        a.metric(f"Best chance with {say.reps(scenario.capacity.reps)}", say.percent(cap.p_hit), border=True)
        a.caption(
            f"The most {say.reps(scenario.capacity.reps)} can win, reached at about {say.count(cap.per_week)} new "
            "opportunities a week; more win no more."
        )
    b = next(columns)
    b.metric(say.AVERAGE_PACE, f"{say.count(average)} a week", border=True)
    b.caption(say.AVERAGE_PACE_MEANS, help=say.AVERAGE_PACE_HELP)
    c = next(columns)
    c.metric("Your plan now", f"{say.count(current)} a week", border=True)
    p_now = compute.p_hit_at(scenario, current, ctx.runs, ctx.seed, ctx.engine)  # the Forecast's P(hit)
    c.caption(f"Gives a {say.percent(p_now)} chance of hitting quota.")
    if cap is not None:
        stage = _bottleneck(ctx)
        st.warning(say.capacity_caps_the_odds(scenario, cap, target, stage), icon=":material/groups:")

    if number is not None:
        st.subheader("The chance of hitting quota, by weekly new opportunities")
        st.caption(
            "Every point is the share of simulated periods that make quota at that inflow, all with the same random "
            "luck (same seed), so the curve only rises. "
            "Read across from the target to the curve, then down to the number you need."
        )
        markers = [
            ("Magic number", number, charts.TARGET),
            (say.AVERAGE_PACE, average, charts.AVERAGE),
            ("Your plan now", current, charts.BASELINE),
        ]
        show_chart(
            charts.probability_curve(
                _curve_points(ctx, magic),
                "per_week",
                "new opportunities per week",
                markers,
                level=(f"Target {target:.0%}", target, charts.TARGET),
            ),
            "magic_number_curve",
            f"{scenario.name}: P(hit quota) by weekly new opportunities",
        )
        st.markdown("**What that means each week, stage by stage** (at the magic number, on average)")
        show_table(_activity_table(scenario, number))

    st.subheader("Activity barometer")
    st.caption(
        "Type the new opportunities you actually create a week. "
        + (
            "100% means you are on the magic number; below 100% the quota is less likely than you want."
            if number is not None
            else "With no magic number to compare with, the chance of hitting quota at that pace is what counts."
        )
    )
    actual = st.number_input(
        "Opportunities you actually create a week",
        min_value=0.0,
        value=float(round(current, 2)),
        step=1.0,
        format="%.2f",
        # Keyed by the plan it starts from: another scenario (or inflow) brings a fresh input at its plan.
        key=barometer_key(current),
        persist_state="session",
    )
    left, right = st.columns(2)
    if number is not None:  # like with like: both are paces for the chance wanted
        ratio = say.barometer(actual, number)
        left.metric(
            "Activity barometer",
            "-" if math.isinf(ratio) else f"{ratio:.0%}",
            delta=None if math.isinf(ratio) else f"{100 * (ratio - 1):+.0f} points vs 100%",
            border=True,
        )
        left.caption(f"{say.count(actual)} ÷ {say.count(number)} (the magic number for a {target:.0%} chance).")
    else:
        # The average-math pace promises no chance at all: a ratio to it gets no green or red arrow.
        ratio = say.barometer(actual, average)
        shown = "-" if math.isinf(ratio) else f"{ratio:.0%}"
        left.metric(f"Your pace against the {say.AVERAGE_PACE.lower()}", shown, border=True)
        left.caption(say.against_average_pace(actual, average, limited))
    p_actual = compute.p_hit_at(scenario, float(actual), ctx.runs, ctx.seed, ctx.engine)
    right.metric("Chance of hitting quota at that pace", say.percent(p_actual), border=True)


def _bottleneck(ctx: Context) -> str:
    """The limited stage whose reps' slots are fullest in the Forecast's simulation (the same, remembered)."""
    figures = ctx.run().summary()["stages"]
    limited = [(f["utilisation"], f.get("neglected") or 0.0, f["name"]) for f in figures if f.get("utilisation")]
    return max(limited)[2] if limited else ctx.scenario.stages[-1].name


def _activity_table(scenario: Scenario, per_week: float) -> pd.DataFrame:
    rows = activity_per_stage(scenario, per_week)
    return pd.DataFrame(
        {
            "entering": [r["name"] for r in rows],
            "per week": [r["per_week"] for r in rows],
            "per working day": [r["per_week"] / say.WORKING_DAYS_PER_WEEK for r in rows],
        }
    )


# --- 3. Quota setting ---------------------------------------------------------------------------


def quota_setting(ctx: Context) -> None:
    scenario, unit = ctx.scenario, ctx.unit
    current = scenario.quota.target
    result = ctx.run()
    st.caption(
        "A realistic quota is one the team makes with the confidence you choose: the largest quota that at least "
        "that share of simulated periods reach. Attainment is the result divided by the quota (100% = made it)."
    )
    confidence = (
        st.slider("Confidence", 50, 95, 70, step=5, format="%d%%", key="confidence", persist_state="session") / 100
    )
    answer = realistic_quota(result, confidence)
    a, b, c = st.columns(3)
    a.metric(f"Realistic quota at {confidence:.0%}", say.amount(answer["quota"], unit, short=True), border=True)
    a.caption(f"Reached in {say.percent(answer['p_hit_at_quota'])} of runs.")
    a.button(
        "Use this quota",
        on_click=inputs.use_quota,
        args=(answer["quota"],),
        icon=":material/flag:",
        help="Set the quota in the sidebar to this one; every page follows.",
    )
    b.metric("Current quota", say.amount(current, unit, short=True), border=True)
    b.caption(f"Reached in {say.percent(answer['p_hit_at_current_quota'])} of runs.")
    attainment = answer["attainment"]
    c.metric("Median attainment", f"{attainment['p50']:.0%}", border=True)
    c.caption(f"8 runs in 10 between {attainment['p10']:.0%} and {attainment['p90']:.0%} of the current quota.")

    st.subheader("Attainment at the current quota")
    st.caption("Share of simulated periods by how much of the quota they reached; right of the line is a hit.")
    show_chart(
        charts.distribution_chart(
            result.result / current,
            [("100% of quota", 1.0, charts.QUOTA)],
            "quota attainment",
            "%",
            whole=False,
        ),
        "quota_attainment",
        f"{scenario.name}: quota attainment",
    )

    st.subheader("How the chance falls as the quota rises")
    st.caption("Each point: the share of the same simulated periods that would reach that quota.")
    top = max(float(result.result.max()), current) * 1.05
    if unit == "deals":
        quotas = np.arange(0, math.ceil(top) + 1, max(1, math.ceil(top / 120)), dtype=float)
    else:
        quotas = np.linspace(0.0, top, 121)
    frame = pd.DataFrame({"quota": quotas, "p_hit": p_hit_by_quota(result, quotas)})
    markers = [
        ("Current quota", current, charts.QUOTA),
        (f"Realistic at {confidence:.0%}", answer["quota"], charts.TARGET),
    ]
    show_chart(
        charts.probability_curve(
            frame,
            "quota",
            f"quota ({'$' if unit == 'revenue' else 'won deals'})",
            markers,
            level=(f"Confidence {confidence:.0%}", confidence, charts.TARGET),
            x_format=charts.axis_format(unit),
        ),
        "quota_curve",
        f"{scenario.name}: P(hit) by quota",
    )


# --- 4. Sensitivity -----------------------------------------------------------------------------


def _lever_label(row: dict) -> str:
    if row["kind"] == "conversion":
        return f"{row['stage']}: conversion rate"
    if row["kind"] == "duration":
        return f"{row['stage']}: days in stage"
    return "new opportunities a week" if row["kind"] == "inflow" else "deal value"


def sensitivity(ctx: Context) -> None:
    scenario = ctx.scenario
    st.caption(
        "Which lever matters most? Each lever is improved on its own (a better rate, fewer days in a stage, more "
        "new opportunities, bigger deals) and the whole period is simulated again with the same luck (same seed), "
        "so the change in the chance of hitting quota is due to the lever alone."
    )
    step = (
        st.select_slider(
            "Improve each lever by",
            options=[5, 10, 20, 30],
            value=10,
            format_func=lambda v: f"{v}%",
            key="step",
            persist_state="session",
        )
        / 100
    )
    answer = compute.levers(scenario, step, ctx.runs, ctx.seed, ctx.engine)
    rows = answer["levers"]
    frame = pd.DataFrame(
        {
            "lever": [_lever_label(r) for r in rows],
            "points": [100 * r["p_hit_change"] for r in rows],
            "se_points": [100 * r["p_hit_change_se"] for r in rows],
        }
    )
    st.metric("P(hit quota) now", say.percent(answer["base"]["p_hit"]))
    st.subheader("Levers, biggest first")
    st.caption(
        "Bars: percentage points of P(hit) gained. Whiskers: how sure that is; the true gain lies between them 95 "
        "times in 100. A whisker that crosses 0 means the lever may make no difference.",
        help="Whiskers: ±2 standard errors of the paired difference (each lever against the scenario as it is, on "
        "the same random numbers).",
    )
    show_chart(
        charts.tornado(frame), "sensitivity_tornado", f"{scenario.name}: P(hit) gained by a {step:.0%} better lever"
    )
    st.markdown("\n".join(f"- {say.lever_sentence(r, step, ctx.unit)}" for r in rows))


# --- 5. Compare ---------------------------------------------------------------------------------


def _pin(scenario: Scenario) -> None:
    st.session_state["baseline"] = scenario


def _unpin() -> None:
    st.session_state.pop("baseline", None)


def compare(ctx: Context) -> None:
    scenario, unit = ctx.scenario, ctx.unit
    st.caption(
        "Pin the scenario as it stands as a baseline, change the inputs, and see both side by side. Both are "
        "simulated with the same seed, so run number i of each faces the same luck: the difference is your change, "
        "not chance (common random numbers)."
    )
    left, right = st.columns(2)
    left.button("Pin the current scenario as the baseline", on_click=_pin, args=(scenario,), icon=":material/push_pin:")
    baseline: Scenario | None = st.session_state.get("baseline")
    if baseline is None:
        st.info("No baseline yet. Pin the current scenario, then change something (a rate, the quota, the inflow).")
        return
    right.button("Clear the baseline", on_click=_unpin)
    changes = differences(baseline, scenario)
    if changes:
        st.markdown(
            "**What changed since the baseline**  \n"
            + "  \n".join(f"- {safe.text(line)}" for line in change_lines(baseline, scenario))
        )
    else:
        st.info("The current scenario is still the baseline: change some inputs to compare.")
    base, now = ctx.run(baseline), ctx.run()
    base_values = quota_result(scenario, base.outcomes.won_deals, base.outcomes.revenue)
    d_hit, se_hit = paired_difference(now.hit, base.hit)
    d_rev, se_rev = paired_difference(now.outcomes.revenue, base.outcomes.revenue)
    a, b, c = st.columns(3)
    a.metric("Baseline P(hit)", say.percent(base.p_hit), border=True)
    a.caption(f"Middle outcome {say.amount(float(np.median(base_values)), unit, True)}")
    b.metric("Current P(hit)", say.percent(now.p_hit), delta=f"{100 * d_hit:+.1f} points", border=True)
    b.caption(f"Middle outcome {say.amount(float(np.median(now.result)), unit, True)}")
    c.metric("Change in revenue (same luck)", f"{'+' if d_rev >= 0 else ''}{say.money_short(d_rev)}", border=True)
    c.caption(
        f"Per period, give or take {say.money_short(2 * se_rev)} (the true change lies within that 95 times in 100). "
        f"P(hit): {100 * d_hit:+.1f} points, give or take {200 * se_hit:.1f}.",
        help="Give or take: ±2 standard errors of the paired difference (run i of each scenario on the same random "
        "numbers).",
    )
    st.subheader("Both distributions")
    show_chart(
        charts.overlaid_distributions(
            {"Baseline": base_values, "Current": now.result},
            unit,
            _result_title(unit),
            [("Quota (current)", scenario.quota.target, charts.QUOTA)],
        ),
        "compare_distributions",
        f"Baseline vs current: {_result_title(unit)}",
    )
    paired = pd.DataFrame(
        {
            "replication": np.arange(now.runs),
            "seed": now.seed,
            "baseline": base_values,
            "current": now.result,
            "baseline_hit": base.hit,
            "current_hit": now.hit,
        }
    )
    csv_download("Download the paired runs (CSV)", lambda: paired, "funnel_sim_compare.csv")


# --- 6. Funnel math -----------------------------------------------------------------------------


def one_segment(ctx: Context, page: str) -> Context:
    """With segments, the segment the user picks (as an ordinary scenario); the context itself without."""
    if not ctx.scenario.segments:
        return ctx
    names = [segment.name for segment in ctx.scenario.segments]
    pick = st.selectbox("Segment", range(len(names)), format_func=names.__getitem__, key=f"{page}_segment")
    return Context(ctx.scenario.segment(pick), ctx.runs, ctx.seed, ctx.engine)


def funnel_math(ctx: Context) -> None:
    ctx = one_segment(ctx, "funnel_math")
    scenario, unit = ctx.scenario, ctx.unit
    st.caption(
        "For trainers: the back-calculation people do on a whiteboard, from the target to the work it takes "
        "each week, then the same plan played out many times to show what averages leave out."
    )
    math_ = say.funnel_math(scenario)
    st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(say.funnel_math_steps(scenario), start=1)))
    if not math.isfinite(math_.per_week):
        st.warning("A conversion rate of 0 means no number of opportunities reaches the target.")
        return
    st.markdown(
        "**Weekly activity the plan needs, stage by stage**" + (" (each rep)" if scenario.team is not None else "")
    )
    show_table(_activity_table(scenario, math_.per_week))
    open_deals = sum(stage.open for stage in scenario.stages)
    st.caption(
        "This is the plan on averages. It ignores the time deals take to close"
        + (f" and the {open_deals} deals already open" if open_deals else "")
        + ", and it assumes every number comes in exactly at its average."
    )
    st.subheader("The same plan, simulated")
    plan = scenario.with_inflow(math_.per_week)
    result = ctx.run(plan)
    values = result.result
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    low, high = wilson_interval(int(result.hit.sum()), result.runs)
    a, b, c = st.columns(3)
    a.metric("The plan makes the target in", say.percent(result.p_hit), border=True)
    a.caption(f"of {ctx.runs:,} simulated periods (95%: {say.percent(low)} to {say.percent(high)}).")
    b.metric("Middle outcome", say.amount(float(p50), unit, True), border=True)
    b.caption(f"The plan promises {say.amount(math_.target, unit, True)}.")
    c.metric(
        "8 runs in 10 land between",
        f"{say.amount(float(p10), unit, True)} – {say.amount(float(p90), unit, True)}",
        border=True,
    )
    st.caption(
        f"Run {say.count(math_.per_week)} new opportunities a week through the funnel {ctx.runs:,} times and the "
        f"target is made in {say.percent(result.p_hit, 0)} of them: a plan that needs exactly the average outcome "
        "is roughly a coin flip, and worse once the time deals take to close is counted."
    )
    show_chart(
        charts.distribution_chart(
            values,
            [("Target", math_.target, charts.QUOTA), ("Average of the runs", float(values.mean()), charts.AVERAGE)],
            _result_title(unit),
            charts.axis_format(unit),
            unit == "deals",
        ),
        "funnel_math_spread",
        f"{scenario.name}: the average plan, simulated",
    )


# --- 7. Team -------------------------------------------------------------------------------------


def team(ctx: Context) -> None:
    """Each rep's attainment, the share of reps at quota, the team's chance, value ratios, a rep quota."""
    ctx = one_segment(ctx, "team")
    scenario, unit = ctx.scenario, ctx.unit
    if scenario.team is None:
        st.info(say.NO_TEAM, icon=":material/groups:")
        return
    setup = scenario.team
    result = compute.team(scenario, ctx.runs, ctx.seed, ctx.engine)
    summary = result.team_summary()
    st.caption(
        f"{setup.reps:,} reps, each with their own funnel: every stage's rate is drawn per rep around the stage's "
        f"rate (how alike the reps are: {setup.rate_concentration:g}, where 5 is very different and 100 nearly the "
        f"same), {say.count(scenario.inflow.per_week)} new opportunities "
        f"a week each, and a rep quota of {say.amount(setup.rep_quota, unit)}"
        + (f"; {setup.new_reps} new reps ramp up over {setup.ramp_months:g} months" if setup.new_reps else "")
        + f". The team quota is {say.amount(scenario.quota.target, unit)}."
    )
    share, share_se = summary["share_at_quota"], summary["share_at_quota_se"]
    low, high = summary["p_team_hit_ci"]
    attainment = summary["attainment"]
    a, b, c = st.columns(3)
    a.metric("Reps at quota", say.percent(share), border=True)
    a.caption(
        f"The share of reps who make their own quota in a period, on average (give or take "
        f"{say.percent(2 * share_se)}).",
        help="Give or take: ±2 standard errors, counting every rep in every simulated period.",
    )
    b.metric("P(team hits the team quota)", say.percent(summary["p_team_hit"]), border=True)
    b.caption(f"95% sure it lies between {say.percent(low)} and {say.percent(high)}.")
    c.metric("Median rep attainment", f"{attainment['p50']:.0%}", border=True)
    c.caption(
        f"8 reps in 10 end a period between {attainment['p10']:.0%} and {attainment['p90']:.0%} of the rep quota.",
        help="Counted over rep-periods: every rep in every simulated period.",
    )
    st.info(say.team_reading(share, summary["average_rep"]["hit"], summary["p_team_hit"]), icon=":material/lightbulb:")

    st.subheader("Attainment across reps")
    st.caption("Every rep in every simulated period: the share of them by attainment. Right of the line made quota.")
    marker = [("100% of rep quota", 1.0, charts.QUOTA)]
    if setup.mixed:
        chart = charts.overlaid_distributions(
            {
                "Experienced reps": result.attainment[:, ~result.is_new].ravel(),
                "New reps": result.attainment[:, result.is_new].ravel(),
            },
            "attainment",  # a ratio, never whole-number bins
            "rep attainment (result ÷ rep quota)",
            marker,
            x_format="%",
            y_title="share of reps",
        )
    else:
        chart = charts.distribution_chart(
            result.attainment.ravel(), marker, "rep attainment (result ÷ rep quota)", "%", y_title="share of reps"
        )
    show_chart(chart, "team_attainment", f"{scenario.name}: attainment across reps")
    if setup.mixed:
        groups = summary["by_group"]
        show_table(
            pd.DataFrame(
                {
                    "reps": [name for name in groups],
                    "how many": [g["reps"] for g in groups.values()],
                    "at quota": [say.percent(g["share_at_quota"]) for g in groups.values()],
                    "median attainment": [f"{g['attainment']['p50']:.0%}" for g in groups.values()],
                }
            )
        )

    st.subheader("A rep quota most reps make")
    share_wanted = (
        st.slider(
            "Share of reps who should make it",
            30,
            95,
            70,
            step=5,
            format="%d%%",
            key="rep_share",
            persist_state="session",
        )
        / 100
    )
    answer = realistic_rep_quota(result, share_wanted)
    a, b = st.columns(2)
    a.metric(
        f"Rep quota that {share_wanted:.0%} of reps make", say.amount(answer["quota"], unit, short=True), border=True
    )
    a.caption(
        f"Made by {say.percent(answer['share_at_quota'])} of reps in a period.",
        help="Counted over rep-periods: every rep in every simulated period.",
    )
    b.metric("Current rep quota", say.amount(setup.rep_quota, unit, short=True), border=True)
    b.caption(
        f"Made by {say.percent(answer['share_at_rep_quota'])} of reps in a period.",
        help="Counted over rep-periods: every rep in every simulated period.",
    )

    ratio = summary["value_ratio"]
    if ratio is not None:
        st.subheader("Value ratio per rep")
        st.caption(
            f"Won value over a year (the period's wins scaled to 12 months) ÷ the rep's yearly cost of "
            f"{say.money(setup.cost_per_year)}: above 1 the rep pays for themselves."
        )
        show_chart(
            charts.distribution_chart(
                result.value_ratio.ravel(),
                [("Pays for itself", 1.0, charts.QUOTA)],
                "value ratio (won value a year ÷ cost)",
                ".1f",
                y_title="share of reps",
            ),
            "team_value_ratio",
            f"{scenario.name}: value ratio per rep",
        )
        st.caption(
            f"Median value ratio {say.figure(ratio['p50'])}; 8 in 10 between {say.figure(ratio['p10'])} and "
            f"{say.figure(ratio['p90'])}."
        )
    csv_download(
        f"Download every rep's runs (CSV, {result.runs * setup.reps:,} rows)", result.table, "funnel_sim_team.csv"
    )


PAGES: dict[str, Callable[[Context], None]] = {
    "Forecast": forecast,
    "Magic number": magic_number,
    "Quota setting": quota_setting,
    "Sensitivity": sensitivity,
    "Compare": compare,
    "Funnel math": funnel_math,
    "Team": team,
}

"""The Segments page: an organisation's segments, their odds, and which one carries the total's risk.

A scenario with ``[[segments]]`` is several funnels that add up to one number. This page
shows each segment's P(hit) against its own quota and its P50 against it, each segment's
share of the swing in the total (:meth:`sim.runner.results.SegmentsResult.spread_shares`),
and lets the user edit the segments' main figures in a table; an applied edit becomes
the current scenario of every page, as a loaded file would.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from sim.model.scenario import Scenario, ScenarioError, scenario_from_dict, scenario_to_dict
from ui import charts, compute, inputs, safe
from ui import explain as say
from ui.wording import plain_problem

COLUMNS = {
    "name": "Segment",
    "quota": "Own quota",
    "per_week": "New opportunities a week",
    "reps": "Reps",
    "new_reps": "New reps",
    "hire_month": "New reps start (month)",
}
"""The editable table's columns: what a leader changes when planning segments."""


def segments_frame(scenario: Scenario) -> pd.DataFrame:
    """One row per segment with its own figures (blank where it takes the top level's or has none)."""
    rows = []
    for i, segment in enumerate(scenario.segments):
        funnel = scenario.segment(i)
        team = segment.team
        rows.append(
            {
                "name": segment.name,
                "quota": None if segment.quota is None else segment.quota.target,
                "per_week": funnel.inflow.per_week,
                "reps": None if team is None else team.reps,
                "new_reps": None if team is None else team.new_reps,
                "hire_month": None if team is None else team.hire_month,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


def segments_document(frame: pd.DataFrame, scenario: Scenario) -> dict:
    """The scenario's file-form dictionary with the segments as edited in ``frame`` (rows in order).

    A row keeps every section of the segment it was (by position) that the table does
    not show; a new row is a segment with the top level's sections. A team's figures
    apply only to a segment that has a team.
    """
    document = scenario_to_dict(scenario)
    before = document.get("segments", [])
    unit = scenario.quota.unit
    segments = []
    for i, row in enumerate(frame.to_dict("records")):
        entry = dict(before[i]) if i < len(before) else {}
        entry["name"] = "" if _blank(row.get("name")) else str(row["name"])
        if _blank(row.get("quota")):
            entry.pop("quota", None)
        else:
            entry["quota"] = {unit: int(row["quota"]) if unit == "deals" else float(row["quota"])}
        if not _blank(row.get("per_week")):
            entry["inflow"] = {**entry.get("inflow", document["inflow"]), "per_week": float(row["per_week"])}
        if "team" in entry:
            team = dict(entry["team"])
            for key in ("reps", "new_reps", "hire_month"):
                if not _blank(row.get(key)):
                    team[key] = float(row[key]) if key == "hire_month" else int(row[key])
            entry["team"] = team
        segments.append(entry)
    document["segments"] = segments
    return document


def _spread_chart(summary: dict) -> dict:
    segments = summary["segments"]
    return {
        "data": charts.data({"segment": [s["name"] for s in segments], "share": [s["spread_share"] for s in segments]}),
        "mark": charts.mark("bar"),
        "encoding": {
            "x": charts.channel("share:Q", title="Share of the swing in the total", axis={"format": "%"}),
            "y": charts.channel("segment:N", sort="-x", title=None),
            "tooltip": [charts.channel("segment:N"), charts.channel("share:Q", format=".0%")],
        },
        "height": max(120, 28 * len(segments)),
    }


def _table(summary: dict, unit: str, runs: int) -> pd.DataFrame:
    def amount(x: float) -> str:
        return say.money_short(x) if unit == "revenue" else say.count(x)

    key = "revenue" if unit == "revenue" else "deals"
    return pd.DataFrame(
        {
            "Segment": [s["name"] for s in summary["segments"]],
            "Chance of its own quota": [
                "no quota of its own" if s["p_hit"] is None else say.percent(s["p_hit"]) for s in summary["segments"]
            ],
            "Own quota": ["" if s["quota"] is None else amount(s["quota"]["target"]) for s in summary["segments"]],
            "Typical result (P50)": [amount(s[key]["p50"]) for s in summary["segments"]],
            "Bad period (P10)": [amount(s[key]["p10"]) for s in summary["segments"]],
            "Good period (P90)": [amount(s[key]["p90"]) for s in summary["segments"]],
            "Share of the swing": [f"{s['spread_share']:.0%}" for s in summary["segments"]],
        }
    )


def _magic_numbers(ctx) -> None:
    """Each segment's magic number for the total quota, found when asked (a search per segment takes seconds)."""
    st.subheader("Each segment's magic number")
    st.caption(
        "How many new opportunities a week one segment would need for the chance of the total quota you choose, "
        "with the other segments as they are (a team's figure is per rep)."
    )
    target = st.slider("Chance of the total quota", 50, 95, 80, step=5, format="%d%%", key="segments_target") / 100
    if not st.toggle("Find them (a few seconds a segment)", key="segments_magic"):
        return
    answers = compute.segment_magic_numbers(ctx.scenario, target, ctx.runs, ctx.seed, ctx.engine)
    if isinstance(answers, str):
        st.info(safe.text(answers), icon=":material/info:")
        return
    rows = []
    for answer in answers:
        each = " per rep" if answer["per_rep"] else ""
        rows.append(
            {
                "Segment": answer["name"],
                "Today a week": f"{say.count(answer['current'])}{each}",
                "Needed a week": f"{say.count(answer['weekly_opportunities'])}{each}"
                if answer["reachable"]
                else "no number",
                "Why not": "" if answer["reachable"] else answer["reason"],
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def page(ctx) -> None:
    """Draw the Segments page for the context's scenario (``ui.pages.Context``)."""
    scenario = ctx.scenario
    if not scenario.segments:
        st.info(
            "This scenario is one funnel. A scenario with segments (territories, product lines, channels) lists them "
            "under [[segments]]: upload one, or calibrate from a CRM export with a segment column."
        )
        return
    result = ctx.run()
    summary = result.summary()
    unit = scenario.quota.unit
    risk = max(summary["segments"], key=lambda s: s["spread_share"])
    a, b, c = st.columns(3)
    a.metric("Chance of the total quota", say.percent(summary["p_hit"]), border=True)
    typical = summary["revenue" if unit == "revenue" else "deals"]["p50"]
    b.metric(
        "Typical total (P50)",
        say.money_short(typical) if unit == "revenue" else say.count(typical),
        border=True,
        help="Half of the simulated periods do better than this, half worse.",
    )
    c.metric("Biggest risk", safe.text(risk["name"]), border=True)
    st.write(
        f"{safe.text(risk['name'])} carries {risk['spread_share']:.0%} of the swing in the total from one period to "
        "the next: when the total falls short, it is mostly because this segment did."
    )
    st.dataframe(_table(summary, unit, ctx.runs), hide_index=True, width="stretch")
    st.vega_lite_chart(_spread_chart(summary), width="stretch")
    st.caption(
        "Each segment's share of the swing is how much of the total's variance it accounts for (its covariance "
        "with the total over the total's variance); the shares add up to 100%."
    )
    _magic_numbers(ctx)
    with st.expander("Edit the segments"):
        edited = st.data_editor(
            segments_frame(scenario),
            num_rows="dynamic",
            hide_index=True,
            key=f"segments_editor_{st.session_state.get('stages_version', 0)}",
            column_config={key: label for key, label in COLUMNS.items()},
        )
        st.button("Use these segments", key="use_segments", on_click=_use_segments, args=(edited, scenario))
        for line in st.session_state.get("segment_problems", []):
            st.error(safe.text(line))


def _use_segments(edited: pd.DataFrame, scenario: Scenario) -> None:
    """The button's callback: the edited segments become the current scenario, or their problems are kept to show."""
    try:
        changed = scenario_from_dict(segments_document(edited, scenario))
    except ScenarioError as error:
        st.session_state["segment_problems"] = [plain_problem(line) for line in error.problems]
        return
    st.session_state["segment_problems"] = []
    inputs._load(changed, "Segments page")

"""The Calibrate page: a scenario from a CRM export, the evidence behind it, and a backtest.

The user uploads a CSV of deals, checks which column plays which role (pre-filled by
:func:`sim.crm.reader.recognise_columns`), picks the date to calibrate as of, and sees what
:func:`sim.crm.calibrate.calibrate` made of it: the report in words and numbers, the fitted
distributions over the data they were fitted to, and a button that makes the result
the current scenario of every page. The backtest (:func:`sim.crm.backtest.backtest`) asks
whether the method would have forecast the past well. Bad files are reported with the
library's problem lines and leave the current scenario alone.

The reads, fits and backtests are cached here by the file's bytes and plain options
(``st.cache_data``), in the manner of :mod:`ui.compute`. ``app.py`` imports this module
when the page is first opened.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

import numpy as np
import pandas as pd
import streamlit as st

from sim.crm import DEFAULT_HALF_LIFE_WEEKS
from sim.crm.backtest import backtest
from sim.crm.calibrate import Calibration, CalibrationError
from sim.crm.fitting import kaplan_meier
from sim.crm.half_life import HalfLifeChoice, calibrate_choosing
from sim.crm.reader import (
    DEAL_ROLES,
    MAX_CSV_BYTES,
    REQUIRED_DEAL_ROLES,
    ROLE_HELP,
    CrmData,
    CrmError,
    read_deals,
)
from sim.crm.reader import recognise_columns as recognise
from sim.crm.report import CalibrationReport, FitSummary
from sim.model.scenario import Scenario, scenario_to_toml
from ui import charts, inputs, safe
from ui import explain as say
from ui.pages import Context, show_chart

ROLE_LABELS = {
    "id": "Deal id",
    "created": "Created date",
    "closed": "Close date",
    "outcome": "Stage or outcome",
    "amount": "Amount",
    "owner": "Owner (optional)",
}
NO_COLUMN = "(none)"
BACKTEST_RUNS = 500
"""Replications per backtest date: enough for P10 and P90 to a few percent, in about a second a date."""
MAX_BACKTEST_DATES = 24
RECENCY: dict[str, float | str | None] = {
    "No: every deal counts the same": None,
    "A deal a year old counts half": 52.0,
    "A deal 6 months old counts half": 26.0,
    "A deal 3 months old counts half": 13.0,
    "Let the history decide": "auto",
}
"""The recency choices, in words, and the half-life in weeks each means."""
DATA = "#4C78A8"
FIT = "#D62728"
NAIVE = "#A0A0A0"

Columns = tuple[tuple[str, str], ...]
"""A column mapping as sorted ``(role, column)`` pairs: hashable, so it can be a cache key."""


# --- cached calls into sim ----------------------------------------------------------------------


def csv_header(data: bytes) -> list[str]:
    """The column names of an uploaded CSV (empty when it is not readable text).

    The same rules as :func:`sim.crm.reader.read_deals`: UTF-8 (with or without a byte-order
    mark), the header is the first non-blank line, and its commas, semicolons or tabs
    decide the delimiter. A file this cannot read is left for ``read_deals`` to explain.
    """
    head = data[:1_000_000]
    head = head[: head.rfind(b"\n") + 1] or head  # whole lines only: never cut a character in two
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    try:
        fields = next(csv.reader([first], delimiter=delimiter), [])
    except csv.Error:
        return []
    return [f.strip() for f in fields if f.strip()]


def _source(data: bytes, name: str) -> io.BytesIO:
    source = io.BytesIO(data)
    source.name = name  # read_deals names the file in its messages
    return source


@st.cache_data(max_entries=8, show_spinner="Reading the export...")
def read(data: bytes, name: str, columns: Columns) -> CrmData | list[str]:
    """:func:`sim.crm.reader.read_deals` of an upload, or its problem lines (cached too)."""
    try:
        return read_deals(_source(data, name), dict(columns))
    except CrmError as error:
        return error.problems


@st.cache_data(max_entries=32, show_spinner="Fitting the funnel to the export...")
def calibrated(
    data: bytes,
    name: str,
    columns: Columns,
    as_of: str,
    window_weeks: float,
    horizon_days: float,
    half_life_weeks: float | str | None = None,
) -> tuple[Calibration, HalfLifeChoice | None] | list[str]:
    """:func:`sim.crm.half_life.calibrate_choosing` of an upload as of a date, or the problem lines."""
    crm = read(data, name, columns)
    if isinstance(crm, list):
        return crm
    try:
        return calibrate_choosing(
            crm, as_of, window_weeks=window_weeks, horizon_days=horizon_days, half_life_weeks=half_life_weeks
        )
    except CalibrationError as error:
        return error.problems


@st.cache_data(max_entries=16, show_spinner=False)
def backtested(
    data: bytes,
    name: str,
    columns: Columns,
    dates: tuple[str, ...],
    horizon_days: float,
    window_weeks: float,
    runs: int,
    seed: int,
    half_life_weeks: float | str | None = None,
) -> dict | list[str]:
    """:func:`sim.crm.backtest.backtest` of an upload at the given dates, or the problem lines."""
    crm = read(data, name, columns)
    if isinstance(crm, list):
        return crm
    try:
        return backtest(
            crm,
            list(dates),
            horizon_days,
            runs=runs,
            seed=seed,
            window_weeks=window_weeks,
            half_life_weeks=half_life_weeks,
        )
    except CalibrationError as error:
        return error.problems


# --- the parts of a scenario with no other input -------------------------------------------------


def _use(scenario: Scenario, origin: str) -> None:
    inputs._load(scenario, origin)


# --- charts -------------------------------------------------------------------------------------


def _legend(domain: list[str], colours: list[str]) -> dict:
    return charts.keyed("what:N", domain, colours)


def fit_histogram(values: np.ndarray, model, data_label: str, x_title: str, x_format: str) -> dict:
    """A histogram of the data with the fitted distribution's expected share per bin as a line."""
    values = np.asarray(values, dtype=float)
    bins = charts.histogram_frame(values, max_bins=30)
    width = float((bins["end"] - bins["start"]).iloc[0]) if len(bins) else 1.0
    fit_label = "Fitted distribution"
    bars = {
        "data": charts.data(bins.assign(what=data_label)),
        "mark": charts.mark("bar", opacity=0.75, binSpacing=1),
        "encoding": {
            "x": charts.channel("start:Q", title=x_title, axis={"format": x_format}),
            "x2": {"field": "end"},
            "y": charts.channel("share:Q", title="share of deals", axis={"format": "%"}),
            "y2": {"datum": 0},
            "color": _legend([data_label, fit_label], [DATA, FIT]),
            "tooltip": [
                charts.channel("start:Q", title="from", format=",.0f"),
                charts.channel("end:Q", title="to", format=",.0f"),
                charts.channel("runs:Q", title="deals"),
                charts.channel("share:Q", format=".1%"),
            ],
        },
    }
    try:
        density = model.scipy().pdf
    except (TypeError, AttributeError):  # a resampled (empirical) fit has no density to draw
        return charts.layered(bars)
    top = max(float(values.max()) if values.size else 1.0, float(model.ppf(0.98)))
    x = np.linspace(0.0, top, 200)
    line = {
        "data": charts.data({"x": x, "share": np.asarray(density(x), dtype=float) * width, "what": fit_label}),
        "mark": charts.mark("line", strokeWidth=2.5),
        "encoding": {
            "x": charts.channel("x:Q"),
            "y": charts.channel("share:Q"),
            "color": _legend([data_label, fit_label], [DATA, FIT]),
        },
    }
    return charts.layered(bars, line)


def fit_cumulative(
    closed: np.ndarray,
    model,
    x_title: str,
    x_format: str,
    open_ages: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> dict:
    """The fitted cdf against the data's (Kaplan-Meier with open deals; closed deals alone for comparison)."""
    closed = np.sort(np.asarray(closed, dtype=float))
    lines = []
    if open_ages is not None and len(open_ages):
        times, cdf = kaplan_meier(closed, open_ages, weights)
        lines.append(("Data, open deals counted as still going", times, cdf))
        lines.append(("Closed deals only (looks too quick)", closed, np.arange(1, closed.size + 1) / closed.size))
    else:
        lines.append(("Data", closed, np.arange(1, closed.size + 1) / closed.size))
    top = max(float(closed.max()) if closed.size else 1.0, float(model.ppf(0.98)))
    grid = np.linspace(0.0, top, 200)
    domain = [label for label, _, _ in lines] + ["Fitted distribution"]
    colours = [DATA, NAIVE][: len(lines)] + [FIT]
    steps = {
        "data": charts.data(
            {
                "x": np.concatenate([x for _, x, _ in lines]),
                "cdf": np.concatenate([y for _, _, y in lines]),
                "what": np.concatenate([[label] * len(x) for label, x, _ in lines]),
            }
        ),
        "mark": charts.mark("line", interpolate="step-after", strokeWidth=2),
        "encoding": {
            "x": charts.channel("x:Q", title=x_title, axis={"format": x_format}),
            "y": charts.channel("cdf:Q", title="share of deals closed by then", axis={"format": "%"}),
            "color": _legend(domain, colours),
            "detail": charts.channel("what:N"),
        },
    }
    curve = {
        "data": charts.data(
            {"x": grid, "cdf": np.asarray(model.cdf(grid), dtype=float), "what": "Fitted distribution"}
        ),
        "mark": charts.mark("line", strokeWidth=2.5, strokeDash=[6, 3]),
        "encoding": {"x": charts.channel("x:Q"), "y": charts.channel("cdf:Q"), "color": _legend(domain, colours)},
    }
    return charts.layered(steps, curve)


# --- the page -----------------------------------------------------------------------------------


INTRO = (
    "Start from your own history instead of guesses. Upload an export of your deals from the CRM and the app "
    "works out, from the deals that already closed, how often a deal is won, how long winning and losing take, "
    "what a won deal is worth and how many new deals come in a week. The deals still open are listed one by one "
    "with their age. Then use the result as the scenario on every other page."
)
WHAT_TO_UPLOAD = (
    "**What to upload**: a CSV file with one row per opportunity (deal) and these columns, under any of their "
    "usual names: an **id**, the **created date**, the **close date** (blank while open), the **stage or outcome** "
    "(won, lost, or the stage an open deal is in) and the **amount**; an **owner** is optional. Salesforce "
    "(`Id, CreatedDate, CloseDate, StageName, Amount, OwnerId`) and HubSpot exports are recognised as they come; "
    "for other names you pick the columns after uploading. Dates as 2024-03-05 or 3/5/2024. Rows that cannot be "
    "used are skipped and listed with their line numbers."
)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:12]


def _column_boxes(header: list[str], digest: str) -> dict[str, str | None]:
    """One select box per role, pre-filled by recognition (keyed by the file, so a new file starts afresh)."""
    found = recognise(header)
    chosen: dict[str, str | None] = {}
    boxes = st.columns(len(DEAL_ROLES))
    for box, role in zip(boxes, DEAL_ROLES, strict=True):
        options = header if role in REQUIRED_DEAL_ROLES else [NO_COLUMN, *header]
        default = found.get(role, None if role in REQUIRED_DEAL_ROLES else NO_COLUMN)
        value = box.selectbox(
            ROLE_LABELS[role],
            options,
            index=options.index(default) if default in options else None,
            key=f"crm_column_{role}_{digest}",
            placeholder="choose a column",
            help=ROLE_HELP[role].capitalize() + ".",
        )
        chosen[role] = None if value == NO_COLUMN else value
    return chosen


def _mapping_problems(chosen: dict[str, str | None]) -> list[str]:
    problems = [
        f"No column chosen for {ROLE_LABELS[role].lower()} ({ROLE_HELP[role]}): pick it above."
        for role in REQUIRED_DEAL_ROLES
        if chosen.get(role) is None
    ]
    used: dict[str, str] = {}
    for role, column in chosen.items():
        if column is None:
            continue
        if column in used:
            problems.append(f"The column {column!r} is chosen for both {used[column]} and {role}: pick one each.")
        used.setdefault(column, role)
    return problems


def _date_range(crm: CrmData) -> tuple[pd.Timestamp, pd.Timestamp]:
    deals = crm.deals
    return deals["created"].min(), max(deals["created"].max(), deals["closed"].max())


def _days(x: float) -> str:
    return f"{x:,.0f} days"


def summary_words(cal: Calibration, name: str) -> str:
    """What the calibration did, in plain words."""
    report = cal.report
    counts, rate = report.counts, report.rate
    won, lost, value = report.won_duration, report.lost_duration, report.deal_value
    inflow, pipe, quota = report.inflow, report.open_pipeline, report.quota
    later = counts.created_after_as_of
    season = (
        f" (the history shows seasons, so the weekly rate is adjusted month by month over the "
        f"{report.horizon_days:g} days ahead)"
        if report.seasonality
        else ""
    )
    lost_words = f", a lost one about **{_days(lost.mean)}**" if lost else ""
    return (
        f"**What the calibration did.** It read the deals in *{safe.text(name)}* and used only what was known on "
        f"**{report.as_of}**: {counts.won:,} deals won, {counts.lost:,} lost and {counts.open:,} still "
        f"open" + (f" ({later:,} created later were left out)" if later else "") + ". From them it learned that "
        f"about **{say.percent(rate.mean, 0)}** of deals are won; a deal that is won takes about "
        f"**{_days(won.mean)}** from creation to close{lost_words}; a won deal is worth about "
        f"**{say.money(value.mean)}**; and **{say.figure(inflow.observed_per_week)}** new deals came in a week over "
        f"the last {report.window_weeks:g} weeks{season}.\n\n"
        "Deals that are still open were counted as *not closed yet* rather than ignored: leaving them out keeps "
        "only the quick deals and makes the sales cycle look shorter than it is. Each of the "
        f"{pipe.deals:,} open deals is kept with its age, and an old deal counts as less likely to be won: "
        f"together they should bring about **{say.figure(pipe.expected_wins)}** wins. The quota is "
        f"{say.amount(quota.target, quota.unit)} ({quota.basis}).\n\n"
        + _spread_words(report)
        + "The scenario has one stage, *Open pipeline*, from creation to close: the export says whether each deal "
        "was won, not which stages it went through."
    )


def _spread_words(report: CalibrationReport) -> str:
    """How much the history says the coming months can differ from the past, in words (empty for ``sampling``)."""
    if report.uncertainty != "history":
        return ""
    rate, inflow = report.rate, report.inflow
    moves = []
    if rate is not None and rate.between_sd:
        moves.append(f"the win rate moved by about ±{100 * rate.between_sd:.1f} percentage points from month to month")
    if inflow.dispersion:
        moves.append(
            f"the number of new deals in a period like this one was off its recent pace by about "
            f"±{say.percent(inflow.dispersion, 0)}"
        )
    if report.deal_value_spread > 0.02:
        moves.append(f"the average won deal moved by about ±{say.percent(report.deal_value_spread, 0)}")
    if not moves:
        return "The history shows no more month-to-month change than chance: the forecast's range is chance alone.\n\n"
    return (
        "**How much the next months can differ.** In this history " + "; ".join(moves) + ". The forecast "
        "carries that, so its range is as wide as the history says it should be.\n\n"
    )


def _parameters(summary: FitSummary) -> str:
    return ", ".join(f"{key} = {value:,.4g}" for key, value in summary.parameters.items() if value != 0.0)


def fits_table(report: CalibrationReport) -> pd.DataFrame:
    """One row per fit: what, the family chosen by AIC, its numbers, and how well it matches the data.

    Parameters
    ----------
    report : sim.crm.report.CalibrationReport
        A one-stage calibration's report (fits that are None are left out).

    Returns
    -------
    pandas.DataFrame
    """
    rows = []
    for label, fit, unit in (
        ("Days to win", report.won_duration, "days"),
        ("Days to lose", report.lost_duration, "days"),
        ("Won deal value", report.deal_value, "$"),
    ):
        if fit is None:
            continue
        rows.append(
            {
                "what": label,
                "family": fit.family,
                "mean": fit.mean,
                "sd": fit.sd,
                "unit": unit,
                "scipy parameters": _parameters(fit),
                "AIC": fit.aic,
                "KS distance": fit.ks_distance,
                "closed deals": fit.n_complete,
                "open deals counted": fit.n_censored,
                "how chosen": fit.note,
            }
        )
    return pd.DataFrame(rows)


def _report_section(cal: Calibration) -> None:
    report = cal.report
    rows, counts, rate = report.rows, report.counts, report.rate
    a, b, c, d = st.columns(4)
    a.metric("Deals used", f"{rows.rows_used:,}", border=True)
    a.caption(f"of {rows.read:,} rows read; {rows.skipped or 0:,} skipped.")
    b.metric("Win rate", say.percent(rate.mean), border=True)
    b.caption(f"{counts.won:,} won, {counts.lost:,} lost, {counts.open:,} open on {report.as_of}.")
    c.metric("Days to win", f"{report.won_duration.mean:,.0f}", border=True)
    lost = report.lost_duration
    c.caption("on average; " + (f"{lost.mean:,.0f} to lose." if lost else "no deal lost yet."))
    d.metric("New deals a week", say.figure(report.inflow.observed_per_week), border=True)
    d.caption(f"over the last {report.window_weeks:g} weeks; {say.money(report.deal_value.mean)} a won deal.")
    for line in report.warnings:
        st.warning(safe.text(line), icon=":material/warning:")


def _charts_section(cal: Calibration) -> None:
    snap, outcomes = cal.snapshot, cal.outcomes
    st.subheader("The fits against the data")
    view = st.segmented_control(
        "Show",
        ["Histogram", "Cumulative"],
        default="Histogram",
        key="crm_view",
        required=True,
        help="Histogram: closed deals as bars, the fitted distribution as a line. Cumulative: the share of deals "
        "closed by each day, where the data line also counts the open deals as still going.",
    )
    ages = snap.open["age_days"].to_numpy(dtype=float)
    stem = "calibrate"
    pairs = [("won", "Days from creation to a win", snap.won, outcomes.won, outcomes.weights)]
    if outcomes.lost is not None:
        pairs.append(("lost", "Days from creation to a loss", snap.lost, outcomes.lost, 1 - outcomes.weights))
    left, right = st.columns(2)
    for column, (key, title, values, fit, weights) in zip([left, right], pairs, strict=False):
        with column:
            st.markdown(f"**{title}** ({fit.family}, mean {fit.model.mean():,.0f} days)")
            if view == "Cumulative":
                chart = fit_cumulative(values, fit.model, "days", ",.0f", ages, weights)
            else:
                chart = fit_histogram(values, fit.model, f"{key.capitalize()} deals (closed)", "days", ",.0f")
            show_chart(chart, f"{stem}_{key}_days", f"{title}: data and fit")
    st.caption(
        "The bars hold only the deals that closed; the fit also counts the deals still open, which have lasted at "
        "least their age so far. So when many deals are open the fitted line sits to the right of the bars: the "
        "deals that have not closed yet are the slow ones."
    )
    st.markdown(f"**Value of a won deal** ({cal.value.family}, mean {say.money(cal.value.model.mean())})")
    amounts = snap.won_amounts
    if view == "Cumulative":
        chart = fit_cumulative(amounts, cal.value.model, "won deal value ($)", charts.MONEY_AXIS)
    else:
        chart = fit_histogram(amounts, cal.value.model, "Won deals", "won deal value ($)", charts.MONEY_AXIS)
    show_chart(chart, f"{stem}_deal_value", "Value of a won deal: data and fit")


def _details_section(cal: Calibration) -> None:
    report = cal.report
    st.subheader("The report")
    st.caption(
        "Each fit is the family (lognormal, gamma or exponential) with the lowest AIC, a score of fit that "
        "penalises extra parameters. The KS distance is the largest gap between the fitted and the observed "
        "share of deals closed by a given day (0 = perfect; below about 0.05 is a close fit)."
    )
    table = fits_table(report)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "mean": st.column_config.NumberColumn(format="%.1f"),
            "sd": st.column_config.NumberColumn(format="%.1f"),
            "AIC": st.column_config.NumberColumn(format="%.1f"),
            "KS distance": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    rows = report.rows
    skipped = rows.reasons
    st.markdown(
        f"**Rows**: {rows.read:,} read, {rows.rows_used:,} used, {rows.skipped or 0:,} skipped"
        + (" (below, with the file's line numbers; the header is line 1)." if skipped else ".")
    )
    if skipped:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "reason": reason,
                        "rows": entry.count,
                        "lines": ", ".join(map(str, entry.lines)) + (", ..." if entry.count > 10 else ""),
                    }
                    for reason, entry in skipped.items()
                ]
            ),
            hide_index=True,
        )
    counts = report.counts
    st.markdown(
        f"**Counts on {report.as_of}**: {counts.known:,} deals known, {counts.won:,} won, "
        f"{counts.lost:,} lost, {counts.open:,} open; {counts.created_in_window:,} created in the last "
        f"{report.window_weeks:g} weeks; {counts.created_after_as_of:,} created after {report.as_of} "
        "(left out)."
    )
    with st.expander("All candidate fits, and the scenario file"):
        candidates = [
            {"what": label, **candidate.as_dict()}
            for label, fit in (
                ("Days to win", report.won_duration),
                ("Days to lose", report.lost_duration),
                ("Value", report.deal_value),
            )
            if fit
            for candidate in fit.candidates
        ]
        st.dataframe(pd.DataFrame(candidates), hide_index=True)
        text = scenario_to_toml(cal.scenario)
        st.download_button(
            "Download the calibrated scenario (TOML)",
            data=text,
            file_name=f"calibrated_{report.as_of}.toml",
            mime="application/toml",
            key="crm_toml",
            on_click="ignore",
            icon=":material/download:",
        )
        st.code(text[:20_000] + ("\n# ... (cut here; the download has it all)" if len(text) > 20_000 else ""), "toml")


def backtest_dates(
    first: pd.Timestamp, last: pd.Timestamp, every_weeks: int, count: int, window_weeks: float, horizon_days: float
) -> list[str]:
    """As-of dates every ``every_weeks`` weeks back from the last one the data can judge.

    The latest is ``horizon_days`` before the end of the data (so what happened next is
    known), the earliest a full inflow window after the first deal; at most ``count``.
    """
    latest = (last - pd.Timedelta(days=horizon_days)).normalize()
    earliest = first + pd.Timedelta(weeks=window_weeks)
    dates = [latest - pd.Timedelta(weeks=every_weeks * k) for k in range(count)]
    return sorted(d.strftime("%Y-%m-%d") for d in dates if d >= earliest)


def _times(k: int, n: int) -> str:
    return f"{k} time{'' if k == 1 else 's'} in {n}"


def backtest_words(result: dict, measure: str) -> str:
    """A backtest's figures in plain words: how often the bands held the actual, and who missed by how much.

    Parameters
    ----------
    result : dict
        :func:`sim.crm.backtest.backtest`'s answer.
    measure : {"revenue", "deals"}

    Returns
    -------
    str
        Markdown.
    """
    suffix = "" if measure == "revenue" else "_deals"
    rows = result["dates"]
    n = len(rows)
    outer = sum(r[f"inside_p10_p90{suffix}"] for r in rows)
    inner = sum(r[f"inside_p25_p75{suffix}"] for r in rows)
    what = "won revenue" if measure == "revenue" else "won deals"
    held = (
        f"**In plain words.** For {what}, the P10–P90 band held the actual {_times(outer, n)} (an honest band "
        f"holds about 8 in 10) and the P25–P75 band {_times(inner, n)} (about 5 in 10)."
    )
    simulated = result[f"mape_p50{suffix}"]
    run = result["baselines"]["run_rate"][f"mape_p50{suffix}"]
    pipeline = result["baselines"]["weighted_pipeline"][f"mape_p50{suffix}"]
    if simulated is None or run is None or pipeline is None:
        return held + f" No date had any {what} after it, so there is no relative error to compare."
    better = (
        "the simulation missed less than the run-rate"
        if simulated < run
        else "the run-rate missed no more than the simulation: here the simulation has not earned its keep"
    )
    verdict = result["pit"][measure]["verdict"]
    return (
        f"{held} The simulation's middle estimate was off by {say.percent(simulated, 0)} on average, the run-rate "
        f"by {say.percent(run, 0)} and the weighted pipeline by {say.percent(pipeline, 0)}: {better}. "
        f"Where the actuals fell in the forecasts: {verdict}."
    )


def _start_backtest() -> None:
    st.session_state["crm_backtest_on"] = True


def _backtest_section(
    data: bytes,
    name: str,
    columns: Columns,
    crm: CrmData,
    window: float,
    horizon: float,
    seed: int,
    half_life: float | str | None = None,
) -> None:
    st.subheader("Would it have worked? A backtest")
    st.caption(
        "Go back to past dates, calibrate on what was known then, forecast the next "
        f"{horizon:g} days, and compare with what the file shows really happened. Every date uses "
        f"{BACKTEST_RUNS:,} simulated periods."
    )
    first, last = _date_range(crm)
    left, middle, right = st.columns(3)
    every = left.number_input("A forecast every ... weeks", 1, 104, 8, step=1, key="crm_every")
    count = middle.number_input("How many dates (at most)", 1, MAX_BACKTEST_DATES, 6, step=1, key="crm_count")
    measure = right.segmented_control(
        "Compare",
        ["revenue", "deals"],
        default="revenue",
        key="crm_measure",
        required=True,
        format_func=lambda m: "won revenue" if m == "revenue" else "won deals",
    )
    dates = backtest_dates(first, last, int(every), int(count), window, horizon)
    if not dates:
        st.info(
            f"The file is too short to backtest: it needs {window:g} weeks of history before a date and "
            f"{horizon:g} days after it (the data run from {first:%Y-%m-%d} to {last:%Y-%m-%d})."
        )
        return
    st.caption(f"Dates: {', '.join(dates)}.")
    if not st.session_state.get("crm_backtest_on"):
        st.button("Run the backtest", on_click=_start_backtest, icon=":material/history:")
        return
    with st.spinner(f"Calibrating and simulating {len(dates)} past dates...", show_time=True):
        result = backtested(
            data, name, columns, tuple(dates), float(horizon), float(window), BACKTEST_RUNS, seed, half_life
        )
    if isinstance(result, list):
        for line in result:
            st.error(safe.text(line))
        return
    suffix = "" if measure == "revenue" else "_deals"
    coverage, mape = result[f"coverage{suffix}"], result[f"mape_p50{suffix}"]
    inside = sum(r[f"inside_p10_p90{suffix}"] for r in result["dates"])
    a, b = st.columns(2)
    a.metric("Coverage of the P10–P90 band", say.percent(coverage, 0), border=True)
    a.caption(f"{inside} of {len(result['dates'])} dates; about 80% is right.")
    b.metric("Typical miss of P50 (MAPE)", "-" if mape is None else say.percent(mape, 0), border=True)
    b.caption("Mean |P50 − actual| ÷ actual.")
    st.caption(
        "Coverage is the share of dates whose actual result fell inside the forecast's middle-80% band: about 80% "
        "means the forecast is honest about its uncertainty, much less that it was overconfident. The MAPE says "
        "how far the middle forecast (P50) landed from what happened, as a share of what happened."
    )
    st.markdown(backtest_words(result, measure))
    frame = pd.DataFrame(
        [
            {
                "as_of": pd.Timestamp(r["as_of"]),
                **{q: r["forecast"][measure][q] for q in ("p10", "p25", "p50", "p75", "p90")},
                "actual": r["actual"][measure],
                "run_rate": r["baselines"]["run_rate"][measure],
            }
            for r in result["dates"]
        ]
    )
    y_title = "won revenue ($)" if measure == "revenue" else "won deals"
    show_chart(
        charts.backtest_chart(frame, y_title, charts.axis_format(measure)),
        f"backtest_{measure}",
        f"Backtest: {y_title} over {horizon:g} days, forecast vs actual",
    )
    st.caption(
        "The run-rate is the naive forecast: the next period wins what the last one did. The weighted pipeline "
        "adds each open deal's amount times its chance of being won, and new deals won at the recent pace. A "
        "simulation that misses more than these has not earned its keep."
    )


def calibrate_page(ctx: Context) -> None:
    """The Calibrate page."""
    st.caption(INTRO)
    upload = st.file_uploader(
        "A CSV export of your deals (one row per opportunity)",
        type=["csv", "txt"],
        key="crm_upload",
        max_upload_size=MAX_CSV_BYTES // 1_000_000,
        help="UTF-8 text, separated by commas, semicolons or tabs, with a header row.",
    )
    if upload is None:
        st.info(WHAT_TO_UPLOAD, icon=":material/upload_file:")
        return
    data, name = upload.getvalue(), upload.name
    digest = _digest(data)
    header = csv_header(data)
    if header:
        st.markdown("**Which column is which** (recognised from the names; change any that are wrong)")
        chosen = _column_boxes(header, digest)
        problems = _mapping_problems(chosen)
        if problems:
            for line in problems:
                st.error(safe.text(line))
            return
    else:
        chosen = {}
    columns: Columns = tuple(sorted((role, column) for role, column in chosen.items() if column is not None))
    crm = read(data, name, columns)
    if isinstance(crm, list):
        for line in crm:
            st.error(safe.text(line))
        st.caption("Nothing was changed: the current scenario is as it was.")
        return

    first, last = _date_range(crm)
    a, b, c, d = st.columns(4)
    as_of = a.date_input(
        "Calibrate as of (the start of that day)",
        value=last.date(),
        min_value=dt.date(1970, 1, 1),
        max_value=(last + pd.Timedelta(days=3660)).date(),
        key=f"crm_as_of_{digest}",
        help=f"Only what was known then is used. The file runs from {first:%Y-%m-%d} to {last:%Y-%m-%d}.",
    )
    window = b.number_input(
        "New deals a week: measured over the last ... weeks",
        min_value=1.0,
        max_value=520.0,
        value=13.0,
        step=1.0,
        format="%g",
        key="crm_window",
    )
    horizon = c.number_input(
        "Period to forecast (days)",
        min_value=1.0,
        max_value=3660.0,
        value=91.0,
        step=1.0,
        format="%g",
        key="crm_horizon",
    )
    recency = d.selectbox(
        "Recent months count more",
        list(RECENCY),
        index=list(RECENCY.values()).index(DEFAULT_HALF_LIFE_WEEKS),
        key="crm_recency",
        help="When the win rate or the pace of new deals has been moving, recent deals say more about the "
        "next months than old ones. 'Let the history decide' tries each choice on past dates and keeps "
        "the one whose forecasts came closest (slower: it calibrates several times).",
    )
    half_life = RECENCY[recency]
    answer = calibrated(data, name, columns, as_of.isoformat(), float(window), float(horizon), half_life)
    if isinstance(answer, list):
        for line in answer:
            st.error(safe.text(line))
        st.caption("Nothing was changed: the current scenario is as it was.")
        return
    cal, choice = answer
    if choice is not None:
        st.caption(f"Recent months: {choice.note}.")

    st.markdown(summary_words(cal, name))
    if ctx.scenario == cal.scenario:
        st.success("This calibration is the current scenario: every page now shows it.", icon=":material/check:")
    else:
        st.button(
            "Use as the current scenario",
            type="primary",
            on_click=_use,
            args=(cal.scenario, f"a CRM export ({name}, as of {cal.report.as_of})"),
            icon=":material/input:",
            help="Load it into the inputs: every page then shows it, and the link and the TOML download carry it.",
        )
    _report_section(cal)
    _charts_section(cal)
    _details_section(cal)
    _backtest_section(data, name, columns, crm, float(window), float(horizon), ctx.seed, half_life)


__all__ = [
    "backtest_dates",
    "backtest_words",
    "calibrate_page",
    "csv_header",
    "fit_cumulative",
    "fit_histogram",
    "fits_table",
    "summary_words",
]

"""The app's Altair charts, and their export as SVG or PNG.

Each function takes plain arrays and numbers and returns an Altair chart; none of them
runs a simulation. Data is summarised before it is charted (a histogram's bins, a fan
chart's percentiles), so the browser receives a few dozen rows, not thousands of runs.
:func:`to_svg` and :func:`to_png` render a chart with vl-convert, which bundles Vega
and needs no browser and no network.

Building an Altair chart and checking its spec against the Vega-Lite schema took most of
a page's time (0.55 of the Forecast's 0.63 s after a rate change), so the page's charts
are remembered by the digest of their inputs (:func:`remembered`: a page shown again
builds nothing) and handed to the browser as specs that are not checked again
(:func:`panel_specs`).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

SIMULATION = "#4C78A8"
AVERAGE = "#F58518"
QUOTA = "#D62728"
BAND = "#9ECAE9"
BASELINE = "#A0A0A0"
TARGET = "#54A24B"
HEIGHT = 280
EXPORT_WIDTH = 720

LEGEND = alt.Legend(title=None, orient="top", labelLimit=0)
MONEY_AXIS = "$,.3~s"
"""d3-format: dollars with SI suffixes and no trailing zeros (``$1.2M``, ``$950k``, ``$0``)."""
LABEL_ROW = 14
"""Pixels between two rows of reference-line labels."""
LABEL_GAP = 0.2
"""Reference lines closer than this share of the axis have labels that would cover each other."""


REMEMBERED_CHARTS = 64
"""Charts kept (for every visitor), the least recently used dropped first; each holds a few dozen rows."""
_charts: OrderedDict[str, tuple] = OrderedDict()
_lock = threading.Lock()


def _digest(value, h) -> None:
    """Feed ``value`` (arrays, frames, numbers, strings, and lists, tuples or dicts of them) to the hash ``h``."""
    h.update(type(value).__name__.encode())
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, pd.DataFrame):
        h.update(repr(list(value.columns)).encode())
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, (list, tuple)):
        for item in value:
            _digest(item, h)
        h.update(b"]")
    elif isinstance(value, dict):
        _digest(sorted(value.items()), h)
    else:
        h.update(repr(value).encode())
    h.update(b"|")


def remembered(build):
    """A chart builder that returns the very same chart for the same inputs (:data:`REMEMBERED_CHARTS` kept).

    The chart is never changed after it is built (the page and the downloads only read it), so visitors can
    share it; :func:`panel_specs` keeps its Vega-Lite specs with it.
    """

    @functools.wraps(build)
    def chart(*args, **kwargs):
        h = hashlib.blake2b(build.__name__.encode(), digest_size=16)
        _digest((args, kwargs), h)
        key = h.hexdigest()
        with _lock:
            if key in _charts:
                _charts.move_to_end(key)
                return _charts[key][0]
        built = build(*args, **kwargs)
        with _lock:
            _charts[key] = (built, {})
            while len(_charts) > REMEMBERED_CHARTS:
                _charts.popitem(last=False)
        return built

    return chart


def forget() -> None:
    """Drop every remembered chart (a benchmark that times a page from nothing calls it)."""
    with _lock:
        _charts.clear()


def panel_specs(chart) -> list[dict]:
    """The chart's Vega-Lite specs for the browser, one per panel of a stack, without Altair's schema check.

    Vega-Lite gives a stack no container width, so a page draws its panels one by one. The
    builders here make every chart from Altair's typed classes and their tests render each
    one with vl-convert (:func:`to_svg`), so the check, most of the time a chart took, finds
    nothing. Altair's default theme is off, as :func:`streamlit.altair_chart` turns it off,
    so the app's theme applies. A remembered chart (:func:`remembered`) keeps its specs.
    """
    with _lock:
        kept = next((specs for built, specs in _charts.values() if built is chart), None)
    if kept is not None and "panels" in kept:
        return kept["panels"]
    with alt.theme.enable("none"):
        made = [
            panel.to_dict(validate=False)
            for panel in (chart.vconcat if isinstance(chart, alt.VConcatChart) else [chart])
        ]
    if kept is not None:
        kept["panels"] = made
    return made


def bin_edges(values: np.ndarray, whole: bool = False, max_bins: int = 40) -> np.ndarray:
    """Histogram bin edges: for whole numbers (counts of deals), bins of a whole width centred on integers.

    A whole number then never falls on an edge and every bin holds as many integers as
    the next, so the bars show no saw-tooth of bins that happen to hold one integer more.
    """
    values = np.asarray(values, dtype=float)
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if whole:
        low, high = np.floor(low), np.ceil(high)
        width = max(1.0, np.ceil((high - low + 1) / max_bins))
        return np.arange(low - 0.5, high + width, width)
    if high > low:
        return np.histogram_bin_edges(values, bins=max_bins, range=(low, high))
    return np.array([low - 0.5, low + 0.5])


def histogram_frame(values: np.ndarray, whole: bool = False, max_bins: int = 40) -> pd.DataFrame:
    """Bins of a sample (:func:`bin_edges`): ``start``, ``end``, ``runs`` and ``share`` (runs / all runs)."""
    values = np.asarray(values, dtype=float)
    runs, edges = np.histogram(values, bins=bin_edges(values, whole, max_bins))
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "runs": runs, "share": runs / max(1, len(values))})


def label_rows(positions: list[float], span: tuple[float, float], gap: float = LABEL_GAP) -> list[int]:
    """The row each reference line's label goes on: the first row with no label closer than ``gap`` of the span.

    Labels of lines far apart share the top row; a label that would cover another drops a row.
    """
    width = (span[1] - span[0]) or 1.0
    taken: list[list[float]] = []
    rows = [0] * len(positions)
    for i in sorted(range(len(positions)), key=lambda i: positions[i]):
        row = next(
            (r for r, placed in enumerate(taken) if all(abs(positions[i] - p) >= gap * width for p in placed)),
            len(taken),
        )
        if row == len(taken):
            taken.append([])
        taken[row].append(positions[i])
        rows[i] = row
    return rows


def _markers(
    markers: list[tuple[str, float, str]],
    field: str = "value",
    axis: str = "x",
    span: tuple[float, float] | None = None,
) -> alt.Chart | alt.LayerChart:
    """Vertical (or horizontal) reference lines with a legend: (label, value, colour).

    With ``span`` (the x axis's range), vertical lines also carry their label at the top,
    on the side away from a close neighbour (else the side with more room), a row lower
    where it would cover a neighbour's.
    """
    frame = pd.DataFrame({"label": [m[0] for m in markers], field: [m[1] for m in markers]})
    color = alt.Color(
        "label:N",
        scale=alt.Scale(domain=[m[0] for m in markers], range=[m[2] for m in markers]),
        legend=LEGEND,
    )
    encoding = {axis: alt.X(f"{field}:Q") if axis == "x" else alt.Y(f"{field}:Q")}
    rules = (
        alt.Chart(frame)
        .mark_rule(strokeWidth=2.5, strokeDash=[6, 3])
        .encode(color=color, tooltip=["label:N", alt.Tooltip(f"{field}:Q", format=",.4~r")], **encoding)
    )
    if span is None or axis != "x":
        return rules
    middle = (span[0] + span[1]) / 2
    near = LABEL_GAP * ((span[1] - span[0]) or 1.0)
    positions = [m[1] for m in markers]
    labels = []
    for (label, value, colour), row in zip(markers, label_rows(positions, span), strict=True):
        above = any(value < p < value + near for p in positions)
        below = any(value - near < p < value for p in positions)
        # Away from a close neighbour (the pair's labels face outward), else on the side with more room.
        to_left = not below if above != below else value > middle
        labels.append(
            alt.Chart(pd.DataFrame({"label": [label], field: [value]}))
            .mark_text(
                align="right" if to_left else "left",
                dx=-5 if to_left else 5,
                baseline="top",
                fontWeight="bold",
                color=colour,
            )
            .encode(alt.X(f"{field}:Q"), y=alt.value(2 + LABEL_ROW * row), text="label:N")
        )
    return alt.layer(rules, *labels)


def _span(*samples) -> tuple[float, float]:
    """The smallest and largest of some numbers (arrays or scalars), for placing labels."""
    pooled = np.concatenate([np.atleast_1d(np.asarray(s, dtype=float)) for s in samples])
    return float(pooled.min()), float(pooled.max())


@remembered
def distribution_chart(
    values: np.ndarray,
    markers: list[tuple[str, float, str]],
    x_title: str,
    x_format: str,
    whole: bool = False,
    color: str = SIMULATION,
    y_title: str = "share of simulated periods",
) -> alt.LayerChart:
    """Histogram of a result per run (revenue, deals, attainment) with labelled reference lines."""
    frame = histogram_frame(values, whole=whole)
    # The axis spans the data, not 0 to the data: results far from 0 would leave most of the chart empty.
    x_scale = alt.Scale(zero=False)
    bars = (
        alt.Chart(frame)
        .mark_bar(color=color, opacity=0.85, binSpacing=1)
        .encode(
            alt.X("start:Q", title=x_title, axis=alt.Axis(format=x_format), scale=x_scale),
            alt.X2("end:Q"),
            alt.Y("share:Q", title=y_title, axis=alt.Axis(format="%")),
            alt.Y2(datum=0),
            tooltip=[
                alt.Tooltip("start:Q", title="from", format=x_format),
                alt.Tooltip("end:Q", title="to", format=x_format),
                alt.Tooltip("runs:Q", title="runs"),
                alt.Tooltip("share:Q", title="share", format=".1%"),
            ],
        )
    )
    span = _span(frame["start"], frame["end"], [m[1] for m in markers])
    return alt.layer(bars, _markers(markers, span=span)).properties(height=HEIGHT)


def axis_format(unit: str) -> str:
    """The axis format of a quota unit: dollars or whole deals."""
    return MONEY_AXIS if unit == "revenue" else ",d"


@remembered
def fan_chart(weekly: np.ndarray, horizon_days: float, pace_total: float | None, y_title: str, unit: str):
    """Cumulative result by week: the P10-P90 band and the median, against a straight quota pace.

    ``weekly`` is runs x weeks, cumulative; week w ends at day min(7w, horizon).
    """
    weeks = weekly.shape[1]
    ends = np.minimum(7.0 * np.arange(1, weeks + 1), horizon_days) / 7.0
    p10, p50, p90 = np.percentile(weekly, [10, 50, 90], axis=0)
    frame = pd.DataFrame(
        {
            "week": np.concatenate([[0.0], ends]),
            "p10": np.concatenate([[0.0], p10]),
            "p50": np.concatenate([[0.0], p50]),
            "p90": np.concatenate([[0.0], p90]),
        }
    )
    labels = ["Middle 80% of runs (P10 to P90)", "Median run"]
    colors = [BAND, SIMULATION]
    if pace_total is not None:
        labels.append("Quota pace (straight line)")
        colors.append(QUOTA)
    color = alt.Color("band:N", scale=alt.Scale(domain=labels, range=colors), legend=LEGEND)
    x = alt.X("week:Q", title="week", axis=alt.Axis(tickMinStep=1))
    fmt = axis_format(unit)
    layers = [
        alt.Chart(frame)
        .transform_calculate(band=f"'{labels[0]}'")
        .mark_area(opacity=0.6)
        .encode(
            x,
            alt.Y("p10:Q", title=y_title, axis=alt.Axis(format=fmt)),
            alt.Y2("p90:Q"),
            color=color,
            tooltip=[
                alt.Tooltip("week:Q", format=".1f"),
                alt.Tooltip("p10:Q", title="P10", format=",.0f"),
                alt.Tooltip("p90:Q", title="P90", format=",.0f"),
            ],
        ),
        alt.Chart(frame)
        .transform_calculate(band=f"'{labels[1]}'")
        .mark_line(strokeWidth=2.5)
        .encode(
            x,
            alt.Y("p50:Q"),
            color=color,
            tooltip=[alt.Tooltip("week:Q", format=".1f"), alt.Tooltip("p50:Q", title="median", format=",.0f")],
        ),
    ]
    if pace_total is not None:
        pace = pd.DataFrame({"week": [0.0, horizon_days / 7.0], "p50": [0.0, pace_total]})
        layers.append(
            alt.Chart(pace)
            .transform_calculate(band=f"'{labels[2]}'")
            .mark_line(strokeDash=[6, 3], strokeWidth=2)
            .encode(x, alt.Y("p50:Q"), color=color)
        )
    return alt.layer(*layers).properties(height=HEIGHT)


BACKTEST_LABELS = ("Forecast P10–P90", "Forecast P25–P75", "Forecast P50", "Actual", "Run-rate (last period again)")
INNER_BAND = "#6BAED6"
ACTUAL = "#F58518"


def backtest_chart(frame: pd.DataFrame, y_title: str, y_format: str) -> alt.LayerChart:
    """Forecasts from past dates against what happened: the bands as areas, actuals as points, the run-rate as a line.

    ``frame`` has one row per origin: ``as_of`` (a date), the forecast's ``p10``, ``p25``,
    ``p50``, ``p75``, ``p90``, the ``actual`` and the ``run_rate`` baseline.
    """
    labels = list(BACKTEST_LABELS)
    color = alt.Color(
        "what:N",
        scale=alt.Scale(domain=labels, range=[BAND, INNER_BAND, SIMULATION, ACTUAL, BASELINE]),
        legend=LEGEND,
    )
    x = alt.X("as_of:T", title="forecast made on", axis=alt.Axis(format="%Y-%m-%d"))
    tooltip = [
        alt.Tooltip("as_of:T", title="as of", format="%Y-%m-%d"),
        *(alt.Tooltip(f"{q}:Q", title=q.upper(), format=",.0f") for q in ("p10", "p25", "p50", "p75", "p90")),
        alt.Tooltip("actual:Q", format=",.0f"),
        alt.Tooltip("run_rate:Q", title="run-rate", format=",.0f"),
    ]
    base = alt.Chart(frame)

    def labelled(label: str) -> alt.Chart:
        return base.transform_calculate(what=f"'{label}'")

    layers = [
        labelled(labels[0])
        .mark_area(opacity=0.5)
        .encode(x, alt.Y("p10:Q", title=y_title, axis=alt.Axis(format=y_format)), alt.Y2("p90:Q"), color=color),
        labelled(labels[1]).mark_area(opacity=0.6).encode(x, alt.Y("p25:Q"), alt.Y2("p75:Q"), color=color),
        labelled(labels[2]).mark_line(strokeWidth=2).encode(x, alt.Y("p50:Q"), color=color),
        labelled(labels[4])
        .mark_line(strokeDash=[6, 3], strokeWidth=2, point=True)
        .encode(x, alt.Y("run_rate:Q"), color=color, tooltip=tooltip),
        labelled(labels[3])
        .mark_point(filled=True, size=80, opacity=1)
        .encode(x, alt.Y("actual:Q"), color=color, tooltip=tooltip),
    ]
    return alt.layer(*layers).properties(height=HEIGHT)


@remembered
def funnel_chart(frame: pd.DataFrame) -> alt.Chart:
    """Expected deals per stage: ``stage``, ``source`` and ``deals`` columns, stages in funnel order."""
    order = list(dict.fromkeys(frame["stage"]))
    sources = list(dict.fromkeys(frame["source"]))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            alt.Y("stage:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
            alt.YOffset("source:N", sort=sources),
            alt.X("deals:Q", title="deals per period (average)"),
            color=alt.Color(
                "source:N",
                scale=alt.Scale(domain=sources, range=[SIMULATION, AVERAGE][: len(sources)]),
                legend=LEGEND,
            ),
            tooltip=["stage:N", "source:N", alt.Tooltip("deals:Q", format=",.1f")],
        )
        .properties(height=alt.Step(14))
    )


@remembered
def probability_curve(
    frame: pd.DataFrame,
    x: str,
    x_title: str,
    markers: list[tuple[str, float, str]],
    level: tuple[str, float, str] | None = None,
    x_format: str = ",.4~r",
) -> alt.LayerChart:
    """P(hit) against a number (weekly opportunities, a quota): a line with its points."""
    base = alt.Chart(frame).encode(
        alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format=x_format)),
        alt.Y("p_hit:Q", title="P(hit quota)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip(f"{x}:Q", title=x_title, format=",.2f"), alt.Tooltip("p_hit:Q", format=".1%")],
    )
    layers = [base.mark_line(color=SIMULATION, strokeWidth=2.5, interpolate="monotone")]
    if len(frame) <= 60:
        layers.append(base.mark_point(color=SIMULATION, filled=True, size=40))
    if markers:
        layers.append(_markers(markers, span=_span(frame[x], [m[1] for m in markers])))
    if level is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"p_hit": [level[1]], "label": [level[0]]}))
            .mark_rule(color=level[2], strokeWidth=1.5)
            .encode(alt.Y("p_hit:Q"), tooltip=["label:N", alt.Tooltip("p_hit:Q", format=".0%")])
        )
    return alt.layer(*layers).properties(height=HEIGHT)


@remembered
def tornado(frame: pd.DataFrame) -> alt.LayerChart:
    """Sensitivity bars, biggest first: ``lever``, ``points`` (change in P(hit)) and ``se_points``."""
    order = list(frame["lever"])
    frame = frame.assign(low=frame["points"] - 2 * frame["se_points"], high=frame["points"] + 2 * frame["se_points"])
    y = alt.Y("lever:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y,
            alt.X("points:Q", title="change in P(hit), percentage points"),
            color=alt.condition(alt.datum.points >= 0, alt.value(SIMULATION), alt.value(QUOTA)),
            tooltip=[
                "lever:N",
                alt.Tooltip("points:Q", title="points of P(hit)", format="+.1f"),
                alt.Tooltip("se_points:Q", title="standard error", format=".2f"),
            ],
        )
    )
    whiskers = alt.Chart(frame).mark_rule(color="#333333").encode(y, alt.X("low:Q"), alt.X2("high:Q"))
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333333").encode(x="x:Q")
    return alt.layer(bars, whiskers, zero).properties(height=max(160, 34 * len(order)))


@remembered
def overlaid_distributions(
    samples: dict[str, np.ndarray],
    unit: str,
    x_title: str,
    markers: list[tuple[str, float, str]],
    x_format: str | None = None,
    y_title: str = "share of simulated periods",
) -> alt.LayerChart:
    """Two (or more) results' histograms on common bins, drawn over each other (x in the unit's format)."""
    x_format = x_format or axis_format(unit)
    pooled = np.concatenate(list(samples.values()))
    edges = bin_edges(pooled, whole=unit == "deals")
    frames = []
    for name, values in samples.items():
        runs, _ = np.histogram(values, bins=edges)
        frames.append(
            pd.DataFrame({"start": edges[:-1], "end": edges[1:], "share": runs / max(1, len(values)), "scenario": name})
        )
    frame = pd.concat(frames, ignore_index=True)
    names = list(samples)
    bars = (
        alt.Chart(frame)
        .mark_bar(opacity=0.55, binSpacing=0)
        .encode(
            alt.X("start:Q", title=x_title, axis=alt.Axis(format=x_format), scale=alt.Scale(zero=False)),
            alt.X2("end:Q"),
            alt.Y("share:Q", title=y_title, axis=alt.Axis(format="%"), stack=None),
            alt.Y2(datum=0),
            color=alt.Color(
                "scenario:N",
                scale=alt.Scale(domain=names, range=[BASELINE, SIMULATION][: len(names)]),
                legend=LEGEND,
            ),
            tooltip=["scenario:N", alt.Tooltip("start:Q", format=x_format), alt.Tooltip("share:Q", format=".1%")],
        )
    )
    layers = [bars]
    if markers:
        rules = pd.DataFrame({"label": [m[0] for m in markers], "value": [m[1] for m in markers]})
        layers.append(
            alt.Chart(rules)
            .mark_rule(strokeWidth=2.5, strokeDash=[6, 3], color=QUOTA)
            .encode(x="value:Q", tooltip=["label:N", alt.Tooltip("value:Q", format=x_format)])
        )
    return alt.layer(*layers).properties(height=HEIGHT)


STAGE_COLOURS = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#9D755D", "#EECA3B"]


def week_ends(weeks: int, horizon_days: float) -> np.ndarray:
    """The day each week ends on: 7, 14, ..., and the horizon for a last, partial week."""
    return np.minimum(7.0 * np.arange(1, weeks + 1), horizon_days)


def capacity_frame(
    queue_by_week: np.ndarray, busy_by_week: np.ndarray, slots: list[int | None], names: list[str], horizon_days: float
) -> pd.DataFrame:
    """Queue and utilisation by week of the limited stages: percentiles over the runs, one row per stage and week.

    ``queue_by_week`` and ``busy_by_week`` are runs x stages x weeks (deals waiting at
    each week's end; slot-days in use during the week). A week's utilisation is its
    busy slot-days over the slot-days it had: slots x its days (the last week may be
    shorter than 7). Columns: ``stage``, ``measure`` (``queue`` or ``utilisation``),
    ``week`` (its end, in weeks), ``p10``, ``p50``, ``p90``.
    """
    ends = week_ends(queue_by_week.shape[2], horizon_days)
    days = np.diff(np.concatenate([[0.0], ends]))
    frames = []
    for j, (n, name) in enumerate(zip(slots, names, strict=True)):
        if n is None:
            continue
        for measure, values in (("queue", queue_by_week[:, j, :]), ("utilisation", busy_by_week[:, j, :] / (n * days))):
            p10, p50, p90 = np.percentile(values, [10, 50, 90], axis=0)
            frames.append(
                pd.DataFrame(
                    {"stage": name, "measure": measure, "week": ends / 7.0, "p10": p10, "p50": p50, "p90": p90}
                )
            )
    return pd.concat(frames, ignore_index=True)


@remembered
def capacity_chart(frame: pd.DataFrame) -> alt.VConcatChart:
    """Two panels over the weeks: deals waiting (queue) and the share of slots in use, per limited stage.

    ``frame`` is :func:`capacity_frame`'s: each stage's median line with its P10-P90 band.
    """
    stages = list(dict.fromkeys(frame["stage"]))
    scale = alt.Scale(domain=stages, range=(STAGE_COLOURS * len(stages))[: len(stages)])
    legend = alt.Legend(title="Stage (line: median run, band: P10 to P90)", orient="top", labelLimit=0, titleLimit=0)
    x = alt.X("week:Q", title="week", axis=alt.Axis(tickMinStep=1), scale=alt.Scale(domainMin=0))

    def panel(measure: str, title: str, fmt: str) -> alt.LayerChart:
        # The data goes on the layer, not on each mark: Altair then has no data of the
        # marks to compare and merge, which took most of the time of drawing this chart.
        data = alt.Chart()
        tooltip = [
            "stage:N",
            alt.Tooltip("week:Q", format=".1f"),
            alt.Tooltip("p10:Q", title="P10", format=fmt),
            alt.Tooltip("p50:Q", title="median", format=fmt),
            alt.Tooltip("p90:Q", title="P90", format=fmt),
        ]
        rows = frame[frame["measure"] == measure]
        axis = alt.Axis(format=".0%") if measure == "utilisation" else alt.Axis(format=",d", tickMinStep=1)
        # The axis goes a tenth past the top of the widest band (P90), so no band is cut off or flush with the top.
        top = 1.0 if measure == "utilisation" else 1.1 * max(1.0, float(rows["p90"].max()))
        y = alt.Y("p50:Q", title=title, axis=axis, scale=alt.Scale(domain=[0, top], nice=True))
        # One legend, over the top panel: the panels are also drawn one by one (see pages.show_chart).
        color = alt.Color("stage:N", scale=scale, legend=legend if measure == "queue" else None)
        band = data.mark_area(opacity=0.2).encode(x, alt.Y("p10:Q"), alt.Y2("p90:Q"), color=color)
        line = data.mark_line(strokeWidth=2.5, point=True).encode(x, y, color=color, tooltip=tooltip)
        return alt.layer(band, line, data=rows).properties(height=HEIGHT if measure == "queue" else int(HEIGHT * 0.8))

    return alt.vconcat(
        panel("queue", "deals waiting", ",.1f"),
        panel("utilisation", "slots in use", ".0%"),
    ).resolve_scale(color="shared")


# --- export ---------------------------------------------------------------------------------


def _export_spec(chart, title: str) -> dict:
    if isinstance(chart, alt.VConcatChart):  # a stack of panels has no width of its own: each panel gets it
        chart = chart.copy()
        chart.vconcat = [panel.properties(width=EXPORT_WIDTH) for panel in chart.vconcat]
        return chart.properties(title=title).to_dict()
    return chart.properties(title=title, width=EXPORT_WIDTH).to_dict()


def to_svg(chart, title: str = "") -> str:
    """The chart as an SVG document (rendered offline by vl-convert)."""
    return vlc.vegalite_to_svg(_export_spec(chart, title), allowed_base_urls=[])


def to_png(chart, title: str = "") -> bytes:
    """The chart as a PNG image at twice the screen resolution (rendered offline by vl-convert)."""
    return vlc.vegalite_to_png(_export_spec(chart, title), scale=2, allowed_base_urls=[])

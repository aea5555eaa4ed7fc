"""The app's charts, each a Vega-Lite spec, and their export as SVG or PNG.

A chart is its Vega-Lite spec: a plain dict of JSON types with its few dozen rows of data
inline, which the page hands to the browser as it is (:func:`streamlit.vega_lite_chart`).
Each builder takes plain arrays and numbers and runs no simulation; data is summarised
before it is charted (a histogram's bins, a fan chart's percentiles). The specs carry no
theme or config, so the app's theme applies. :func:`to_svg` and :func:`to_png` render a
chart with vl-convert, which bundles Vega and needs no browser and no network.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import OrderedDict

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

MONEY_AXIS = "$,.3~s"
"""d3-format: dollars with SI suffixes and no trailing zeros (``$1.2M``, ``$950k``, ``$0``)."""
LABEL_ROW = 14
"""Pixels between two rows of reference-line labels."""
LABEL_GAP = 0.2
"""Reference lines closer than this share of the axis have labels that would cover each other."""


# --- the parts of a spec --------------------------------------------------------------------

TYPES = {"Q": "quantitative", "N": "nominal", "T": "temporal", "O": "ordinal"}


def channel(shorthand: str, **properties) -> dict:
    """An encoding channel from ``"field:Q"`` (Q, N, T or O, as Altair's shorthand) and its properties."""
    field, kind = shorthand.split(":")
    return {"field": field, "type": TYPES[kind], **properties}


def legend(**more) -> dict:
    """The app's legend: over the chart, no title, labels never cut (a new dict: Streamlit may patch it)."""
    return {"title": None, "orient": "top", "labelLimit": 0, **more}


def keyed(shorthand: str, domain: list[str], colours: list[str], **properties) -> dict:
    """A colour channel giving each name of ``domain`` its colour, with the app's legend unless told otherwise."""
    properties.setdefault("legend", legend())
    return channel(shorthand, scale={"domain": list(domain), "range": list(colours)}, **properties)


def mark(kind: str, **properties) -> dict:
    """A mark of a kind (``bar``, ``line``, ``rule``...) with its properties."""
    return {"type": kind, **properties}


def labelled(field: str, label: str) -> list[dict]:
    """A transform that names every row of a layer ``label`` in ``field``, for the layer's legend entry."""
    return [{"calculate": json.dumps(label), "as": field}]


def layered(*layers: dict, height: int | dict = HEIGHT, data: dict | None = None) -> dict:
    """Layers drawn over each other at a height, with the data they share (a layer's own data wins)."""
    spec = {"layer": list(layers), "height": height}
    if data is not None:
        spec["data"] = data
    return spec


def _plain(column, rows: int) -> list:
    """A column as JSON values: one value repeated, or an array's items (NaN and inf as None, dates ISO)."""
    if isinstance(column, str) or np.ndim(column) == 0:
        column = [column] * rows
    column = np.asarray(column)
    if column.dtype.kind == "M":  # ISO without a zone, read as local time, as Altair wrote dates
        return [None if np.isnat(t) else str(t) for t in column.astype("datetime64[s]")]
    if column.dtype.kind == "f":
        return [x if np.isfinite(x) else None for x in column.tolist()]
    if column.dtype.kind in "iub":
        return column.tolist()
    return [_scalar(x) for x in column.tolist()]


def _scalar(x):
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def data(columns: pd.DataFrame | dict) -> dict:
    """Inline data from a frame or a dict of columns (arrays, or one value for every row), in JSON types."""
    if isinstance(columns, pd.DataFrame):
        columns = {name: columns[name].to_numpy() for name in columns.columns}
    rows = max((np.size(c) for c in columns.values() if not isinstance(c, str) and np.ndim(c) > 0), default=1)
    plain = [_plain(c, rows) for c in columns.values()]
    return {"values": [dict(zip(columns, row, strict=True)) for row in zip(*plain, strict=True)]}


# --- remembered charts ----------------------------------------------------------------------

REMEMBERED_CHARTS = 64
"""Charts kept (for every visitor), the least recently used dropped first; each holds a few dozen rows."""
_charts: OrderedDict[str, dict] = OrderedDict()
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
    share it.
    """

    @functools.wraps(build)
    def chart(*args, **kwargs):
        h = hashlib.blake2b(build.__name__.encode(), digest_size=16)
        _digest((args, kwargs), h)
        key = h.hexdigest()
        with _lock:
            if key in _charts:
                _charts.move_to_end(key)
                return _charts[key]
        built = build(*args, **kwargs)
        with _lock:
            _charts[key] = built
            while len(_charts) > REMEMBERED_CHARTS:
                _charts.popitem(last=False)
        return built

    return chart


def forget() -> None:
    """Drop every remembered chart (a benchmark that times a page from nothing calls it)."""
    with _lock:
        _charts.clear()


def panel_specs(chart: dict) -> list[dict]:
    """The specs the page draws: one per panel of a stack (``vconcat``), else the chart itself.

    Vega-Lite gives a stack no container width, so a page draws its panels one by one.
    """
    return list(chart["vconcat"]) if "vconcat" in chart else [chart]


# --- histograms and reference lines ---------------------------------------------------------


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


def _markers(markers: list[tuple[str, float, str]], span: tuple[float, float]) -> list[dict]:
    """Vertical reference lines with a legend, (label, value, colour), each labelled at the top.

    A label goes on the side away from a close neighbour (else the side with more room of
    ``span``, the x axis's range), a row lower where it would cover a neighbour's.
    """
    names, positions = [m[0] for m in markers], [float(m[1]) for m in markers]
    rules = {
        "data": data({"label": names, "value": positions}),
        "mark": mark("rule", strokeWidth=2.5, strokeDash=[6, 3]),
        "encoding": {
            "x": channel("value:Q"),
            "color": keyed("label:N", names, [m[2] for m in markers]),
            "tooltip": [channel("label:N"), channel("value:Q", format=",.4~r")],
        },
    }
    middle = (span[0] + span[1]) / 2
    near = LABEL_GAP * ((span[1] - span[0]) or 1.0)
    labels = []
    for (label, _, colour), value, row in zip(markers, positions, label_rows(positions, span), strict=True):
        above = any(value < p < value + near for p in positions)
        below = any(value - near < p < value for p in positions)
        # Away from a close neighbour (the pair's labels face outward), else on the side with more room.
        to_left = not below if above != below else value > middle
        labels.append(
            {
                "data": data({"label": [label], "value": [value]}),
                "mark": mark(
                    "text",
                    align="right" if to_left else "left",
                    dx=-5 if to_left else 5,
                    baseline="top",
                    fontWeight="bold",
                    color=colour,
                ),
                "encoding": {"x": channel("value:Q"), "y": {"value": 2 + LABEL_ROW * row}, "text": channel("label:N")},
            }
        )
    return [rules, *labels]


def _span(*samples) -> tuple[float, float]:
    """The smallest and largest of some numbers (arrays or scalars, NaN ignored), for placing labels."""
    pooled = np.concatenate([np.atleast_1d(np.asarray(s, dtype=float)) for s in samples])
    pooled = pooled[np.isfinite(pooled)]
    return (float(pooled.min()), float(pooled.max())) if pooled.size else (0.0, 1.0)


def axis_format(unit: str) -> str:
    """The axis format of a quota unit: dollars or whole deals."""
    return MONEY_AXIS if unit == "revenue" else ",d"


# --- the charts -----------------------------------------------------------------------------


@remembered
def distribution_chart(
    values: np.ndarray,
    markers: list[tuple[str, float, str]],
    x_title: str,
    x_format: str,
    whole: bool = False,
    color: str = SIMULATION,
    y_title: str = "share of simulated periods",
) -> dict:
    """Histogram of a result per run (revenue, deals, attainment) with labelled reference lines."""
    bins = histogram_frame(values, whole=whole)
    bars = {
        "data": data(bins),
        "mark": mark("bar", color=color, opacity=0.85, binSpacing=1),
        "encoding": {
            # The axis spans the data, not 0 to the data: results far from 0 would leave most of the chart empty.
            "x": channel("start:Q", title=x_title, axis={"format": x_format}, scale={"zero": False}),
            "x2": {"field": "end"},
            "y": channel("share:Q", title=y_title, axis={"format": "%"}),
            "y2": {"datum": 0},
            "tooltip": [
                channel("start:Q", title="from", format=x_format),
                channel("end:Q", title="to", format=x_format),
                channel("runs:Q", title="runs"),
                channel("share:Q", title="share", format=".1%"),
            ],
        },
    }
    span = _span(bins["start"], bins["end"], [m[1] for m in markers])
    return layered(bars, *_markers(markers, span))


@remembered
def fan_chart(weekly: np.ndarray, horizon_days: float, pace_total: float | None, y_title: str, unit: str) -> dict:
    """Cumulative result by week: the P10-P90 band and the median, against a straight quota pace.

    ``weekly`` is runs x weeks, cumulative; week w ends at day min(7w, horizon).
    """
    p10, p50, p90 = np.percentile(weekly, [10, 50, 90], axis=0)
    weeks = week_ends(weekly.shape[1], horizon_days) / 7.0
    labels = ["Middle 80% of runs (P10 to P90)", "Median run"]
    colours = [BAND, SIMULATION]
    if pace_total is not None:
        labels.append("Quota pace (straight line)")
        colours.append(QUOTA)
    x = channel("week:Q", title="week", axis={"tickMinStep": 1})
    layers = [
        {
            "transform": labelled("band", labels[0]),
            "mark": mark("area", opacity=0.6),
            "encoding": {
                "x": x,
                "y": channel("p10:Q", title=y_title, axis={"format": axis_format(unit)}),
                "y2": {"field": "p90"},
                "color": keyed("band:N", labels, colours),
                "tooltip": [
                    channel("week:Q", format=".1f"),
                    channel("p10:Q", title="P10", format=",.0f"),
                    channel("p90:Q", title="P90", format=",.0f"),
                ],
            },
        },
        {
            "transform": labelled("band", labels[1]),
            "mark": mark("line", strokeWidth=2.5),
            "encoding": {
                "x": x,
                "y": channel("p50:Q"),
                "color": keyed("band:N", labels, colours),
                "tooltip": [channel("week:Q", format=".1f"), channel("p50:Q", title="median", format=",.0f")],
            },
        },
    ]
    if pace_total is not None:
        layers.append(
            {
                "data": data({"week": [0.0, horizon_days / 7.0], "p50": [0.0, float(pace_total)]}),
                "transform": labelled("band", labels[2]),
                "mark": mark("line", strokeDash=[6, 3], strokeWidth=2),
                "encoding": {"x": x, "y": channel("p50:Q"), "color": keyed("band:N", labels, colours)},
            }
        )
    start = [0.0]  # every run starts the period at nothing
    weekly_data = data(
        {
            "week": np.concatenate([start, weeks]),
            "p10": np.concatenate([start, p10]),
            "p50": np.concatenate([start, p50]),
            "p90": np.concatenate([start, p90]),
        }
    )
    return layered(*layers, data=weekly_data)


BACKTEST_LABELS = ("Forecast P10–P90", "Forecast P25–P75", "Forecast P50", "Actual", "Run-rate (last period again)")
INNER_BAND = "#6BAED6"
ACTUAL = "#F58518"


def backtest_chart(frame: pd.DataFrame, y_title: str, y_format: str) -> dict:
    """Forecasts from past dates against what happened: the bands as areas, actuals as points, the run-rate as a line.

    ``frame`` has one row per origin: ``as_of`` (a date), the forecast's ``p10``, ``p25``,
    ``p50``, ``p75``, ``p90``, the ``actual`` and the ``run_rate`` baseline.
    """
    labels = list(BACKTEST_LABELS)
    colours = [BAND, INNER_BAND, SIMULATION, ACTUAL, BASELINE]
    x = channel("as_of:T", title="forecast made on", axis={"format": "%Y-%m-%d"})
    tooltip = [
        channel("as_of:T", title="as of", format="%Y-%m-%d"),
        *(channel(f"{q}:Q", title=q.upper(), format=",.0f") for q in ("p10", "p25", "p50", "p75", "p90")),
        channel("actual:Q", format=",.0f"),
        channel("run_rate:Q", title="run-rate", format=",.0f"),
    ]

    def layer(label: str, drawn: dict, **encoding) -> dict:
        color = keyed("what:N", labels, colours)
        return {"transform": labelled("what", label), "mark": drawn, "encoding": {"x": x, **encoding, "color": color}}

    return layered(
        layer(
            labels[0],
            mark("area", opacity=0.5),
            y=channel("p10:Q", title=y_title, axis={"format": y_format}),
            y2={"field": "p90"},
        ),
        layer(labels[1], mark("area", opacity=0.6), y=channel("p25:Q"), y2={"field": "p75"}),
        layer(labels[2], mark("line", strokeWidth=2), y=channel("p50:Q")),
        layer(
            labels[4],
            mark("line", strokeDash=[6, 3], strokeWidth=2, point=True),
            y=channel("run_rate:Q"),
            tooltip=tooltip,
        ),
        layer(labels[3], mark("point", filled=True, size=80, opacity=1), y=channel("actual:Q"), tooltip=tooltip),
        data=data(frame),
    )


@remembered
def funnel_chart(frame: pd.DataFrame) -> dict:
    """Expected deals per stage: ``stage``, ``source`` and ``deals`` columns, stages in funnel order."""
    order = list(dict.fromkeys(frame["stage"]))
    sources = list(dict.fromkeys(frame["source"]))
    return {
        "data": data(frame[["stage", "source", "deals"]]),
        "mark": mark("bar"),
        "encoding": {
            "y": channel("stage:N", sort=order, title=None, axis={"labelLimit": 200}),
            "yOffset": channel("source:N", sort=sources),
            "x": channel("deals:Q", title="deals per period (average)"),
            # The legend's title is a space, not none: Streamlit writes one in for none, and must not change a
            # remembered chart.
            "color": keyed("source:N", sources, [SIMULATION, AVERAGE][: len(sources)], legend=legend(title=" ")),
            "tooltip": [channel("stage:N"), channel("source:N"), channel("deals:Q", format=",.1f")],
        },
        "height": {"step": 14},
    }


@remembered
def probability_curve(
    frame: pd.DataFrame,
    x: str,
    x_title: str,
    markers: list[tuple[str, float, str]],
    level: tuple[str, float, str] | None = None,
    x_format: str = ",.4~r",
) -> dict:
    """P(hit) against a number (weekly opportunities, a quota): a line with its points."""
    encoding = {
        "x": channel(f"{x}:Q", title=x_title, axis={"format": x_format}),
        "y": channel("p_hit:Q", title="P(hit quota)", scale={"domain": [0, 1]}, axis={"format": "%"}),
        "tooltip": [channel(f"{x}:Q", title=x_title, format=",.2f"), channel("p_hit:Q", format=".1%")],
    }
    layers = [{"mark": mark("line", color=SIMULATION, strokeWidth=2.5, interpolate="monotone"), "encoding": encoding}]
    if len(frame) <= 60:
        layers.append({"mark": mark("point", color=SIMULATION, filled=True, size=40), "encoding": encoding})
    if markers:
        layers.extend(_markers(markers, _span(frame[x], [m[1] for m in markers])))
    if level is not None:
        layers.append(
            {
                "data": data({"p_hit": [float(level[1])], "label": [level[0]]}),
                "mark": mark("rule", color=level[2], strokeWidth=1.5),
                "encoding": {
                    "y": channel("p_hit:Q"),
                    "tooltip": [channel("label:N"), channel("p_hit:Q", format=".0%")],
                },
            }
        )
    return layered(*layers, data=data(frame[[x, "p_hit"]]))


@remembered
def tornado(frame: pd.DataFrame) -> dict:
    """Sensitivity bars, biggest first: ``lever``, ``points`` (change in P(hit)) and ``se_points``."""
    order = list(frame["lever"])
    points, se = frame["points"].to_numpy(dtype=float), frame["se_points"].to_numpy(dtype=float)
    rows = {"lever": order, "points": points, "se_points": se, "low": points - 2 * se, "high": points + 2 * se}
    y = channel("lever:N", sort=order, title=None, axis={"labelLimit": 260})
    bars = {
        "mark": mark("bar"),
        "encoding": {
            "y": y,
            "x": channel("points:Q", title="change in P(hit), percentage points"),
            "color": {"condition": {"test": "datum.points >= 0", "value": SIMULATION}, "value": QUOTA},
            "tooltip": [
                channel("lever:N"),
                channel("points:Q", title="points of P(hit)", format="+.1f"),
                channel("se_points:Q", title="standard error", format=".2f"),
            ],
        },
    }
    whiskers = {
        "mark": mark("rule", color="#333333"),
        "encoding": {"y": y, "x": channel("low:Q"), "x2": {"field": "high"}},
    }
    zero = {"data": data({"x": [0]}), "mark": mark("rule", color="#333333"), "encoding": {"x": channel("x:Q")}}
    return layered(bars, whiskers, zero, height=max(160, 34 * len(order)), data=data(rows))


@remembered
def overlaid_distributions(
    samples: dict[str, np.ndarray],
    unit: str,
    x_title: str,
    markers: list[tuple[str, float, str]],
    x_format: str | None = None,
    y_title: str = "share of simulated periods",
) -> dict:
    """Two (or more) results' histograms on common bins, drawn over each other (x in the unit's format)."""
    x_format = x_format or axis_format(unit)
    edges = bin_edges(np.concatenate(list(samples.values())), whole=unit == "deals")
    names = list(samples)
    shares = [np.histogram(values, bins=edges)[0] / max(1, len(values)) for values in samples.values()]
    bins = {
        "start": np.tile(edges[:-1], len(names)),
        "end": np.tile(edges[1:], len(names)),
        "share": np.concatenate(shares),
        "scenario": np.repeat(names, len(edges) - 1),
    }
    bars = {
        "data": data(bins),
        "mark": mark("bar", opacity=0.55, binSpacing=0),
        "encoding": {
            "x": channel("start:Q", title=x_title, axis={"format": x_format}, scale={"zero": False}),
            "x2": {"field": "end"},
            "y": channel("share:Q", title=y_title, axis={"format": "%"}, stack=None),
            "y2": {"datum": 0},
            "color": keyed("scenario:N", names, [BASELINE, SIMULATION][: len(names)]),
            "tooltip": [channel("scenario:N"), channel("start:Q", format=x_format), channel("share:Q", format=".1%")],
        },
    }
    layers = [bars]
    if markers:
        layers.append(
            {
                "data": data({"label": [m[0] for m in markers], "value": [float(m[1]) for m in markers]}),
                "mark": mark("rule", strokeWidth=2.5, strokeDash=[6, 3], color=QUOTA),
                "encoding": {
                    "x": channel("value:Q"),
                    "tooltip": [channel("label:N"), channel("value:Q", format=x_format)],
                },
            }
        )
    return layered(*layers)


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
def capacity_chart(frame: pd.DataFrame) -> dict:
    """Two panels over the weeks: deals waiting (queue) and the share of slots in use, per limited stage.

    ``frame`` is :func:`capacity_frame`'s: each stage's median line with its P10-P90 band.
    """
    stages = list(dict.fromkeys(frame["stage"]))
    colours = (STAGE_COLOURS * len(stages))[: len(stages)]
    x = channel("week:Q", title="week", axis={"tickMinStep": 1}, scale={"domainMin": 0})

    def panel(measure: str, title: str, fmt: str) -> dict:
        rows = frame[frame["measure"] == measure]
        # One legend, over the top panel: the page draws the panels one by one (see pages.show_chart).
        shown = legend(title="Stage (line: median run, band: P10 to P90)", titleLimit=0) if measure == "queue" else None
        axis = {"format": ".0%"} if measure == "utilisation" else {"format": ",d", "tickMinStep": 1}
        # The axis goes a tenth past the top of the widest band (P90), so no band is cut off or flush with the top.
        top = 1.0 if measure == "utilisation" else 1.1 * max(1.0, float(rows["p90"].max()))
        tooltip = [
            channel("stage:N"),
            channel("week:Q", format=".1f"),
            channel("p10:Q", title="P10", format=fmt),
            channel("p50:Q", title="median", format=fmt),
            channel("p90:Q", title="P90", format=fmt),
        ]
        band = {
            "mark": mark("area", opacity=0.2),
            "encoding": {
                "x": x,
                "y": channel("p10:Q"),
                "y2": {"field": "p90"},
                "color": keyed("stage:N", stages, colours, legend=shown),
            },
        }
        line = {
            "mark": mark("line", strokeWidth=2.5, point=True),
            "encoding": {
                "x": x,
                "y": channel("p50:Q", title=title, axis=axis, scale={"domain": [0, top], "nice": True}),
                "color": keyed("stage:N", stages, colours, legend=shown),
                "tooltip": tooltip,
            },
        }
        height = HEIGHT if measure == "queue" else int(HEIGHT * 0.8)
        return layered(band, line, height=height, data=data(rows[["stage", "week", "p10", "p50", "p90"]]))

    return {
        "vconcat": [panel("queue", "deals waiting", ",.1f"), panel("utilisation", "slots in use", ".0%")],
        "resolve": {"scale": {"color": "shared"}},
    }


# --- export ---------------------------------------------------------------------------------


def _export_spec(chart: dict, title: str) -> dict:
    if "vconcat" in chart:  # a stack of panels has no width of its own: each panel gets it
        return {**chart, "title": title, "vconcat": [{**panel, "width": EXPORT_WIDTH} for panel in chart["vconcat"]]}
    return {**chart, "title": title, "width": EXPORT_WIDTH}


def to_svg(chart: dict, title: str = "") -> str:
    """The chart as an SVG document (rendered offline by vl-convert)."""
    return vlc.vegalite_to_svg(_export_spec(chart, title), allowed_base_urls=[])


def to_png(chart: dict, title: str = "") -> bytes:
    """The chart as a PNG image at twice the screen resolution (rendered offline by vl-convert)."""
    return vlc.vegalite_to_png(_export_spec(chart, title), scale=2, allowed_base_urls=[])

"""Every chart of the app is a valid Vega-Lite spec that draws the marks it should.

Each builder gets realistic inputs and the edge cases a page can hand it (one run, values
all equal, reference lines outside the data, deals or revenue, a team's attainment in
percent). Its spec must be plain JSON (no NaN, no numpy numbers), valid against the
Vega-Lite v6 schema that Altair ships, and render with vl-convert (:func:`ui.charts.to_svg`)
to an SVG with the expected number of bars, lines, areas, points, rules and labels.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import altair
import jsonschema
import numpy as np
import pandas as pd
import pytest
import streamlit as st

from sim.model.distributions import Empirical, Exponential, Gamma, Lognormal
from ui import calibrate_page, charts, segments_page

SCHEMA = Path(altair.__file__).parent / "vegalite" / "v6" / "schema" / "vega-lite-schema.json"
STAGES = ["Opportunity", "Proposal", "Negotiation", "Close"]
MARKERS = [("Quota", 1.2e6, charts.QUOTA), ("Average math", 1.18e6, charts.AVERAGE)]


@pytest.fixture(scope="session")
def validator():
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft7Validator(schema)


def _revenue(seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.1e6, 1.5e5, 2000)


def _deals(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).poisson(12, 2000)


def _bins(values, whole=False, max_bins=40) -> int:
    return len(charts.histogram_frame(values, whole=whole, max_bins=max_bins))


def _capacity_frame(runs: int, weeks: int, slots: list[int | None]) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    queue = rng.poisson(3, (runs, len(slots), weeks)).astype(float)
    busy = rng.uniform(0, 7, (runs, len(slots), weeks))
    return charts.capacity_frame(queue, busy, slots, STAGES[: len(slots)], 7.0 * weeks - 3)


def _backtest_frame(scale: float) -> pd.DataFrame:
    middle = np.array([1.5, 1.6, 1.4]) * scale
    return pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01"]),
            **{q: middle * f for q, f in (("p10", 0.7), ("p25", 0.8), ("p50", 1.0), ("p75", 1.2), ("p90", 1.4))},
            "actual": middle * [0.9, 1.4, 1.0],
            "run_rate": middle * [0.85, 0.9, 1.5],
        }
    )


def _curve(xs: np.ndarray, name: str = "per_week") -> pd.DataFrame:
    return pd.DataFrame({name: xs, "p_hit": 1 / (1 + np.exp(-(xs - xs.mean()) / (xs.std() + 1)))})


WON_DAYS = np.random.default_rng(5).lognormal(3.5, 0.5, 300)
SUMMARY = {"segments": [{"name": n, "spread_share": s} for n, s in (("SMB", 0.2), ("Enterprise", 0.7), ("Mid", 0.1))]}

CASES = {
    # name: (build, args, kwargs, marks the SVG has: {aria-roledescription of one mark: count})
    "revenue histogram": (
        charts.distribution_chart,
        (_revenue(), MARKERS, "won revenue", charts.axis_format("revenue")),
        {},
        {"bar": _bins(_revenue()), "rule mark": 2, "text mark": 2},
    ),
    "deals histogram": (
        charts.distribution_chart,
        (_deals(), [("Quota", 14, charts.QUOTA)], "won deals", charts.axis_format("deals"), True),
        {},
        {"bar": _bins(_deals(), whole=True), "rule mark": 1, "text mark": 1},
    ),
    "one run": (
        charts.distribution_chart,
        (np.array([5.0]), [("Quota", 40, charts.QUOTA)], "won deals", ",d", True),
        {},
        {"bar": 1, "rule mark": 1, "text mark": 1},
    ),
    "all runs equal, markers on them": (
        charts.distribution_chart,
        (np.full(100, 3e5), [("Quota", 3e5, charts.QUOTA), ("Average", 3e5, charts.AVERAGE)], "won", charts.MONEY_AXIS),
        {},
        {"bar": 1, "rule mark": 2, "text mark": 2},
    ),
    "markers outside the data": (
        charts.distribution_chart,
        (_revenue(), [*MARKERS, ("Far", 5e6, charts.BASELINE), ("Below", -1e5, charts.TARGET)], "won", "$,.3~s"),
        {},
        {"bar": _bins(_revenue()), "rule mark": 4, "text mark": 4},
    ),
    "team attainment": (
        charts.distribution_chart,
        (np.random.default_rng(6).normal(0.9, 0.2, 40), [("100% of quota", 1.0, charts.QUOTA)], "attainment", ".0%"),
        {"color": charts.TARGET, "y_title": "share of reps"},
        {"bar": _bins(np.random.default_rng(6).normal(0.9, 0.2, 40)), "rule mark": 1, "text mark": 1},
    ),
    "weeks, revenue with a pace": (
        charts.fan_chart,
        (np.cumsum(np.random.default_rng(7).poisson(2, (300, 13)) * 1e4, axis=1), 88.0, 2.5e5, "won", "revenue"),
        {},
        {"area mark": 1, "line mark": 2},
    ),
    "weeks, deals without a pace, one run": (
        charts.fan_chart,
        (np.cumsum(np.ones((1, 4)), axis=1), 28.0, None, "won deals", "deals"),
        {},
        {"area mark": 1, "line mark": 1},
    ),
    "backtest revenue": (
        charts.backtest_chart,
        (_backtest_frame(1e5), "won revenue ($)", charts.axis_format("revenue")),
        {},
        {"area mark": 2, "line mark": 2, "point": 6},
    ),
    "backtest deals": (
        charts.backtest_chart,
        (_backtest_frame(10), "won deals", charts.axis_format("deals")),
        {},
        {"area mark": 2, "line mark": 2, "point": 6},
    ),
    "funnel": (
        charts.funnel_chart,
        (pd.DataFrame({"stage": STAGES * 2, "source": ["Simulation"] * 4 + ["Average math"] * 4, "deals": range(8)}),),
        {},
        {"bar": 8},
    ),
    "funnel, one source": (
        charts.funnel_chart,
        (pd.DataFrame({"stage": STAGES, "source": "Simulation", "deals": [100, 50.0, 25, 12.5]}),),
        {},
        {"bar": 4},
    ),
    "chance by pace, 200 points": (
        charts.probability_curve,
        (
            _curve(np.linspace(5, 40, 200)),
            "per_week",
            "new opportunities a week",
            [("Magic", 24.0, charts.TARGET), ("Average", 21.0, charts.AVERAGE), ("Now", 16.0, charts.BASELINE)],
        ),
        {"level": ("Target 85%", 0.85, charts.TARGET)},
        {"line mark": 1, "point": 0, "rule mark": 4, "text mark": 3},
    ),
    "chance by quota": (
        charts.probability_curve,
        (_curve(np.linspace(5e5, 1.5e6, 25), "quota"), "quota", "quota", [("Current quota", 1.2e6, charts.QUOTA)]),
        {"level": ("Confidence 80%", 0.8, charts.TARGET), "x_format": charts.axis_format("revenue")},
        {"line mark": 1, "point": 25, "rule mark": 2, "text mark": 1},
    ),
    "chance at one pace, a 0-width span": (
        charts.probability_curve,
        (pd.DataFrame({"per_week": [10.0], "p_hit": [0.5]}), "per_week", "a week", [("Now", 10.0, charts.BASELINE)]),
        {},
        {"line mark": 1, "point": 1, "rule mark": 1, "text mark": 1},
    ),
    "tornado": (
        charts.tornado,
        (pd.DataFrame({"lever": STAGES, "points": [6.2, 4.1, 0.3, -1.5], "se_points": [0.4, 0.4, 0.3, 0.2]}),),
        {},
        {"bar": 4, "rule mark": 5},
    ),
    "tornado, one lever, no effect": (
        charts.tornado,
        (pd.DataFrame({"lever": ["Deal value"], "points": [0.0], "se_points": [0.0]}),),
        {},
        {"bar": 1, "rule mark": 2},
    ),
    "compare revenue": (
        charts.overlaid_distributions,
        ({"Baseline": _revenue(), "Changed": _revenue() * 1.1}, "revenue", "won revenue", MARKERS[:1]),
        {},
        {"bar": 2 * _bins(np.concatenate([_revenue(), _revenue() * 1.1])), "rule mark": 1},
    ),
    "compare deals": (
        charts.overlaid_distributions,
        ({"Baseline": _deals(), "Changed": _deals() + 2}, "deals", "won deals", []),
        {},
        {"bar": 2 * _bins(np.concatenate([_deals(), _deals() + 2]), whole=True), "rule mark": 0},
    ),
    "team today and with hires": (
        charts.overlaid_distributions,
        ({"Today": np.linspace(0.5, 1.2, 30), "With hires": np.linspace(0.6, 1.3, 30)}, "revenue", "attainment", []),
        {"x_format": ".0%", "y_title": "share of reps"},
        {"bar": 2 * _bins(np.linspace(0.5, 1.3, 60))},
    ),
    "capacity": (
        charts.capacity_chart,
        (_capacity_frame(200, 13, [2, None, 3]),),
        {},
        {"area mark": 4, "line mark": 4, "point": 2 * 2 * 13},
    ),
    "capacity, one run, nobody waits": (
        charts.capacity_chart,
        (charts.capacity_frame(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), [1], ["Proposal"], 14.0),),
        {},
        {"area mark": 2, "line mark": 2, "point": 4},
    ),
    "fit histogram": (
        calibrate_page.fit_histogram,
        (WON_DAYS, Lognormal(dist="lognormal", mean=40, sd=20), "Won deals (closed)", "days", ",.0f"),
        {},
        {"bar": _bins(WON_DAYS, max_bins=30), "line mark": 1},
    ),
    "fit histogram of money": (
        calibrate_page.fit_histogram,
        (WON_DAYS * 1e3, Gamma(dist="gamma", mean=4e4, sd=2e4), "Won deals", "won deal value ($)", charts.MONEY_AXIS),
        {},
        {"bar": _bins(WON_DAYS, max_bins=30), "line mark": 1},
    ),
    "fit histogram, resampled": (
        calibrate_page.fit_histogram,
        (WON_DAYS, Empirical(dist="empirical", values=WON_DAYS[:50].tolist()), "Won deals", "days", ",.0f"),
        {},
        {"bar": _bins(WON_DAYS, max_bins=30), "line mark": 0},
    ),
    "fit cumulative": (
        calibrate_page.fit_cumulative,
        (WON_DAYS, Lognormal(dist="lognormal", mean=40, sd=20), "days", ",.0f"),
        {},
        {"line mark": 2},
    ),
    "fit cumulative with open deals": (
        calibrate_page.fit_cumulative,
        (WON_DAYS, Exponential(dist="exponential", mean=45), "days", ",.0f", np.linspace(1, 60, 40), np.full(40, 0.5)),
        {},
        {"line mark": 3},
    ),
    "segments' share of the swing": (segments_page._spread_chart, (SUMMARY,), {}, {"bar": 3}),
}


def _plain_json(value, path="spec") -> None:
    """Only JSON's own types (numpy numbers are floats to json.dumps, but not to every reader), no NaN."""
    assert type(value) in (dict, list, str, int, float, bool, type(None)), f"{path}: {type(value).__name__}"
    if isinstance(value, float):
        assert math.isfinite(value), path
    elif isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            _plain_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _plain_json(item, f"{path}[{i}]")


def _marks(svg: str) -> dict[str, int]:
    found = re.findall(r'aria-roledescription="([^"]+)"', svg)
    return {kind: found.count(kind) for kind in ("bar", "line mark", "area mark", "point", "rule mark", "text mark")}


@pytest.mark.parametrize("case", list(CASES))
def test_every_chart_is_a_valid_vega_lite_spec_that_draws_its_marks(case, validator):
    build, args, kwargs, marks = CASES[case]
    spec = build(*args, **kwargs)
    _plain_json(spec)
    json.dumps(spec, allow_nan=False)
    problems = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(spec)]
    assert not problems, problems
    assert "$schema" not in spec and "config" not in spec  # the app's theme applies
    drawn = _marks(charts.to_svg(spec, case))
    assert {kind: drawn[kind] for kind in marks} == marks


def test_values_become_json_without_nan_and_dates_as_local_iso():
    values = charts.data(
        {"x": np.array([1.0, np.nan, np.inf]), "n": np.arange(3), "what": "a", "on": pd.to_datetime(["2024-03-05"] * 3)}
    )["values"]
    assert values[0] == {"x": 1.0, "n": 0, "what": "a", "on": "2024-03-05T00:00:00"}
    assert values[1]["x"] is None and values[2]["x"] is None
    _plain_json(values)


def test_axes_read_in_the_unit():
    deals = _svg_texts(charts.distribution_chart(_deals(), [("Quota", 14, charts.QUOTA)], "won deals", ",d", True))
    assert "12" in deals and not any("$" in t or "." in t for t in deals if t[:1].isdigit())
    attainment = _svg_texts(
        charts.overlaid_distributions(
            {"Today": np.linspace(0.5, 1.2, 30)}, "revenue", "attainment", [], x_format=".0%", y_title="share of reps"
        )
    )
    assert "100%" in attainment and "share of reps" in attainment
    fan = _svg_texts(charts.fan_chart(np.cumsum(np.ones((5, 3)), axis=1) * 1e5, 21, 3e5, "won", "revenue"))
    assert "$300k" in fan and "Quota pace (straight line)" in fan


def _svg_texts(chart) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", charts.to_svg(chart))


def test_the_same_inputs_give_the_very_same_chart_and_drawing_it_changes_nothing():
    funnel = pd.DataFrame({"stage": STAGES, "source": "Simulation", "deals": [100, 50.0, 25, 12.5]})
    first = charts.funnel_chart(funnel)
    assert charts.funnel_chart(funnel.copy()) is first
    assert charts.funnel_chart(funnel.assign(deals=funnel["deals"] + 1)) is not first
    revenue = charts.distribution_chart(_revenue(), MARKERS, "won revenue", charts.MONEY_AXIS)
    assert charts.distribution_chart(_revenue(), list(MARKERS), "won revenue", charts.MONEY_AXIS) is revenue
    for chart in (first, revenue):
        before = json.dumps(chart)
        for spec in charts.panel_specs(chart):
            st.vega_lite_chart(spec, width="stretch")  # Streamlit patches a legend with no title in place
        charts.to_svg(chart, "title")
        assert json.dumps(chart) == before


def test_the_capacity_chart_is_two_panels_with_one_legend_and_exports_both():
    chart = charts.capacity_chart(_capacity_frame(50, 6, [2, 3]))
    queue, utilisation = charts.panel_specs(chart)
    assert queue["layer"][1]["encoding"]["y"]["title"] == "deals waiting"
    assert utilisation["layer"][1]["encoding"]["y"]["title"] == "slots in use"
    svg = charts.to_svg(chart, "capacity")
    assert svg.count('aria-roledescription="legend"') == 1 and "deals waiting" in svg and "slots in use" in svg
    widths = [float(w) for w in re.findall(r'<svg[^>]* width="([\d.]+)"', svg)]
    assert widths and widths[0] >= charts.EXPORT_WIDTH  # each panel gets the export width
    assert charts.to_png(chart, "capacity").startswith(b"\x89PNG")

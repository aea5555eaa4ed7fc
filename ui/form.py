"""Between a scenario and the app's inputs: widget values, the stage table and the link.

The app never builds a :class:`~sim.model.scenario.Scenario` itself. It turns its widget
values and the edited stage table into a plain dictionary in the scenario file's own
shape (:func:`scenario_document`) and hands that to :func:`sim.model.scenario.scenario_from_dict`,
the one place where scenarios are validated, so the app shows the same ``field.path:
problem`` lines as the command line. The other direction (:func:`widget_values`,
:func:`stages_frame`) fills the inputs from a loaded scenario, and the two directions
are exact inverses: a scenario loaded into the inputs and read back is equal to itself.

Rates and chances are shown and typed as percentages (35 means 35%) and stored as
fractions: :func:`to_percent` and :func:`from_percent` move the decimal point on the
number's shortest decimal form, so a typed 7 is 0.07, not 0.07000000000000001. A
percentage cannot hold every fraction exactly (a calibrated 0.41237113402061856), so the
stage table keeps each loaded rate in a hidden ``loaded_rate`` column and a percentage
left as loaded reads back as that rate.

The optional parts of a stage (rep limit, follow-ups, no-shows, stalls, lost
duration) have a second table, one row per stage (:func:`behaviour_cells`,
:func:`behaviour_document`); a distribution there is written as short text
(:func:`distribution_text`, :func:`parse_distribution_text`). Rep ``[capacity]`` and
the ``[team]`` are widget values like the rest.

Two parts of a scenario have no input: the listed ``[[open_deals]]`` and the inflow's
seasonal ``multipliers`` (what a calibration from a CRM export writes).
:func:`carried` takes them from the scenario as loaded and :func:`scenario_document`
puts them back, so editing the inputs never drops them.

The link: :func:`encode_scenario` packs the scenario's TOML into one URL-safe string
(zlib, then base64) and :func:`decode_scenario` unpacks and validates it. Beside it the
link carries how to simulate and each page's own choices (:data:`PAGE_SETTINGS`), only
those that differ from the defaults; :func:`link_settings` reads them back, clamping or
refusing a value the page could not show, with a plain notice.

Nothing here imports Streamlit.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from sim.errors import QUOTE_CHARS, quoted, shorten
from sim.model.distributions import FAMILIES
from sim.model.scenario import (
    MAX_FILE_BYTES,
    BetaRate,
    Scenario,
    ScenarioError,
    rate_mean,
    scenario_from_toml,
    scenario_to_dict,
    scenario_to_toml,
)
from sim.words import human

PARAMETERS: dict[str, tuple[str, ...]] = {
    "fixed": ("mean",),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "exponential": ("mean",),
    "lognormal": ("mean", "sd"),
    "gamma": ("mean", "sd"),
    "empirical": ("values",),
}
"""Which table columns (or deal-value inputs) each family reads. A fixed value is its mean."""
PARAMETER_NAMES = ("mean", "sd", "low", "mode", "high", "values")
STAGE_COLUMNS = ("order", "name", "conversion", "certainty", "duration", *PARAMETER_NAMES, "open", "loaded_rate")
"""The stage table's columns: ``conversion`` is a percentage, ``loaded_rate`` the rate as loaded (hidden)."""
SHOWN_STAGE_COLUMNS = STAGE_COLUMNS[:-1]
QUOTA_UNITS = ("revenue", "deals")
HORIZON_UNITS = ("weeks", "days")
PROCESSES = ("poisson", "fixed")
ENGINES = ("auto", "vectorized", "simpy")
DEFAULT_RUNS = 2_000
DEFAULT_SIMPY_RUNS = 500
"""What the default runs mean with limited reps on the SimPy engine (chosen, or for listed open deals): slower."""
DEFAULT_SEED = 0
DEFAULT_ENGINE = "auto"
MIN_RUNS, MAX_RUNS = 100, 200_000


def _blank(value: Any) -> bool:
    """None, NaN, pandas' NA or an empty string: a cell or input left empty."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any) -> Any:
    """A plain Python number (an integral float stays a float; pydantic decides)."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    return value


def _whole(value: Any) -> Any:
    """An integral float as an int (for counts); anything else as given, for pydantic to judge."""
    value = _number(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_percent(fraction: Any) -> Any:
    """A rate as a percentage: 0.35 -> 35.0, 0.07 -> 7.0 (not 7.000000000000001).

    The decimal point moves on the fraction's shortest decimal form, so any fraction of
    up to 15 significant digits (all that people type) comes back exactly from
    :func:`from_percent`. Blank and non-numbers are passed on as they are.
    """
    return _shift(fraction, 2)


def from_percent(percent: Any) -> Any:
    """A percentage as the fraction the scenario holds: 35 -> 0.35 (blank and non-numbers passed on)."""
    return _shift(percent, -2)


def _shift(value: Any, places: int) -> Any:
    value = _number(value)
    if _blank(value) or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value):
        return float(value)
    try:
        return float(Decimal(repr(float(value))).scaleb(places))
    except (InvalidOperation, OverflowError):  # beyond a float's range: the validator names it
        return float(value) * 10.0**places


# --- distributions ----------------------------------------------------------------------


def format_values(values) -> str:
    """Empirical values as the comma-separated text the table shows (exact: repr of floats)."""
    return ", ".join(str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v)) for v in values)


def parse_values(text: Any) -> Any:
    """Comma- or space-separated numbers as a list of floats; unreadable text is passed on as is.

    Passing the raw text on lets the scenario validator report it with its field path.
    """
    if _blank(text):
        return None
    parts = [p for p in re.split(r"[,;\s]+", str(text).strip()) if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        return str(text)


def distribution_fields(distribution) -> dict[str, Any]:
    """A distribution as ``{"dist": family, "mean": ..., "sd": ..., ...}`` (unused ones None)."""
    data = distribution.model_dump(by_alias=True)
    family = data["dist"]
    out: dict[str, Any] = {"dist": family, **dict.fromkeys(PARAMETER_NAMES)}
    if family == "fixed":
        out["mean"] = data["value"]
    elif family == "empirical":
        out["values"] = format_values(data["values"])
    else:
        for key in PARAMETERS[family]:
            out[key] = data[key]
    return out


def distribution_document(family: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The file form of a distribution from a family and its parameter fields.

    Only the parameters the family reads are used; blank ones are left out, so the
    validator reports them as ``missing (required)`` at their own path.
    """
    if _blank(family):
        return {}
    family = str(family)
    document: dict[str, Any] = {"dist": family}
    for key in PARAMETERS.get(family, ()):
        value = fields.get(key)
        if key == "values":
            value = parse_values(value)
            if value is not None:
                document["values"] = value
        elif not _blank(value):
            document["value" if family == "fixed" else key] = _number(value)
    return document


# --- the stage table --------------------------------------------------------------------


def stages_frame(scenario: Scenario) -> pd.DataFrame:
    """The stages as the editable table: one row per stage, in funnel order, rates as percentages."""
    rows = []
    for i, stage in enumerate(scenario.stages, start=1):
        conversion = stage.conversion
        beta = isinstance(conversion, BetaRate)
        duration = distribution_fields(stage.duration)
        rows.append(
            {
                "order": i,
                "name": stage.name,
                "conversion": to_percent(rate_mean(conversion)),
                "certainty": conversion.concentration if beta else math.nan,
                "duration": duration["dist"],
                **{key: duration[key] for key in PARAMETER_NAMES},
                "open": stage.open,
                "loaded_rate": rate_mean(conversion),
            }
        )
    frame = pd.DataFrame(rows, columns=list(STAGE_COLUMNS))
    for column in ("conversion", "certainty", "mean", "sd", "low", "mode", "high", "loaded_rate"):
        frame[column] = frame[column].astype("float64")
    frame["values"] = frame["values"].astype("object")
    frame["order"] = frame["order"].astype("Int64")
    frame["open"] = frame["open"].astype("Int64")
    return frame


ROW = "_row"
"""Key of :func:`ordered_rows`' entries holding the row's index label (as text) in the edited table."""


def ordered_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows sorted by the ``order`` column (blank order last; ties keep table order).

    Each row also holds its index label under :data:`ROW`: the data editor keeps the
    labels of the loaded rows, so the label says which loaded stage a row was.
    """
    labels = list(frame.index)
    frame = frame.reset_index(drop=True)
    order = pd.to_numeric(frame["order"], errors="coerce") if "order" in frame else pd.Series(dtype=float)
    key = order.astype("float64").fillna(math.inf) if len(order) else order
    positions = sorted(range(len(frame)), key=lambda i: (key.iloc[i], i)) if len(key) else range(len(frame))
    return [{**frame.iloc[i].to_dict(), ROW: str(labels[i])} for i in positions]


def row_rate(row: Mapping[str, Any]) -> Any:
    """The row's rate as a fraction: the rate as loaded while its percentage is unchanged, else the percentage's."""
    percent, loaded = row.get("conversion"), row.get("loaded_rate")
    if not _blank(loaded) and not _blank(percent) and to_percent(loaded) == _number(percent):
        return _number(loaded)
    return from_percent(percent)


def stage_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """One table row in file form (its rate a fraction: see :func:`row_rate`)."""
    document: dict[str, Any] = {}
    if not _blank(row.get("name")):
        document["name"] = str(row["name"])
    rate, certainty = row_rate(row), row.get("certainty")
    if not _blank(certainty):
        beta: dict[str, Any] = {"concentration": _number(certainty)}
        if not _blank(rate):
            beta["mean"] = _number(rate)
        document["conversion"] = beta
    elif not _blank(rate):
        document["conversion"] = _number(rate)
    document["duration"] = distribution_document(row.get("duration"), row)
    if not _blank(row.get("open")):
        document["open"] = _whole(row["open"])
    return document


# --- the optional stage table -----------------------------------------------------------

BEHAVIOUR_COLUMNS = (
    "per_rep",
    "touches_needed",
    "max_touches",
    "touch_interval_days",
    "no_show",
    "reschedule",
    "lost_after_reschedule",
    "reschedule_days",
    "stale_after_days",
    "lost_duration",
)
"""The optional stage keys, as columns of the second stage table (blank: not used)."""
DISTRIBUTION_COLUMNS = ("touches_needed", "lost_duration")
WHOLE_COLUMNS = ("per_rep", "max_touches")
BEHAVIOUR_DEFAULTS = {"touch_interval_days": 0.0, "lost_after_reschedule": 0.0, "reschedule_days": 7.0}
"""Keys with a default in the file format: a blank cell means the default."""
CHANCE_COLUMNS = ("no_show", "reschedule", "lost_after_reschedule")
"""Optional stage keys that are chances: the table shows and takes them as percentages."""


def behaviour_edit(change: Mapping[str, Any]) -> dict[str, Any]:
    """Cells as the optional stage table hands them back (chances in percent) in the units they are kept in."""
    return {key: from_percent(value) if key in CHANCE_COLUMNS else value for key, value in change.items()}


def distribution_text(document: Any) -> str:
    """A distribution in file form as short text: ``5``, ``1, 3, 5`` or ``lognormal(mean=20, sd=10)``.

    A bare number is a fixed value and a list an empirical one, as people type them;
    :func:`parse_distribution_text` reads any of the three back to the same document.
    """
    if isinstance(document, int | float):
        return format_values([document])
    family = document["dist"]
    if family == "empirical":
        return format_values(document["values"])
    parameters = ", ".join(f"{key}={format_values([value])}" for key, value in document.items() if key != "dist")
    return f"{family}({parameters})"


_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.DOTALL)


def parse_distribution_text(text: Any) -> Any:
    """Text of :func:`distribution_text` back to a file-form distribution (None when blank).

    Text that reads as neither numbers nor ``family(key=value, ...)`` becomes
    ``{"dist": text}``, so the validator names the field and lists the families.
    """
    if _blank(text):
        return None
    numbers = parse_values(text)
    if isinstance(numbers, list):
        return {"dist": "fixed", "value": numbers[0]} if len(numbers) == 1 else {"dist": "empirical", "values": numbers}
    call = _CALL.match(str(text))
    if call is None:
        return {"dist": str(text).strip()}
    document: dict[str, Any] = {"dist": call.group(1).lower()}
    for part in (p for p in call.group(2).split(",") if p.strip()):
        key, _, value = part.partition("=")
        try:
            document[key.strip()] = float(value)
        except ValueError:
            document[key.strip()] = value.strip()  # the validator names it
    return document


def behaviour_cells(scenario: Scenario) -> list[dict[str, Any]]:
    """Each stage's optional keys as table cells (None where unused or at the default)."""
    rows = []
    for stage in scenario_to_dict(scenario)["stages"]:
        cells: dict[str, Any] = {}
        for key in BEHAVIOUR_COLUMNS:
            value = stage.get(key)
            cells[key] = distribution_text(value) if key in DISTRIBUTION_COLUMNS and value is not None else value
        rows.append(cells)
    return rows


def behaviour_document(cells: Mapping[str, Any], capacity: bool) -> dict[str, Any]:
    """One stage's optional cells in file form; ``per_rep`` only when rep capacity is on."""
    document: dict[str, Any] = {}
    for key in BEHAVIOUR_COLUMNS:
        value = cells.get(key)
        if _blank(value) or (key == "per_rep" and not capacity):
            continue
        if key in DISTRIBUTION_COLUMNS:
            document[key] = parse_distribution_text(value)
        else:
            document[key] = _whole(value) if key in WHOLE_COLUMNS else _number(value)
    return document


def behaviour_frame(names: list[str], rows: list[Mapping[str, Any]], labels: list[Any]) -> pd.DataFrame:
    """The optional stage table: one row per stage in funnel order, indexed by the stage table's row labels.

    ``rows`` hold the cells in file units; the table shows chances as percentages (:func:`behaviour_edit`
    turns its edits back).
    """
    frame = pd.DataFrame(
        [
            {
                "stage": name,
                **{
                    key: to_percent(row.get(key)) if key in CHANCE_COLUMNS else row.get(key)
                    for key in BEHAVIOUR_COLUMNS
                },
            }
            for name, row in zip(names, rows, strict=True)
        ],
        columns=["stage", *BEHAVIOUR_COLUMNS],
        index=pd.Index(labels, name="row"),
    )
    for key in BEHAVIOUR_COLUMNS:
        if key in DISTRIBUTION_COLUMNS:
            frame[key] = frame[key].astype("object")
        elif key in WHOLE_COLUMNS:
            frame[key] = frame[key].astype("Int64")
        else:
            frame[key] = frame[key].astype("float64")
    return frame


# --- widget values ----------------------------------------------------------------------


def widget_values(scenario: Scenario) -> dict[str, Any]:
    """The sidebar's widget values for a scenario, keyed by widget key.

    Inputs the scenario does not use (the other quota unit, the deal-value parameters
    of other families) get sensible values, so switching to them starts somewhere useful.
    """
    value = scenario.deal_value
    mean = float(value.mean())
    sd = float(value.std()) or 0.5 * mean
    fields = distribution_fields(value)
    defaults = {
        "mean": mean,
        "sd": sd,
        "low": max(0.0, mean - sd),
        "mode": mean,
        "high": mean + sd,
        "values": format_values([mean]),
    }
    quota = scenario.quota
    if quota.unit == "revenue":
        revenue, deals = float(quota.target), max(1, round(quota.target / mean)) if mean > 0 else 1
    else:
        revenue, deals = float(quota.target * mean) or 1.0, int(quota.target)
    weeks = scenario.horizon_weeks is not None
    return {
        "name": scenario.name,
        "description": scenario.description,
        "horizon_unit": "weeks" if weeks else "days",
        "horizon": float(scenario.horizon_weeks if weeks else scenario.horizon_days),
        "quota_unit": quota.unit,
        "quota_revenue": revenue,
        "quota_deals": deals,
        "per_week": float(scenario.inflow.per_week),
        "process": scenario.inflow.process,
        "dispersion": to_percent(float(scenario.inflow.dispersion)),
        "loaded_dispersion": float(scenario.inflow.dispersion),
        "value_dist": fields["dist"],
        "value_dispersion": to_percent(float(scenario.deal_value_dispersion)),
        "loaded_value_dispersion": float(scenario.deal_value_dispersion),
        **{f"value_{key}": fields[key] if fields[key] is not None else defaults[key] for key in PARAMETER_NAMES},
        "keep_open_deals": True,
        "keep_multipliers": True,
        **capacity_values(scenario),
        **team_values(scenario),
    }


def capacity_values(scenario: Scenario) -> dict[str, Any]:
    """The rep-capacity inputs: on or off, reps, and the wait after which a deal is lost (0: no limit)."""
    capacity = scenario.capacity
    wait = capacity.max_wait_days if capacity is not None else None
    return {
        "capacity_on": capacity is not None,
        "capacity_reps": capacity.reps if capacity is not None else 2,
        "max_wait_days": 0.0 if wait is None else float(wait),
    }


def team_values(scenario: Scenario) -> dict[str, Any]:
    """The team inputs (a cost of 0: none given); with no ``[team]``, 8 reps sharing the quota."""
    team = scenario.team
    if team is None:
        quota = scenario.quota.target
        share = quota / 8 if scenario.quota.unit == "revenue" else max(1, math.ceil(quota / 8))
        return {
            "team_on": False,
            "team_reps": 8,
            "rep_quota": float(share),
            "rate_concentration": 20.0,
            "new_reps": 0,
            "ramp_months": 3.0,
            "cost_per_year": 0.0,
        }
    return {
        "team_on": True,
        "team_reps": team.reps,
        "rep_quota": float(team.rep_quota),
        "rate_concentration": float(team.rate_concentration),
        "new_reps": team.new_reps,
        "ramp_months": 3.0 if team.ramp_months is None else float(team.ramp_months),
        "cost_per_year": 0.0 if team.cost_per_year is None else float(team.cost_per_year),
    }


CAPACITY_KEYS = ("capacity_on", "capacity_reps", "max_wait_days")
TEAM_KEYS = ("team_on", "team_reps", "rep_quota", "rate_concentration", "new_reps", "ramp_months", "cost_per_year")


def _capacity_document(values: Mapping[str, Any]) -> dict[str, Any] | None:
    if not values.get("capacity_on"):
        return None
    document = {"reps": _whole(values.get("capacity_reps"))}
    if not _blank(values.get("max_wait_days")) and values["max_wait_days"] != 0:  # 0: no limit
        document["max_wait_days"] = _number(values["max_wait_days"])
    return document


def _team_document(values: Mapping[str, Any]) -> dict[str, Any] | None:
    if not values.get("team_on"):
        return None
    document = {
        "reps": _whole(values.get("team_reps")),
        "rep_quota": _number(values.get("rep_quota")),
        "rate_concentration": _number(values.get("rate_concentration")),
    }
    new_reps = _whole(values.get("new_reps") or 0)
    if new_reps:
        document["new_reps"] = new_reps
        document["ramp_months"] = _number(values.get("ramp_months"))
    if not _blank(values.get("cost_per_year")) and values["cost_per_year"] != 0:  # 0: not given
        document["cost_per_year"] = _number(values["cost_per_year"])
    # A blank input is left out, so the validator says "missing (required)" at its path.
    return {key: value for key, value in document.items() if not _blank(value)}


SHARE_KEYS = ("dispersion", "value_dispersion")
"""Sidebar inputs typed as percentages (the swings between periods); ``loaded_<key>`` holds each as loaded."""


def _share(values: Mapping[str, Any], key: str) -> Any:
    """A percentage input as the scenario's fraction: the value as loaded while the input is unchanged."""
    percent, loaded = values.get(key), values.get(f"loaded_{key}")
    if not _blank(loaded) and to_percent(loaded) == _number(percent):
        return _number(loaded)
    return from_percent(percent)


def scenario_document(values: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """The scenario file's dictionary from widget values and the edited stage table."""
    document: dict[str, Any] = {}
    if not _blank(values.get("name")):
        document["name"] = str(values["name"])
    if not _blank(values.get("description")):
        document["description"] = str(values["description"])
    horizon_key = "horizon_days" if values.get("horizon_unit") == "days" else "horizon_weeks"
    document[horizon_key] = None if _blank(values.get("horizon")) else _number(values["horizon"])
    unit = values.get("quota_unit", "revenue")
    amount = values.get(f"quota_{unit}")
    quota_value = None if _blank(amount) else _whole(amount) if unit == "deals" else _number(amount)
    document["quota"] = {} if quota_value is None else {unit: quota_value}
    inflow: dict[str, Any] = {"process": values.get("process", "poisson")}
    if not _blank(values.get("per_week")):
        inflow["per_week"] = _number(values["per_week"])
    if not _blank(values.get("dispersion")) and values["dispersion"] != 0:  # 0: a steady inflow, the default
        inflow["dispersion"] = _share(values, "dispersion")
    if values.get("multipliers"):
        inflow["multipliers"] = list(values["multipliers"])
    document["inflow"] = inflow
    document["deal_value"] = distribution_document(
        values.get("value_dist"), {key: values.get(f"value_{key}") for key in PARAMETER_NAMES}
    )
    if not _blank(values.get("value_dispersion")) and values["value_dispersion"] != 0:  # 0: independent values
        document["deal_value_dispersion"] = _share(values, "value_dispersion")
    behaviours = values.get("behaviours") or {}
    capacity = _capacity_document(values)
    stages = []
    for row in ordered_rows(frame):
        stage = stage_document(row)
        stage.update(behaviour_document(behaviours.get(row[ROW], {}), capacity is not None))
        stages.append(stage)
    document["stages"] = stages
    if values.get("open_deals"):
        document["open_deals"] = [dict(deal) for deal in values["open_deals"]]
    if values.get("segments"):
        document["segments"] = [dict(segment) for segment in values["segments"]]
    document["capacity"] = capacity
    document["team"] = _team_document(values)
    # None means "left blank": drop it so the validator says "missing (required)".
    return {key: value for key, value in document.items() if value is not None}


def carried(scenario: Scenario, keep_open_deals: bool = True, keep_multipliers: bool = True) -> dict[str, Any]:
    """The parts of a loaded scenario that no input shows, as extra values for :func:`scenario_document`.

    Parameters
    ----------
    scenario : Scenario
        The scenario as loaded into the inputs.
    keep_open_deals, keep_multipliers : bool
        False drops the listed open deals (the seasonal multipliers).

    Returns
    -------
    dict
        ``open_deals`` (file-form list, or None), ``multipliers`` (list, or None) and
        ``segments`` (file-form list, or None: the Segments page edits them).
    """
    document = scenario_to_dict(scenario)
    multipliers = scenario.inflow.multipliers
    return {
        "open_deals": document.get("open_deals") if keep_open_deals else None,
        "multipliers": list(multipliers) if multipliers and keep_multipliers else None,
        "segments": document.get("segments"),
    }


def carried_summary(scenario: Scenario) -> list[str]:
    """Plain sentences on what the inputs do not show but the scenario keeps (for a caption)."""
    lines = []
    deals = scenario.open_deals
    if deals:
        ages = [deal.age_days for deal in deals]
        stages = sorted({deal.stage for deal in deals})
        priced = sum(deal.amount is not None for deal in deals)
        lines.append(
            f"Plus {len(deals):,} listed open deal{'s' if len(deals) != 1 else ''} (one by one, as a CRM export "
            f"lists them), ages {min(ages):,.0f}–{max(ages):,.0f} days, in {', '.join(stages)}"
            + (f"; {priced:,} with their own amount" if priced else "")
            + ". An old deal counts as less likely to be won than a new one."
        )
    multipliers = scenario.inflow.multipliers
    if multipliers:
        per = "week" if len(multipliers) == scenario.n_weeks else "month"
        lines.append(
            f"The inflow is seasonal: one factor per {per} ({len(multipliers)}), from {min(multipliers):.2f} to "
            f"{max(multipliers):.2f} times the weekly new opportunities."
        )
    if scenario.segments:
        names = ", ".join(segment.name for segment in scenario.segments)
        lines.append(
            f"Plus {len(scenario.segments)} segments ({names}): the inputs here are the defaults each segment takes "
            "unless it gives its own; see the Segments page."
        )
    return lines


_UNKNOWN_DEAL_STAGE = re.compile(r"^open_deals\[\d+\]\.stage: unknown stage (?P<stage>.*?); ")


def condense_problems(problems: list[str]) -> list[str]:
    """One line per missing stage instead of one per listed open deal in it.

    A renamed or deleted stage that holds 40 listed deals would otherwise give 40
    identical lines; the first is kept with a count of the rest.
    """
    out: list[str] = []
    first: dict[str, int] = {}
    more: dict[str, int] = {}
    for line in problems:
        match = _UNKNOWN_DEAL_STAGE.match(line)
        if match is None:
            out.append(line)
        elif match["stage"] in first:
            more[match["stage"]] += 1
        else:
            first[match["stage"]], more[match["stage"]] = len(out), 0
            out.append(line)
    for stage, i in first.items():
        if more[stage]:
            n = more[stage]
            out[i] += f" (and {n} more listed open deal{'s' if n > 1 else ''} in {stage})"
    return out


def stage_names(frame: pd.DataFrame) -> list[str]:
    """Stage names in the order the scenario will use (for pointing at rows in messages)."""
    return [str(row.get("name") or "(no name)") for row in ordered_rows(frame)]


def runs_for(runs: int, scenario: Scenario, engine: str) -> int:
    """The runs to simulate: the default means :data:`DEFAULT_SIMPY_RUNS` with limited reps on the SimPy engine.

    ``engine`` is the one that runs (:func:`sim.runner.choose_engine`).
    """
    slow = scenario.has_capacity_limits and engine == "simpy"
    return DEFAULT_SIMPY_RUNS if runs == DEFAULT_RUNS and slow else runs


@dataclass(frozen=True)
class Setting:
    """A setting the link carries: what a notice calls it, its default, and the values it takes.

    ``choices`` lists the values a slider or select offers (a link's value goes to the nearest);
    without them a number from ``low`` to ``high`` (``whole``: rounded); ``flag``: on or off.
    ``unit`` follows the number in notices (``%``).
    """

    label: str
    default: Any
    choices: tuple[Any, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    whole: bool = False
    flag: bool = False
    unit: str = ""


LINK_SETTINGS: dict[str, Setting] = {
    "runs": Setting("the runs", DEFAULT_RUNS, low=MIN_RUNS, high=MAX_RUNS, whole=True),
    "seed": Setting("the seed", DEFAULT_SEED, low=0, high=2**32 - 1, whole=True),
    "engine": Setting("the engine", DEFAULT_ENGINE, choices=ENGINES),
}
"""How to simulate, as the link carries it (query key = session-state key)."""
PAGE_SETTINGS: dict[str, Setting] = {
    "target": Setting("the chance of hitting quota you want (Magic number)", 80, tuple(range(50, 96, 5)), unit="%"),
    "capacity_magic": Setting("the search for the magic number with limited reps", False, flag=True),
    "confidence": Setting("the confidence (Quota setting)", 70, tuple(range(50, 96, 5)), unit="%"),
    "step": Setting("the lever step (Sensitivity)", 10, (5, 10, 20, 30), unit="%"),
    "rep_share": Setting("the share of reps who should make it (Team)", 70, tuple(range(30, 96, 5)), unit="%"),
}
"""Each page's own choices the link carries (query key = the widget's key in :mod:`ui.pages`)."""
BAROMETER_LIMIT = 10
"""The link's barometer pace is at most this many times the plan's (or 10 a week): more is work, not a what-if."""
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def barometer_key(per_week: float) -> str:
    """The Magic number page's barometer input's key: one per plan, so a new plan brings a fresh input."""
    return f"actual_{per_week!r}"


def _shown(value: Any, setting: Setting) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{int(value):,}" if float(value).is_integer() else human(float(value))
    return text + setting.unit


def _allowed(setting: Setting) -> str:
    """The values a setting takes, for a notice: ``it goes from 50% to 95% in steps of 5``, ``it is 5% or 10%``."""
    choices = setting.choices
    if not choices:
        return f"it goes from {_shown(setting.low, setting)} to {_shown(setting.high, setting)}"
    steps = {b - a for a, b in zip(choices, choices[1:], strict=False)}
    if len(choices) > 4 and len(steps) == 1:
        return f"it goes from {_shown(choices[0], setting)} to {_shown(choices[-1], setting)} in steps of {steps.pop()}"
    return "it is " + ", ".join(_shown(c, setting) for c in choices[:-1]) + f" or {_shown(choices[-1], setting)}"


def read_setting(text: Any, setting: Setting) -> tuple[Any, str | None]:
    """A link's value for a setting: the value to use, and a plain notice when it was refused or clamped.

    Parameters
    ----------
    text : str
        The query parameter as the link gives it.
    setting : Setting
        What the value may be.

    Returns
    -------
    value, notice : Any, str or None
        The default with a notice for what cannot be read; the nearest allowed value with a notice for what is
        out of range or not offered; the value itself and None otherwise.
    """
    raw = str(text).strip()
    if setting.flag:
        if raw.lower() in _ON + _OFF:
            return raw.lower() in _ON, None
        return setting.default, f"link: {setting.label} must be on (1) or off (0), got {quoted(raw)}; it is off"
    if setting.choices and all(isinstance(c, str) for c in setting.choices):
        if raw in setting.choices:
            return raw, None
        return setting.default, (
            f"link: {setting.label} must be one of {', '.join(setting.choices)}, got {quoted(raw)}; "
            f"using {setting.default}"
        )
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return setting.default, (
            f"link: {setting.label} must be a number, got {quoted(raw)}; using {_shown(setting.default, setting)}"
        )
    if setting.choices:
        value = min(setting.choices, key=lambda choice: (abs(choice - number), choice))
    else:
        value = min(max(number, setting.low), setting.high)
        value = int(round(value)) if setting.whole else value
    if value == number:
        return value, None
    given = shorten(raw, QUOTE_CHARS) + setting.unit
    return (
        value,
        f"link: {setting.label} cannot be {given} ({_allowed(setting)}); using {_shown(value, setting)}",
    )


def read_barometer(text: Any, per_week: float) -> tuple[float | None, str | None]:
    """The link's barometer pace for a plan of ``per_week``: from 0 to :data:`BAROMETER_LIMIT` times the plan."""
    high = float(BAROMETER_LIMIT * max(per_week, 1.0))
    setting = Setting("the opportunities you actually create a week (Magic number)", None, low=0.0, high=high)
    value, notice = read_setting(text, setting)
    if value is None:
        return None, notice.replace("; using None", "; using your plan")
    return float(value), notice


def link_settings(query: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """How to simulate and the pages' choices from a link, with a notice for each value refused or clamped.

    Runs, seed and engine are always returned (their defaults when absent); a page's choice only when the
    link gives it, so its widget starts at its own default otherwise.
    """
    values: dict[str, Any] = {}
    notices: list[str] = []
    for key, setting in (LINK_SETTINGS | PAGE_SETTINGS).items():
        if key not in query:
            if key in LINK_SETTINGS:
                values[key] = setting.default
            continue
        values[key], notice = read_setting(query[key], setting)
        if notice:
            notices.append(notice)
    return values, notices


def settings_query(values: Mapping[str, Any]) -> dict[str, str]:
    """The settings to write into the link: only those that differ from their defaults (a short link)."""
    out = {}
    for key, setting in (LINK_SETTINGS | PAGE_SETTINGS).items():
        value = values.get(key)
        if value is None or value == setting.default:
            continue
        out[key] = ("1" if value else "0") if setting.flag else str(value)
    return out


# --- the link --------------------------------------------------------------------------


def encode_scenario(scenario: Scenario) -> str:
    """The scenario's TOML, compressed, as one URL-safe string (no padding)."""
    packed = zlib.compress(scenario_to_toml(scenario).encode("utf-8"), 9)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_scenario(text: str) -> Scenario:
    """Undo :func:`encode_scenario` and validate; problems raise :class:`ScenarioError`."""
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_FILE_BYTES)
        if inflater.unconsumed_tail:
            raise ScenarioError([f"link: the scenario is larger than {MAX_FILE_BYTES:,} bytes"])
        toml = raw.decode("utf-8")
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, ScenarioError):
            raise
        raise ScenarioError(["link: the scenario in the link is damaged (was it cut short?)"]) from None
    return scenario_from_toml(toml, source="link")


def differences(before: Scenario, after: Scenario) -> list[tuple[str, Any, Any]]:
    """What changed between two scenarios, as ``(field path, before, after)``, in file order."""

    def flat(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, dict):
            for key, item in value.items():
                flat(item, f"{path}.{key}" if path else key, out)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                flat(item, f"{path}[{i}]", out)
        else:
            out[path] = value
        return out

    a = flat(scenario_to_dict(before), "", {})
    b = flat(scenario_to_dict(after), "", {})
    keys = list(a) + [k for k in b if k not in a]
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


__all__ = [
    "ENGINES",
    "FAMILIES",
    "HORIZON_UNITS",
    "PARAMETERS",
    "PROCESSES",
    "QUOTA_UNITS",
    "STAGE_COLUMNS",
    "carried",
    "carried_summary",
    "condense_problems",
    "decode_scenario",
    "differences",
    "distribution_document",
    "distribution_fields",
    "encode_scenario",
    "link_settings",
    "read_barometer",
    "read_setting",
    "scenario_document",
    "settings_query",
    "stage_names",
    "stages_frame",
    "widget_values",
]

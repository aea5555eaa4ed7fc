"""The library's field paths in the app's words: plain problems and plain changes.

The library names a field by its path in the scenario file (``stages[0].conversion``) so
that a message points into the file; the app's visitors never see the file, only inputs
with labels. :func:`field_label` turns a path into the label a visitor reads ("Reach
rate", "Quota (won deals)"), using the stage's own name; :func:`plain_problem` rewords a
``path: problem`` line with it, rates as percentages ("Reach rate: must be between 0% and
100%, got 4,000%"); :func:`change_lines` says what changed between two scenarios ("Reach
rate 35% → 40%"). A path this module does not know is turned into words, never dropped.
The command line and JSON keep the paths. Nothing here imports Streamlit.
"""

from __future__ import annotations

import re
from typing import Any

from sim import Scenario
from sim.model.measures import kind_of
from sim.words import human
from ui.explain import count
from ui.form import differences, to_percent

STAGE_KEYS = {
    "name": "name",
    "conversion": "rate",
    "duration": "days",
    "open": "open deals",
    "lost_duration": "days to a loss",
    "per_rep": "deals per rep",
    "touches_needed": "touches needed",
    "max_touches": "rep gives up after (touches)",
    "touch_interval_days": "days between touches",
    "no_show": "no-show chance",
    "reschedule": "rescheduled chance",
    "lost_after_reschedule": "chance lost after a reschedule",
    "reschedule_days": "days a reschedule adds",
    "stale_after_days": "stale after (days)",
}
"""A stage's keys as the stage tables call them, after the stage's name."""
FIELDS = {
    "scenario": "The scenario",
    "name": "Scenario name",
    "description": "Description",
    "horizon_weeks": "Period length (weeks)",
    "horizon_days": "Period length (days)",
    "quota": "Quota",
    "quota.revenue": "Quota (won revenue)",
    "quota.deals": "Quota (won deals)",
    "inflow": "New opportunities",
    "inflow.per_week": "New opportunities a week",
    "inflow.process": "How new opportunities arrive",
    "inflow.dispersion": "Inflow swings between periods (±)",
    "inflow.multipliers": "Seasonal inflow factors",
    "deal_value": "Deal value",
    "deal_value.dist": "Deal value (how it varies)",
    "deal_value.value": "Deal value",
    "deal_value.values": "Deal value (observed values)",
    "deal_value_dispersion": "Average deal value swings between periods (±)",
    "stages": "Stages",
    "capacity": "Rep capacity",
    "capacity.reps": "Reps sharing the funnel",
    "capacity.max_wait_days": "Longest wait before a deal is lost (days)",
    "team": "Team of reps",
    "team.reps": "Reps in the team",
    "team.rep_quota": "Each rep's quota",
    "team.rate_concentration": "How alike the reps are",
    "team.new_reps": "New reps (ramping)",
    "team.ramp_months": "Months to full speed",
    "team.cost_per_year": "Cost per rep a year",
    "open_deals": "Listed open deals",
}
"""Labels of the scenario's other fields, by path (a path with an index has its own rule)."""
PARAMETERS = {"dist": "how it varies", "value": None, "mean": "mean", "sd": "sd", "low": "low", "mode": "most likely"}
PARAMETERS |= {"high": "high", "values": "observed values"}
"""A distribution's keys in a label: ``Deal value (mean)``, ``Proposal days (most likely)``."""
RATE_KEYS = ("conversion", "no_show", "reschedule", "lost_after_reschedule")
"""Stage keys that are rates or chances: shown as percentages."""
SHARE_PATHS = ("inflow.dispersion", "deal_value_dispersion")
"""The swings between periods: typed as percentages too."""
_ROOTS = {path.split(".")[0] for path in FIELDS} | {"stages", "open_deals", "segments"}
"""The first part of every path a scenario has: a line from a file starting otherwise names the file, not a field."""

_STAGE = re.compile(r"^stages\[(\d+)\](?:\.(\w+))?(?:\.(\w+))?$")
_SEGMENT = re.compile(r"^segments\[(\d+)\]\.(.+)$")
_DEAL = re.compile(r"^open_deals\[(\d+)\](?:\.(\w+))?$")
_FIELD_PATH = re.compile(r"^[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*$")
_NUMBER = re.compile(r"-?(?:\d[\d,]*\.?\d*|\.\d+)(?:e[+-]?\d+)?", re.IGNORECASE)


def _stage_name(i: int, names: list[str] | None) -> str:
    if names and i < len(names) and names[i] and names[i] != "(no name)":
        return names[i]
    return f"Stage {i + 1}"


def _words(path: str) -> str:
    """A path the module does not know, in words: ``open_deals[3].age_days`` -> ``Open deals 4 age days``."""
    text = re.sub(r"\[(\d+)\]", lambda m: f" {int(m.group(1)) + 1}", path).replace(".", " ").replace("_", " ")
    return text[:1].upper() + text[1:]


def _distribution(label: str, key: str | None) -> str:
    if key is None or key not in PARAMETERS:
        return label if key is None else f"{label} ({key.replace('_', ' ')})"
    word = PARAMETERS[key]
    return label if word is None else f"{label} ({word})"


def field_label(path: str, names: list[str] | None = None) -> str:
    """The label a visitor reads for a field path.

    Parameters
    ----------
    path : str
        A field path as the library writes it (``stages[1].conversion.mean``).
    names : list of str, optional
        The stage names in funnel order; without them a stage is "Stage 2".

    Returns
    -------
    str
        ``Proposal rate``, ``Proposal days (mean)``, ``Quota (won deals)``, ``Deal value (mean)``;
        a path not known here in words (``Open deals 4 age days``).
    """
    segment = _SEGMENT.match(path)
    if segment:  # a segment holds a funnel of its own: its fields are labelled as the top level's
        return f"Segment {int(segment.group(1)) + 1}: {field_label(segment.group(2))}"
    stage = _STAGE.match(path)
    if stage:
        i, key, inner = int(stage.group(1)), stage.group(2), stage.group(3)
        name = _stage_name(i, names)
        if key is None:
            return name
        if key == "name":
            return f"Stage {i + 1} name"
        if key == "conversion":
            return f"{name} rate from (deals)" if inner == "concentration" else f"{name} rate"
        words = STAGE_KEYS.get(key, key.replace("_", " "))
        if key in ("duration", "lost_duration", "touches_needed"):
            return _distribution(f"{name} {words}", inner)
        return f"{name} {words}" + (f" ({inner.replace('_', ' ')})" if inner else "")
    deal = _DEAL.match(path)
    if deal:
        key = deal.group(2)
        return f"Listed open deal {int(deal.group(1)) + 1}" + (f" ({key.replace('_', ' ')})" if key else "")
    if path in FIELDS:
        return FIELDS[path]
    if path.startswith("deal_value."):
        return _distribution("Deal value", path.split(".", 1)[1])
    return _words(path)


def is_rate(path: str) -> bool:
    """Whether the field is a rate, a chance or a swing between periods (shown as a percentage)."""
    segment = _SEGMENT.match(path)
    path = segment.group(2) if segment else path
    if path in SHARE_PATHS:
        return True
    stage = _STAGE.match(path)
    return bool(stage) and stage.group(2) in RATE_KEYS and stage.group(3) in (None, "mean")


def _percent_text(value: Any) -> str:
    """A fraction as a percentage in text: 0.35 -> 35%, 40.0 -> 4,000%, 0.4123 -> 41.2%."""
    return f"{human(100 * float(value))}%"


def _plain_number(text: str) -> str:
    try:
        return human(float(text.replace(",", "")))
    except ValueError:
        return text


_MESSAGES = (
    (re.compile(r"^must be strictly between 0 and 1\b"), "must be more than 0% and less than 100%"),
    (re.compile(r"^must be between 0 and 1\b"), "must be between 0% and 100%"),
    (re.compile(r"^must be (?:a )?(?:finite )?number > 0\b"), "must be more than 0"),
    (re.compile(r"^must be (?:a )?(?:finite )?number >= 0\b"), "must be 0 or more"),
    (re.compile(r"^must be a whole number >= (\d+)"), r"must be a whole number, \1 or more"),
    (re.compile(r"^missing \(required\)$"), "needs a value"),
    (re.compile(r"^unknown key \(check the spelling\)$"), "is not a setting the scenario knows (check the spelling)"),
    (re.compile(r"1e\+12 \(a trillion\)|1e\+12"), "a trillion"),
    (re.compile(r"(?<=[a-z]) <= "), " at most "),
    (re.compile(r"(?<=[a-z]) >= "), " at least "),
    (
        re.compile(r"a \[capacity\] section with reps \(how many reps share the funnel\); add capacity\.reps"),
        "rep capacity on (how many reps share the funnel); turn it on",
    ),
    (re.compile(r"\[capacity\]"), "rep capacity"),
)
"""Library phrasings and their plain forms (the first matching each part applies)."""
_KEYS_IN_MESSAGES = {
    "touches_needed": "touches needed",
    "no_show": "a no-show chance",
    "reschedule": "a rescheduled chance",
    "capacity.reps": "Reps sharing the funnel",
    "team.reps": "the reps in the team",
    "inflow.per_week": "new opportunities a week",
    "new_reps": "new reps",
    "per_rep": "deals per rep",
    "horizon_weeks": "the period length",
    "horizon_days": "the period length",
}


def _plain_message(message: str, rate: bool) -> str:
    for pattern, plain in _MESSAGES:
        message = pattern.sub(plain, message)
    if rate:  # a swing's bounds are fractions too: "between 0 and 3" is 0% to 300%
        message = re.sub(
            r"(?:a finite number )?between 0 and (\d+(?:\.\d+)?)\b",
            lambda bound: f"between 0% and {_percent_text(bound.group(1))}",
            message,
        )
    for key, words in _KEYS_IN_MESSAGES.items():
        message = re.sub(rf"(?<![\w.\[]){re.escape(key)}(?![\w\]])", words, message)
    head, got, value = message.rpartition(", got ")
    if got and _NUMBER.fullmatch(value.strip()):
        value = _percent_text(value.replace(",", "")) if rate else _plain_number(value.strip())
        message = f"{head}, got {value}"
    return message


def plain_problem(line: str, names: list[str] | None = None, where: str | None = None) -> str:
    """A library problem line (``field.path: problem``) as a visitor reads it.

    Parameters
    ----------
    line : str
        One line of :class:`sim.model.scenario.ScenarioError` (or a link or file notice).
    names : list of str, optional
        Stage names in funnel order, for "Proposal rate" rather than "Stage 2 rate".
    where : str, optional
        Where the scenario came from when it is a file or a link (``"the file"``): the path is kept
        after the sentence, since it points into that file.

    Returns
    -------
    str
        ``Reach rate: must be between 0% and 100%, got 4,000%``; a line that does not start with a
        field path (a file name, a notice) unchanged.
    """
    path, colon, message = line.partition(": ")
    if (
        not colon
        or path == "link"
        or not _FIELD_PATH.fullmatch(path)
        or (where and path.split("[")[0].split(".")[0] not in _ROOTS)
    ):
        return line
    plain = f"{field_label(path, names)}: {_plain_message(message, is_rate(path))}"
    return f"{plain} ({path} in {where})" if where else plain


def _value_text(path: str, value: Any, unit_money: bool) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, list | tuple):
            return f"{len(value):,} values"
        return str(value)
    if is_rate(path):
        return _percent_text(value)
    if unit_money:
        return human(float(value), "money")
    return count(float(value))


def _exact_text(path: str, value: Any, unit_money: bool) -> str:
    """The value in full, for when the rounded form hides the change (41.2% → 41.2%)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _value_text(path, value, unit_money)
    if is_rate(path):
        return f"{to_percent(value):,}%"
    number = f"{value:,}"
    return f"${number}" if unit_money else number


def change_lines(before: Scenario, after: Scenario) -> list[str]:
    """What changed between two scenarios, one plain line each, in file order.

    ``Reach rate 35% → 40%``, ``Deal value (mean) $25k → $30k``, ``New opportunities a week 16 → 18``;
    stages are named as the scenario before names them (a stage added after it, as the scenario after).
    """
    names = list(before.stage_names) + list(after.stage_names[len(before.stages) :])
    lines = []
    for path, old, new in differences(before, after):
        money = kind_of(path, after.quota.unit) == "money"
        old_text, new_text = _value_text(path, old, money), _value_text(path, new, money)
        if old_text == new_text:
            old_text, new_text = _exact_text(path, old, money), _exact_text(path, new, money)
        lines.append(f"{field_label(path, names)} {old_text} → {new_text}")
    return lines


__all__ = ["change_lines", "field_label", "is_rate", "plain_problem"]

"""What a number of a scenario measures (money, a rate, days or something else), told by where it sits.

One reading for every place that writes a scenario's numbers for people: the calibrated
scenario's rounding (:mod:`sim.crm.rounding`), the plan report's columns and the app's
list of changes. A path is a field's keys (``("segments", "team", "rep_quota")``) or its
dotted name with list positions (``segments[1].team.rep_quota``).
"""

from __future__ import annotations

import re

MONEY_KEYS = frozenset({"revenue", "amount", "rep_quota", "cost_per_year"})
"""Keys holding money wherever they are (a quota, an open deal's amount, a rep's quota or cost)."""
DAY_KEYS = frozenset(
    {"horizon_days", "age_days", "touch_interval_days", "reschedule_days", "stale_after_days", "max_wait_days"}
)
"""Keys holding days wherever they are."""
DAY_SECTIONS = frozenset({"duration", "lost_duration"})
"""Sections whose every number is days (a distribution of days)."""
RATE_KEYS = frozenset({"no_show", "reschedule", "lost_after_reschedule"})
"""Keys holding a chance besides a stage's conversion."""

_POSITION = re.compile(r"\[\d+\]")


def kind_of(path: tuple[str, ...] | str, unit: str = "revenue") -> str:
    """What the number at ``path`` measures.

    Parameters
    ----------
    path : tuple of str or str
        The field's keys (list positions left out), or its dotted name (``stages[0].conversion.mean``).
    unit : {"revenue", "deals"}
        The scenario's quota unit: a rep's quota is money only where the quota is revenue.

    Returns
    -------
    str
        ``money``, ``rate``, ``days`` or ``other``.

    Examples
    --------
    >>> kind_of(("quota", "revenue")), kind_of("stages[2].conversion.mean")
    ('money', 'rate')
    >>> kind_of(("stages", "conversion", "concentration")), kind_of("segments[1].stages[0].duration.sd")
    ('other', 'days')
    >>> kind_of("team.rep_quota"), kind_of("team.rep_quota", unit="deals")
    ('money', 'other')
    """
    if isinstance(path, str):
        path = tuple(_POSITION.sub("", path).split("."))
    last = path[-1]
    if last == "rep_quota" and unit != "revenue":
        return "other"
    if last in MONEY_KEYS or "deal_value" in path:
        return "money"
    if last in DAY_KEYS or DAY_SECTIONS.intersection(path):
        return "days"
    if last in RATE_KEYS or (last in ("conversion", "mean") and "conversion" in path):
        return "rate"
    return "other"

"""Calibrated numbers as a person would write them: money to the cent, rates to 4 decimals, days to 0.1.

A fit gives ``revenue = 1184168.5299999998`` and ``mean = 0.226097815100015``; nobody
writes those, and nobody can read a scenario full of them. :func:`tidy_scenario` rounds
every number of a calibrated scenario by what it measures
(:func:`sim.model.measures.kind_of`): money to
cents, rates (conversions and other chances) to 4 decimals, days to a tenth, and any
other number (Beta concentrations, deals a week, multipliers, dispersions) to 4
significant figures. The rounding is far inside the fits' own uncertainty (a rate's
standard error is rarely below 0.005), so the forecast does not change in any digit
people read.

Rounding never makes a scenario invalid: a number that would round to 0 where it was
not 0 (a quota of $0.004, a duration sd of 0.02 days), or a rate that would round to 0
or 1 where it was strictly between, keeps its full precision; and should the rounded
scenario still not validate, the scenario is returned as it was.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from sim.model.measures import kind_of
from sim.model.scenario import Scenario, ScenarioError, scenario_from_dict, scenario_to_dict

DECIMALS = {"money": 2, "rate": 4, "days": 1}
"""Decimals kept for each kind; any other number keeps :data:`SIGNIFICANT` significant figures."""
SIGNIFICANT = 4


def rounded_number(x: float, kind: str) -> float:
    """``x`` rounded for its ``kind`` (:func:`~sim.model.measures.kind_of`); ``x`` where rounding changes its meaning.

    A number that is not 0 never becomes 0, and a rate strictly between 0 and 1 never
    becomes 0 or 1: those keep their full precision.
    """
    if not math.isfinite(x) or x == 0:
        return x
    if kind in DECIMALS:
        tidy = round(x, DECIMALS[kind])
    else:
        tidy = float(f"{x:.{SIGNIFICANT}g}")
    if tidy == 0 or (kind == "rate" and 0 < x < 1 and tidy in (0.0, 1.0)):
        return x
    return tidy


def _tidy(node: Any, path: tuple[str, ...], unit: str) -> Any:
    """Every float under ``node`` rounded by its path; whole numbers, text and flags as they are."""
    if isinstance(node, dict):
        return {key: _tidy(value, (*path, key), unit) for key, value in node.items()}
    if isinstance(node, list):
        return [_tidy(value, path, unit) for value in node]
    if isinstance(node, float):
        return rounded_number(node, kind_of(path, unit))
    return node


def tidy_scenario(scenario: Scenario) -> Scenario:
    """The scenario with its numbers rounded as a person writes them (see the module's docstring).

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    Scenario
        The rounded scenario; the scenario as given if the rounded one does not validate.
    """
    document = _tidy(scenario_to_dict(scenario), (), scenario.quota.unit)
    try:
        return scenario_from_dict(document)
    except (ScenarioError, ValidationError):  # pragma: no cover - the guards of rounded_number keep it valid
        return scenario

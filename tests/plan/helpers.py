"""Small plans for the plan tests: a team funnel without open deals, and plan documents over it."""

from __future__ import annotations

import copy

import tomli_w

from tests.conftest import document

TEAM = {"reps": 3, "rep_quota": 60_000, "rate_concentration": 20, "ramp_months": 2, "cost_per_year": 100_000}
"""A team without open deals: rep r's numbers depend only on the seed and r, so adding a rep only adds."""


def team_base(**team) -> dict:
    """The base scenario document of the plan tests: the conftest funnel worked by a team."""
    return document(quota={"revenue": 150_000}, team={**TEAM, **team})


def grid(vary: dict, runs: int = 200, **more) -> dict:
    """A plan document with an inline base and a grid."""
    return {"base": team_base(), "runs": runs, "seed": 3, "vary": copy.deepcopy(vary), **more}


def write_plan(folder, plan: dict, name: str = "plan.toml"):
    """Write a plan document as TOML and return its path."""
    path = folder / name
    path.write_text(tomli_w.dumps(plan), encoding="utf-8")
    return path

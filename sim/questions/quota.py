"""A realistic quota: the largest one hit with a chosen confidence, for a funnel or team and for its reps."""

from __future__ import annotations

import math

import numpy as np

from sim.runner.results import SegmentsResult, SimulationResult, TeamResult, describe, summary4


def realistic_quota(result: SimulationResult, confidence: float) -> dict:
    """The largest quota hit with at least ``confidence`` probability, and attainment.

    Parameters
    ----------
    result : SimulationResult
        Replications of the scenario as it stands (its quota sets the attainment).
    confidence : float
        Wanted P(hit), strictly between 0 and 1.

    Returns
    -------
    dict
        ``quota`` (in the scenario's unit), ``confidence``, ``unit``, ``p_hit_at_quota``,
        ``current_quota``, ``p_hit_at_current_quota`` and ``attainment`` (mean, p10,
        p50, p90 of result / current quota).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be strictly between 0 and 1, got {confidence}")
    values = np.sort(result.result)[::-1]
    # At least ceil(c * n) runs must reach the quota: the ceil(c * n)-th largest result.
    # The tolerance keeps 0.07 * 100 = 7.000000000000001 from asking for an 8th run.
    quota = float(values[math.ceil(confidence * len(values) - 1e-9) - 1])
    current = result.scenario.quota.target
    attainment = describe(result.result / current)
    return {
        "quota": quota,
        "confidence": confidence,
        "unit": result.scenario.quota.unit,
        "p_hit_at_quota": float((result.result >= quota).mean()),
        "current_quota": current,
        "p_hit_at_current_quota": result.p_hit,
        "attainment": {key: attainment[key] for key in ("mean", "p10", "p50", "p90")},
    }


def realistic_segment_quotas(result: SegmentsResult, confidence: float) -> list[dict]:
    """Each segment's realistic quota: the largest it makes with ``confidence`` on its own.

    Returns
    -------
    list of dict
        Per segment: ``name``, ``quota`` and ``p_hit_at_quota`` (in the unit of the
        segment's own quota, else the total's), ``unit``, ``own_quota`` and
        ``p_hit_at_own_quota`` (None without a quota of its own). The segments' quotas
        add up to less than the total's realistic quota: segments rarely all fall short
        in the same period.
    """
    out = []
    for segment, part in zip(result.scenario.segments, result.segment_totals(), strict=True):
        answer = realistic_quota(part, confidence)
        own = segment.quota is not None
        out.append(
            {
                "name": segment.name,
                "quota": answer["quota"],
                "p_hit_at_quota": answer["p_hit_at_quota"],
                "unit": answer["unit"],
                "own_quota": answer["current_quota"] if own else None,
                "p_hit_at_own_quota": answer["p_hit_at_current_quota"] if own else None,
            }
        )
    return out


def p_hit_by_quota(result: SimulationResult, quotas: np.ndarray) -> np.ndarray:
    """P(result >= quota) for each quota: how the odds fall as the quota rises."""
    values = np.sort(result.result)
    below = np.searchsorted(values, np.asarray(quotas, dtype=float), side="left")
    return (len(values) - below) / len(values)


def realistic_rep_quota(result: TeamResult, confidence: float) -> dict:
    """The rep quota that a chosen share of reps makes, and the share at the current one.

    The quota is the largest q such that at least ``confidence`` of all rep-replications
    reach q: the (1 - confidence) quantile of individual results, taken as in
    :func:`sim.questions.quota.realistic_quota` (the ceil(confidence x n)-th largest result).
    Over rep-replications, so it is the share of reps that make it, averaged over the
    team's possible quarters.

    Returns
    -------
    dict
        ``quota``, ``confidence``, ``unit``, ``share_at_quota`` (at that quota),
        ``rep_quota`` (the scenario's), ``share_at_rep_quota``, ``attainment`` (mean,
        p10, p50, p90 of result / rep_quota); with new reps, ``by_group`` with the same
        ``quota``, ``share_at_quota`` and ``share_at_rep_quota`` for ``experienced`` and
        ``new`` reps separately.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be strictly between 0 and 1, got {confidence}")
    current = result.scenario.team.rep_quota

    def answer(values: np.ndarray) -> dict:
        values = np.sort(values.ravel())[::-1]
        # The tolerance keeps 0.07 * 100 = 7.000000000000001 from asking for an 8th result.
        quota = float(values[math.ceil(confidence * len(values) - 1e-9) - 1])
        return {
            "quota": quota,
            "share_at_quota": float((values >= quota).mean()),
            "share_at_rep_quota": float((values >= current).mean()),
        }

    out = {
        **answer(result.result),
        "confidence": confidence,
        "unit": result.scenario.quota.unit,
        "rep_quota": current,
        "attainment": summary4(result.attainment),
    }
    if result.scenario.team.mixed:
        out["by_group"] = {
            "experienced": answer(result.result[:, ~result.is_new]),
            "new": answer(result.result[:, result.is_new]),
        }
    return out

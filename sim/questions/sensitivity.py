"""Which lever matters: each rate, stage time, the inflow and deal value improved by a step, paired.

All variants run with the same seed (common random numbers), so each change is a
paired difference with its own standard error: the bars of a tornado chart.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.scenario import BetaRate, Scenario
from sim.model.segments import segment_scenarios
from sim.runner import Engine, Request, run


def levers(scenario: Scenario, step: float) -> list[tuple[dict, Scenario]]:
    """Each lever improved by ``step`` (relative): a description and the improved scenario.

    Conversion rates rise (fixed rates capped at 1, Beta means kept below 1), stage
    durations shrink (the whole distribution scaled by 1 - step), inflow and the deal
    value distribution grow by 1 + step. With segments, each segment's levers, one
    segment at a time (the description names it under ``segment``).
    """
    if not 0.0 < step < 1.0:
        raise ValueError(f"step: must be strictly between 0 and 1, got {step}")
    if scenario.segments:
        return [
            ({**what, "lever": f"{funnel.name}: {what['lever']}", "segment": funnel.name}, scenario.with_segment(i, v))
            for i, funnel in enumerate(segment_scenarios(scenario))
            for what, v in levers(funnel, step)
        ]
    out = []
    for j, stage in enumerate(scenario.stages):
        stages = list(scenario.stages)
        conversion = stage.conversion
        if isinstance(conversion, BetaRate):
            before = conversion.mean()
            after = min(before * (1 + step), 0.5 * (1 + before))  # stays inside (0, 1)
            better = conversion.model_copy(update={"mean_": after})
        else:
            before = float(conversion)
            after = better = min(1.0, before * (1 + step))
        stages[j] = stage.model_copy(update={"conversion": better})
        out.append(
            (
                {
                    "lever": f"{stage.name} conversion",
                    "kind": "conversion",
                    "stage": stage.name,
                    "from": before,
                    "to": after,
                },
                scenario.model_copy(update={"stages": tuple(stages)}),
            )
        )
        stages = list(scenario.stages)
        stages[j] = stage.model_copy(update={"duration": stage.duration.scaled(1 - step)})
        mean = stage.duration.mean()
        out.append(
            (
                {
                    "lever": f"{stage.name} duration",
                    "kind": "duration",
                    "stage": stage.name,
                    "from": mean,
                    "to": mean * (1 - step),
                },
                scenario.model_copy(update={"stages": tuple(stages)}),
            )
        )
    per_week = scenario.inflow.per_week
    out.append(
        (
            {
                "lever": "inflow per week",
                "kind": "inflow",
                "stage": None,
                "from": per_week,
                "to": per_week * (1 + step),
            },
            scenario.with_inflow(per_week * (1 + step)),
        )
    )
    value = scenario.deal_value.mean()
    out.append(
        (
            {"lever": "deal value", "kind": "deal_value", "stage": None, "from": value, "to": value * (1 + step)},
            scenario.model_copy(update={"deal_value": scenario.deal_value.scaled(1 + step)}),
        )
    )
    return out


def paired_difference(after: np.ndarray, before: np.ndarray) -> tuple[float, float]:
    """Mean of the paired differences and its standard error."""
    diff = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), se


def sensitivity(
    scenario: Scenario,
    step: float = 0.1,
    runs: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    engine: Engine = "auto",
    progress=None,
) -> dict:
    """Change in P(hit) and mean revenue when each lever improves by ``step``.

    All variants run with the same seed (common random numbers), so each change is a
    paired difference with its own standard error. Levers come sorted by the size of
    their effect on P(hit), then on revenue: the bars of a tornado chart. The scenario
    and its levers are one request (:func:`sim.runner.execute`): where an engine can, the
    runner draws the random numbers once and does the work before the stage a lever
    changes once, with the numbers of separate simulations.

    Parameters
    ----------
    scenario : Scenario
    step : float
        Relative improvement of each lever, strictly between 0 and 1.
    runs, seed, jobs, engine, progress
        As for :func:`sim.runner.simulate`.

    Returns
    -------
    dict
        ``base`` (p_hit, revenue_mean), ``step``, ``runs``, ``seed`` and ``levers``: a list
        of dicts with ``lever``, ``kind``, ``stage``, ``from``, ``to``, ``p_hit_change``,
        ``p_hit_change_se``, ``revenue_change`` and ``revenue_change_se``.
    """
    described = levers(scenario, step)
    variants = [scenario, *(variant for _, variant in described)]
    request = Request(tuple(variants), runs=runs, seed=seed, jobs=jobs, engine=engine)
    simulation = run(request, progress)
    base, *results = (simulation.result(v, request.seed, i) for i, v in enumerate(variants))
    rows = []
    for (description, _), result in zip(described, results, strict=True):
        d_hit, se_hit = paired_difference(result.hit, base.hit)
        d_rev, se_rev = paired_difference(result.outcomes.revenue, base.outcomes.revenue)
        rows.append(
            {
                **description,
                "p_hit_change": d_hit,
                "p_hit_change_se": se_hit,
                "revenue_change": d_rev,
                "revenue_change_se": se_rev,
            }
        )
    rows.sort(key=lambda r: (abs(r["p_hit_change"]), abs(r["revenue_change"])), reverse=True)
    return {
        "base": {"p_hit": base.p_hit, "revenue_mean": float(base.outcomes.revenue.mean())},
        "step": step,
        "runs": runs,
        "seed": seed,
        "levers": rows,
    }

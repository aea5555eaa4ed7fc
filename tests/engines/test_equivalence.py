"""The SimPy and vectorised engines implement the same model.

For each scenario the two engines agree on P(hit) and mean revenue within z standard
errors of the difference (z = 4, a 1-in-16,000 false alarm per check), and a
two-sample Kolmogorov-Smirnov test on revenue does not reject at alpha = 0.001.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from sim import simulate
from sim.model.scenario import scenario_from_dict

Z = 4.0
ALPHA = 0.001
SIMPY_RUNS = 1_500
VECTOR_RUNS = 6_000


def _scenario(stages, inflow=None, deal_value=None, quota=None, horizon_days=70):
    return scenario_from_dict(
        {
            "name": "equivalence",
            "horizon_days": horizon_days,
            "quota": quota or {"revenue": 150_000},
            "inflow": inflow or {"per_week": 6},
            "deal_value": deal_value or {"dist": "lognormal", "mean": 20_000, "sd": 9_000},
            "stages": stages,
        }
    )


CASES = {
    "fixed rates, lognormal": _scenario(
        [
            {"name": "A", "conversion": 0.6, "duration": {"dist": "lognormal", "mean": 7, "sd": 4}},
            {"name": "B", "conversion": 0.5, "duration": {"dist": "lognormal", "mean": 10, "sd": 5}},
        ]
    ),
    "beta rates, gamma, open pipeline": _scenario(
        [
            {
                "name": "A",
                "conversion": {"mean": 0.6, "concentration": 20},
                "duration": {"dist": "gamma", "mean": 6, "sd": 3},
                "open": 8,
            },
            {
                "name": "B",
                "conversion": {"mean": 0.45, "concentration": 30},
                "duration": {"dist": "exponential", "mean": 9},
                "open": 5,
            },
        ]
    ),
    "uniform, triangular, empirical, fixed inflow": _scenario(
        [
            {"name": "A", "conversion": 0.7, "duration": {"dist": "uniform", "low": 2, "high": 9}},
            {
                "name": "B",
                "conversion": 0.55,
                "duration": {"dist": "triangular", "low": 3, "mode": 5, "high": 15},
                "open": 4,
            },
            {"name": "C", "conversion": 0.8, "duration": 4},
        ],
        inflow={"per_week": 7.5, "process": "fixed"},
        deal_value={"dist": "empirical", "values": [5_000, 12_000, 20_000, 45_000]},
    ),
    "deals quota, fixed value": _scenario(
        [{"name": "Only", "conversion": 0.3, "duration": {"dist": "exponential", "mean": 20}}],
        inflow={"per_week": 10},
        deal_value=1_000,
        quota={"deals": 15},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_engines_agree(name):
    scenario = CASES[name]
    a = simulate(scenario, runs=SIMPY_RUNS, seed=11, engine="simpy")
    b = simulate(scenario, runs=VECTOR_RUNS, seed=12, engine="vectorized")
    assert a.engine == "simpy" and b.engine == "vectorized"

    pa, pb = a.p_hit, b.p_hit
    pooled = (pa * SIMPY_RUNS + pb * VECTOR_RUNS) / (SIMPY_RUNS + VECTOR_RUNS)
    se_p = math.sqrt(pooled * (1 - pooled) * (1 / SIMPY_RUNS + 1 / VECTOR_RUNS))
    assert abs(pa - pb) <= Z * se_p + 1e-12, (pa, pb, se_p)

    ra, rb = a.outcomes.revenue, b.outcomes.revenue
    se_mean = math.sqrt(ra.var(ddof=1) / len(ra) + rb.var(ddof=1) / len(rb))
    assert abs(ra.mean() - rb.mean()) <= Z * se_mean, (ra.mean(), rb.mean(), se_mean)

    for j in range(len(scenario.stages)):
        ea, eb = a.outcomes.entered[:, j], b.outcomes.entered[:, j]
        se = math.sqrt(ea.var(ddof=1) / len(ea) + eb.var(ddof=1) / len(eb)) or 1e-12
        assert abs(ea.mean() - eb.mean()) <= Z * se

    assert stats.ks_2samp(ra, rb).pvalue > ALPHA

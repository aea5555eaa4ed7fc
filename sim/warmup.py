"""Compile the engines' Numba kernels ahead of time, through tiny simulations that reach each of them."""

from __future__ import annotations

from sim.model.scenario import scenario_from_dict
from sim.questions.sensitivity import levers
from sim.runner import Request, inflow_thresholds, simulate, simulate_variants

_WARM_UP = {
    "name": "warm-up",
    "horizon_weeks": 2,
    "quota": {"deals": 1},
    "inflow": {"per_week": 20},
    "deal_value": {"dist": "lognormal", "mean": 10, "sd": 5},
    "stages": [
        {
            "name": "a",
            "conversion": {"mean": 0.5, "concentration": 10},
            "duration": {"dist": "gamma", "mean": 2, "sd": 1},
        },
        {"name": "b", "conversion": 0.5, "duration": {"dist": "lognormal", "mean": 2, "sd": 1}, "open": 2},
        {"name": "c", "conversion": 0.5, "duration": {"dist": "triangular", "low": 1, "mode": 2, "high": 4}},
    ],
}
"""A tiny funnel whose simulations reach every compiled kernel (:func:`compile_kernels`)."""


def compile_kernels() -> None:
    """Compile the engines' Numba kernels now, through tiny simulations that reach each of them.

    Numba compiles a kernel the first time it runs on a machine (seconds each) and
    caches the machine code next to its module; ``make setup`` calls this so that no
    question asked of the app or the command line waits for the compiler. The tiny
    funnel is simulated plainly, with its levers, for its inflow thresholds, with
    follow-ups and no-shows, and with limited reps.
    """

    plain = scenario_from_dict(_WARM_UP)
    stages = [dict(stage) for stage in _WARM_UP["stages"]]
    stages[0].update(touches_needed={"dist": "empirical", "values": [1, 2]}, max_touches=1, no_show=0.2)
    behaviour = scenario_from_dict({**_WARM_UP, "stages": stages})
    for stage in stages:
        stage["per_rep"] = 1
    limited = scenario_from_dict({**_WARM_UP, "stages": stages, "capacity": {"reps": 1, "max_wait_days": 3}})
    for scenario in (plain, behaviour, limited):
        simulate_variants([scenario, *(variant for _, variant in levers(scenario, 0.1))], runs=1, engine="vectorized")
        simulate(scenario, runs=1, engine="vectorized")
    inflow_thresholds(Request.of(plain, runs=1), max_per_week=30.0).extended(40.0)

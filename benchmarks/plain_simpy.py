"""The baseline: the funnel as a typical user would first write it in SimPy.

One process per deal, one scalar random draw at a time, a timeout for every stage a
deal passes through (also the one it is lost at), and the environment run up to the
horizon. Same model and same parameters as the engine, so the benchmark compares
like with like; it is deliberately written plainly, not slowly (NumPy's scalar
``Generator`` draws, not scipy's per-call machinery).
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.model.scenario import BetaRate, Scenario


def _lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def plain_replication(scenario: Scenario, rng: np.random.Generator) -> dict:
    """One replication of a lognormal-duration, lognormal-value funnel.

    Records what the engines record: deals entering and converting per stage, and each
    win's day and value (for the won count, revenue and weekly cumulative revenue).
    """
    env = simpy.Environment()
    stages = scenario.stages
    durations = [_lognormal_params(s.duration.mean(), s.duration.std()) for s in stages]
    value = _lognormal_params(scenario.deal_value.mean(), scenario.deal_value.std())
    rates = []
    for stage in stages:
        c = stage.conversion
        if isinstance(c, BetaRate):
            rates.append(rng.beta(c.mean_ * c.concentration, (1 - c.mean_) * c.concentration))
        else:
            rates.append(c)
    entered = [0] * len(stages)
    converted = [0] * len(stages)
    wins = []

    def deal(first):
        for j in range(first, len(stages)):
            entered[j] += 1
            yield env.timeout(rng.lognormal(*durations[j]))
            if rng.random() >= rates[j]:
                return
            converted[j] += 1
        wins.append((env.now, rng.lognormal(*value)))

    def source():
        mean_gap = 7.0 / scenario.inflow.per_week
        while True:
            yield env.timeout(rng.exponential(mean_gap))
            env.process(deal(0))

    for j, stage in enumerate(stages):
        for _ in range(stage.open):
            env.process(deal(j))
    env.process(source())
    env.run(until=scenario.horizon)
    weeks = np.zeros(scenario.n_weeks)
    for day, amount in wins:
        weeks[min(scenario.n_weeks, max(1, math.ceil(day / 7))) - 1] += amount
    return {
        "won": len(wins),
        "revenue": float(sum(v for _, v in wins)),
        "weekly_revenue": np.cumsum(weeks),
        "entered": entered,
        "converted": converted,
    }


def plain_simulate(scenario: Scenario, runs: int, seed: int) -> np.ndarray:
    """Run ``runs`` plain replications; returns revenue per replication."""
    revenue = np.empty(runs)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(runs)):
        revenue[i] = plain_replication(scenario, np.random.default_rng(child))["revenue"]
    return revenue

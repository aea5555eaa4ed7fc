"""The discrete-event engine: the funnel as a SimPy model, one environment per replication.

A :class:`FunnelModel` holds the environment and a recorder. A *source* process
releases new opportunities into the first stage; each deal is a process of its own
that spends a sampled duration in a stage, then converts or is lost. This is the
reference implementation of the model's semantics (see the README); the vectorised
engine must agree with it, and features that make deals interact (such as shared rep
capacity) live only here. This is the only module that imports SimPy.

Speed comes from two things, neither of which changes a result:

* random numbers are drawn in blocks (:class:`DealDraws`), not one scalar at a time;
* no event is scheduled that cannot change what is recorded: a deal that will be
  lost, or that would finish its stage after the horizon, ends its process at once.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import conversion_rates, generators, unit_rate_cap

DRAW_BLOCK = 64
"""Deals whose random attributes are drawn in one go."""


class DealDraws:
    """The random attributes of deal 0, 1, 2, ... of one replication, drawn in blocks.

    Deal *k* always receives the same draws (the *k*-th row of the stream), however
    many deals come before or after it: that is what keeps common random numbers
    aligned between compared scenarios.
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self._durations = [stage.duration for stage in scenario.stages]
        self._value = scenario.deal_value
        self._rng = rng
        self._next = DRAW_BLOCK

    def _refill(self) -> None:
        rng = self._rng
        self._uniform = rng.random((DRAW_BLOCK, len(self._durations))).tolist()
        self._duration = np.column_stack(
            [d.rvs(DRAW_BLOCK, random_state=rng) for d in self._durations]
        ).tolist()
        self._values = self._value.rvs(DRAW_BLOCK, random_state=rng).tolist()
        self._next = 0

    def next(self) -> tuple[list[float], list[float], float]:
        """Uniforms deciding conversion, durations per stage, and the deal's value."""
        if self._next == DRAW_BLOCK:
            self._refill()
        i = self._next
        self._next += 1
        return self._uniform[i], self._duration[i], self._values[i]


def arrival_times(scenario: Scenario, rng: np.random.Generator):
    """Yield the arrival days of new opportunities over the horizon, in order.

    Poisson arrivals are unit-rate exponential gaps scaled by the rate, drawn in blocks;
    fixed arrivals are evenly spaced, the first one interval after day 0.
    """
    rate = scenario.inflow.per_week / 7.0
    cap = unit_rate_cap(scenario)
    if rate <= 0:
        return
    unit_time = 0.0
    while True:
        if scenario.inflow.process == "fixed":
            gaps = np.ones(DRAW_BLOCK)
        else:
            gaps = rng.standard_exponential(DRAW_BLOCK)
        for gap in gaps.tolist():
            unit_time += gap
            if unit_time > cap:
                return
            yield unit_time / rate


class FunnelModel:
    """One replication of the funnel.

    Parameters
    ----------
    scenario : Scenario
    seed_sequence : numpy.random.SeedSequence
        This replication's own seed; it is split into streams for rates, arrivals and
        deal attributes.
    """

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence):
        rates_rng, arrivals_rng, deals_rng = generators(seed_sequence, 3)
        n_stages = len(scenario.stages)
        self.scenario = scenario
        self.env = simpy.Environment()
        self.horizon = scenario.horizon
        self.rates = conversion_rates(scenario, rates_rng.random((n_stages, 1)))[:, 0].tolist()
        self.draws = DealDraws(scenario, deals_rng)
        self._arrivals = arrival_times(scenario, arrivals_rng)
        # The recorder: plain counters and a list of (day, value) wins.
        self.entered = [0] * n_stages
        self.converted = [0] * n_stages
        self.wins: list[tuple[float, float]] = []

    def source(self):
        """SimPy process: new opportunities arrive and enter the first stage."""
        env = self.env
        for day in self._arrivals:
            yield env.timeout(day - env.now)
            env.process(self.deal(0))

    def deal(self, first_stage: int):
        """SimPy process: one deal moving through the stages from ``first_stage`` to won or lost."""
        env = self.env
        uniforms, durations, value = self.draws.next()
        for j in range(first_stage, len(self.entered)):
            self.entered[j] += 1
            if uniforms[j] >= self.rates[j] or env.now + durations[j] > self.horizon:
                return  # lost, or still in the stage at the horizon: nothing more to record
            yield env.timeout(durations[j])
            self.converted[j] += 1
        self.wins.append((env.now, value))

    def run(self) -> None:
        """Simulate the horizon: open deals start at day 0, then arrivals."""
        for j, stage in enumerate(self.scenario.stages):
            for _ in range(stage.open):
                self.env.process(self.deal(j))
        self.env.process(self.source())
        # Nothing is ever scheduled past the horizon, so the run ends by itself, and
        # a deal won exactly at the horizon still counts.
        self.env.run()


def run_replications(scenario: Scenario, seeds: list[np.random.SeedSequence]) -> Outcomes:
    """Run one SimPy replication per seed and return their outcomes in order.

    Parameters
    ----------
    scenario : Scenario
    seeds : list of numpy.random.SeedSequence
        One per replication (children of the root seed).

    Returns
    -------
    Outcomes
    """
    n, n_stages, n_weeks = len(seeds), len(scenario.stages), scenario.n_weeks
    entered = np.zeros((n, n_stages), dtype=np.int64)
    converted = np.zeros((n, n_stages), dtype=np.int64)
    rates = np.zeros((n, n_stages))
    win_rep, win_day, win_value = [], [], []
    for i, seed in enumerate(seeds):
        model = FunnelModel(scenario, seed)
        model.run()
        entered[i], converted[i], rates[i] = model.entered, model.converted, model.rates
        win_rep.extend([i] * len(model.wins))
        for day, value in model.wins:
            win_day.append(day)
            win_value.append(value)
    win_rep = np.asarray(win_rep, dtype=np.int64)
    win_value = np.asarray(win_value, dtype=float)
    return Outcomes(
        won_deals=np.bincount(win_rep, minlength=n).astype(np.int64),
        revenue=np.bincount(win_rep, weights=win_value, minlength=n),
        weekly_revenue=weekly_cumulative(win_rep, np.asarray(win_day), win_value, n, n_weeks),
        entered=entered,
        converted=converted,
        rates=rates,
    )

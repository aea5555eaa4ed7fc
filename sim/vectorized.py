"""The vectorised engine: the same model as :mod:`sim.engine`, as NumPy array arithmetic.

In the basic scenario format deals never interact, so a block of replications can be
simulated at once. Deals are laid out as a 2-D array, one row per deal number and one
column per replication of the block; arrival times, stage outcomes and cumulative
durations are computed column-wise, the horizon is a mask, and per-replication totals
are sums down the columns.

Randomness: the root seed spawns one child per block of :data:`BLOCK` replications,
so replication *i* does not depend on how many runs are asked for or how many workers
share them. Inside a block every kind of draw (arrival gaps, each stage's conversion
uniforms and durations, deal values, for new and open deals apart) has its own stream,
filled row after row: deal *k* of replication *i* always gets the same numbers, so a
higher inflow only adds deals at the end, and chunking the rows (which bounds memory)
changes nothing.
"""

from __future__ import annotations

import math

import numpy as np

from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import conversion_rates, generators, unit_rate_cap

BLOCK = 256
"""Replications simulated together; one seed child each."""
MAX_CELLS = 1 << 19
"""Deals x replications held in memory at once (rows are processed in chunks)."""


class _DealStreams:
    """Row-by-row draws for one population of deals (new or open) of a block."""

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence, width: int):
        n_stages = len(scenario.stages)
        rngs = generators(seed_sequence, 2 * n_stages + 2)
        self._uniform_rngs = rngs[:n_stages]
        self._duration_rngs = rngs[n_stages : 2 * n_stages]
        self._value_rng = rngs[-2]
        self.gap_rng = rngs[-1]
        self._durations = [stage.duration for stage in scenario.stages]
        self._value = scenario.deal_value
        self._width = width

    def rows(self, n: int):
        """Conversion uniforms and durations per stage, and values, for the next ``n`` rows."""
        shape = (n, self._width)
        uniforms = [rng.random(shape) for rng in self._uniform_rngs]
        durations = [
            dist.rvs(shape, random_state=rng)
            for dist, rng in zip(self._durations, self._duration_rngs, strict=True)
        ]
        values = self._value.rvs(shape, random_state=self._value_rng)
        return uniforms, durations, values


class _Accumulator:
    """Per-replication totals of a block, added to chunk by chunk."""

    def __init__(self, width: int, n_stages: int):
        self.entered = np.zeros((width, n_stages), dtype=np.int64)
        self.converted = np.zeros((width, n_stages), dtype=np.int64)
        self.win_rep: list[np.ndarray] = []
        self.win_day: list[np.ndarray] = []
        self.win_value: list[np.ndarray] = []

    def add_deals(self, start_day, first_stage, live, draws, rates, horizon) -> None:
        """Move a chunk of deals through the funnel and record what happens by the horizon.

        ``start_day`` and ``live`` are (rows, width); ``first_stage`` is per row.
        """
        uniforms, durations, values = draws
        day = start_day
        for j in range(len(uniforms)):
            here = live & (first_stage[:, None] <= j)  # deals in stage j
            waiting = live & ~here  # open deals that start further down
            self.entered[:, j] += here.sum(axis=0)
            day = np.where(here, day + durations[j], day)
            moves_on = here & (uniforms[j] < rates[j]) & (day <= horizon)
            self.converted[:, j] += moves_on.sum(axis=0)
            live = moves_on | waiting
        rows, cols = np.nonzero(live)
        self.win_rep.append(cols)
        self.win_day.append(day[rows, cols])
        self.win_value.append(values[rows, cols])

    def outcomes(self, rates: np.ndarray, n_weeks: int) -> Outcomes:
        width = len(self.entered)
        rep = np.concatenate(self.win_rep)
        value = np.concatenate(self.win_value)
        return Outcomes(
            won_deals=np.bincount(rep, minlength=width).astype(np.int64),
            revenue=np.bincount(rep, weights=value, minlength=width),
            weekly_revenue=weekly_cumulative(rep, np.concatenate(self.win_day), value, width, n_weeks),
            entered=self.entered,
            converted=self.converted,
            rates=rates.T.copy(),
        )


def simulate_block(scenario: Scenario, seed_sequence: np.random.SeedSequence) -> Outcomes:
    """Simulate one block of :data:`BLOCK` replications.

    Parameters
    ----------
    scenario : Scenario
    seed_sequence : numpy.random.SeedSequence
        The block's child of the root seed.

    Returns
    -------
    Outcomes
        ``BLOCK`` replications (the runner keeps as many as it needs).
    """
    width, n_stages, horizon = BLOCK, len(scenario.stages), scenario.horizon
    rates_seed, open_seed, new_seed = seed_sequence.spawn(3)
    rates = conversion_rates(
        scenario, generators(rates_seed, 1)[0].random((n_stages, width))
    )  # (stages, width)
    totals = _Accumulator(width, n_stages)
    max_rows = max(1, MAX_CELLS // width)

    # Deals already in the pipeline at day 0, stage by stage.
    first_stage = np.repeat(np.arange(n_stages), [stage.open for stage in scenario.stages])
    open_streams = _DealStreams(scenario, open_seed, width)
    for lo in range(0, len(first_stage), max_rows):
        stages = first_stage[lo : lo + max_rows]
        shape = (len(stages), width)
        totals.add_deals(
            np.zeros(shape), stages, np.ones(shape, dtype=bool),
            open_streams.rows(len(stages)), rates, horizon,
        )

    # New opportunities: cumulative unit-rate gaps, scaled by the rate, until every
    # replication of the block has passed the horizon.
    cap = unit_rate_cap(scenario)
    if cap > 0:
        rate = scenario.inflow.per_week / 7.0
        new_streams = _DealStreams(scenario, new_seed, width)
        fixed = scenario.inflow.process == "fixed"
        # Enough rows for almost every block at once; more chunks follow if needed.
        rows = min(max_rows, math.ceil(cap + 6 * math.sqrt(cap) + 8))
        unit_time = np.zeros(width)
        while True:
            if fixed:
                gaps = np.ones((rows, width))
            else:
                gaps = new_streams.gap_rng.standard_exponential((rows, width))
            cumulative = unit_time + np.cumsum(gaps, axis=0)
            unit_time = cumulative[-1]
            live = cumulative <= cap
            totals.add_deals(
                cumulative / rate, np.zeros(rows, dtype=np.int64), live,
                new_streams.rows(rows), rates, horizon,
            )
            if unit_time.min() > cap:
                break
            rows = max_rows
    return totals.outcomes(rates, scenario.n_weeks)

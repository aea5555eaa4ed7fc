"""The vectorised engine: the same model as :mod:`sim.engine`, as NumPy array arithmetic.

In the basic scenario format deals never interact, so a block of replications can be
simulated at once. Deals are laid out as a 2-D grid, one row per deal number and one
column per replication of the block. Arrival times are cumulative sums down the
columns, the horizon is a mask, and each stage works on the compressed list of deals
still alive (their grid cell, replication column and current day); per-replication
totals are counts by column.

Randomness (see :mod:`sim.streams`): the root seed spawns one child per block of
:data:`BLOCK` replications, so replication *i* does not depend on how many runs are
asked for or how many workers share them. Inside a block every kind of draw (arrival
gaps, each stage's conversion uniforms, for new and open deals apart, and deal values)
has its own stream, read row after row: deal *k* of replication *i* always gets the
same numbers, so a higher inflow only adds deals at the end, and chunking the rows
(which bounds memory) changes nothing.
"""

from __future__ import annotations

import math

import numpy as np

from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import conversion_rates, generators, unit_rate_cap

BLOCK = 512
"""Replications simulated together; one seed child each (a power of two)."""
MAX_CELLS = 1 << 19
"""Deals x replications held in memory at once (rows are processed in chunks)."""


class _Block:
    """Per-replication totals of one block, added to chunk by chunk of deals."""

    def __init__(self, scenario: Scenario, rates: np.ndarray):
        self.scenario = scenario
        self.rates = rates  # (stages, width)
        width = rates.shape[1]
        self.width = width
        n_stages = len(scenario.stages)
        self.entered = np.zeros((n_stages, width), dtype=np.int64)
        self.converted = np.zeros((n_stages, width), dtype=np.int64)
        self.won = np.zeros(width, dtype=np.int64)
        # Wins of each chunk: replication column, day and rank (none yet).
        self.win_col: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
        self.win_day: list[np.ndarray] = [np.empty(0)]
        self.win_rank: list[np.ndarray] = [np.empty(0, dtype=np.int64)]

    def add_deals(self, stage: int, start_day: np.ndarray, live: np.ndarray, uniforms) -> None:
        """Move a chunk of deals through the funnel and record what happens by the horizon.

        Parameters
        ----------
        stage : int
            Stage the deals enter (0 for new opportunities).
        start_day, live : ndarray, shape (rows, width)
            Day each deal enters, and whether it exists (arrived by the horizon).
        uniforms : list of ndarray, shape (rows, width)
            Each stage's conversion uniforms for these rows.
        """
        width, horizon = self.width, self.scenario.horizon
        column = width - 1  # width is a power of two: cell & column is the replication
        # Entering the first stage is counted on the whole grid; after that the work is
        # on the compressed list of deals still in play (flat grid cells and days).
        # u / rate < 1 means the deal converts; it is then uniform again and sets the
        # time spent in the stage (see sim.streams).
        self.entered[stage] += live.sum(axis=0)
        with np.errstate(divide="ignore"):  # a rate of 0 gives u / 0 = inf: never converts
            q = uniforms[stage] / self.rates[stage]
        cell = np.flatnonzero(live & (q < 1.0))
        day = start_day.ravel()[cell]
        u = q.ravel()[cell]
        last = len(self.scenario.stages) - 1
        for j in range(stage, last + 1):
            day += self.scenario.stages[j].duration.ppf(u)
            in_time = day <= horizon
            cell, day = cell[in_time], day[in_time]
            col = cell & column
            counts = np.bincount(col, minlength=width)
            self.converted[j] += counts
            if j < last:
                # Deals enter the next stage as they leave this one.
                self.entered[j + 1] += counts
                with np.errstate(divide="ignore"):
                    u = uniforms[j + 1].ravel()[cell] / self.rates[j + 1][col]
                moves = u < 1.0
                cell, day, u = cell[moves], day[moves], u[moves]
        # Rank of each win within its replication in deal (row) order, continuing
        # from earlier chunks: the value stream is read that way.
        won = np.zeros(live.shape, dtype=np.int32)
        won.ravel()[cell] = 1
        _cumulate_rows(won)
        rank = won.ravel()[cell] - 1
        self.win_col.append(col)
        self.win_day.append(day)
        self.win_rank.append(rank + self.won[col])
        self.won += counts

    def outcomes(self, values_rng: np.random.Generator) -> Outcomes:
        """The block's per-replication outcomes; draws the deal values."""
        col = np.concatenate(self.win_col)
        values = self.scenario.deal_value.rvs((int(self.won.max(initial=0)), self.width), random_state=values_rng)
        value = values[np.concatenate(self.win_rank), col] if len(col) else np.zeros(0)
        return Outcomes(
            won_deals=self.won,
            revenue=np.bincount(col, weights=value, minlength=self.width),
            weekly_revenue=weekly_cumulative(
                col, np.concatenate(self.win_day), value, self.width, self.scenario.n_weeks
            ),
            entered=self.entered.T.copy(),
            converted=self.converted.T.copy(),
            rates=self.rates.T.copy(),
        )


def _cumulate_rows(grid: np.ndarray) -> np.ndarray:
    """Cumulative sum down the columns, in place.

    Row by row, because ``np.cumsum(grid, axis=0)`` walks a C-ordered grid with a
    stride and is several times slower.
    """
    for row in range(1, len(grid)):
        grid[row] += grid[row - 1]
    return grid


def _uniform_rows(rngs: list[np.random.Generator], rows: int, width: int) -> list[np.ndarray]:
    return [rng.random((rows, width)) for rng in rngs]


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
    width, n_stages = BLOCK, len(scenario.stages)
    rates_seed, open_seed, new_seed, values_seed, gaps_seed = seed_sequence.spawn(5)
    rates = conversion_rates(scenario, generators(rates_seed, 1)[0].random((n_stages, width)))
    block = _Block(scenario, rates)
    max_rows = max(1, MAX_CELLS // width)

    # Deals already in the pipeline at day 0, one row per deal, stage by stage.
    open_rngs = generators(open_seed, n_stages)
    for j, stage in enumerate(scenario.stages):
        for lo in range(0, stage.open, max_rows):
            rows = min(max_rows, stage.open - lo)
            shape = (rows, width)
            block.add_deals(
                j,
                np.zeros(shape),
                np.ones(shape, dtype=bool),
                _uniform_rows(open_rngs, rows, width),
            )

    # New opportunities: cumulative unit-rate gaps, scaled by the rate, until every
    # replication of the block has passed the horizon.
    cap = unit_rate_cap(scenario)
    if cap > 0:
        rate = scenario.inflow.per_week / 7.0
        new_rngs = generators(new_seed, n_stages)
        gaps_rng = generators(gaps_seed, 1)[0]
        fixed = scenario.inflow.process == "fixed"
        # Rows for nearly every block in one chunk (the count is Poisson(cap)); the rare
        # block that needs more gets small top-ups.
        rows = min(max_rows, math.ceil(cap + 4 * math.sqrt(cap) + 4))
        top_up = min(max_rows, math.ceil(math.sqrt(cap) + 4))
        unit_time = np.zeros(width)
        while True:
            if fixed:
                gaps = np.ones((rows, width))
            else:
                gaps = gaps_rng.standard_exponential((rows, width))
            gaps[0] += unit_time
            arrival = _cumulate_rows(gaps)
            unit_time = arrival[-1].copy()
            live = arrival <= cap
            with np.errstate(over="ignore"):  # a vanishing rate sends arrivals to +inf: past the horizon
                arrival /= rate  # unit-rate time -> days
            block.add_deals(0, arrival, live, _uniform_rows(new_rngs, rows, width))
            if unit_time.min() > cap:
                break
            rows = top_up
    return block.outcomes(generators(values_seed, 1)[0])

"""The vectorised engine run from day 0: the weekly inflow from which each new deal is won.

With one seed only arrival days depend on the inflow, so :class:`ThresholdBlock`
simulates each new deal once, from day 0, and finds its threshold inflow; a block
looked at as far as one inflow is extended to a larger one with only the deals beyond.
:class:`BlockWins` turns a block's thresholds (one funnel, or a team's reps together)
into each replication's critical inflow for any quota. Nothing here depends on the quota
until :meth:`BlockWins.critical_inflows` is asked about one.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from sim.engines.draws import at_value_level, draw_grid, unit_rate_cap, values_rng
from sim.engines.streams import BLOCK
from sim.engines.vectorized import Block, add_deals, joined, rank_in_column, start_blocks, with_amounts
from sim.model.scenario import Quota, Scenario


class ThresholdBlock:
    """One block of a funnel, simulated as far as some weekly inflow: each new win's threshold inflow.

    With the same seed only arrival days depend on the inflow ``x``: new deal *k* of a
    replication arrives at unit-rate time ``t_k``, on day ``W^-1(7 t_k / x)`` (``W`` the
    cumulative inflow weight, the identity without seasonality), and its path through
    the funnel, ``D_k`` days in all if it is won at all, does not depend on ``x``. It is
    won by the horizon ``H`` exactly when ``W^-1(7 t_k / x) + D_k <= H``, that is when
    ``x >= 7 t_k / W(H - D_k)``: its own threshold. So every new deal is simulated from
    day 0 (its win day is the length of its path), once: a block looked at as far as
    one inflow is :meth:`extend` -ed to a larger one with only the deals beyond.
    Nothing here depends on the quota (:class:`BlockWins` judges quotas).

    With ``[inflow] dispersion`` replication *i*'s inflow is ``G_i x``, so ``t_k`` is
    read as ``t_k / G_i`` (the stream of new deals divides its times as it draws them)
    and each threshold is the unit-rate one divided by ``G_i``; a block is simulated
    until every replication's divided times pass the horizon at ``max_per_week``, so the
    replications with ``G_i > 1`` get all the deals they win up to it, and :meth:`extend`
    reads the same stream on. With ``deal_value_dispersion`` replication *i*'s values are
    ``H_i`` times the drawn ones (:meth:`values`), so a revenue quota's critical inflow
    counts the values the engines would.

    Parameters
    ----------
    scenario : Scenario
        The funnel (its inflow's ``per_week`` and quota are ignored).
    seed_sequence : numpy.random.SeedSequence
        The block's child of the root seed (as for :func:`simulate_block`).
    """

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence):
        blocks, self._new_deals, self._values_seed = start_blocks([scenario], seed_sequence)
        self._open = blocks[0]  # the open pipeline's wins
        self._new = Block(scenario, self._open.rates)  # new deals' wins, each extension's turned into thresholds
        self._col: list[np.ndarray] = []  # each new win's replication column and threshold, chunk by chunk
        self._threshold: list[np.ndarray] = []
        self.max_per_week = 0.0

    @property
    def scenario(self) -> Scenario:
        return self._open.scenario

    def __deepcopy__(self, memo) -> ThresholdBlock:
        # Only the stream of new deals and the lists of thresholds change as the block is
        # extended: the open pipeline's wins, the arrays and the scenario stay as they are.
        other = copy.copy(self)
        other._new_deals = copy.deepcopy(self._new_deals, memo)
        other._new = Block(self.scenario, self._open.rates)
        other._col, other._threshold = list(self._col), list(self._threshold)
        return other

    def extend(self, max_per_week: float) -> None:
        """Simulate the new deals that arrive by the horizon at ``max_per_week`` and were not yet simulated."""
        if max_per_week <= self.max_per_week:
            return
        self.max_per_week = max_per_week
        scenario = self.scenario
        cap = unit_rate_cap(
            scenario.model_copy(update={"inflow": scenario.inflow.model_copy(update={"per_week": max_per_week})})
        )
        if cap <= 0:  # no new deal arrives at any inflow
            return
        # Whole rows: a deal in them that arrives only at a higher inflow has a threshold
        # above max_per_week (7 t / W(H - D) >= 7 t / W(H) > it), so it changes no answer.
        unit = []
        for arrival, uniforms, effects in self._new_deals.chunks(cap):
            start = np.zeros(arrival.shape)
            won = add_deals([([self._new], start, None)], 0, uniforms, effects=effects, count=False)[id(self._new)]
            unit.append(arrival.ravel().take(won))
        room = scenario.weight_at(scenario.horizon - joined(self._new.win_day, float))
        with np.errstate(divide="ignore", invalid="ignore"):
            self._threshold.append(np.where(room > 0, 7.0 * joined(unit, float) / room, np.inf))
        self._col.append(joined(self._new.win_col, np.int64).astype(np.int16))  # width <= 2**15
        for wins in (self._new.win_col, self._new.win_day, self._new.win_amount):
            wins.clear()

    def open_wins(self) -> tuple[np.ndarray, np.ndarray]:
        """The open pipeline's wins per replication column and their column (one entry per win, in deal order)."""
        col = joined(self._open.win_col, np.int64)
        return np.bincount(col, minlength=BLOCK), col

    def new_wins(self) -> tuple[np.ndarray, np.ndarray]:
        """Each new win's replication column (int16) and threshold inflow."""
        return joined(self._col, np.int16), joined(self._threshold, float)

    def values(self, rows: int) -> np.ndarray:
        """The first ``rows`` rows of the block's value grid: row *k* is the value of a replication's *k*-th win.

        With ``deal_value_dispersion`` each column is its replication's level ``H`` times the drawn values.
        """
        grid = draw_grid(self.scenario.deal_value, (rows, BLOCK), values_rng(self._values_seed))
        return at_value_level(grid, self._open.value_level)

    def open_revenue(self, grid: np.ndarray) -> np.ndarray:
        """The open pipeline's revenue per replication column, its wins taking the first rows of ``grid``."""
        open_wins, col = self.open_wins()
        value = grid.ravel().take(rank_in_column(col, open_wins) * BLOCK + col)
        value = with_amounts(value, self._open.win_col, self._open.win_amount)
        return np.bincount(col, weights=value, minlength=BLOCK)


def _by_column(col: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``values`` laid out one row per replication column, in the order given, padded with ``inf``."""
    order = np.argsort(col, kind="stable")  # a radix sort of the int16 columns
    grid = np.full((BLOCK, int(counts.max(initial=0))), np.inf)
    grid[col.take(order), np.arange(len(col)) - np.repeat(np.cumsum(counts) - counts, counts)] = values.take(order)
    return grid


class BlockWins:
    """What the replications of a block win as the weekly inflow rises: enough for any quota.

    At inflow ``x`` a replication wins its open pipeline's deals and the new deals whose
    thresholds are ``<= x`` (:class:`ThresholdBlock`). Win *k* of a replication (in deal
    order, open deals first) takes value row *k*, so with *n* new wins its revenue is the
    open revenue plus value rows ``open_wins`` to ``open_wins + n - 1``, whichever deals
    those wins are: the win with the *m*-th smallest threshold adds row ``open_wins + m - 1``.
    With several funnels (the reps of a team, each a block of its own with the same
    replications) their wins add up: every threshold of every rep, in order, adds that
    rep's next win.

    Parameters
    ----------
    parts : list of ThresholdBlock
        The funnels whose wins count, simulated as far as the same inflow.
    """

    def __init__(self, parts: list[ThresholdBlock]):
        self._parts = parts
        self.open_wins = np.zeros(BLOCK, dtype=np.int64)
        self._counts, rows = [], []
        for part in parts:
            open_wins, _ = part.open_wins()
            col, threshold = part.new_wins()
            counts = np.bincount(col, minlength=BLOCK)
            self.open_wins = self.open_wins + open_wins
            self._counts.append(counts)
            rows.append(np.sort(_by_column(col, threshold, counts), axis=1))
        self.counts = sum(self._counts)
        # Row c: replication c's thresholds in increasing order (then inf). A team's reps
        # are merged; _order remembers from where, for the values their wins add.
        self._order = None
        self.threshold = rows[0]
        if len(rows) > 1:
            merged = np.concatenate(rows, axis=1)
            self._order = np.argsort(merged, axis=1, kind="stable")
            self.threshold = np.take_along_axis(merged, self._order, axis=1)

    @functools.cached_property
    def _revenue(self) -> tuple[np.ndarray, np.ndarray]:
        """The open revenue per replication, and the value each new win adds, laid out as :attr:`threshold`."""
        open_revenue, gains = np.zeros(BLOCK), []
        for part, counts in zip(self._parts, self._counts, strict=True):
            open_wins, _ = part.open_wins()
            grid = part.values(int((open_wins + counts).max(initial=0)))
            open_revenue = open_revenue + part.open_revenue(grid)
            rank = np.arange(int(counts.max(initial=0)))
            row = np.minimum(open_wins[:, None] + rank[None, :], max(len(grid) - 1, 0))
            gain = grid.T[np.arange(BLOCK)[:, None], row] if len(grid) else np.zeros(row.shape)
            gains.append(np.where(rank[None, :] < counts[:, None], gain, 0.0))
        gain = (
            gains[0] if self._order is None else np.take_along_axis(np.concatenate(gains, axis=1), self._order, axis=1)
        )
        return open_revenue, gain

    def critical_inflows(self, quota: Quota, max_per_week: float) -> np.ndarray:
        """Per replication, the smallest weekly inflow at which it hits the quota.

        A replication hits from the threshold of the last new win it needs; it gets
        ``inf`` if it needs more than it wins at ``max_per_week`` (at most the inflow the
        block was simulated as far as).

        Returns
        -------
        ndarray of float, shape (BLOCK,)
        """
        if quota.unit == "deals":
            needed = np.maximum(0, math.ceil(quota.target - 1e-9) - self.open_wins)
        else:
            open_revenue, gain = self._revenue
            enough = open_revenue[:, None] + np.cumsum(gain, axis=1) >= quota.target  # column n - 1: after n wins
            needed = np.full(BLOCK, np.iinfo(np.int64).max)
            if gain.shape[1]:  # some new deal is won somewhere in the block
                needed = np.where(enough.any(axis=1), enough.argmax(axis=1) + 1, needed)
            needed[open_revenue >= quota.target] = 0
        # Each replication's needed-th smallest threshold.
        critical = np.full(BLOCK, np.inf)
        critical[needed == 0] = 0.0
        pick = np.flatnonzero((needed > 0) & (needed <= self.counts))
        critical[pick] = self.threshold[pick, needed.take(pick) - 1]
        critical[critical > max_per_week] = np.inf  # the deals beyond were not simulated
        return critical

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

Follow-ups, no-shows and stalls (optional stage keys) keep deals independent, so they
are here too: each stage that has them gives each deal two more uniforms (touch and
meeting) from streams of their own under the block's seed child :data:`EFFECTS_CHILD`,
one set per kind of deal (anonymous open, listed, new), and
:func:`sim.streams.stage_effects`, shared with the SimPy engine, decides which
converting deals are kept and how long they stay.

Because the streams are the seed's, scenarios that differ only in rates, durations,
inflow or deal values read the same numbers: :func:`simulate_block_variants` simulates
them in one pass, drawing once and doing once every step on which they agree (a lever
at a later stage shares the way through the earlier ones), each with exactly its own
numbers. And since only arrival days depend on the inflow, :class:`ThresholdBlock`
simulates new deals from day 0 to find the inflow from which each is won, as far as
one inflow and later on to a larger one; :class:`BlockWins` turns that into each
replication's critical inflow for any quota, for one funnel or a team's reps together.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from sim.distributions import Lognormal, tabulated_ppf
from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Quota, Scenario
from sim.streams import (
    ListedDeals,
    arrival_days,
    child,
    conversion_rates,
    generators,
    held_whatever_the_time,
    planned_arrivals,
    stage_effects,
    unit_rate_cap,
)

EFFECTS_CHILD = 6
"""Block seed child of the follow-up and meeting uniforms (0 to 5 are the basic streams)."""
BLOCK = 512
"""Replications simulated together; one seed child each (a power of two)."""
MAX_CELLS = 1 << 15
"""Deals x replications worked on at once (rows are processed in chunks).

Small enough for a chunk's grids to stay in the processor's cache: with a chunk of the
whole inflow at once (1 << 19) the engine was about a third slower, bound by memory.
"""


class _Block:
    """Per-replication totals of one block of one scenario, added to chunk by chunk of deals."""

    def __init__(self, scenario: Scenario, rates: np.ndarray):
        self.scenario = scenario
        self.rates = rates  # (stages, width)
        width = rates.shape[1]
        self.width = width
        n_stages = len(scenario.stages)
        self.entered = np.zeros((n_stages, width), dtype=np.int64)
        self.converted = np.zeros((n_stages, width), dtype=np.int64)
        # Wins of each chunk, in deal order: replication column, day, and the amount of a
        # listed deal (NaN: the win takes a drawn value; None: no listed deals in the
        # chunk). Chunks of open deals come first.
        self.win_col: list[np.ndarray] = []
        self.win_day: list[np.ndarray] = []
        self.win_amount: list[np.ndarray | None] = []
        # Per stage, the first block (of those simulated together, see _share) with the
        # same rates, and with the same time in the stage: blocks that agree share the work.
        self.same_rates = [0] * n_stages
        self.same_stay = [0] * n_stages
        # A stage's rate where every replication has the same (a fixed rate): dividing by
        # it is dividing by each replication's, without looking them up.
        self._one_rate = [float(r[0]) if (r == r[0]).all() else None for r in rates]

    def rate(self, stage: int, col: np.ndarray | None = None) -> float | np.ndarray:
        """The stage's rate for each of the replication columns ``col`` (all columns by default)."""
        if self._one_rate[stage] is not None:
            return self._one_rate[stage]
        return self.rates[stage] if col is None else self.rates[stage].take(col)

    def values(self, values_rng: np.random.Generator, col: np.ndarray, won: np.ndarray) -> np.ndarray:
        """Each win's value, in the order of the chunks' wins (``col``: their columns, ``won``: wins per column).

        The *k*-th win of a replication, in deal order (chunk after chunk, row after
        row), takes row *k* of the value grid, so more wins only add values; a listed
        deal with an amount is worth its amount instead.
        """
        shape = (int(won.max(initial=0)), self.width)
        value = _draw(self.scenario.deal_value, shape, values_rng, at=_rank_in_column(col, won) * self.width + col)
        return _with_amounts(value, self.win_col, self.win_amount)

    def outcomes(self, values_rng: np.random.Generator) -> Outcomes:
        """The block's per-replication outcomes; draws the deal values."""
        col = _joined(self.win_col, np.int64)
        won = np.bincount(col, minlength=self.width)
        value = self.values(values_rng, col, won)
        return Outcomes(
            won_deals=won,
            revenue=np.bincount(col, weights=value, minlength=self.width),
            weekly_revenue=weekly_cumulative(
                col, _joined(self.win_day, float), value, self.width, self.scenario.n_weeks
            ),
            entered=self.entered.T.copy(),
            converted=self.converted.T.copy(),
            rates=self.rates.T.copy(),
        )


def _share(blocks: list[_Block]) -> None:
    """Mark, stage by stage, which blocks convert deals alike and keep them alike long in the stage.

    Blocks of scenarios that differ in one lever agree everywhere else: same rates (the
    same rate uniforms, the same conversion), same time in a stage (everything about the
    stage but its rate: duration, follow-ups, no-shows, stalls).
    """
    for j in range(len(blocks[0].scenario.stages)):
        # The stage with its rate set aside: what its time is worked out from.
        stays = [block.scenario.stages[j].model_copy(update={"conversion": 0.0}) for block in blocks]
        for i, block in enumerate(blocks):
            block.same_rates[j] = next(k for k in range(i + 1) if np.array_equal(blocks[k].rates[j], block.rates[j]))
            block.same_stay[j] = next(k for k in range(i + 1) if stays[k] == stays[i])


def _groups(blocks: list[_Block], key) -> list[list[_Block]]:
    """``blocks`` split by ``key`` (in first-seen order)."""
    groups: dict = {}
    for block in blocks:
        groups.setdefault(key(block), []).append(block)
    return list(groups.values())


def _add_deals(
    blocks: list[_Block],
    stage: int,
    start_day: np.ndarray,
    live: np.ndarray | None,
    uniforms,
    listed: tuple[ListedDeals, np.ndarray] | None = None,
    effects: list | None = None,
    count: bool = True,
) -> list[np.ndarray]:
    """Move a chunk of deals through the funnel of each block and record what happens by the horizon.

    The blocks read the same random numbers (same seed, see :func:`shares_draws`); where
    their scenarios agree the work is done once for all of them, and each block gets
    exactly the numbers it would get alone.

    Parameters
    ----------
    blocks : list of _Block
        One block, or blocks of scenarios that share these deals' draws and start days.
    stage : int
        Stage the deals enter (0 for new opportunities).
    start_day : ndarray, shape (rows, width)
        Day each deal enters.
    live : ndarray of bool, shape (rows, width), or None
        Whether each deal exists (arrived by the horizon); None if all do.
    uniforms : list of ndarray, shape (rows, width), or None
        Each stage's conversion uniforms for these rows (None before ``stage``).
    listed : (ListedDeals, ndarray of int), optional
        For listed open deals (one block only): the scenario's listed deals and which
        one each row is. Their first stage then uses their age (:class:`sim.streams.ListedDeals`).
    effects : list of (ndarray, ndarray) or None, optional
        Per stage, the touch and meeting uniforms of these rows (shape (rows, width)),
        None for stages without follow-ups, no-shows or stalls. A listed deal's own
        stage ignores them: its age-conditioned chance already reflects its history.
    count : bool, optional
        Whether to count the deals entering and leaving each stage. Without the counts
        only the wins matter, and a deal's time in a stage is worked out only if it
        converts at every stage after it too.

    Returns
    -------
    list of ndarray of int
        Per block, the grid cells (row * width + column) of the deals won, in deal order.
    """
    chunk = _Chunk(blocks[0], stage, uniforms, listed, effects, count)
    entered = len(start_day) if live is None else live.sum(axis=0)
    for group in _groups(blocks, lambda block: block.same_rates[stage]):
        # Entering the first stage is counted on the whole grid; after that the work is
        # on the compressed list of deals still in play (flat grid cells and days).
        # u / rate < 1 means the deal converts; it is then uniform again and sets the
        # time spent in the stage (see sim.streams).
        if listed is None:
            rate = group[0].rate(stage)
        else:
            rate = listed[0].conversion(group[0].rates[stage][None, :], listed[1])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a rate of 0 (or 5e-324): never converts
            q = uniforms[stage] / rate
        converts = q < 1.0
        if live is not None:
            converts &= live
        if count:
            for block in group:
                block.entered[stage] += entered
        cell = np.flatnonzero(converts)
        chunk.leave(group, stage, cell, start_day.ravel().take(cell), q.ravel().take(cell))
    return [chunk.won[id(block)] for block in blocks]


class _Chunk:
    """The draws of a chunk of deals, for :func:`_add_deals` to follow them stage after stage."""

    def __init__(self, block: _Block, stage: int, uniforms, listed, effects, count: bool):
        self.stage, self.uniforms, self.listed, self.effects, self.count = stage, uniforms, listed, effects, count
        self.horizon = block.scenario.horizon
        self.width = block.width
        self.last = len(block.scenario.stages) - 1
        self.won: dict[int, np.ndarray] = {}

    def leave(self, blocks: list[_Block], j: int, cell: np.ndarray, day: np.ndarray, u: np.ndarray) -> None:
        """Deals converting out of stage ``j`` (``u``: their uniforms again): their time in it, then the next stage."""
        width = self.width
        column = width - 1  # width is a power of two: cell & column is the replication
        listed_here = j == self.stage and self.listed is not None
        plain = not listed_here and (self.effects is None or self.effects[j] is None)
        if j < self.last and (plain or not (self.count or listed_here)):
            self._pass_on(blocks, j, cell, day, u)
            return
        for group in _groups(blocks, lambda block: block.same_stay[j]):
            scenario = group[0].scenario
            if listed_here:
                deals, row = self.listed
                c, d = cell, day + deals.remaining(scenario, row.take(cell // width), u)
            else:
                c, d, v = cell, day, u
                if not plain:  # deals that fail a follow-up or a meeting need no time in the stage
                    held = held_whatever_the_time(scenario.stages[j], *self._effects_at(j, c))
                    if held is not None:
                        c, d, v = _keep(held, c, d, v)
                # Tabulated quantiles (sim.distributions.tabulated_ppf): about a third the cost
                # of the exact ones for a lognormal, monotone in u, so the same ordering.
                stay = tabulated_ppf(scenario.stages[j].duration, v)
                if not plain:
                    kept, stay = stage_effects(scenario.stages[j], stay, *self._effects_at(j, c))
                    c, d, stay = _keep(kept, c, d, stay)
                d = d + stay
            c, d = _keep(d <= self.horizon, c, d)
            col = c & column
            if self.count:
                counts = np.bincount(col, minlength=width)
                for block in group:
                    block.converted[j] += counts
            if j == self.last:
                amount = None if self.listed is None else self.listed[0].amount.take(self.listed[1].take(c // width))
                for block in group:
                    block.win_col.append(col)
                    block.win_day.append(d)
                    block.win_amount.append(amount)
                    self.won[id(block)] = c
                continue
            # Deals enter the next stage as they leave this one.
            if self.count:
                for block in group:
                    block.entered[j + 1] += counts
            u_next = self.uniforms[j + 1].ravel().take(c)
            for same in _groups(group, lambda block: block.same_rates[j + 1]):
                with np.errstate(divide="ignore", over="ignore"):
                    q = u_next / same[0].rate(j + 1, col)
                self.leave(same, j + 1, *_keep(q < 1.0, c, d, q))

    def _effects_at(self, j: int, cell: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The touch and meeting uniforms of stage ``j`` at these cells (None where the stage reads none)."""
        return tuple(None if grid is None else grid.ravel().take(cell) for grid in self.effects[j])

    def _pass_on(self, blocks: list[_Block], j: int, cell: np.ndarray, day: np.ndarray, u: np.ndarray) -> None:
        """:meth:`leave` for a stage with a next one (counted: with nothing but a duration), next conversion first.

        A deal's time in the stage is worked out only where it matters: if the deal
        converts at the next stage too (then it is the day it gets there), or, for the
        counts, if it might still be in this stage at the horizon (a deal surely out by
        then is counted without it, see :func:`_stay_bound`). Leaving by the horizon,
        follow-ups and meetings (without counts) and converting next are conditions on
        each deal alone, so the same deals go on, on the same days, as when the time
        comes first.
        """
        width = self.width
        col = cell & (width - 1)
        u_next = self.uniforms[j + 1].ravel().take(cell)
        nexts = []  # per rate of the next stage: its blocks, each deal's uniform again, whether it converts
        for same in _groups(blocks, lambda block: block.same_rates[j + 1]):
            with np.errstate(divide="ignore", over="ignore"):
                q = u_next / same[0].rate(j + 1, col)
            nexts.append((same, q, q < 1.0))
        converted = np.bincount(col, minlength=width) if self.count else None
        for group in _groups(blocks, lambda block: block.same_stay[j]):
            here = {id(block) for block in group}
            subs = [([b for b in same if id(b) in here], q, on) for same, q, on in nexts]
            subs = [sub for sub in subs if sub[0]]
            need = subs[0][2] if len(subs) == 1 else np.logical_or.reduce([on for _, _, on in subs])
            stage = group[0].scenario.stages[j]
            duration = stage.duration
            if self.effects is not None and self.effects[j] is not None:  # only without counts (see leave)
                held = held_whatever_the_time(stage, *self._effects_at(j, cell))
                need = need if held is None else need & held
            if self.count:
                q_high, latest = _stay_bound(duration, self.horizon)
                need = need | (u > q_high) | (day > latest)
            index = np.flatnonzero(need)
            stay = tabulated_ppf(duration, u.take(index))
            kept = None
            if self.effects is not None and self.effects[j] is not None:
                kept, stay = stage_effects(stage, stay, *self._effects_at(j, cell.take(index)))
            d = day.take(index) + stay
            inside = d <= self.horizon if kept is None else kept & (d <= self.horizon)
            if self.count:
                counts = converted - np.bincount(col.take(index[~inside]), minlength=width)
                for block in group:
                    block.converted[j] += counts
                    block.entered[j + 1] += counts  # deals enter the next stage as they leave this one
            for same, q, on in subs:
                k = np.flatnonzero(inside & on.take(index))
                self.leave(same, j + 1, cell.take(index.take(k)), d.take(k), q.take(index.take(k)))


STAY_BOUND_QUANTILE = 0.99
"""Deals whose stage uniform is at most this are bounded in the stage by its quantile there (:func:`_stay_bound`)."""


@functools.lru_cache(maxsize=64)
def _stay_bound(duration, horizon: float) -> tuple[float, float]:
    """``(q, d)``: a deal with a uniform at most ``q`` that enters the stage by day ``d`` leaves it by the horizon.

    With ``t`` the quantile at ``q`` of :func:`sim.distributions.tabulated_ppf`, which is
    monotone in the uniform, ``d`` is ``horizon - t`` less a margin far above the rounding
    of the quantile (a few units in the last place) and of the day's sum: such a deal's
    exact time in the stage is not needed to count it.
    """
    top = float(np.asarray(tabulated_ppf(duration, np.array([STAY_BOUND_QUANTILE])))[0])
    return STAY_BOUND_QUANTILE, horizon - top - 1e-9 * (top + horizon)


def _with_amounts(value: np.ndarray, cols: list[np.ndarray], amounts: list[np.ndarray | None]) -> np.ndarray:
    """``value`` (one per win of the chunks) with the amounts of listed deals put in where they have one."""
    if all(amount is None for amount in amounts):
        return value
    amount = _joined([np.full(len(c), np.nan) if a is None else a for c, a in zip(cols, amounts, strict=True)], float)
    return np.where(np.isnan(amount), value, amount)


def _joined(chunks: list[np.ndarray], dtype) -> np.ndarray:
    """The chunks one after the other (an empty array when there are none)."""
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)


def _rank_in_column(col: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each entry's place among the entries of its column, in the order given (0, 1, ...)."""
    # A stable sort by column keeps each column's entries in order; an entry's rank is
    # then its place after the start of its column's run.
    order = np.argsort(col.astype(np.uint16), kind="stable")  # radix sort: width <= 2**16
    rank = np.empty(len(col), dtype=np.int64)
    rank[order] = np.arange(len(col)) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank


def _keep(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The entries of ``arrays`` where ``mask`` holds.

    Through the indices rather than ``array[mask]``: boolean indexing with an
    irregular mask is several times slower than ``flatnonzero`` and ``take``.
    """
    index = np.flatnonzero(mask)
    return tuple(array.take(index) for array in arrays)


def _draw(distribution, shape: tuple[int, int], rng: np.random.Generator, at: np.ndarray | None = None) -> np.ndarray:
    """Random variates of ``distribution`` on a grid; a lognormal skips scipy's per-call machinery.

    The closed form is ``exp(mu + sigma * Z)``. With ``at`` (flat grid positions) only
    the variates there are returned, in that order: the grid's stream is read all the
    same, but a lognormal exponentiates only those.
    """
    if isinstance(distribution, Lognormal):
        mu, sigma = distribution._log_params()  # the one place the parameters are worked out
        x = rng.standard_normal(shape)
        if at is not None:
            x = x.ravel().take(at)
        x *= sigma
        x += mu
        return np.exp(x, out=x)
    grid = distribution.rvs(shape, random_state=rng)
    return grid if at is None else grid.ravel().take(at)


def _cumulate_rows(grid: np.ndarray) -> np.ndarray:
    """Cumulative sum down the columns, in place.

    Row by row, because ``np.cumsum(grid, axis=0)`` walks a C-ordered grid with a
    stride and is several times slower.
    """
    for row in range(1, len(grid)):
        grid[row] += grid[row - 1]
    return grid


def _generators(seed_sequence: np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    # SFC64: its draws are about a quarter cheaper than PCG64's, and drawing random
    # numbers is a good part of this engine's time. It is a sound generator for
    # independent streams seeded by a SeedSequence (NumPy's bit generator guide).
    return generators(seed_sequence, n, np.random.SFC64)


def _values_rng(values_seed: np.random.SeedSequence) -> np.random.Generator:
    """A fresh generator of a block's deal values: ``_generators(values_seed, 1)[0]``, however often asked for.

    Built from the child's spawn key (:func:`sim.streams.child`) rather than by
    ``spawn``, which counts: every scenario of a block, and every quota judged, starts
    the value stream from its beginning.
    """
    return np.random.Generator(np.random.SFC64(child(values_seed, 0)))


def _exponential_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """Standard exponential draws, by inverse transform: ``-log(1 - U)``.

    In place on one uniform grid: cheaper here than NumPy's ziggurat.
    """
    gaps = rng.random((rows, width))
    np.subtract(1.0, gaps, out=gaps)  # in (0, 1]
    np.log(gaps, out=gaps)
    return np.negative(gaps, out=gaps)


def _effect_rows(
    scenario: Scenario, rngs: list[np.random.Generator] | None, first: int, rows: int, width: int
) -> list | None:
    """Touch and meeting uniforms of ``rows`` deals entering stage ``first``, for stages with behaviour keys.

    ``rngs`` holds two streams per stage (touch, meeting); streams of other stages are not
    read, nor a stage's touch stream without follow-ups or its meeting stream without
    no-shows (:func:`sim.streams.stage_effects` reads neither, so it gets None): each
    stream is a generator of its own, so the numbers of the others stay the same.
    """
    if rngs is None:
        return None

    def draw(rng: np.random.Generator, used: bool) -> np.ndarray | None:
        return rng.random((rows, width)) if used else None

    return [
        (draw(rngs[2 * j], stage.touches_needed is not None), draw(rngs[2 * j + 1], stage.no_show is not None))
        if j >= first and stage.has_behaviour
        else None
        for j, stage in enumerate(scenario.stages)
    ]


def _uniform_rows(rngs: list[np.random.Generator], first: int, rows: int, width: int) -> list[np.ndarray | None]:
    """Conversion uniforms of ``rows`` deals entering stage ``first``: one grid per stage.

    Stages before ``first`` are never visited, so their streams are not read.
    """
    return [rng.random((rows, width)) if j >= first else None for j, rng in enumerate(rngs)]


def _rows(grids: list | None, rows: int) -> list | None:
    """The first ``rows`` rows of each grid (or pair of grids) of a list; None stays None."""

    def head(grid):
        if grid is None or isinstance(grid, np.ndarray):
            return None if grid is None else grid[:rows]
        return tuple(head(g) for g in grid)

    return None if grids is None else [head(g) for g in grids]


class _NewDeals:
    """A block's new opportunities, row after row: deal *k* of every replication is row *k*.

    Each row's unit-rate arrival time (cumulative gaps down the columns), its conversion
    uniforms and its behaviour uniforms come from streams of their own, read in order, so
    the rows are the same however they are cut into chunks; the stream can be read as
    far as one unit-rate time and later on to a larger one.
    """

    def __init__(self, scenario: Scenario, new_seed, gaps_seed, effects: list[np.random.Generator] | None):
        self.scenario = scenario  # which stages have behaviour uniforms (the same for variants that share draws)
        self.rngs = _generators(new_seed, len(scenario.stages))
        self.gaps = _generators(gaps_seed, 1)[0]
        self.effects = effects
        self.fixed = scenario.inflow.process == "fixed"
        self.drawn = 0  # rows of gaps drawn
        self.unit_time = np.zeros(BLOCK)  # arrival time of the last row drawn
        self.ahead = np.zeros((0, BLOCK))  # arrival times of rows drawn but not handed out yet

    def __deepcopy__(self, memo) -> _NewDeals:
        # The streams' states are all that changes as the stream is read (arrays are
        # replaced, never written to); the scenario is frozen. Far cheaper than a deep copy.
        other = copy.copy(self)
        other.rngs, other.gaps = copy.deepcopy(self.rngs, memo), copy.deepcopy(self.gaps, memo)
        other.effects = copy.deepcopy(self.effects, memo)
        return other

    def chunks(self, cap: float):
        """Chunks of rows up to the last row in which some replication arrives by ``cap`` (unit-rate time).

        Yields the rows' arrival times, conversion uniforms (every stage) and behaviour
        uniforms, each of shape (rows, BLOCK). Arrival times grow down each column, so the
        rows with an arrival by ``cap`` in some replication come first; the rows drawn
        after them wait for a later call, and their deals' uniforms are not drawn yet.
        """
        width = BLOCK
        max_rows = max(1, MAX_CELLS // width)
        # Rows for nearly every block, in chunks; the rare block that needs more gets small top-ups.
        planned = planned_arrivals(cap)
        top_up = min(max_rows, math.ceil(math.sqrt(cap) + 4))
        while True:
            if not len(self.ahead):
                rows = min(max_rows, max(top_up, planned - self.drawn))
                gaps = np.ones((rows, width)) if self.fixed else _exponential_rows(self.gaps, rows, width)
                gaps[0] += self.unit_time
                self.ahead = _cumulate_rows(gaps)
                self.unit_time = self.ahead[-1].copy()
                self.drawn += rows
            arrival = self.ahead
            last = arrival[-1].min() > cap
            arriving = int(np.searchsorted(arrival.min(axis=1), cap, side="right")) if last else len(arrival)
            chunk, self.ahead = arrival[:arriving], arrival[arriving:]
            if arriving:
                effects = _effect_rows(self.scenario, self.effects, 0, arriving, width)
                yield chunk, _uniform_rows(self.rngs, 0, arriving, width), effects
            if last:
                return


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
    return simulate_block_variants([scenario], seed_sequence)[0]


def shares_draws(a: Scenario, b: Scenario) -> bool:
    """Whether the engine reads the same random numbers for both scenarios with one seed.

    It does when they differ only in rates, durations, the inflow's rate and
    seasonality, deal values or the quota: the same stages (by name, with the same open
    deals and the same kinds of behaviour), the same listed deals, the same horizon and
    the same kind of arrivals. :func:`simulate_block_variants` then simulates them in one pass.
    """
    return (
        a.horizon == b.horizon
        and a.inflow.process == b.inflow.process
        and a.open_deals == b.open_deals
        and len(a.stages) == len(b.stages)
        and all(
            (x.name, x.open, x.has_behaviour) == (y.name, y.open, y.has_behaviour)
            for x, y in zip(a.stages, b.stages, strict=True)
        )
    )


def simulate_block_variants(scenarios: list[Scenario], seed_sequence: np.random.SeedSequence) -> list[Outcomes]:
    """One block of each scenario with the same seed, in one pass: each exactly as :func:`simulate_block` makes it.

    The scenarios must share their draws (:func:`shares_draws`). The random numbers are
    drawn once (as far as the scenario with the most arrivals needs them), and so is
    every step on which the scenarios agree: with one lever changed at a later stage,
    the deals' way through the stages before it is worked out once for all.

    Parameters
    ----------
    scenarios : list of Scenario
    seed_sequence : numpy.random.SeedSequence
        The block's child of the root seed.

    Returns
    -------
    list of Outcomes
        Per scenario, ``BLOCK`` replications.
    """
    blocks, new_deals, values_seed = _start_blocks(scenarios, seed_sequence)
    # New opportunities: cumulative unit-rate gaps, turned into days by each inflow,
    # until every replication of the block has passed the horizon.
    inflows = _groups(blocks, lambda block: block.scenario.inflow)
    caps = [unit_rate_cap(group[0].scenario) for group in inflows]
    if max(caps) > 0:
        for arrival, uniforms, effects in new_deals.chunks(max(caps)):
            for group, cap in zip(inflows, caps, strict=True):
                if cap <= 0:
                    continue
                rows = len(arrival)
                if arrival[-1].min() > cap:  # fewer rows for a smaller inflow
                    rows = int(np.searchsorted(arrival.min(axis=1), cap, side="right"))
                    if not rows:
                        continue
                here = arrival[:rows]
                live = here <= cap if here[-1].max() > cap else None  # None: every deal arrives by the horizon
                start = arrival_days(group[0].scenario, here.copy())
                _add_deals(group, 0, start, live, _rows(uniforms, rows), effects=_rows(effects, rows))
    return [block.outcomes(_values_rng(values_seed)) for block in blocks]


def _start_blocks(
    scenarios: list[Scenario], seed_sequence: np.random.SeedSequence
) -> tuple[list[_Block], _NewDeals, np.random.SeedSequence]:
    """A block per scenario with its open pipeline moved through; the block's new deals still to come.

    Returns the blocks, the stream of new opportunities and the seed of the deal values.
    """
    scenario = scenarios[0]
    width, n_stages = BLOCK, len(scenario.stages)
    rates_seed, open_seed, new_seed, values_seed, gaps_seed, listed_seed = seed_sequence.spawn(6)
    rate_uniforms = _generators(rates_seed, 1)[0].random((n_stages, width))
    blocks = [_Block(s, conversion_rates(s, rate_uniforms)) for s in scenarios]
    _share(blocks)
    max_rows = max(1, MAX_CELLS // width)
    # Touch and meeting streams, two per stage for each kind of deal, only when some stage
    # needs them: a fixed child after the basic ones, whose numbers are then unchanged.
    open_fx = listed_fx = new_fx = None
    if any(stage.has_behaviour for stage in scenario.stages):
        open_fx, listed_fx, new_fx = (
            _generators(kind, 2 * n_stages) for kind in child(seed_sequence, EFFECTS_CHILD).spawn(3)
        )

    # Deals already in the pipeline at day 0, one row per deal, stage by stage.
    open_rngs = _generators(open_seed, n_stages)
    for j, stage in enumerate(scenario.stages):
        for lo in range(0, stage.open, max_rows):
            rows = min(max_rows, stage.open - lo)
            _add_deals(
                blocks,
                j,
                np.zeros((rows, width)),
                None,
                _uniform_rows(open_rngs, j, rows, width),
                effects=_effect_rows(scenario, open_fx, j, rows, width),
            )

    # Listed open deals, stage by stage, each with its own age (and amount), which the
    # durations of its stage turn into its chances: one block at a time.
    listed = [ListedDeals.of(block.scenario) for block in blocks]
    if len(listed[0]):
        listed_rngs = _generators(listed_seed, n_stages)
        grids = [rng.random((len(listed[0]), width)) for rng in listed_rngs]  # row k: listed deal k
        effect_grids = _effect_rows(scenario, listed_fx, 0, len(listed[0]), width)
        for j in range(n_stages):
            in_stage = np.flatnonzero(listed[0].stage == j)
            for lo in range(0, len(in_stage), max_rows):
                rows = in_stage[lo : lo + max_rows]
                uniforms = [grid.take(rows, axis=0) for grid in grids]
                effects = None
                if effect_grids is not None:
                    effects = [
                        None if g is None else tuple(None if x is None else x.take(rows, axis=0) for x in g)
                        for g in effect_grids
                    ]
                for block, deals in zip(blocks, listed, strict=True):
                    start = np.zeros((len(rows), width))
                    _add_deals([block], j, start, None, uniforms, listed=(deals, rows), effects=effects)
    return blocks, _NewDeals(scenario, new_seed, gaps_seed, new_fx), values_seed


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

    Parameters
    ----------
    scenario : Scenario
        The funnel (its inflow's ``per_week`` and quota are ignored).
    seed_sequence : numpy.random.SeedSequence
        The block's child of the root seed (as for :func:`simulate_block`).
    """

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence):
        blocks, self._new_deals, self._values_seed = _start_blocks([scenario], seed_sequence)
        self._open = blocks[0]  # the open pipeline's wins
        self._new = _Block(scenario, self._open.rates)  # new deals' wins, each extension's turned into thresholds
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
        other._new = _Block(self.scenario, self._open.rates)
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
            won = _add_deals([self._new], 0, start, None, uniforms, effects=effects, count=False)[0]
            unit.append(arrival.ravel().take(won))
        room = scenario.weight_at(scenario.horizon - _joined(self._new.win_day, float))
        with np.errstate(divide="ignore", invalid="ignore"):
            self._threshold.append(np.where(room > 0, 7.0 * _joined(unit, float) / room, np.inf))
        self._col.append(_joined(self._new.win_col, np.int64).astype(np.int16))  # width <= 2**15
        for wins in (self._new.win_col, self._new.win_day, self._new.win_amount):
            wins.clear()

    def open_wins(self) -> tuple[np.ndarray, np.ndarray]:
        """The open pipeline's wins per replication column and their column (one entry per win, in deal order)."""
        col = _joined(self._open.win_col, np.int64)
        return np.bincount(col, minlength=BLOCK), col

    def new_wins(self) -> tuple[np.ndarray, np.ndarray]:
        """Each new win's replication column (int16) and threshold inflow."""
        return _joined(self._col, np.int16), _joined(self._threshold, float)

    def values(self, rows: int) -> np.ndarray:
        """The first ``rows`` rows of the block's value grid: row *k* is the value of a replication's *k*-th win."""
        return _draw(self.scenario.deal_value, (rows, BLOCK), _values_rng(self._values_seed))

    def open_revenue(self, grid: np.ndarray) -> np.ndarray:
        """The open pipeline's revenue per replication column, its wins taking the first rows of ``grid``."""
        open_wins, col = self.open_wins()
        value = grid.ravel().take(_rank_in_column(col, open_wins) * BLOCK + col)
        value = _with_amounts(value, self._open.win_col, self._open.win_amount)
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


def supports(scenario: Scenario) -> bool:
    """Whether this engine can run the scenario (the runner's ``auto`` asks).

    Every feature of the scenario format keeps deals independent, so: always, for now.
    """
    return True

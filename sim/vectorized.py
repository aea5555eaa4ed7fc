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
"""

from __future__ import annotations

import math

import numpy as np

from sim.distributions import Lognormal, tabulated_ppf
from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import (
    ListedDeals,
    arrival_days,
    child,
    conversion_rates,
    generators,
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
    """Per-replication totals of one block, added to chunk by chunk of deals."""

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

    def add_deals(
        self,
        stage: int,
        start_day: np.ndarray,
        live: np.ndarray | None,
        uniforms,
        listed: tuple[ListedDeals, np.ndarray] | None = None,
        effects: list | None = None,
    ) -> np.ndarray:
        """Move a chunk of deals through the funnel and record what happens by the horizon.

        Parameters
        ----------
        stage : int
            Stage the deals enter (0 for new opportunities).
        start_day : ndarray, shape (rows, width)
            Day each deal enters.
        live : ndarray of bool, shape (rows, width), or None
            Whether each deal exists (arrived by the horizon); None if all do.
        uniforms : list of ndarray, shape (rows, width), or None
            Each stage's conversion uniforms for these rows (None before ``stage``).
        listed : (ListedDeals, ndarray of int), optional
            For listed open deals: the scenario's listed deals and which one each row is.
            Their first stage then uses their age (:class:`sim.streams.ListedDeals`).
        effects : list of (ndarray, ndarray) or None, optional
            Per stage, the touch and meeting uniforms of these rows (shape (rows, width)),
            None for stages without follow-ups, no-shows or stalls. A listed deal's own
            stage ignores them: its age-conditioned chance already reflects its history.

        Returns
        -------
        ndarray of int
            Grid cells (row * width + column) of the deals won, in deal order.
        """
        width, horizon = self.width, self.scenario.horizon
        column = width - 1  # width is a power of two: cell & column is the replication
        # Entering the first stage is counted on the whole grid; after that the work is
        # on the compressed list of deals still in play (flat grid cells and days).
        # u / rate < 1 means the deal converts; it is then uniform again and sets the
        # time spent in the stage (see sim.streams).
        rate = self.rates[stage] if listed is None else listed[0].conversion(self.rates[stage][None, :], listed[1])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a rate of 0 (or 5e-324): never converts
            q = uniforms[stage] / rate
        converts = q < 1.0
        if live is None:
            self.entered[stage] += len(q)
        else:
            self.entered[stage] += live.sum(axis=0)
            converts &= live
        cell = np.flatnonzero(converts)
        day = start_day.ravel().take(cell)
        u = q.ravel().take(cell)
        last = len(self.scenario.stages) - 1
        for j in range(stage, last + 1):
            if j == stage and listed is not None:
                deals, row = listed
                day += deals.remaining(self.scenario, row.take(cell // width), u)
            else:
                # Tabulated quantiles (sim.distributions.tabulated_ppf): about a third the cost
                # of the exact ones for a lognormal, monotone in u, so the same ordering.
                stay = tabulated_ppf(self.scenario.stages[j].duration, u)
                if effects is not None and effects[j] is not None:
                    u_touch, u_meeting = (grid.ravel().take(cell) for grid in effects[j])
                    kept, stay = stage_effects(self.scenario.stages[j], stay, u_touch, u_meeting)
                    cell, day, stay = _keep(kept, cell, day, stay)
                day += stay
            cell, day = _keep(day <= horizon, cell, day)
            col = cell & column
            counts = np.bincount(col, minlength=width)
            self.converted[j] += counts
            if j < last:
                # Deals enter the next stage as they leave this one.
                self.entered[j + 1] += counts
                with np.errstate(divide="ignore", over="ignore"):
                    u = uniforms[j + 1].ravel().take(cell) / self.rates[j + 1].take(col)
                cell, day, u = _keep(u < 1.0, cell, day, u)
        self.win_col.append(col)
        self.win_day.append(day)
        self.win_amount.append(None if listed is None else listed[0].amount.take(listed[1].take(cell // width)))
        return cell

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

    ``rngs`` holds two streams per stage (touch, meeting); streams of other stages are not read.
    """
    if rngs is None:
        return None
    return [
        (rngs[2 * j].random((rows, width)), rngs[2 * j + 1].random((rows, width)))
        if j >= first and stage.has_behaviour
        else None
        for j, stage in enumerate(scenario.stages)
    ]


def _uniform_rows(rngs: list[np.random.Generator], first: int, rows: int, width: int) -> list[np.ndarray | None]:
    """Conversion uniforms of ``rows`` deals entering stage ``first``: one grid per stage.

    Stages before ``first`` are never visited, so their streams are not read.
    """
    return [rng.random((rows, width)) if j >= first else None for j, rng in enumerate(rngs)]


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
    block, values_seed, _ = _run_block(scenario, seed_sequence)
    return block.outcomes(_generators(values_seed, 1)[0])


def _run_block(
    scenario: Scenario, seed_sequence: np.random.SeedSequence, new_at_day_zero: bool = False
) -> tuple[_Block, np.random.SeedSequence, list[np.ndarray]]:
    """Move every deal of a block through the funnel.

    Returns the block, the seed of its deal values, and, for each chunk of new deals,
    the unit-rate arrival time of each won deal. With ``new_at_day_zero`` new deals
    start their path at day 0 rather than on arrival: their win day is then the length
    of their path, which :func:`critical_inflow_block` needs.
    """
    width, n_stages = BLOCK, len(scenario.stages)
    rates_seed, open_seed, new_seed, values_seed, gaps_seed, listed_seed = seed_sequence.spawn(6)
    rates = conversion_rates(scenario, _generators(rates_seed, 1)[0].random((n_stages, width)))
    block = _Block(scenario, rates)
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
            block.add_deals(
                j,
                np.zeros((rows, width)),
                None,
                _uniform_rows(open_rngs, j, rows, width),
                effects=_effect_rows(scenario, open_fx, j, rows, width),
            )

    # Listed open deals, stage by stage, each with its own age (and amount).
    listed = ListedDeals.of(scenario)
    if len(listed):
        listed_rngs = _generators(listed_seed, n_stages)
        grids = [rng.random((len(listed), width)) for rng in listed_rngs]  # row k: listed deal k
        effect_grids = _effect_rows(scenario, listed_fx, 0, len(listed), width)
        for j in range(n_stages):
            in_stage = np.flatnonzero(listed.stage == j)
            for lo in range(0, len(in_stage), max_rows):
                rows = in_stage[lo : lo + max_rows]
                uniforms = [grid.take(rows, axis=0) for grid in grids]
                effects = None
                if effect_grids is not None:
                    effects = [None if g is None else tuple(x.take(rows, axis=0) for x in g) for g in effect_grids]
                block.add_deals(j, np.zeros((len(rows), width)), None, uniforms, listed=(listed, rows), effects=effects)

    # New opportunities: cumulative unit-rate gaps, turned into days by the rate, until
    # every replication of the block has passed the horizon.
    win_unit: list[np.ndarray] = []
    cap = unit_rate_cap(scenario)
    if cap > 0:
        new_rngs = _generators(new_seed, n_stages)
        gaps_rng = _generators(gaps_seed, 1)[0]
        fixed = scenario.inflow.process == "fixed"
        # Rows for nearly every block, in chunks; the rare block that needs more gets
        # small top-ups.
        planned = planned_arrivals(cap)
        rows = min(max_rows, planned)
        top_up = min(max_rows, math.ceil(math.sqrt(cap) + 4))
        unit_time = np.zeros(width)
        while True:
            if fixed:
                gaps = np.ones((rows, width))
            else:
                gaps = _exponential_rows(gaps_rng, rows, width)
            gaps[0] += unit_time
            arrival = _cumulate_rows(gaps)
            unit_time = arrival[-1].copy()
            last_chunk = unit_time.min() > cap
            arriving, live = rows, None  # None: every deal of the chunk arrives by the horizon
            if last_chunk:
                # Arrival times grow down each column, so the rows with an arrival by the
                # horizon in some replication come first. The rows after them are past it
                # everywhere: their deals' uniforms are not drawn (nothing reads them).
                arriving = int(np.searchsorted(arrival.min(axis=1), cap, side="right"))
                arrival = arrival[:arriving]
            if unit_time.max() > cap:
                live = arrival <= cap
            if arriving:
                uniforms = _uniform_rows(new_rngs, 0, arriving, width)
                effects = _effect_rows(scenario, new_fx, 0, arriving, width)
                if new_at_day_zero:
                    won = block.add_deals(0, np.zeros((arriving, width)), live, uniforms, effects=effects)
                    win_unit.append(arrival.ravel().take(won))
                else:
                    block.add_deals(0, arrival_days(scenario, arrival), live, uniforms, effects=effects)
            if last_chunk:
                break
            planned -= rows
            rows = min(max_rows, max(top_up, planned))
    return block, values_seed, win_unit


def critical_inflow_block(scenario: Scenario, seed_sequence: np.random.SeedSequence, max_per_week: float) -> np.ndarray:
    """Per replication of a block, the smallest weekly inflow at which it hits the quota.

    With the same seed only arrival days depend on the inflow ``x``: new deal *k* of a
    replication arrives at unit-rate time ``t_k``, on day ``W^-1(7 t_k / x)`` (``W`` the
    cumulative inflow weight, the identity without seasonality), and its path through
    the funnel, ``D_k`` days in all if it is won at all, does not depend on ``x``. It is
    won by the horizon ``H`` exactly when ``W^-1(7 t_k / x) + D_k <= H``, that is when
    ``x >= 7 t_k / W(H - D_k)``: its own threshold. The wins at ``x`` are the open
    pipeline's and the new deals' with thresholds <= ``x``; they take deal values in
    deal order, open deals first, so the replication hits from the threshold of the last
    new win it needs.

    Parameters
    ----------
    scenario : Scenario
        Its inflow ``per_week`` is replaced by ``max_per_week``.
    seed_sequence : numpy.random.SeedSequence
        The block's child of the root seed (as for :func:`simulate_block`).
    max_per_week : float
        The largest inflow looked at: deals that arrive only at higher inflows are not
        simulated, so replications that need more get ``inf``.

    Returns
    -------
    ndarray of float, shape (BLOCK,)
    """
    at_max = scenario.model_copy(update={"inflow": scenario.inflow.model_copy(update={"per_week": max_per_week})})
    block, values_seed, win_unit = _run_block(at_max, seed_sequence, new_at_day_zero=True)
    width, quota = block.width, scenario.quota.target
    n_open = len(block.win_col) - len(win_unit)  # chunks of open deals come first
    open_col = _joined(block.win_col[:n_open], np.int64)
    open_wins = np.bincount(open_col, minlength=width)
    new_col = _joined(block.win_col[n_open:], np.int64)
    new_counts = np.bincount(new_col, minlength=width)
    path_days = _joined(block.win_day[n_open:], float)
    room = at_max.weight_at(scenario.horizon - path_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(room > 0, 7.0 * _joined(win_unit, float) / room, np.inf)

    if scenario.quota.unit == "deals":
        needed = np.maximum(0, math.ceil(quota - 1e-9) - open_wins)
    else:
        # Win k of a replication (in deal order, open deals first) takes value row k, so
        # its revenue after n new wins is the open revenue plus value rows open_wins to
        # open_wins + n - 1, whichever deals those wins are.
        rows = int((open_wins + new_counts).max(initial=0))
        grid = _draw(scenario.deal_value, (rows, width), _generators(values_seed, 1)[0])
        open_value = grid.ravel().take(_rank_in_column(open_col, open_wins) * width + open_col)
        open_value = _with_amounts(open_value, block.win_col[:n_open], block.win_amount[:n_open])
        open_revenue = np.bincount(open_col, weights=open_value, minlength=width)
        source = np.arange(rows)[:, None] + open_wins[None, :]
        new_values = np.where(source < rows, grid[np.minimum(source, max(rows - 1, 0)), np.arange(width)], 0.0)
        enough = open_revenue[None, :] + np.cumsum(new_values, axis=0) >= quota  # row n-1: after n new wins
        needed = np.where(enough.any(axis=0), enough.argmax(axis=0) + 1, np.iinfo(np.int64).max)
        needed[open_revenue >= quota] = 0
    # Each replication's needed-th smallest threshold.
    order = np.lexsort((threshold, new_col))
    starts = np.cumsum(new_counts) - new_counts
    critical = np.full(width, np.inf)
    critical[needed == 0] = 0.0
    pick = (needed > 0) & (needed <= new_counts)
    critical[pick] = threshold.take(order)[starts[pick] + needed[pick] - 1]
    critical[critical > max_per_week] = np.inf  # the deals beyond were not simulated
    return critical


def supports(scenario: Scenario) -> bool:
    """Whether this engine can run the scenario (the runner's ``auto`` asks).

    Every feature of the scenario format keeps deals independent, so: always, for now.
    """
    return True

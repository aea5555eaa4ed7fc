"""Shared rep capacity on the vectorised engine: first-in, first-out slots, many replications at once.

With ``[capacity]`` a stage has ``reps * per_rep`` slots, and a deal that finds every
slot taken waits first in, first out (the SimPy engine, :mod:`sim.engines.simpy_engine`, models this
with a ``simpy.Resource``). Served in the order they arrive, a deal's fate depends only
on the deals that reached the stage before it: it takes the slot that frees first, the
moment it frees (at once if one is free), unless that is more than ``max_wait_days``
after it arrived; then it is lost (neglected) and takes no slot. So a stage is worked by
going down its line of deals in arrival order while keeping each slot's next free day
(the Kiefer-Wolfowitz recursion of a multi-server queue), and the funnel stage after
stage: a stage's line is its open deals (day 0, first, as the SimPy engine starts them
first) and then the deals that converted out of the stage before, in the order they
arrive. A stage without ``per_rep`` starts every deal on arrival.

That walk is a loop over deals, which NumPy cannot vectorise, so :func:`_walk_stage`
(one stage of every replication) is compiled by Numba (once per machine: ``cache=True``,
in ``make setup``: :func:`sim.warmup.compile_kernels`); everything random is drawn
before it, with NumPy, by the same rules as the other engines, and a stage's days are
worked out, with NumPy, for the deals in its line (:class:`_StageDays`):

* each deal takes, per stage, a conversion uniform ``u`` (``u < p`` converts, and the
  deal then works the stage ``ppf(u / p)`` days) and two behaviour uniforms for
  follow-ups, no-shows and stalls (:func:`sim.model.funnel.stage_effects`);
* and one more uniform for the days it is worked in the stage where it is lost: the
  quantile of that stage's ``lost_duration`` (its ``duration`` when none is given), at
  most ``stale_after_days`` (the SimPy engine's ``LostDraws``). A lost deal holds its
  slot that long.

The streams are this module's own (one root seed child per block of
:data:`sim.engines.streams.BLOCK` replications, as for :mod:`sim.engines.vectorized`), so the numbers
agree with the SimPy engine's in distribution, not deal for deal; the tests hold the two
to each other within z·SE, and both to Erlang C and B. Listed open deals
(``[[open_deals]]``) are not modelled here: :func:`supports` says so, and the SimPy
engine runs those scenarios.

Scenarios that read the same numbers (a scenario and its sensitivity levers) are
simulated together (:func:`simulate_block_variants`): the numbers are drawn once, and a
stage walked once for all the scenarios that agree on it and on the stages before it.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Executor

import numba
import numpy as np

from sim.engines import vectorized
from sim.engines.draws import (
    arrival_days,
    at_level,
    at_value_level,
    busiest_level,
    cumulate_rows,
    draw_grid,
    exponential_rows,
    gamma_levels,
    planned_arrivals,
    sfc64_generators,
    unit_rate_cap,
    value_levels,
    values_rng,
)
from sim.engines.outcomes import Outcomes, weekly_cumulative
from sim.engines.streams import BLOCK, child
from sim.engines.streams import QueueStream as Stream
from sim.engines.tables import conversion_rates, tabulated_ppf
from sim.model.funnel import stage_effects
from sim.model.scenario import Scenario

MAX_CELLS = 1 << 21
"""Deals x replications simulated side by side at most (:func:`blocks_at_once`): 16 MB a grid."""
MAX_BLOCKS = 8
"""Blocks simulated side by side at most."""


def supports(scenario: Scenario) -> bool:
    """Whether this module can run the scenario: every capacity scenario without listed open deals."""
    return not scenario.open_deals


def blocks_at_once(scenario: Scenario, scenarios: int = 1) -> int:
    """How many blocks :func:`simulate_block_variants` should take at once: as many as memory comfortably allows.

    ``scenarios`` simulated together keep about as many tables of days per stage as
    there are scenarios per stage (a lever changes one stage), so fewer blocks.
    """
    deals = sum(stage.open for stage in scenario.stages) + planned_arrivals(
        unit_rate_cap(scenario) * busiest_level(scenario)
    )
    tables = max(1.0, scenarios / len(scenario.stages))
    return max(1, min(MAX_BLOCKS, int(MAX_CELLS / tables) // (max(deals, 1) * BLOCK)))


def simulate_blocks(scenario: Scenario, seed_sequences: list[np.random.SeedSequence]) -> Outcomes:
    """Simulate blocks of :data:`sim.engines.streams.BLOCK` replications with limited reps.

    Each block draws from its own seed (its child of the root seed), so its replications
    are the same however many blocks are simulated with it.

    Parameters
    ----------
    scenario : Scenario
        A scenario with capacity limits and no listed open deals (:func:`supports`).
    seed_sequences : list of numpy.random.SeedSequence
        The blocks' children of the root seed.

    Returns
    -------
    Outcomes
        ``BLOCK`` replications per block, block after block, with the capacity figures.
    """
    return simulate_block_variants([scenario], seed_sequences)[0]


def shares_draws(a: Scenario, b: Scenario) -> bool:
    """Whether :func:`simulate_block_variants` can simulate the two together: they read the same numbers.

    As for the vectorised engine (:func:`sim.engines.vectorized.shares_draws`: they may differ in
    rates, durations, the inflow and deal values), with the same reps and patience.
    """
    return vectorized.shares_draws(a, b) and a.capacity == b.capacity


class _Draws:
    """The random numbers of some blocks, for every scenario that shares them (:func:`shares_draws`).

    Per block, the seed's children are: rates, deal paths, lost days, follow-ups and
    meetings, arrival gaps, deal values, (read only with ``[inflow] dispersion``) the
    replications' inflow levels and (read only with ``deal_value_dispersion``) their deal
    value levels. Deal *k* of a block has its own uniforms, drawn
    for every row of the block (so that it keeps its numbers whichever deals reach a
    stage), as far as the scenario with the most arrivals needs them. Grids have one
    row per deal (the open deals stage by stage, then the new ones) and one column per
    replication, each block's side by side.
    """

    def __init__(self, scenarios: list[Scenario], seed_sequences: list[np.random.SeedSequence]):
        scenario = scenarios[0]
        n_stages = len(scenario.stages)
        streams = [{kind: child(seed_sequence, kind) for kind in Stream} for seed_sequence in seed_sequences]
        rate_uniforms = np.hstack([sfc64_generators(s[Stream.RATES], 1)[0].random((n_stages, BLOCK)) for s in streams])
        self.rates = [conversion_rates(variant, rate_uniforms) for variant in scenarios]
        self.first_row = np.concatenate([[0], np.cumsum([stage.open for stage in scenario.stages])]).astype(np.int64)
        n_open = int(self.first_row[-1])
        # New deals depend on the inflow only: once per inflow.
        inflows = list(dict.fromkeys(variant.inflow for variant in scenarios))
        levels = [
            gamma_levels(scenario.inflow.dispersion, sfc64_generators(s[Stream.INFLOW], 1)[0].random(BLOCK))
            if scenario.inflow.dispersion > 0
            else None
            for s in streams
        ]
        arrivals = _arrivals(
            [next(v for v in scenarios if v.inflow == inflow) for inflow in inflows],
            [sfc64_generators(s[Stream.GAPS], 1)[0] for s in streams],
            levels,
        )
        deals = [n_open + max(len(days[b]) for days in arrivals) for b in range(len(streams))]
        self.deals = max(deals)
        # Per inflow, the new deals (arrival days, inf past the horizon; replications down)
        # and the most deals one replication can have.
        new_days, most = [], []
        for days in arrivals:
            grid = np.full((BLOCK * len(streams), self.deals - n_open), np.inf)
            for b, block_days in enumerate(days):
                grid[b * BLOCK : (b + 1) * BLOCK, : len(block_days)] = block_days.T
            new_days.append(grid)
            most.append(n_open + max(len(block_days) for block_days in days))
        self.new_days = [new_days[inflows.index(variant.inflow)] for variant in scenarios]
        self.most = [most[inflows.index(variant.inflow)] for variant in scenarios]

        def grids(seed_of, n: int, wanted) -> list[np.ndarray | None]:
            # Uniform grids from n streams (only the wanted ones are read).
            out = [np.full((self.deals, BLOCK * len(streams)), 0.5) if i in wanted else None for i in range(n)]
            for b, (k, s) in enumerate(zip(deals, streams, strict=True)):
                for i, rng in enumerate(sfc64_generators(seed_of(s), n)):
                    if i in wanted:
                        out[i][:k, b * BLOCK : (b + 1) * BLOCK] = rng.random((k, BLOCK))
            return out

        self.conversion = grids(lambda s: s[Stream.PATHS], n_stages, range(n_stages))
        self.lost = grids(lambda s: s[Stream.LOST], 1, [0])[0]  # one per deal: it is lost at most once
        # Two streams per stage (touch, meeting), read only for stages with behaviour keys.
        behaviour = [j for j, stage in enumerate(scenario.stages) if stage.has_behaviour]
        self.effects = grids(
            lambda s: s[Stream.EFFECTS], 2 * n_stages, [i for j in behaviour for i in (2 * j, 2 * j + 1)]
        )
        self.value_seeds = [s[Stream.VALUES] for s in streams]
        self.block_seeds = seed_sequences  # for each variant's deal value levels (_win_values)
        self.width = BLOCK * len(streams)


def simulate_block_variants(
    scenarios: list[Scenario], seed_sequences: list[np.random.SeedSequence], executor: Executor | None = None
) -> list[Outcomes]:
    """The same blocks of several scenarios, each exactly as :func:`simulate_blocks` makes it alone.

    The scenarios share their draws with the first (:func:`shares_draws`; the
    sensitivity levers of a scenario do), so the random numbers are drawn once
    (:class:`_Draws`). A stage's line is walked once for all the scenarios that agree
    on it and on every stage before it (same arrivals, rates, stages and slots): a
    lever at the last stage shares the walk through the others, and one on deal values
    the whole walk. The stages of different scenarios are independent, and run
    on ``executor``'s threads when one is given (the walk is compiled code that runs without
    Python's lock).

    Parameters
    ----------
    scenarios : list of Scenario
    seed_sequences : list of numpy.random.SeedSequence
        The blocks' children of the root seed.
    executor : concurrent.futures.Executor, optional
        Threads for the stages of different scenarios (the runner's); the numbers do not depend on it.

    Returns
    -------
    list of Outcomes
        Per scenario, ``BLOCK`` replications per block, block after block.
    """
    draws = _Draws(scenarios, seed_sequences)
    first_row = draws.first_row
    scenario = scenarios[0]
    horizon = scenario.horizon
    max_wait = scenario.capacity.max_wait_days
    patience = np.inf if max_wait is None else float(max_wait)
    week_ends = np.minimum(7.0 * np.arange(1, scenario.n_weeks + 1), horizon)
    # A stage with a slot for every deal a replication can have never makes one wait: no limit.
    slots = [
        [0 if n is None or n >= most else n for n in s.slots()] for s, most in zip(scenarios, draws.most, strict=True)
    ]

    def first_line(v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # The first stage's line: its open deals (day 0), then the new deals in order (until the horizon).
        new_days = draws.new_days[v]
        width, n_open = len(new_days), int(first_row[1])
        rows = np.hstack([np.arange(n_open), first_row[-1] + np.arange(new_days.shape[1])])
        days = np.hstack([np.zeros((width, n_open)), new_days])
        return np.tile(rows, (width, 1)), days, n_open + (new_days <= horizon).sum(axis=1)

    def walk(j: int, v: int, line: tuple, days_in: _StageDays) -> tuple:
        # Scenario v's days in stage j for the deals in its line, then the line through the stage.
        rows, days, n = line
        days_in.cover(rows, n)
        return _walk_stage(rows, days, n, days_in.converting, days_in.lost, slots[v][j], patience, horizon, week_ends)

    # Per stage, each scenario's key: what its line depends on, the stage included.
    key: list[tuple] = [(s.inflow,) for s in scenarios]
    lines: dict = {}  # the lines the last stage passed on, by key
    stage_figures: list[list[tuple]] = [[] for _ in scenarios]
    mapped = map if executor is None else executor.map
    for j in range(len(scenario.stages)):
        # What a deal's days in the stage depend on: its rates and the stage (one table each).
        alike = [(draws.rates[v][j].tobytes(), s.stages[j]) for v, s in enumerate(scenarios)]
        parent, key = key, [(*k, *alike[v], slots[v][j]) for v, k in enumerate(key)]
        firsts: dict = {}  # each line to walk: the first scenario with it, and its line before the stage
        tables: dict = {}
        for v, k in enumerate(key):
            if k not in firsts:
                firsts[k] = (v, parent[v])
                if alike[v] not in tables:
                    tables[alike[v]] = _StageDays(scenarios[v].stages[j], draws.rates[v][j], draws, j)

        def step(item, j=j, lines=lines, tables=tables, alike=alike):
            v, from_key = item
            line = first_line(v) if j == 0 else _next_line(first_row, j, *lines[from_key])
            return walk(j, v, line, tables[alike[v]])

        walked = dict(zip(firsts, mapped(step, firsts.values()), strict=True))
        for v, k in enumerate(key):
            stage_figures[v].append(walked[k])
        lines = {k: figures[-1] for k, figures in walked.items()}
    return [_outcomes(s, stage_figures[v], draws.rates[v], draws) for v, s in enumerate(scenarios)]


def _outcomes(scenario: Scenario, stages: list[tuple], rates: np.ndarray, draws: _Draws) -> Outcomes:
    """A scenario's outcomes from its walk stage by stage (:func:`_walk_stage`); draws the deal values."""

    def by_stage(at: int, part: int) -> np.ndarray:
        return np.stack([figures[at][part] for figures in stages], axis=1)

    _, passed_days, wins = stages[-1][-1]
    entered, converted, served, queued, neglected = (by_stage(0, i) for i in range(5))
    width = len(wins)
    win_col = np.repeat(np.arange(width), wins)
    win_day = passed_days[np.arange(passed_days.shape[1]) < wins[:, None]]  # column by column, in line order
    value = _win_values(scenario, draws, win_col, wins)
    busy_by_week = by_stage(2, 1)
    return Outcomes(
        won_deals=wins,
        revenue=np.bincount(win_col, weights=value, minlength=width),
        weekly_revenue=weekly_cumulative(win_col, win_day, value, width, scenario.n_weeks),
        entered=entered,
        converted=converted,
        rates=rates.T.copy(),
        served=served,
        queued=queued,
        neglected=neglected,
        wait_days=by_stage(1, 0),
        busy_days=busy_by_week.sum(axis=2),
        mean_queue=by_stage(1, 1),
        queue_by_week=by_stage(2, 0),
        busy_by_week=busy_by_week,
    )


class _StageDays:
    """The days deals work a stage, for the scenarios with the same rates and the same stage there.

    A deal's days in a stage depend only on its uniforms, its replication's rate there
    and the stage, so scenarios that agree on those share them, and they are worked out
    for a deal the first time a line of one of them holds it (:meth:`cover`): the
    scenario's levers at other stages put mostly the same deals in its lines.

    Attributes
    ----------
    converting, lost : ndarray, shape (replications, deals)
        Days each deal works the stage if it converts there (NaN: it is lost there), and
        if it is lost there (only where it is lost and the stage is limited); read only
        for deals covered.
    """

    def __init__(self, stage, rates: np.ndarray, draws: _Draws, j: int):
        self._stage, self._rates, self._draws, self._j = stage, rates, draws, j
        self.converting = np.full((draws.width, draws.deals), np.nan)
        self.lost = np.zeros((draws.width, draws.deals))
        self._done = np.zeros((draws.width, draws.deals), dtype=bool)
        self._lock = threading.Lock()  # the stages of several scenarios are walked in threads

    def cover(self, rows: np.ndarray, n: np.ndarray) -> None:
        """Work out the days of the deals in these lines (``rows``: replications x places, the first ``n``)."""
        with self._lock:
            self._work_out(_not_done(rows, n, self._done))

    def _work_out(self, cells: np.ndarray) -> None:
        # cells: flat in the tables (replication * deals + deal); the draws' grids are deal * width + replication.
        stage, draws, j = self._stage, self._draws, self._j
        col = cells // draws.deals
        grid = (cells - col * draws.deals) * draws.width + col
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a rate of 0: never converts
            q = draws.conversion[j].ravel().take(grid) / self._rates.take(col)
        moves = np.flatnonzero(q < 1.0)
        stay = tabulated_ppf(stage.duration, q.take(moves))
        if stage.has_behaviour:
            touch, meeting = (g.ravel().take(grid.take(moves)) for g in draws.effects[2 * j : 2 * j + 2])
            kept, stay = stage_effects(stage, stay, touch, meeting)
            moves, stay = moves[kept], stay[kept]
        self.converting.ravel()[cells.take(moves)] = stay
        if stage.per_rep is not None:  # a limited stage: a lost deal holds its slot this long
            lost_here = np.ones(len(cells), dtype=bool)
            lost_here[moves] = False
            lost_here = np.flatnonzero(lost_here)
            model = stage.duration if stage.lost_duration is None else stage.lost_duration
            stale = np.inf if stage.stale_after_days is None else stage.stale_after_days
            lost_days = tabulated_ppf(model, draws.lost.ravel().take(grid.take(lost_here)))
            self.lost.ravel()[cells.take(lost_here)] = np.minimum(lost_days, stale)


@numba.njit(cache=True, nogil=True)
def _not_done(rows, n, done):
    """The deals in these lines not marked ``done`` (flat: replication * deals + deal), marked now."""
    width, n_deals = done.shape
    out = np.empty(n.sum(), np.int64)
    k = 0
    for c in range(width):
        for i in range(n[c]):
            r = rows[c, i]
            if not done[c, r]:
                done[c, r] = True
                out[k] = c * n_deals + r
                k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def _next_line(first_row, j, passed_rows, passed_days, passed):
    """Stage ``j``'s line in every replication: its open deals (day 0), then the deals the stage before passed on.

    Those come in the order they arrive (a stable sort by day: ties keep their order).
    Returns the line's deal rows and days (replications x places) and its length.
    """
    width = len(passed)
    n_open = first_row[j + 1] - first_row[j]
    rows = np.empty((width, n_open + passed_rows.shape[1]), np.int64)
    days = np.zeros((width, n_open + passed_rows.shape[1]))
    n = np.empty(width, np.int64)
    for c in range(width):
        for k in range(n_open):
            rows[c, k] = first_row[j] + k
        # Insertion sort: the days passed on are nearly in order already (a deal passes
        # its stage when it is done, not much after the deals ahead of it), so each moves
        # only a few places; faster here than np.argsort. Stable: ties keep their order.
        for i in range(passed[c]):
            day, row = passed_days[c, i], passed_rows[c, i]
            k = n_open + i
            while k > n_open and days[c, k - 1] > day:
                days[c, k], rows[c, k] = days[c, k - 1], rows[c, k - 1]
                k -= 1
            days[c, k], rows[c, k] = day, row
        n[c] = n_open + passed[c]
    return rows, days, n


@numba.njit(cache=True, nogil=True)
def _walk_stage(rows, days, n, converting, lost, slots, patience, horizon, week_ends):
    """Every replication's line through a stage, waiting first in, first out for a slot where slots are limited.

    Parameters
    ----------
    rows, days : ndarray, shape (replications, places)
        The line: each place's deal row and arrival day (the first ``n`` places).
    n : ndarray of int, shape (replications,)
    converting, lost : ndarray, shape (replications, deals)
        Days each deal works the stage if it converts there (NaN: it is lost there),
        and if it is lost there (read only where it is lost and slots are limited).
    slots : int
        Deals the stage works at once; 0 for no limit.
    patience, horizon : float
        ``max_wait_days`` (``inf``: none) and the horizon in days.
    week_ends : ndarray, shape (weeks,)
        Last day of each week (the last one is the horizon).

    Returns
    -------
    counts : tuple of ndarray of int, shape (replications,)
        Entered, converted, served, queued and neglected, by the horizon.
    days : tuple of ndarray, shape (replications,)
        Days waited by the deals that got a slot, and the time-average line.
    by_week : tuple of ndarray, shape (replications, weeks)
        Deals in line at each week's end, and slot-days used during each week.
    passed : tuple of ndarray
        The deals passed on by the horizon, in line order: rows and days (replications x
        places, the first ``passed`` of each) and ``passed`` (their number).
    """
    width, places = rows.shape
    n_weeks = len(week_ends)
    converted = np.zeros(width, np.int64)
    served = np.zeros(width, np.int64)
    queued = np.zeros(width, np.int64)
    neglected = np.zeros(width, np.int64)
    wait_days = np.zeros(width)
    mean_queue = np.zeros(width)
    queue_by_week = np.zeros((width, n_weeks), np.int64)
    busy_by_week = np.zeros((width, n_weeks))
    passed_rows = np.empty((width, places), np.int64)
    passed_days = np.empty((width, places))
    free = np.empty(max(slots, 1))  # each slot's next free day
    limited = slots > 0
    for c in range(width):
        free[:] = 0.0
        passed = 0
        for i in range(n[c]):
            r, arrive = rows[c, i], days[c, i]
            stay_if_won = converting[c, r]
            start = arrive
            if limited:
                stay = lost[c, r] if np.isnan(stay_if_won) else stay_if_won
                k = np.argmin(free)  # the slot that frees first
                start = max(arrive, free[k])
                neglect = start - arrive > patience  # granted the moment patience runs out: still granted
                left_line = arrive + patience if neglect else start
                if left_line > arrive:  # it found every slot taken
                    queued[c] += 1
                    mean_queue[c] += (min(left_line, horizon) - arrive) / horizon
                    w = _week_of(arrive, n_weeks)
                    while w < n_weeks and week_ends[w] < left_line:
                        queue_by_week[c, w] += 1  # in line at the week's end
                        w += 1
                if neglect:  # it leaves the line, taking no slot
                    if left_line <= horizon:
                        neglected[c] += 1
                    continue
                free[k] = start + stay
                if start <= horizon:
                    served[c] += 1
                    wait_days[c] += start - arrive
                    _add_overlap(busy_by_week, c, week_ends, start, min(start + stay, horizon))
            else:
                served[c] += 1
            if np.isnan(stay_if_won) or start + stay_if_won > horizon:
                continue
            passed_rows[c, passed] = r
            passed_days[c, passed] = start + stay_if_won
            passed += 1
        converted[c] = passed
    return (
        (n.copy(), converted, served, queued, neglected),
        (wait_days, mean_queue),
        (queue_by_week, busy_by_week),
        (passed_rows, passed_days, converted.copy()),
    )


@numba.njit(cache=True, nogil=True)
def _week_of(day, n_weeks):
    """The week (0, 1, ...) whose end is the first at or after ``day``: week k ends on day 7(k + 1) or the horizon."""
    return min(max(math.ceil(day / 7.0) - 1, 0), n_weeks - 1)


@numba.njit(cache=True, nogil=True)
def _add_overlap(by_week, c, week_ends, start, end):
    """Add to replication ``c``'s weeks the days of [start, end] (within the horizon) that fall in each."""
    w = _week_of(start, len(week_ends))
    while w < len(week_ends):
        week_start = 7.0 * w
        if week_start >= end:
            break
        by_week[c, w] += min(end, week_ends[w]) - max(start, week_start)
        w += 1


def _arrivals(
    scenarios: list[Scenario], rngs: list[np.random.Generator], levels: list[np.ndarray | None]
) -> list[list[np.ndarray]]:
    """Per scenario and block, the arrival days of the new deals, shape (deals, BLOCK); ``inf`` past the horizon.

    Cumulative unit-rate gaps as in :mod:`sim.engines.vectorized`, until every replication has
    passed the horizon of the scenario with the most arrivals (rows for nearly every
    block first, then small top-ups); each block's stream is read row after row, so a
    scenario with fewer arrivals reads a first part of the same rows. ``levels`` holds
    per block its replications' inflow levels (None without ``[inflow] dispersion``),
    which divide their unit-rate times (:func:`sim.engines.draws.at_level`).
    """
    caps = [unit_rate_cap(scenario) for scenario in scenarios]
    fixed = scenarios[0].inflow.process == "fixed"
    out: list[list[np.ndarray]] = [[] for _ in scenarios]
    for rng, level in zip(rngs, levels, strict=True):
        cap, width = max(caps), BLOCK
        chunks, unit_time, drawn = [np.zeros((0, width))], np.zeros(width), np.zeros(width)
        most = cap if level is None else cap * float(level.max())
        rows, top_up = planned_arrivals(most), math.ceil(math.sqrt(most) + 4)
        while cap > 0 and unit_time.min() <= cap:
            gaps = np.ones((rows, width)) if fixed else exponential_rows(rng, rows, width)
            gaps[0] += drawn
            chunks.append(cumulate_rows(gaps))
            drawn = chunks[-1][-1].copy()  # the stream's own time, before any level
            if level is not None:
                at_level(chunks[-1], level)
            unit_time = chunks[-1][-1].copy()
            rows = top_up
        unit = np.concatenate(chunks)
        for days, scenario, cap in zip(out, scenarios, caps, strict=True):
            mine = unit[: int(np.searchsorted(unit.min(axis=1), cap, side="right"))] if cap > 0 else unit[:0]
            past = mine > cap  # rows past it everywhere are left out above
            block_days = arrival_days(scenario, mine.copy())
            block_days[past] = np.inf
            days.append(block_days)
    return out


def _win_values(scenario: Scenario, draws: _Draws, win_col: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """The value of each win (``win_col``: their columns, sorted).

    Win k of a replication takes row k of its block's value grid (times the
    replication's deal value level with ``deal_value_dispersion``), so the values do not
    depend on the blocks simulated alongside.
    """
    rank = np.arange(len(win_col)) - np.repeat(np.cumsum(wins) - wins, wins)
    value = np.empty(len(win_col))
    bounds = np.searchsorted(win_col, BLOCK * np.arange(len(draws.value_seeds) + 1))
    for b, (seed, block_seed) in enumerate(zip(draws.value_seeds, draws.block_seeds, strict=True)):
        lo, hi = bounds[b], bounds[b + 1]
        rows = int(wins[b * BLOCK : (b + 1) * BLOCK].max(initial=0))
        col = win_col[lo:hi] - b * BLOCK
        block_value = draw_grid(scenario.deal_value, (rows, BLOCK), values_rng(seed), at=rank[lo:hi] * BLOCK + col)
        value[lo:hi] = at_value_level(block_value, value_levels(scenario, block_seed, Stream.VALUE_LEVEL), col)
    return value

"""Shared rep capacity on the vectorised engine: first-in, first-out slots, many replications at once.

With ``[capacity]`` a stage has ``reps * per_rep`` slots, and a deal that finds every
slot taken waits first in, first out (the SimPy engine, :mod:`sim.engine`, models this
with a ``simpy.Resource``). Served in the order they arrive, a deal's fate depends only
on the deals that reached the stage before it: it takes the slot that frees first, the
moment it frees (at once if one is free), unless that is more than ``max_wait_days``
after it arrived; then it is lost (neglected) and takes no slot. So a stage is worked by
going down its line of deals in arrival order while keeping each slot's next free day
(the Kiefer-Wolfowitz recursion of a multi-server queue), and the funnel stage after
stage: a stage's line is its open deals (day 0, first, as the SimPy engine starts them
first) and then the deals that converted out of the stage before, in the order they
arrive. A stage without ``per_rep`` starts every deal on arrival.

That walk is a loop over deals, which NumPy cannot vectorise, so :func:`_walk_funnel`
is compiled by Numba (once per machine: ``cache=True``); everything random is drawn
before it, with NumPy, by the same rules as the other engines:

* each deal takes, per stage, a conversion uniform ``u`` (``u < p`` converts, and the
  deal then works the stage ``ppf(u / p)`` days) and two behaviour uniforms for
  follow-ups, no-shows and stalls (:func:`sim.streams.stage_effects`);
* and one more uniform for the days it is worked in the stage where it is lost: the
  quantile of that stage's ``lost_duration`` (its ``duration`` when none is given), at
  most ``stale_after_days`` (the SimPy engine's ``LostDraws``). A lost deal holds its
  slot that long.

The streams are this module's own (one root seed child per block of
:data:`sim.vectorized.BLOCK` replications, as for :mod:`sim.vectorized`), so the numbers
agree with the SimPy engine's in distribution, not deal for deal; the tests hold the two
to each other within z·SE, and both to Erlang C and B. Listed open deals
(``[[open_deals]]``) are not modelled here: :func:`supports` says so, and the SimPy
engine runs those scenarios.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.distributions import tabulated_ppf
from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import arrival_days, conversion_rates, planned_arrivals, stage_effects, unit_rate_cap
from sim.vectorized import BLOCK, _cumulate_rows, _draw, _exponential_rows, _generators

MAX_CELLS = 1 << 21
"""Deals x replications simulated side by side at most (:func:`blocks_at_once`): 16 MB a grid."""
MAX_BLOCKS = 8
"""Blocks simulated side by side at most."""


def supports(scenario: Scenario) -> bool:
    """Whether this module can run the scenario: every capacity scenario without listed open deals."""
    return not scenario.open_deals


def compile_walk() -> None:
    """Compile :func:`_walk_funnel` now, on tiny inputs of the types a simulation passes.

    Numba compiles it the first time it runs on a machine (several seconds) and caches
    the machine code next to this module; ``make setup`` calls this so that the first
    simulation with limited reps does not wait for the compiler.
    """
    one = np.zeros((1, 1, 1))
    _walk_funnel(np.zeros((1, 0)), np.zeros(2, np.int64), one, one, np.ones(1, np.int64), np.inf, 7.0, np.full(1, 7.0))


def blocks_at_once(scenario: Scenario) -> int:
    """How many blocks :func:`simulate_blocks` should take at once: as many as memory comfortably allows."""
    deals = sum(stage.open for stage in scenario.stages) + planned_arrivals(unit_rate_cap(scenario))
    return max(1, min(MAX_BLOCKS, MAX_CELLS // (max(deals, 1) * BLOCK)))


def simulate_blocks(scenario: Scenario, seed_sequences: list[np.random.SeedSequence]) -> Outcomes:
    """Simulate blocks of :data:`sim.vectorized.BLOCK` replications with limited reps.

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
    n_stages = len(scenario.stages)
    # Per block: rates, deal paths, lost days, follow-ups and meetings, arrival gaps, deal values.
    streams = [seed_sequence.spawn(6) for seed_sequence in seed_sequences]
    rates = np.hstack([conversion_rates(scenario, _generators(s[0], 1)[0].random((n_stages, BLOCK))) for s in streams])
    # Every deal of a block is a row: the open deals stage by stage, then the new ones.
    first_row = np.concatenate([[0], np.cumsum([stage.open for stage in scenario.stages])]).astype(np.int64)
    arrivals = [_arrivals(scenario, _generators(s[4], 1)[0]) for s in streams]
    rows = int(first_row[-1]) + max(len(days) for days in arrivals)
    new_days = np.full((rows - int(first_row[-1]), len(rates[0])), np.inf)
    for b, days in enumerate(arrivals):
        new_days[: len(days), b * BLOCK : (b + 1) * BLOCK] = days
    converting, lost = _stage_days(
        scenario, rates, first_row, new_days, [int(first_row[-1]) + len(d) for d in arrivals], streams
    )

    # A stage with a slot for every deal a replication can have never makes one wait: no limit.
    slots = np.array([0 if n is None or n >= rows else n for n in scenario.slots()], dtype=np.int64)
    max_wait = scenario.capacity.max_wait_days
    week_ends = np.minimum(7.0 * np.arange(1, scenario.n_weeks + 1), scenario.horizon)
    counts, days, by_week, wins, win_day = _walk_funnel(
        np.ascontiguousarray(new_days.T),
        first_row,
        converting,
        lost,
        slots,
        np.inf if max_wait is None else float(max_wait),
        float(scenario.horizon),
        week_ends,
    )
    entered, converted, served, queued, neglected = counts
    wait_days, mean_queue = days
    queue_by_week, busy_by_week = by_week

    width = len(wins)
    win_col = np.repeat(np.arange(width), wins)
    win_day = win_day[np.arange(win_day.shape[1]) < wins[:, None]]  # column by column, in line order
    value = _win_values(scenario, [s[5] for s in streams], win_col, wins)
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
        wait_days=wait_days,
        busy_days=busy_by_week.sum(axis=2),
        mean_queue=mean_queue,
        queue_by_week=queue_by_week,
        busy_by_week=busy_by_week,
    )


@numba.njit(cache=True, nogil=True)
def _walk_funnel(new_days, first_row, converting, lost, slots, patience, horizon, week_ends):
    """Every replication's deals through the stages, waiting first in, first out for a slot where slots are limited.

    Parameters
    ----------
    new_days : ndarray, shape (replications, new deals)
        Arrival days of the new deals, in order; ``inf`` past the horizon.
    first_row : ndarray of int, shape (stages + 1,)
        Open deals of stage ``j`` are rows ``first_row[j]`` to ``first_row[j + 1] - 1``;
        new deal ``i`` is row ``first_row[-1] + i``.
    converting, lost : ndarray, shape (replications, stages, deals)
        Days each deal works each stage if it converts there (NaN: it is lost there),
        and if it is lost there (read only where it is lost in a limited stage).
    slots : ndarray of int, shape (stages,)
        Deals a stage works at once; 0 for no limit.
    patience, horizon : float
        ``max_wait_days`` (``inf``: none) and the horizon in days.
    week_ends : ndarray, shape (weeks,)
        Last day of each week (the last one is the horizon).

    Returns
    -------
    counts : tuple of ndarray of int, shape (replications, stages)
        Entered, converted, served, queued and neglected, by the horizon.
    days : tuple of ndarray, shape (replications, stages)
        Days waited by the deals that got a slot, and the time-average line.
    by_week : tuple of ndarray, shape (replications, stages, weeks)
        Deals in line at each week's end, and slot-days used during each week.
    wins : ndarray of int, shape (replications,)
    win_day : ndarray, shape (replications, deals)
        Win days, in the last stage's line order (the first ``wins`` of each row).
    """
    width, n_stages, n_deals = converting.shape
    n_weeks = len(week_ends)
    entered = np.zeros((width, n_stages), np.int64)
    converted = np.zeros((width, n_stages), np.int64)
    served = np.zeros((width, n_stages), np.int64)
    queued = np.zeros((width, n_stages), np.int64)
    neglected = np.zeros((width, n_stages), np.int64)
    wait_days = np.zeros((width, n_stages))
    mean_queue = np.zeros((width, n_stages))
    queue_by_week = np.zeros((width, n_stages, n_weeks), np.int64)
    busy_by_week = np.zeros((width, n_stages, n_weeks))
    wins = np.zeros(width, np.int64)
    win_day = np.full((width, n_deals), np.nan)
    # A stage's line (deal rows and arrival days) and the deals it passes on, in that order.
    line_row = np.empty(n_deals, np.int64)
    line_day = np.empty(n_deals)
    next_row = np.empty(n_deals, np.int64)
    next_day = np.empty(n_deals)
    free = np.empty(max(slots.max(), 1))
    for c in range(width):
        passed = 0
        for j in range(n_stages):
            # Open deals first (day 0), then the arrivals: new deals in order, or the deals
            # the stage before passed on, sorted by day (stable: ties keep their order).
            n = 0
            for r in range(first_row[j], first_row[j + 1]):
                line_row[n] = r
                line_day[n] = 0.0
                n += 1
            if j == 0:
                for i in range(new_days.shape[1]):
                    if not new_days[c, i] <= horizon:
                        break
                    line_row[n] = first_row[-1] + i
                    line_day[n] = new_days[c, i]
                    n += 1
            else:
                for k in np.argsort(next_day[:passed], kind="mergesort"):
                    line_row[n] = next_row[k]
                    line_day[n] = next_day[k]
                    n += 1
            entered[c, j] = n
            limited = slots[j] > 0
            free[: slots[j]] = 0.0  # each slot's next free day
            passed = 0
            for i in range(n):
                r, arrive = line_row[i], line_day[i]
                days = converting[c, j, r]
                start = arrive
                if limited:
                    stay = lost[c, j, r] if np.isnan(days) else days
                    k = np.argmin(free[: slots[j]])  # the slot that frees first
                    start = max(arrive, free[k])
                    neglect = start - arrive > patience  # granted the moment patience runs out: still granted
                    left_line = arrive + patience if neglect else start
                    if left_line > arrive:  # it found every slot taken
                        queued[c, j] += 1
                        mean_queue[c, j] += (min(left_line, horizon) - arrive) / horizon
                        w = _week_of(arrive, n_weeks)
                        while w < n_weeks and week_ends[w] < left_line:
                            queue_by_week[c, j, w] += 1  # in line at the week's end
                            w += 1
                    if neglect:  # it leaves the line, taking no slot
                        if left_line <= horizon:
                            neglected[c, j] += 1
                        continue
                    free[k] = start + stay
                    if start <= horizon:
                        served[c, j] += 1
                        wait_days[c, j] += start - arrive
                        _add_overlap(busy_by_week[c, j], week_ends, start, min(start + stay, horizon))
                else:
                    served[c, j] += 1
                if np.isnan(days) or start + days > horizon:
                    continue
                next_row[passed] = r
                next_day[passed] = start + days
                passed += 1
            converted[c, j] = passed
        wins[c] = passed
        win_day[c, :passed] = next_day[:passed]
    return (
        (entered, converted, served, queued, neglected),
        (wait_days, mean_queue),
        (queue_by_week, busy_by_week),
        wins,
        win_day,
    )


@numba.njit(cache=True, nogil=True)
def _week_of(day, n_weeks):
    """The week (0, 1, ...) whose end is the first at or after ``day``: week k ends on day 7(k + 1) or the horizon."""
    return min(max(math.ceil(day / 7.0) - 1, 0), n_weeks - 1)


@numba.njit(cache=True, nogil=True)
def _add_overlap(by_week, week_ends, start, end):
    """Add to each week the days of [start, end] (within the horizon) that fall in it."""
    w = _week_of(start, len(week_ends))
    while w < len(week_ends):
        week_start = 7.0 * w
        if week_start >= end:
            break
        by_week[w] += min(end, week_ends[w]) - max(start, week_start)
        w += 1


def _stage_days(
    scenario: Scenario,
    rates: np.ndarray,
    first_row: np.ndarray,
    new_days: np.ndarray,
    deals: list[int],
    streams: list,
) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's days in each stage: working it to a conversion (NaN: lost there), and before being lost.

    Deal *k* of a block has its own uniforms, drawn for every row of the block (so that
    it keeps its numbers whichever deals reach a stage). The quantiles are worked out
    only for the deals that can reach the stage by the horizon: those that convert
    through every stage before it, soon enough if no deal ever waited (waiting only
    delays); the lost days only where such a deal is lost in a limited stage.

    Returns
    -------
    converting, lost : ndarray, shape (replications, stages, deals)
        Each replication's days together, as :func:`_walk_funnel` reads them.
    """
    n_stages, width = len(scenario.stages), rates.shape[1]
    n_deals = max(deals)
    slots = scenario.slots()

    def grids(seed_of, n: int, wanted) -> list[np.ndarray | None]:
        # Uniform grids from n streams (only the wanted ones are read), each block's own side by side.
        out = [np.full((n_deals, width), 0.5) if i in wanted else None for i in range(n)]
        for b, (k, s) in enumerate(zip(deals, streams, strict=True)):
            for i, rng in enumerate(_generators(seed_of(s), n)):
                if i in wanted:
                    out[i][:k, b * BLOCK : (b + 1) * BLOCK] = rng.random((k, BLOCK))
        return out

    conversion = grids(lambda s: s[1], n_stages, range(n_stages))
    lost_u = grids(lambda s: s[2], 1, [0])[0]  # one per deal: it is lost at most once
    # Two streams per stage (touch, meeting), read only for stages with behaviour keys.
    behaviour = [j for j, stage in enumerate(scenario.stages) if stage.has_behaviour]
    effects = grids(lambda s: s[3], 2 * n_stages, [i for j in behaviour for i in (2 * j, 2 * j + 1)])

    converting = np.full((width, n_stages, n_deals), np.nan)
    lost = np.zeros((width, n_stages, n_deals))

    def at(j: int, cell: np.ndarray) -> np.ndarray:
        # Flat positions in those grids of stage j and the deal grids' cells (deal * width + replication).
        return (cell % width) * (n_stages * n_deals) + j * n_deals + cell // width

    going = np.zeros(n_deals * width, dtype=bool)  # flat cells of the deals that can reach the stage
    earliest = np.zeros(n_deals * width)  # the day each would get there, were there no line
    earliest[first_row[-1] * width :] = new_days.ravel()
    for j, stage in enumerate(scenario.stages):
        going[first_row[j] * width : first_row[j + 1] * width] = True  # its open deals
        if j == 0:
            going[first_row[-1] * width :] = new_days.ravel() <= scenario.horizon  # and the new ones
        cell = np.flatnonzero(going)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a rate of 0: never converts
            q = (conversion[j] / rates[j]).ravel().take(cell)
        moves = np.flatnonzero(q < 1.0)
        stay = tabulated_ppf(stage.duration, q.take(moves))
        if stage.has_behaviour:
            touch, meeting = (grid.ravel().take(cell.take(moves)) for grid in (effects[2 * j], effects[2 * j + 1]))
            kept, stay = stage_effects(stage, stay, touch, meeting)
            moves, stay = moves[kept], stay[kept]
        converts = cell.take(moves)
        converting.ravel()[at(j, converts)] = stay
        if slots[j] is not None:
            lost_here = np.ones(len(cell), dtype=bool)
            lost_here[moves] = False
            lost_here = cell[lost_here]
            model = stage.duration if stage.lost_duration is None else stage.lost_duration
            stale = np.inf if stage.stale_after_days is None else stage.stale_after_days
            lost.ravel()[at(j, lost_here)] = np.minimum(tabulated_ppf(model, lost_u.ravel().take(lost_here)), stale)
        going[:] = False
        earliest[converts] += stay
        going[converts[earliest.take(converts) <= scenario.horizon]] = True
    return converting, lost


def _arrivals(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Arrival days of a block's new deals, shape (deals, BLOCK), sorted down each column; ``inf`` past the horizon.

    Cumulative unit-rate gaps as in :mod:`sim.vectorized`, until every replication has
    passed the horizon (rows for nearly every block first, then small top-ups).
    """
    cap, width = unit_rate_cap(scenario), BLOCK
    if cap <= 0:
        return np.zeros((0, width))
    fixed = scenario.inflow.process == "fixed"
    rows, top_up = planned_arrivals(cap), math.ceil(math.sqrt(cap) + 4)
    chunks, unit_time = [], np.zeros(width)
    while unit_time.min() <= cap:
        gaps = np.ones((rows, width)) if fixed else _exponential_rows(rng, rows, width)
        gaps[0] += unit_time
        chunks.append(_cumulate_rows(gaps))
        unit_time = chunks[-1][-1].copy()
        rows = top_up
    unit = np.concatenate(chunks)
    unit = unit[: int(np.searchsorted(unit.min(axis=1), cap, side="right"))]  # rows past it everywhere
    past = unit > cap
    days = arrival_days(scenario, unit)
    days[past] = np.inf
    return days


def _win_values(
    scenario: Scenario, seeds: list[np.random.SeedSequence], win_col: np.ndarray, wins: np.ndarray
) -> np.ndarray:
    """The value of each win (``win_col``: their columns, sorted).

    Win k of a replication takes row k of its block's value grid, so the values do not
    depend on the blocks simulated alongside.
    """
    rank = np.arange(len(win_col)) - np.repeat(np.cumsum(wins) - wins, wins)
    value = np.empty(len(win_col))
    bounds = np.searchsorted(win_col, BLOCK * np.arange(len(seeds) + 1))
    for b, seed in enumerate(seeds):
        lo, hi = bounds[b], bounds[b + 1]
        rows = int(wins[b * BLOCK : (b + 1) * BLOCK].max(initial=0))
        at = rank[lo:hi] * BLOCK + win_col[lo:hi] - b * BLOCK
        value[lo:hi] = _draw(scenario.deal_value, (rows, BLOCK), _generators(seed, 1)[0], at=at)
    return value

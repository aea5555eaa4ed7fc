"""Array draws the array engines share: arrivals in unit-rate time, exponential gaps, values on a grid.

Arrivals are drawn in unit-rate time (a Poisson process of rate 1) and turned into days
by the inflow (:func:`arrival_days`), so more inflow only adds deals at the end; the
vectorised engine and its queues read their gaps, values and uniforms through these.
With ``[inflow] dispersion`` a replication's inflow is ``G`` times the scenario's
(:func:`gamma_levels`): its unit-rate times are divided by ``G`` (:func:`at_level`)
before anything else looks at them, so every engine compares them with the same
horizon (:func:`unit_rate_cap`) and turns them into days as without dispersion.
With ``deal_value_dispersion`` every value a replication draws is ``H`` times the drawn
one (:func:`value_levels`, :func:`at_value_level`), ``H`` from the same Gamma family.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from sim.engines.streams import BLOCK, child, generators
from sim.model.distributions import Lognormal
from sim.model.scenario import Scenario


def unit_rate_cap(scenario: Scenario) -> float:
    """Length of the horizon in unit-rate time: arrivals with cumulative time <= it count."""
    # Multiply first (17 * 91 / 7 is exactly 221; 17 / 7 * 91 rounds below it), and allow
    # for the last bit so the arrival exactly at the horizon is not lost to rounding.
    # (The horizon is scenario.inflow_weight with seasonal multipliers: see arrival_days.)
    return scenario.inflow.per_week * scenario.inflow_weight / 7.0 * (1.0 + 1e-12)


def planned_arrivals(cap: float) -> int:
    """Arrivals to make room for at once: enough for nearly every replication.

    Their count over the horizon is Poisson with mean ``cap`` (:func:`unit_rate_cap`)
    and exceeds ``cap + 4 sqrt(cap) + 4`` in at most one replication in 30,000 (fewer
    for a small ``cap``); both engines then top up.
    """
    return math.ceil(cap + 4 * math.sqrt(cap) + 4)


def gamma_levels(dispersion: float, uniforms: np.ndarray) -> np.ndarray | None:
    """Each replication's level (a multiplier of mean 1) at its uniform; None when ``dispersion`` is 0.

    The level is ``Gamma(shape=1 / d**2, scale=d**2)`` (mean 1, sd ``d``, the
    dispersion), drawn as the Gamma quantile of the uniform, so scenarios with the same
    seed and another dispersion keep common random numbers. It serves both
    ``[inflow] dispersion`` (the inflow level ``G``) and ``deal_value_dispersion`` (the
    deal value level ``H``).

    Parameters
    ----------
    dispersion : float
        ``d``, the level's coefficient of variation.
    uniforms : ndarray
        One per replication, in [0, 1).

    Returns
    -------
    ndarray or None
        The level per replication, the shape of ``uniforms``.
    """
    d = dispersion
    if d == 0:
        return None
    return special.gammaincinv(1.0 / (d * d), uniforms) * (d * d)


def busiest_level(scenario: Scenario) -> float:
    """The inflow level one replication in :data:`BLOCK` exceeds: for sizing arrays, never for a result."""
    level = gamma_levels(scenario.inflow.dispersion, np.float64(1.0 - 1.0 / BLOCK))
    return 1.0 if level is None else float(level)


def value_levels(scenario: Scenario, seed_sequence: np.random.SeedSequence, index: int) -> np.ndarray | None:
    """A block's deal value levels ``H``, one per replication; None without ``deal_value_dispersion``.

    One uniform per replication from the block seed's child ``index`` (the last of the
    engine's stream table), read only with the dispersion.
    """
    if scenario.deal_value_dispersion == 0:
        return None
    uniforms = sfc64_generators(child(seed_sequence, index), 1)[0].random(BLOCK)
    return gamma_levels(scenario.deal_value_dispersion, uniforms)


def at_value_level(value: np.ndarray, level: np.ndarray | None, col: np.ndarray | None = None) -> np.ndarray:
    """Deal values drawn from ``deal_value`` times their replication's level ``H``, in place.

    ``col`` holds each value's replication column; without it ``value`` is a grid with
    one column per replication. No level (no dispersion) leaves the values as drawn.
    """
    if level is None:
        return value
    return np.multiply(value, level if col is None else level.take(col), out=value)


def at_level(unit_time: np.ndarray, level) -> np.ndarray:
    """Unit-rate times of arrivals whose inflow is ``level`` times the scenario's, in place: ``t / G``.

    A Poisson process of rate ``G`` is one of rate 1 with its times divided by ``G``
    (evenly spaced arrivals: the same), so only the times change. ``level`` is one
    replication's ``G`` or one per column; ``G = 0`` sends every arrival to ``+inf``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(unit_time, level, out=unit_time)


def arrival_days(scenario: Scenario, unit_time: np.ndarray) -> np.ndarray:
    """Days of arrivals at these unit-rate times (in place when there is no seasonality).

    Unit-rate time divided by the daily rate is the cumulative inflow weight, which is
    the day itself unless the inflow has multipliers; then the weight is turned back
    into days through the piecewise-linear ``W^-1`` (:meth:`Scenario.day_at`).
    """
    rate = scenario.inflow.per_week / 7.0
    with np.errstate(over="ignore"):  # a vanishing rate sends arrivals to +inf: past the horizon
        unit_time /= rate
    if scenario.inflow.multipliers is None:
        return unit_time
    return scenario.day_at(unit_time)


def draw_grid(
    distribution, shape: tuple[int, int], rng: np.random.Generator, at: np.ndarray | None = None
) -> np.ndarray:
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


def cumulate_rows(grid: np.ndarray) -> np.ndarray:
    """Cumulative sum down the columns, in place.

    Row by row, because ``np.cumsum(grid, axis=0)`` walks a C-ordered grid with a
    stride and is several times slower.
    """
    for row in range(1, len(grid)):
        grid[row] += grid[row - 1]
    return grid


def sfc64_generators(seed_sequence: np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    # SFC64: its draws are about a quarter cheaper than PCG64's, and drawing random
    # numbers is a good part of this engine's time. It is a sound generator for
    # independent streams seeded by a SeedSequence (NumPy's bit generator guide).
    return generators(seed_sequence, n, np.random.SFC64)


def values_rng(values_seed: np.random.SeedSequence) -> np.random.Generator:
    """A fresh generator of a block's deal values: ``sfc64_generators(values_seed, 1)[0]``, however often asked for.

    Built from the child's spawn key (:func:`sim.engines.streams.child`) rather than by
    ``spawn``, which counts: every scenario of a block, and every quota judged, starts
    the value stream from its beginning.
    """
    return np.random.Generator(np.random.SFC64(child(values_seed, 0)))


def exponential_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """Standard exponential draws, by inverse transform: ``-log(1 - U)``.

    In place on one uniform grid: cheaper here than NumPy's ziggurat.
    """
    gaps = rng.random((rows, width))
    np.subtract(1.0, gaps, out=gaps)  # in (0, 1]
    np.log(gaps, out=gaps)
    return np.negative(gaps, out=gaps)

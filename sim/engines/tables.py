"""Quantile tables: inverse cdfs tabulated once and read at many uniforms, monotone as the exact ones.

The engines turn uniforms into durations and Beta rates through these tables
(:func:`tabulated_ppf`, :func:`conversion_rates`): several times cheaper than scipy's
exact quantiles, exact in the tails, and monotone in the uniform and in the mean, so
common random numbers keep their meaning.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
from scipy import special

from sim.model.distributions import DistributionBase, Gamma, Lognormal, Triangular
from sim.model.scenario import BetaRate, Scenario


class QuantileTable:
    """A quantile function tabulated on a uniform grid: fast, monotone and close to exact.

    The exact quantiles ``ppf(i / n)``, ``i = 0 .. n``, are worked out once; a quantile
    at ``q`` is then the linear interpolation between the two grid points around it
    (index ``floor(q n)``, weight ``q n - floor(q n)``), except in the first and last
    ``k`` intervals, ``q < k / n`` or ``q >= 1 - k / n``, where the exact ``ppf`` is called.
    There the quantile function is steep (unbounded for the lognormal and gamma), and a
    chord's error, about ``ppf''(q) / (8 n^2)``, falls only as ``1 / m^2`` with the
    number ``m`` of intervals to the end: with ``k = 1`` the chord next to the end was
    off by a tenth of an sd for a lognormal, with ``k = 64`` by a few 10^-5 of an sd
    (:mod:`tests.engines.test_tables`). Only a fraction ``2 k / n`` of uniforms land there.

    Why the engines can use it:

    * monotone in ``q``: the grid values are (exact quantiles are monotone), each chord is
      monotone in its weight, and the slopes are trimmed by an ulp where rounding would
      take a chord's end past the next grid value; the exact ends meet the grid values;
    * monotone in the distribution at fixed ``q``: if one distribution's exact quantiles
      lie below another's (a better Beta rate, a shorter scaled stage), so do their grid
      values, and the same weights keep the order, so common random numbers still give
      "a better rate can only add wins" and "shorter stages are never slower";
    * reproducible: the table is a pure function of the distribution, so the same seed
      still gives the same numbers, on any worker.

    Parameters
    ----------
    ppf : callable
        The exact quantile function, vectorised over an array of ``q``.
    intervals : int
        ``n``, a power of two, so that ``q * n`` and the grid points are exact in binary.
    exact_intervals : int, optional
        ``k``, the intervals at each end where the exact ``ppf`` is used (``2 k < n``).
    """

    def __init__(self, ppf, intervals: int, exact_intervals: int = 64):
        if intervals < 4 or intervals & (intervals - 1):
            raise ValueError(f"intervals must be a power of two >= 4, got {intervals}")
        if not 1 <= exact_intervals < intervals // 2:
            raise ValueError(f"exact_intervals must be between 1 and intervals / 2, got {exact_intervals}")
        self.ppf = ppf
        self.intervals = intervals
        self.exact_intervals = exact_intervals
        values = np.asarray(ppf(np.arange(intervals + 1) / intervals), dtype=float)
        # Slopes of the inner chords only: the end intervals are exact, and ppf(0) or
        # ppf(1) may be infinite. One spare entry: q = 1 indexes it before the fix-up.
        slopes = np.zeros(intervals + 1)
        k = exact_intervals
        slopes[k : intervals - k] = np.diff(values[k : intervals - k + 1])
        # A chord may end one ulp past the next grid value through rounding: trim it, so
        # the table is monotone across grid points too (rarely needed, an ulp or two at most).
        for _ in range(4):
            over = values[:-1] + slopes[:-1] > values[1:]
            if not over.any():
                break
            slopes[:-1][over] = np.nextafter(slopes[:-1][over], 0.0)
        # Value and slope side by side: a chord reads both from one cache line.
        self._rows = np.stack([values, slopes], axis=1)
        self.values, self.slopes = self._rows[:, 0], self._rows[:, 1]

    def __call__(self, q):
        """Quantiles at ``q`` (same shape); exact outside the inner intervals (and for NaN)."""
        q = np.asarray(q, dtype=float)
        if q.ndim == 0:
            return np.asarray(self.ppf(q), dtype=float)[()]
        flat = np.ascontiguousarray(q).ravel()
        out = np.empty(len(flat))
        tail = np.empty(len(flat), dtype=np.intp)
        n_tail = _chords(self.values, self.slopes, self.intervals, self.exact_intervals, flat, out, tail)
        if n_tail:
            tail = tail[:n_tail]
            out[tail] = self.ppf(flat.take(tail))
        return out.reshape(q.shape)


@numba.njit(cache=True, nogil=True)
def _chords(values, slopes, intervals, exact_intervals, q, out, tail):
    """The chords of a :class:`QuantileTable` at ``q`` into ``out``; the places of the exact ones into ``tail``.

    Returns how many are exact: ``q < k / n`` or ``q >= 1 - k / n`` (also ``q < 0``,
    ``q >= 1`` and NaN, which fail both tests), left for the exact ``ppf``. Compiled: one
    pass with no temporary arrays, several times faster than the same steps in NumPy.
    The arithmetic is NumPy's, step for step (no fast-math, so no fused multiply-add):
    ``x = q n`` and its integer part are exact, the weight ``x - floor(x)`` too, and the
    quantile is ``slope * weight + value``, rounded after the product and after the sum.
    """
    n_tail = 0
    for i in range(len(q)):
        x = q[i] * intervals
        if exact_intervals <= x < intervals - exact_intervals:
            index = int(x)
            out[i] = slopes[index] * (x - index) + values[index]
        else:
            tail[n_tail] = i
            n_tail += 1
    return n_tail


PPF_TABLE_INTERVALS = 1 << 16
"""Grid intervals of the duration tables (:func:`tabulated_ppf`): 65,537 values, 1 MiB."""


def tabulated_ppf(distribution: DistributionBase, q):
    """The quantile function of a duration distribution, fast: for the vectorised engine.

    Lognormal, gamma and triangular quantiles go through a :class:`QuantileTable` of
    :data:`PPF_TABLE_INTERVALS` intervals (exact quantiles on the grid, linear between,
    exact for ``q < 2^-10`` and ``q >= 1 - 2^-10``); the other families have cheap exact
    quantiles (closed forms, or a lookup for the empirical, which a chord would change)
    and use them.

    Error: a chord is off by about ``F^-1''(q) / (8 n^2)``, most next to the exact tails.
    Measured over 10^6 uniforms, the largest difference from the exact quantile is
    4e-5 sd for a lognormal with sd / mean = 0.57 (the reference scenario's stages),
    2.1e-4 sd for sd / mean = 3, 2e-5 sd for a gamma with sd / mean = 0.57, 4e-5 sd for
    a gamma of shape 0.5, and 1e-6 sd for a triangular; :mod:`tests.engines.test_tables` holds
    it to 5e-4 sd. That is far below what a simulation can show: the Monte Carlo error
    of a mean over 10^6 deals is 1e-3 sd.

    The table is exact at the grid points, so the ordering arguments of the engines
    carry over (see :class:`QuantileTable`): the result is monotone in ``q``, and a
    scaled distribution (the "stages x% shorter" lever) has the scaled distribution's
    own exact quantiles on the same grid, so under common random numbers each deal is
    no slower in the shorter scenario, as with the exact quantile function.

    Parameters
    ----------
    distribution : Distribution
    q : ndarray
        Probabilities in [0, 1).

    Returns
    -------
    ndarray
        Same shape as ``q``.
    """
    if isinstance(distribution, Lognormal | Gamma | Triangular):
        return _ppf_table(distribution)(q)
    return distribution.ppf(q)


@lru_cache(maxsize=32)  # 1 MiB each
def _ppf_table(distribution: DistributionBase) -> QuantileTable:
    # One table per distribution value (the models are frozen and hash by value): about
    # 3 ms for a lognormal, 40 ms for a gamma, once per process.
    return QuantileTable(distribution.ppf, PPF_TABLE_INTERVALS)


def conversion_rates(scenario: Scenario, uniforms: np.ndarray) -> np.ndarray:
    """Conversion rate of each stage for each replication.

    Parameters
    ----------
    scenario : Scenario
    uniforms : ndarray, shape (stages, reps)
        Uniform(0, 1) draws; a Beta rate is its inverse cdf at them (monotone in the
        rate's mean under common random numbers), a fixed rate ignores them.

    Returns
    -------
    ndarray, shape (stages, reps)

    Notes
    -----
    The Beta's inverse cdf comes from :func:`beta_quantile_table`: exact quantiles on a
    grid of :data:`BETA_TABLE_INTERVALS` intervals, linear in between and exact in the
    64 intervals at each end. It is several times cheaper than ``betaincinv`` (about
    0.8 microseconds a value), and both engines use it, so they draw the same rates.
    """
    rates = np.empty_like(uniforms, dtype=float)
    for j, stage in enumerate(scenario.stages):
        conversion = stage.conversion
        if isinstance(conversion, BetaRate):
            rates[j] = beta_quantile_table(*conversion.beta_parameters())(uniforms[j])
        else:
            rates[j] = conversion
    return rates


BETA_TABLE_INTERVALS = 1 << 12
"""Grid intervals of the Beta quantile tables (:func:`beta_quantile_table`)."""


@lru_cache(maxsize=256)
def beta_quantile_table(a: float, b: float) -> QuantileTable:
    """The inverse cdf of Beta(a, b) as a :class:`sim.engines.tables.QuantileTable`.

    Exact ``betaincinv`` at ``u = i / n`` and for ``u < 2^-6`` or ``u >= 1 - 2^-6`` (64
    intervals at each end, where the quantile function bends most), linear in between.
    For ``u`` fixed, a better rate (a higher Beta mean) has higher exact quantiles at
    every grid point, and the chord between them uses the same weight, so the tabulated
    rate is monotone in the mean as the exact one is: under common random numbers a
    better rate can still only add wins. It is monotone in ``u`` as well.

    Error: measured over 10^6 uniforms, the largest difference from ``betaincinv`` is
    7e-7 on the rate (1.1e-5 of the Beta's sd) for the reference scenario's
    Beta(32.5, 17.5), 1.1e-6 (3.4e-5 sd) for a skewed Beta(0.5, 20);
    :mod:`tests.engines.test_tables` holds it to 1e-4 sd.

    Built once per (a, b) in a process (about 3 ms; a solver that varies a rate builds
    one per rate it tries).
    """

    return QuantileTable(lambda u: beta_ppf(a, b, u), BETA_TABLE_INTERVALS)


SMALLEST_UNIFORM = 2.0**-53
"""The smallest positive uniform NumPy's ``random()`` draws (they are multiples of 2^-53)."""


def beta_ppf(a: float, b: float, u):
    """The exact inverse cdf of Beta(a, b): ``betaincinv``, minus scipy's checks, and 0 where it underflows.

    Where the true quantile is below the smallest normal number, ``betaincinv`` answers
    0 or that number depending on (a, b), which would break monotonicity in the mean;
    both mean "never converts", so both become 0.
    """
    tiny = np.finfo(float).tiny
    # Far below the engines' smallest positive uniform, 2^-53, betaincinv is unreliable (NaN
    # for Beta(3, 3) at 1e-250, off at subnormal u): such a u reads as 2^-53, which keeps the
    # result monotone in u and in the mean and changes nothing a simulation draws.
    u = np.asarray(u, dtype=float)
    rate = special.betaincinv(a, b, np.where((u > 0.0) & (u < SMALLEST_UNIFORM), SMALLEST_UNIFORM, u))
    return np.where(rate < tiny, 0.0, rate)

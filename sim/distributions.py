"""Probability distributions for stage durations and deal values.

Each distribution is a frozen pydantic model that users write in a scenario file
(``{ dist = "lognormal", mean = 7, sd = 4 }``) and that behaves like a frozen
``scipy.stats`` distribution: ``rvs(size, random_state)``, ``mean()``, ``var()``,
``std()``, ``ppf(q)``, ``cdf(x)`` and ``sf(x)``. Parameters are the distribution's
own mean and sd, the way sales people think about "7 days, give or take 4"; the
conversion to scipy's shape/scale parameters happens here and nowhere else.

The models hold no random generator, so they hash, compare by value and pickle
(joblib workers and ``st.cache_data`` rely on that).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated, Any, Literal

import numba
import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from scipy import special, stats

MIN_SD_RATIO = 1e-6
MAX_SD_RATIO = 1e3
"""Bounds on sd / mean for the lognormal and gamma families (numerically safe shapes)."""

FAMILIES = ("fixed", "uniform", "triangular", "exponential", "lognormal", "gamma", "empirical")


class _Distribution(BaseModel):
    """Shared behaviour: the frozen-distribution interface over ``self.scipy()``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def scipy(self) -> Any:
        """Return the equivalent frozen ``scipy.stats`` distribution (built once, cached)."""
        return _frozen(self)

    def _build_scipy(self) -> Any:
        raise TypeError(f"{type(self).__name__} has no scipy counterpart")

    def rvs(self, size: int | tuple[int, ...] = 1, random_state: np.random.Generator | None = None):
        """Draw random variates with the given generator."""
        return self.scipy().rvs(size=size, random_state=random_state)

    def mean(self) -> float:
        """Mean of the distribution."""
        return float(self.scipy().mean())

    def var(self) -> float:
        """Variance of the distribution."""
        return float(self.scipy().var())

    def std(self) -> float:
        """Standard deviation of the distribution."""
        return math.sqrt(self.var())

    def ppf(self, q):
        """Quantile function (inverse of the cdf)."""
        return self.scipy().ppf(q)

    def cdf(self, x):
        """Cumulative distribution function, P(X <= x)."""
        return self.scipy().cdf(x)

    def sf(self, x):
        """Survival function, P(X > x)."""
        return self.scipy().sf(x)

    def scaled(self, factor: float) -> _Distribution:
        """Return the distribution of ``factor * X`` (mean and sd both scale).

        Scaling keeps the shape, so draws with the same random numbers scale exactly:
        that is what makes "10% shorter stages" a clean common-random-numbers lever.
        """
        raise NotImplementedError


@lru_cache(maxsize=512)
def _frozen(distribution: _Distribution) -> Any:
    # Freezing a scipy distribution costs about a millisecond; the models are
    # immutable and hash by value, so each one is frozen once per process.
    return distribution._build_scipy()


def _non_negative(value: float, info=None) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a finite number >= 0, got {value}")
    return value


def _positive(value: float, info=None) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value}")
    return value


NonNegative = Annotated[float, AfterValidator(_non_negative)]
"""A float field that must be finite and >= 0 (the message names the bad value)."""
Positive = Annotated[float, AfterValidator(_positive)]
"""A float field that must be finite and > 0."""


class Fixed(_Distribution):
    """Always the same value (scipy has no point mass, so the interface is written out)."""

    dist: Literal["fixed"] = "fixed"
    value: float

    _check = field_validator("value")(_non_negative)

    def rvs(self, size=1, random_state=None):
        return np.full(size, self.value, dtype=float)

    def mean(self) -> float:
        return self.value

    def var(self) -> float:
        return 0.0

    def ppf(self, q):
        return np.full(np.shape(q), self.value, dtype=float)

    def cdf(self, x):
        return (np.asarray(x) >= self.value).astype(float)

    def sf(self, x):
        return (np.asarray(x) < self.value).astype(float)

    def scaled(self, factor):
        return self.model_copy(update={"value": self.value * factor})


class Uniform(_Distribution):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: float
    high: float

    _check = field_validator("low", "high")(_non_negative)

    @model_validator(mode="after")
    def _check_order(self):
        if self.high <= self.low:
            raise ValueError(f"high must be greater than low, got low={self.low}, high={self.high}")
        return self

    def _build_scipy(self):
        return stats.uniform(loc=self.low, scale=self.high - self.low)

    def ppf(self, q):
        # Closed form on the engines' hot path (see Exponential.ppf).
        return self.low + np.asarray(q, dtype=float) * (self.high - self.low)

    def scaled(self, factor):
        return self.model_copy(update={"low": self.low * factor, "high": self.high * factor})


class Triangular(_Distribution):
    """Triangular with ``low <= mode <= high``."""

    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    _check = field_validator("low", "mode", "high")(_non_negative)

    @model_validator(mode="after")
    def _check_order(self):
        if not self.low <= self.mode <= self.high or self.high <= self.low:
            raise ValueError(
                f"needs low <= mode <= high and low < high, got low={self.low}, mode={self.mode}, high={self.high}"
            )
        return self

    def _build_scipy(self):
        width = self.high - self.low
        return stats.triang(c=(self.mode - self.low) / width, loc=self.low, scale=width)

    def ppf(self, q):
        # scipy's own formula and arithmetic (triang._ppf, then * scale + loc), so the
        # same numbers, without its per-call checks: the exact tails of the engines'
        # quantile tables call this once per chunk of deals (see Exponential.ppf).
        q = np.asarray(q, dtype=float)
        width = self.high - self.low
        c = (self.mode - self.low) / width
        with np.errstate(invalid="ignore"):
            unit = np.where(q < c, np.sqrt(c * q), 1 - np.sqrt((1 - c) * (1 - q)))
        return np.where((q >= 0) & (q <= 1), unit * width + self.low, np.nan)

    def scaled(self, factor):
        return self.model_copy(
            update={"low": self.low * factor, "mode": self.mode * factor, "high": self.high * factor}
        )


class Exponential(_Distribution):
    """Exponential with the given mean."""

    dist: Literal["exponential"]
    mean_: float = Field(alias="mean")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _check = field_validator("mean_")(_positive)

    def _build_scipy(self):
        return stats.expon(scale=self.mean_)

    def ppf(self, q):
        # The closed form, without scipy's per-call argument checks: the engines call
        # this on every converting deal (see sim/streams.py), so it is the hot path.
        return -self.mean_ * np.log1p(-np.asarray(q, dtype=float))

    def scaled(self, factor):
        return self.model_copy(update={"mean_": self.mean_ * factor})


class _MeanSd(_Distribution):
    """A two-parameter family given by its own mean and standard deviation."""

    mean_: float = Field(alias="mean")
    sd: float

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _check_mean = field_validator("mean_")(_positive)
    _check_sd = field_validator("sd")(_positive)

    @model_validator(mode="after")
    def _check_spread(self):
        # Outside this band the shape parameters overflow or underflow in floating
        # point (a gamma shape of 1e-300 draws only zeros), so refuse it up front.
        ratio = self.sd / self.mean_
        if not MIN_SD_RATIO <= ratio <= MAX_SD_RATIO:
            raise ValueError(
                f"sd / mean must be between {MIN_SD_RATIO:g} and {MAX_SD_RATIO:g}, got sd={self.sd:g}, "
                f"mean={self.mean_:g} (use a fixed value for no spread)"
            )
        return self

    def scaled(self, factor):
        return self.model_copy(update={"mean_": self.mean_ * factor, "sd": self.sd * factor})


class Lognormal(_MeanSd):
    """Lognormal with the given mean and sd (of the variable, not of its log)."""

    dist: Literal["lognormal"]

    def _log_params(self) -> tuple[float, float]:
        """Mean and sd of log X."""
        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        return math.log(self.mean_) - sigma2 / 2, math.sqrt(sigma2)

    def _build_scipy(self):
        mu, sigma = self._log_params()
        return stats.lognorm(s=sigma, scale=math.exp(mu))

    def rvs(self, size: int | tuple[int, ...] = 1, random_state: np.random.Generator | None = None):
        if not isinstance(random_state, np.random.Generator):
            return super().rvs(size, random_state)
        # scipy's own arithmetic (lognorm draws exp(s * Z) and scales them; the loc of 0
        # adds nothing), so the values are scipy's to the bit (tests/test_fast_paths.py),
        # without its per-call argument checks: the SimPy engine draws a block of values
        # every replication, and the checks cost ten times the draws.
        mu, sigma = self._log_params()
        return np.exp(sigma * random_state.standard_normal(size)) * math.exp(mu)

    def ppf(self, q):
        # Closed form on the engines' hot path (see Exponential.ppf).
        mu, sigma = self._log_params()
        x = special.ndtri(np.asarray(q, dtype=float))
        if np.ndim(x) == 0:
            return np.exp(mu + sigma * x)
        x *= sigma  # in place: this runs on every converting deal
        x += mu
        return np.exp(x, out=x)


class Gamma(_MeanSd):
    """Gamma with the given mean and sd."""

    dist: Literal["gamma"]

    def _build_scipy(self):
        shape = (self.mean_ / self.sd) ** 2
        return stats.gamma(a=shape, scale=self.mean_ / shape)

    def ppf(self, q):
        # scipy's own arithmetic (gamma._ppf is gammaincinv, then * scale), without its
        # per-call checks (see Triangular.ppf).
        q = np.asarray(q, dtype=float)
        shape = (self.mean_ / self.sd) ** 2
        x = special.gammaincinv(shape, q) * (self.mean_ / shape)
        return np.where((q >= 0) & (q <= 1), x, np.nan)  # outside [0, 1]: NaN, as scipy (gammaincinv may say 0)


class Empirical(_Distribution):
    """Resample uniformly from observed values."""

    dist: Literal["empirical"]
    values: tuple[float, ...] = Field(min_length=1, max_length=100_000)

    @field_validator("values")
    @classmethod
    def _check_values(cls, values):
        bad = [v for v in values if not math.isfinite(v) or v < 0]
        if bad:
            raise ValueError(f"every value must be a finite number >= 0, got {bad[0]}")
        return values

    def _sorted(self) -> np.ndarray:
        return np.sort(np.asarray(self.values, dtype=float))

    def rvs(self, size=1, random_state=None):
        rng = np.random.default_rng(random_state)
        return np.asarray(self.values, dtype=float)[rng.integers(len(self.values), size=size)]

    def mean(self) -> float:
        return float(np.mean(self.values))

    def var(self) -> float:
        # Resampling draws from the empirical law itself, whose variance divides by n.
        return float(np.var(self.values))

    def ppf(self, q):
        values = self._sorted()
        index = np.ceil(np.asarray(q, dtype=float) * len(values)).astype(int) - 1
        return values[np.clip(index, 0, len(values) - 1)]

    def cdf(self, x):
        values = self._sorted()
        return np.searchsorted(values, np.asarray(x, dtype=float), side="right") / len(values)

    def sf(self, x):
        return 1.0 - self.cdf(x)

    def scaled(self, factor):
        return self.model_copy(update={"values": tuple(v * factor for v in self.values)})


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
    (:mod:`tests.test_tables`). Only a fraction ``2 k / n`` of uniforms land there.

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


def tabulated_ppf(distribution: _Distribution, q):
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
    a gamma of shape 0.5, and 1e-6 sd for a triangular; :mod:`tests.test_tables` holds
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
def _ppf_table(distribution: _Distribution) -> QuantileTable:
    # One table per distribution value (the models are frozen and hash by value): about
    # 3 ms for a lognormal, 40 ms for a gamma, once per process.
    return QuantileTable(distribution.ppf, PPF_TABLE_INTERVALS)


def _number_means_fixed(value: Any) -> Any:
    """Let a bare number stand for a fixed value (``duration = 7``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


Distribution = Annotated[
    Fixed | Uniform | Triangular | Exponential | Lognormal | Gamma | Empirical,
    Field(discriminator="dist"),
    BeforeValidator(_number_means_fixed),
]
"""Any of the distribution families, chosen by the ``dist`` key (a number = fixed)."""

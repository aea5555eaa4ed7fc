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
import numbers
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from scipy import special, stats

from sim.errors import quoted

MIN_SD_RATIO = 1e-6
MAX_SD_RATIO = 1e3
"""Bounds on sd / mean for the lognormal and gamma families (numerically safe shapes)."""

MAX_VALUE = 1e12
"""Largest parameter a distribution takes (an amount or a number of days): a trillion.

Sums and squares over a million deals of such values stay far inside floating point,
so means, spreads and revenue never overflow to infinity."""
MAX_COUNT = 10**9
"""Largest count a scenario takes (deals, reps, touches): products of two stay inside 64-bit integers."""

FAMILIES = ("fixed", "uniform", "triangular", "exponential", "lognormal", "gamma", "empirical")


class DistributionBase(BaseModel):
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

    def scaled(self, factor: float) -> DistributionBase:
        """Return the distribution of ``factor * X`` (mean and sd both scale).

        Scaling keeps the shape, so draws with the same random numbers scale exactly:
        that is what makes "10% shorter stages" a clean common-random-numbers lever.
        """
        raise NotImplementedError


@lru_cache(maxsize=512)
def _frozen(distribution: DistributionBase) -> Any:
    # Freezing a scipy distribution costs about a millisecond; the models are
    # immutable and hash by value, so each one is frozen once per process.
    return distribution._build_scipy()


def _a_number(value: Any) -> Any:
    """Numbers only: a string (``"13"``) or a boolean is refused rather than read as a number."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"must be a number, got {quoted(value)}")
    if isinstance(value, numbers.Integral) and abs(value) > MAX_COUNT * MAX_VALUE:
        raise ValueError(f"must be a number of a sensible size, got {quoted(value)}")
    return value


def _a_count(value: Any) -> Any:
    """A whole number up to :data:`MAX_COUNT` (``2.0`` is taken as 2; ``2.5`` or ``"2"`` is refused)."""
    value = _a_number(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"must be a whole number, got {quoted(value)}")
    if abs(value) > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT:,}, got {quoted(value)}")
    return int(value)


Real = Annotated[float, BeforeValidator(_a_number)]
"""A float field that takes numbers only (an int is fine; a string or boolean is not)."""
Whole = Annotated[int, BeforeValidator(_a_count)]
"""An int field that takes whole numbers up to :data:`MAX_COUNT` only."""


def _non_negative(value: float, info=None) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a finite number >= 0, got {value}")
    return value


def _positive(value: float, info=None) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value}")
    return value


def _at_most_max_value(value: float) -> float:
    if value > MAX_VALUE:
        raise ValueError(f"must be at most {MAX_VALUE:g} (a trillion: sums of larger values overflow), got {value:g}")
    return value


def _parameter(value: float, info=None) -> float:
    """A distribution parameter: finite, >= 0 and at most :data:`MAX_VALUE`."""
    return _at_most_max_value(_non_negative(value))


def _positive_parameter(value: float, info=None) -> float:
    """A distribution parameter that must be > 0: finite and at most :data:`MAX_VALUE`."""
    return _at_most_max_value(_positive(value))


NonNegative = Annotated[float, BeforeValidator(_a_number), AfterValidator(_non_negative)]
"""A float field that must be finite and >= 0 (the message names the bad value)."""
Positive = Annotated[float, BeforeValidator(_a_number), AfterValidator(_positive)]
"""A float field that must be finite and > 0."""
Amount = Annotated[float, BeforeValidator(_a_number), AfterValidator(_parameter)]
"""A float field that must be finite, >= 0 and at most :data:`MAX_VALUE` (money, days)."""
PositiveAmount = Annotated[float, BeforeValidator(_a_number), AfterValidator(_positive_parameter)]
"""A float field that must be finite, > 0 and at most :data:`MAX_VALUE` (a Beta concentration, a count of deals)."""


class Fixed(DistributionBase):
    """Always the same value (scipy has no point mass, so the interface is written out)."""

    dist: Literal["fixed"] = "fixed"
    value: Real

    _check = field_validator("value")(_parameter)

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


class Uniform(DistributionBase):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: Real
    high: Real

    _check = field_validator("low", "high")(_parameter)

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


class Triangular(DistributionBase):
    """Triangular with ``low <= mode <= high``."""

    dist: Literal["triangular"]
    low: Real
    mode: Real
    high: Real

    _check = field_validator("low", "mode", "high")(_parameter)

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


class Exponential(DistributionBase):
    """Exponential with the given mean."""

    dist: Literal["exponential"]
    mean_: Real = Field(alias="mean")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _check = field_validator("mean_")(_positive_parameter)

    def _build_scipy(self):
        return stats.expon(scale=self.mean_)

    def ppf(self, q):
        # The closed form, without scipy's per-call argument checks: the engines call
        # this on every converting deal (see sim/streams.py), so it is the hot path.
        return -self.mean_ * np.log1p(-np.asarray(q, dtype=float))

    def scaled(self, factor):
        return self.model_copy(update={"mean_": self.mean_ * factor})


class _MeanSd(DistributionBase):
    """A two-parameter family given by its own mean and standard deviation."""

    mean_: Real = Field(alias="mean")
    sd: Real

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _check_mean = field_validator("mean_")(_positive_parameter)
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
        # adds nothing), so the values are scipy's to the bit (tests/engines/test_fast_paths.py),
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


class Empirical(DistributionBase):
    """Resample uniformly from observed values."""

    dist: Literal["empirical"]
    values: tuple[Real, ...] = Field(min_length=1, max_length=100_000)

    @field_validator("values")
    @classmethod
    def _check_values(cls, values):
        bad = [v for v in values if not math.isfinite(v) or v < 0]
        if bad:
            raise ValueError(f"every value must be a finite number >= 0, got {bad[0]}")
        big = [v for v in values if v > MAX_VALUE]
        if big:
            raise ValueError(f"every value must be at most {MAX_VALUE:g} (a trillion), got {big[0]:g}")
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


def _number_means_fixed(value: Any) -> Any:
    """Let a bare number stand for a fixed value (``duration = 7``); a string or boolean is no number."""
    if isinstance(value, str | bool | np.bool_):
        raise ValueError(f"must be a number or a table with a 'dist' key, got {quoted(value)}")
    if isinstance(value, numbers.Real):
        return {"dist": "fixed", "value": value}
    return value


Distribution = Annotated[
    Fixed | Uniform | Triangular | Exponential | Lognormal | Gamma | Empirical,
    Field(discriminator="dist"),
    BeforeValidator(_number_means_fixed),
]
"""Any of the distribution families, chosen by the ``dist`` key (a number = fixed)."""

"""Tabulated quantile functions: close to exact, monotone in u, monotone in the Beta mean.

The engines draw Beta conversion rates (both engines) and, in the vectorised engine,
stage durations from :class:`sim.engines.tables.QuantileTable`: exact quantiles on a
uniform grid, linear in between, exact near the ends. These tests hold the tables to
the error their docstrings state, over a million uniforms plus points in and next to
the exact tails, and check the orderings that common random numbers rely on.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from scipy import special

from sim.engines.tables import (
    BETA_TABLE_INTERVALS,
    SMALLEST_UNIFORM,
    QuantileTable,
    beta_ppf,
    beta_quantile_table,
    tabulated_ppf,
)
from sim.model.distributions import Distribution

ADAPTER = TypeAdapter(Distribution)
BETA_TOLERANCE = 1e-4
"""Largest difference from ``betaincinv`` allowed, in Beta sds (measured: up to 3.4e-5)."""
PPF_TOLERANCE = 5e-4
"""Largest difference from the exact ppf allowed, in sds (measured: up to 2.1e-4)."""

BETAS = [(32.5, 17.5), (25.0, 25.0), (37.5, 12.5), (0.5, 20.0), (20.0, 0.5), (0.5, 0.5), (1.2, 3.0), (500.0, 500.0)]
DURATIONS = [
    {"dist": "lognormal", "mean": 7, "sd": 4},  # the reference scenario's stages
    {"dist": "lognormal", "mean": 14, "sd": 8},
    {"dist": "lognormal", "mean": 3, "sd": 9},  # sd / mean = 3: very skewed
    {"dist": "gamma", "mean": 14, "sd": 8},
    {"dist": "gamma", "mean": 1, "sd": math.sqrt(2)},  # shape 0.5
    {"dist": "triangular", "low": 1, "mode": 3, "high": 11},
    {"dist": "triangular", "low": 0, "mode": 0, "high": 11},
]


def uniforms() -> np.ndarray:
    """A million random uniforms, plus the ends, the edges of the exact tails and their neighbours."""
    edges = np.array([0.0, 1e-300, 1e-12, 1e-6, 2.0**-16, 2.0**-10, 2.0**-6, 0.5, 1 - 2.0**-6, 1 - 2.0**-10])
    edges = np.concatenate([edges, 1 - np.array([2.0**-16, 1e-9, 2.0**-53])])
    around = np.concatenate([np.nextafter(edges, 0.0), edges, np.nextafter(edges, 1.0)])
    return np.concatenate([np.random.default_rng(20).random(1_000_000), around[(around >= 0) & (around < 1)]])


U = uniforms()


def beta_sd(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


@pytest.mark.parametrize(("a", "b"), BETAS)
def test_beta_table_is_close_to_exact(a, b):
    exact = beta_ppf(a, b, U)
    table = beta_quantile_table(a, b)(U)
    assert np.abs(table - exact).max() <= BETA_TOLERANCE * beta_sd(a, b)
    # The exact tails are exact, and so are the grid points.
    tails = (U < 2.0**-6) | (U >= 1 - 2.0**-6)
    np.testing.assert_array_equal(table[tails], exact[tails])
    grid = np.arange(BETA_TABLE_INTERVALS) / BETA_TABLE_INTERVALS
    np.testing.assert_array_equal(beta_quantile_table(a, b)(grid), beta_ppf(a, b, grid))


@pytest.mark.parametrize(("a", "b"), BETAS)
def test_beta_ppf_is_betaincinv_but_for_underflow(a, b):
    below = (U > 0) & (U < SMALLEST_UNIFORM)  # no engine draws these: 1e-300, 5e-324, ...
    assert below.any()
    u = U[~below]
    raw = special.betaincinv(a, b, u)
    normal = raw >= np.finfo(float).tiny
    np.testing.assert_array_equal(beta_ppf(a, b, u)[normal], raw[normal])
    assert np.all(beta_ppf(a, b, u)[~normal] == 0.0)
    # They read as 2^-53 (betaincinv can answer NaN there).
    assert np.all(beta_ppf(a, b, U[below]) == beta_ppf(a, b, np.array([SMALLEST_UNIFORM])))


@pytest.mark.parametrize("spec", DURATIONS, ids=[f"{s['dist']}-{i}" for i, s in enumerate(DURATIONS)])
def test_tabulated_ppf_is_close_to_exact(spec):
    dist = ADAPTER.validate_python(spec)
    exact = dist.ppf(U)
    table = tabulated_ppf(dist, U)
    assert table.shape == U.shape
    assert np.abs(table - exact).max() <= PPF_TOLERANCE * dist.std()
    tails = (U < 2.0**-10) | (U >= 1 - 2.0**-10)
    np.testing.assert_array_equal(table[tails], exact[tails])


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "fixed", "value": 4.5},
        {"dist": "uniform", "low": 2, "high": 10},
        {"dist": "exponential", "mean": 9},
        {"dist": "empirical", "values": [1.0, 2.0, 2.0, 9.0, 14.5]},
    ],
)
def test_families_with_cheap_quantiles_stay_exact(spec):
    # The empirical's quantile is a step function: a chord would invent values.
    dist = ADAPTER.validate_python(spec)
    np.testing.assert_array_equal(tabulated_ppf(dist, U[:10_000]), dist.ppf(U[:10_000]))


def assert_monotone(values: np.ndarray, inner: np.ndarray, label) -> None:
    """Non-decreasing: strictly where both points are interpolated; elsewhere up to rounding.

    ``betaincinv`` itself is not monotone to the last bit (0.015625 gives an ulp less
    than the float below it), and the exact tails keep its rounding.
    """
    step = np.diff(values)
    both_inner = inner[1:] & inner[:-1]
    assert np.all(step[both_inner] >= 0), label
    assert np.all(step >= -4 * np.spacing(values[1:])), label


def test_tables_are_monotone_in_u():
    u = np.sort(U)
    beta_inner = (u >= 2.0**-6) & (u < 1 - 2.0**-6)
    for a, b in BETAS:
        assert_monotone(beta_quantile_table(a, b)(u), beta_inner, (a, b))
    ppf_inner = (u >= 2.0**-10) & (u < 1 - 2.0**-10)
    for spec in DURATIONS:
        assert_monotone(tabulated_ppf(ADAPTER.validate_python(spec), u), ppf_inner, spec)


def test_beta_table_is_monotone_in_the_mean_on_a_grid_of_means():
    u = np.sort(U[::50])
    for concentration in (2.0, 50.0, 400.0):
        previous = None
        for mean in np.linspace(0.01, 0.99, 41):
            rate = beta_quantile_table(mean * concentration, (1 - mean) * concentration)(u)
            if previous is not None:
                assert np.all(rate >= previous), (concentration, mean)
            previous = rate


@settings(max_examples=200, deadline=None)
@given(
    u=st.floats(0.0, 1.0, exclude_max=True),
    means=st.tuples(st.floats(0.001, 0.999), st.floats(0.001, 0.999)),
    concentration=st.floats(0.5, 1000.0),
)
@example(u=5e-324, means=(0.5, 0.5), concentration=4.0)  # betaincinv(2, 2, 5e-324) is NaN
def test_beta_table_is_monotone_in_the_mean(u, means, concentration):
    low, high = sorted(means)
    q = np.array([u])
    at_low = beta_quantile_table(low * concentration, (1 - low) * concentration)(q)
    at_high = beta_quantile_table(high * concentration, (1 - high) * concentration)(q)
    assert at_low[0] <= at_high[0]


@settings(max_examples=100, deadline=None)
@given(u=st.floats(0.0, 1.0, exclude_max=True), factor=st.floats(0.05, 1.0))
def test_shorter_stages_are_never_slower(u, factor):
    # The "stages x% shorter" lever under common random numbers (sim.model.distributions.scaled).
    dist = ADAPTER.validate_python({"dist": "lognormal", "mean": 14, "sd": 8})
    q = np.array([u])
    assert tabulated_ppf(dist.scaled(factor), q)[0] <= tabulated_ppf(dist, q)[0]


def test_out_of_range_and_nan_go_to_the_exact_ppf():
    table = QuantileTable(lambda q: special.betaincinv(2.0, 3.0, q), 1 << 8, exact_intervals=4)
    q = np.array([[-0.5, np.nan], [1.0, 1.5]])
    np.testing.assert_array_equal(table(q), special.betaincinv(2.0, 3.0, q))
    assert table(0.3) == pytest.approx(special.betaincinv(2.0, 3.0, 0.3))


def test_table_parameters_are_checked():
    with pytest.raises(ValueError, match="power of two"):
        QuantileTable(np.sqrt, 1000)
    with pytest.raises(ValueError, match="exact_intervals"):
        QuantileTable(np.sqrt, 16, exact_intervals=8)

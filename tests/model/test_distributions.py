"""Each distribution's samples match the mean and sd it was given (its own, not log-space).

Sample mean and variance of N draws are checked against the parameters within Z * SE,
Z = 4: SE(mean) = sd / sqrt(N); SE(sample variance) = sqrt((mu4 - sd^4) / N), with the
fourth central moment mu4 from the closed form (scipy's excess kurtosis, or the exact
moment of the resampled values). The shape is checked by a KS test (continuous families)
or a chi-square test (empirical) at alpha = 1e-4.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import stats

from sim.model.distributions import Distribution
from tests.conftest import within

N = 50_000
ALPHA = 1e-4
ADAPTER = TypeAdapter(Distribution)
EMPIRICAL = [1.0, 2.0, 2.0, 9.0, 14.5]

# (spec, its mean, its sd): the parameters are the distribution's own moments.
SPECS = [
    ({"dist": "fixed", "value": 4.5}, 4.5, 0.0),
    ({"dist": "uniform", "low": 2, "high": 10}, 6.0, 8 / math.sqrt(12)),
    # Triangular: mean (a + b + c) / 3, variance (a^2 + b^2 + c^2 - ab - ac - bc) / 18.
    ({"dist": "triangular", "low": 1, "mode": 3, "high": 11}, 5.0, math.sqrt((1 + 9 + 121 - 3 - 11 - 33) / 18)),
    ({"dist": "exponential", "mean": 9}, 9.0, 9.0),
    ({"dist": "lognormal", "mean": 7, "sd": 4}, 7.0, 4.0),
    ({"dist": "lognormal", "mean": 25_000, "sd": 15_000}, 25_000.0, 15_000.0),
    ({"dist": "gamma", "mean": 14, "sd": 8}, 14.0, 8.0),
    ({"dist": "gamma", "mean": 3, "sd": 6}, 3.0, 6.0),  # shape 1/4: very skewed
    ({"dist": "empirical", "values": EMPIRICAL}, float(np.mean(EMPIRICAL)), float(np.std(EMPIRICAL))),
]
IDS = [f"{s['dist']}-{i}" for i, (s, _, _) in enumerate(SPECS)]
CONTINUOUS = [(s, i) for (s, _, _), i in zip(SPECS, IDS, strict=True) if s["dist"] not in ("fixed", "empirical")]


def fourth_central_moment(dist, spec) -> float:
    """mu4 of the distribution, from its closed form."""
    if spec["dist"] == "empirical":
        values = np.asarray(spec["values"], dtype=float)
        return float(((values - values.mean()) ** 4).mean())
    var, excess = (float(x) for x in dist.scipy().stats(moments="vk"))
    return (excess + 3) * var * var


@pytest.mark.parametrize(("spec", "mean", "sd"), SPECS, ids=IDS)
def test_parameters_are_the_distributions_own(spec, mean, sd):
    dist = ADAPTER.validate_python(spec)
    assert dist.mean() == pytest.approx(mean, rel=1e-12)
    assert dist.std() == pytest.approx(sd, rel=1e-12)
    assert dist.var() == pytest.approx(sd * sd, rel=1e-12)


@pytest.mark.parametrize(("spec", "mean", "sd"), SPECS, ids=IDS)
def test_sample_mean_and_sd_match(spec, mean, sd):
    dist = ADAPTER.validate_python(spec)
    x = dist.rvs(N, random_state=np.random.default_rng(1))
    assert x.shape == (N,) and (x >= 0).all()
    if sd == 0:
        assert (x == mean).all()
        return
    within(x.mean(), mean, sd / math.sqrt(N))
    mu4 = fourth_central_moment(dist, spec)
    within(x.var(ddof=1), sd * sd, math.sqrt((mu4 - sd**4) / N))


@pytest.mark.parametrize("spec", [s for s, _ in CONTINUOUS], ids=[i for _, i in CONTINUOUS])
def test_samples_follow_the_cdf(spec):
    dist = ADAPTER.validate_python(spec)
    x = dist.rvs(20_000, random_state=np.random.default_rng(2))
    assert stats.kstest(x, dist.cdf).pvalue > ALPHA
    # The engines draw durations as ppf(uniform): that must follow the cdf too.
    y = dist.ppf(np.random.default_rng(3).random(20_000))
    assert stats.kstest(y, dist.cdf).pvalue > ALPHA


def test_empirical_resamples_each_value_equally():
    dist = ADAPTER.validate_python({"dist": "empirical", "values": EMPIRICAL})
    x = dist.rvs(N, random_state=np.random.default_rng(4))
    support, counts = np.unique(x, return_counts=True)
    np.testing.assert_array_equal(support, np.unique(EMPIRICAL))
    expected = np.array([EMPIRICAL.count(v) for v in support]) / len(EMPIRICAL) * N
    assert stats.chisquare(counts, expected).pvalue > ALPHA
    # ppf at uniforms resamples the same law.
    y = dist.ppf(np.random.default_rng(5).random(N))
    counts_y = np.array([(y == v).sum() for v in support])
    assert counts_y.sum() == N
    assert stats.chisquare(counts_y, expected).pvalue > ALPHA


@pytest.mark.parametrize("spec", [s for s, _ in CONTINUOUS], ids=[i for _, i in CONTINUOUS])
def test_ppf_and_cdf_are_inverse(spec):
    dist = ADAPTER.validate_python(spec)
    q = np.linspace(0.001, 0.999, 41)
    x = dist.ppf(q)
    assert (np.diff(x) > 0).all()
    np.testing.assert_allclose(dist.cdf(x), q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dist.sf(x), 1 - q, rtol=1e-9, atol=1e-12)
    # The hand-written ppfs on the engines' hot path agree with scipy's.
    np.testing.assert_allclose(x, dist.scipy().ppf(q), rtol=1e-9)
    assert float(dist.ppf(0.5)) == pytest.approx(float(dist.scipy().median()), rel=1e-9)


@pytest.mark.parametrize("spec", [s for s, _, _ in SPECS], ids=IDS)
def test_ppf_cdf_consistency_at_any_quantile(spec):
    # For every family, discrete or not: ppf(q) is the smallest x with cdf(x) >= q.
    dist = ADAPTER.validate_python(spec)
    q = np.array([0.05, 0.2, 0.3, 0.5, 0.77, 0.95])
    x = dist.ppf(q)
    assert (np.diff(x) >= 0).all()
    assert (dist.cdf(x) >= q - 1e-9).all()
    below = np.nextafter(x, -np.inf)
    assert ((dist.cdf(below) <= q + 1e-9) | (x <= 0)).all()
    np.testing.assert_allclose(dist.sf(x), 1 - dist.cdf(x))


@pytest.mark.parametrize("factor", [0.8, 2.5])
@pytest.mark.parametrize("spec", [s for s, _, _ in SPECS], ids=IDS)
def test_scaled_multiplies_mean_and_sd(spec, factor):
    dist = ADAPTER.validate_python(spec)
    scaled = dist.scaled(factor)
    assert type(scaled) is type(dist)
    assert scaled.mean() == pytest.approx(factor * dist.mean(), rel=1e-12)
    assert scaled.std() == pytest.approx(factor * dist.std(), rel=1e-12, abs=1e-12)
    # Same shape: quantiles scale, and cdf(factor x) of the scaled law is cdf(x).
    q = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(scaled.ppf(q), factor * dist.ppf(q), rtol=1e-9)
    x = dist.ppf(q)
    np.testing.assert_allclose(scaled.cdf(factor * x), dist.cdf(x), rtol=1e-9)
    assert dist.scaled(1.0) == dist


def test_a_bare_number_is_a_fixed_value():
    dist = ADAPTER.validate_python(7)
    assert dist.dist == "fixed" and dist.mean() == 7 and dist.var() == 0
    assert (dist.rvs(5, random_state=np.random.default_rng(0)) == 7).all()


def test_distributions_hash_compare_and_pickle_by_value():
    a = ADAPTER.validate_python({"dist": "lognormal", "mean": 7, "sd": 4})
    b = ADAPTER.validate_python({"dist": "lognormal", "mean": 7.0, "sd": 4.0})
    assert a == b and hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != ADAPTER.validate_python({"dist": "gamma", "mean": 7, "sd": 4})


def test_draws_depend_only_on_the_generator():
    dist = ADAPTER.validate_python({"dist": "gamma", "mean": 14, "sd": 8})
    first = dist.rvs(100, random_state=np.random.default_rng(9))
    np.testing.assert_array_equal(first, dist.rvs(100, random_state=np.random.default_rng(9)))
    assert not np.array_equal(first, dist.rvs(100, random_state=np.random.default_rng(10)))

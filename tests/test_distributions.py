"""Each distribution's samples match the mean and sd it was given (its own, not log-space)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import stats

from sim.distributions import Distribution

Z = 4.0
N = 60_000
ADAPTER = TypeAdapter(Distribution)

SPECS = [
    ({"dist": "fixed", "value": 4.5}, 4.5, 0.0),
    ({"dist": "uniform", "low": 2, "high": 10}, 6.0, 8 / math.sqrt(12)),
    ({"dist": "triangular", "low": 1, "mode": 3, "high": 11}, 5.0, math.sqrt((1 + 9 + 121 - 3 - 11 - 33) / 18)),
    ({"dist": "exponential", "mean": 9}, 9.0, 9.0),
    ({"dist": "lognormal", "mean": 7, "sd": 4}, 7.0, 4.0),
    ({"dist": "lognormal", "mean": 25_000, "sd": 15_000}, 25_000.0, 15_000.0),
    ({"dist": "gamma", "mean": 14, "sd": 8}, 14.0, 8.0),
    ({"dist": "empirical", "values": [1, 2, 2, 9]}, 3.5, math.sqrt(np.var([1, 2, 2, 9]))),
]


@pytest.mark.parametrize(("spec", "mean", "sd"), SPECS, ids=[s[0]["dist"] for s in SPECS])
def test_parameters_are_the_distributions_own(spec, mean, sd):
    dist = ADAPTER.validate_python(spec)
    assert dist.mean() == pytest.approx(mean)
    assert dist.std() == pytest.approx(sd)
    x = dist.rvs(N, random_state=np.random.default_rng(1))
    assert x.shape == (N,) and (x >= 0).all()
    if sd == 0:
        assert (x == mean).all()
        return
    assert abs(x.mean() - mean) <= Z * sd / math.sqrt(N)
    # SE of the sample variance from the sample's fourth central moment.
    fourth = ((x - x.mean()) ** 4).mean()
    assert abs(x.var(ddof=1) - sd**2) <= Z * math.sqrt((fourth - x.var() ** 2) / N)


@pytest.mark.parametrize(
    "spec", [s[0] for s in SPECS if s[0]["dist"] not in ("fixed", "empirical")], ids=lambda s: s["dist"]
)
def test_samples_follow_the_cdf(spec):
    dist = ADAPTER.validate_python(spec)
    x = dist.rvs(20_000, random_state=np.random.default_rng(2))
    assert stats.kstest(x, dist.cdf).pvalue > 1e-4  # alpha = 1e-4
    # The engines draw durations as ppf(uniform): that must follow the cdf too.
    y = dist.ppf(np.random.default_rng(3).random(20_000))
    assert stats.kstest(y, dist.cdf).pvalue > 1e-4


@pytest.mark.parametrize("spec", [s[0] for s in SPECS], ids=lambda s: s["dist"])
def test_ppf_inverts_cdf_and_scaling(spec):
    dist = ADAPTER.validate_python(spec)
    q = np.array([0.05, 0.3, 0.5, 0.77, 0.95])
    x = dist.ppf(q)
    assert (np.diff(x) >= 0).all()
    assert (dist.cdf(x) >= q - 1e-9).all()
    assert dist.sf(x) == pytest.approx(1 - dist.cdf(x))
    scaled = dist.scaled(0.8)
    assert scaled.mean() == pytest.approx(0.8 * dist.mean())
    assert scaled.std() == pytest.approx(0.8 * dist.std())
    np.testing.assert_allclose(scaled.ppf(q), 0.8 * x, rtol=1e-9)


def test_distributions_hash_and_compare_by_value():
    a = ADAPTER.validate_python({"dist": "lognormal", "mean": 7, "sd": 4})
    b = ADAPTER.validate_python({"dist": "lognormal", "mean": 7.0, "sd": 4.0})
    assert a == b and hash(a) == hash(b)
    import pickle

    assert pickle.loads(pickle.dumps(a)) == a

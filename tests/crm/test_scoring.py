"""The forecast scores of sim.crm.scoring against values worked out by hand or in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.crm import scoring
from tests.conftest import within


def test_coverage_counts_the_ends_as_inside():
    assert scoring.coverage([0, 0, 0, 0], [1, 1, 1, 1], [0, 0.5, 1, 2]) == 0.75


def test_mape_leaves_out_actuals_of_zero():
    # |110 - 100| / 100 = 0.1 and |3 - 4| / 4 = 0.25; the actual of 0 has no relative miss.
    assert scoring.mape([110, 50, 3], [100, 0, 4]) == pytest.approx(0.175)
    assert scoring.mape([1, 2], [0, 0]) is None


def test_pinball_loss_by_hand():
    # Origin 1, actual 11 against 8 / 10 / 12: 0.1 * 3, 0.5 * 1, (1 - 0.9) * 1.
    # Origin 2, actual 5: below all three: 0.9 * 3, 0.5 * 5, 0.1 * 7.
    quantiles = [[8, 10, 12], [8, 10, 12]]
    loss = scoring.pinball_loss(quantiles, [0.1, 0.5, 0.9], [11, 5])
    assert loss == pytest.approx(np.mean([0.3, 0.5, 0.1, 2.7, 2.5, 0.7]))
    assert scoring.scaled(loss, [11, 5]) == pytest.approx(loss / 8)
    assert scoring.scaled(loss, [0, 0]) is None


def test_pinball_loss_is_least_at_the_true_quantiles():
    # For a Uniform(0, 1) actual the expected loss of q at level tau is
    # tau (1 - q)^2 / 2 + (1 - tau) q^2 / 2: least at q = tau.
    actual = np.random.default_rng(1).uniform(size=20_000)
    levels = [0.1, 0.5, 0.9]

    def loss(shift: float) -> float:
        q = np.tile(np.array(levels) + shift, (actual.size, 1))
        return scoring.pinball_loss(q, levels, actual)

    exact = np.mean([t * (1 - t) ** 2 / 2 + (1 - t) * t**2 / 2 for t in levels])
    # Each term is at most 1 in size: SE of the mean below sqrt(1 / n).
    within(loss(0.0), exact, 1 / math.sqrt(actual.size))
    assert loss(0.0) < loss(0.05) and loss(0.0) < loss(-0.05)


def test_mid_pit_splits_the_mass_at_the_actual():
    # P(X < 2) = 3/7, P(X = 2) = 3/7.
    assert scoring.mid_pit([0, 0, 1, 2, 2, 2, 3], 2) == pytest.approx(3 / 7 + 0.5 * 3 / 7)
    assert scoring.mid_pit(np.arange(100), 49.5) == 0.5
    assert scoring.mid_pit([1, 2, 3], 0) == 0 and scoring.mid_pit([1, 2, 3], 9) == 1


def test_mid_pit_of_counts_from_the_forecast_itself_averages_one_half():
    # E[mid-PIT] = P(X < Y) + P(X = Y) / 2 = 1/2 for X, Y alike: exact for counts too.
    rng = np.random.default_rng(3)
    samples = rng.poisson(3.0, 4_000)
    pits = np.array([scoring.mid_pit(samples, a) for a in rng.poisson(3.0, 2_000)])
    within(pits.mean(), 0.5, pits.std(ddof=1) / math.sqrt(pits.size))


def test_pit_uniformity_by_hand():
    # The KS statistic of 0.1, 0.4, 0.7: the largest of i/n - x_i and x_i - (i - 1)/n is 1 - 0.7.
    statistic, p_value = scoring.pit_uniformity([0.4, 0.1, 0.7])
    assert statistic == pytest.approx(0.3)
    assert p_value == pytest.approx(stats.kstwo.sf(0.3, 3))


def spread(n: int, low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, n)


@pytest.mark.parametrize(
    ("pits", "words"),
    [
        ((np.arange(40) + 0.5) / 40, "no sign of bias"),
        (np.r_[spread(20, 0.0, 0.05), spread(20, 0.95, 1.0)], "bands too narrow"),
        (spread(40, 0.4, 0.6), "bands too wide"),
        (spread(40, 0.0, 0.5), "forecasts run high"),
        (spread(40, 0.5, 1.0), "forecasts run low"),
        (spread(5, 0.0, 0.1), "too few"),
    ],
)
def test_pit_verdict_names_the_fault(pits, words):
    _, p_value = scoring.pit_uniformity(pits)
    assert words in scoring.pit_verdict(pits, p_value)


def test_skill_against_a_reference():
    assert scoring.skill(0.1, 0.2) == pytest.approx(0.5)
    assert scoring.skill(0.3, 0.2) == pytest.approx(-0.5)
    assert scoring.skill(None, 0.2) is None and scoring.skill(0.1, None) is None and scoring.skill(0.1, 0.0) is None

"""The synthetic worlds of tests/crm_worlds.py show the failure mode each is made for.

Each check sets what the engine played out against a closed form: counts of a Poisson
inflow (or of its Gamma mixture, a negative binomial) and binomial wins given the
creation dates, pooled over a few world seeds. A sample variance is checked with its
own standard error, ``sqrt((mu4 - sigma**4 (n - 3) / (n - 1)) / n)``, from the
distribution's fourth moment.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from sim.crm.reader import read_deals
from tests.conftest import within
from tests.crm_synth import export_csv, lognormal_params
from tests.crm_worlds import COHORT_WEEKS, DRIFTING, OVERDISPERSED, STATIONARY, WORLDS, YOUNG, ZOMBIES, CohortWorld

SEEDS = (11, 12, 13, 14)
DAY = pd.Timedelta(days=1)


def lognorm(mean: float, sd: float):
    mu, sigma = lognormal_params(mean, sd)
    return stats.lognorm(s=sigma, scale=math.exp(mu))


def cohort_counts(world: CohortWorld, deals: pd.DataFrame) -> np.ndarray:
    """New deals per cohort (a four-week month)."""
    cohort = (deals["created"] - pd.Timestamp(world.start)) // pd.Timedelta(weeks=COHORT_WEEKS)
    return np.bincount(cohort.to_numpy(dtype=int), minlength=world.n_cohorts)


def check_variance(counts: np.ndarray, dist) -> None:
    """The sample variance of ``counts`` against ``dist``'s variance, within Z of its SE."""
    n = counts.size
    var, kurtosis = (float(v) for v in dist.stats(moments="vk"))
    mu4 = (kurtosis + 3) * var**2
    within(float(np.var(counts, ddof=1)), var, math.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n))


@pytest.fixture(scope="module")
def drawn():
    """Each world's deals on every seed of :data:`SEEDS`, drawn once."""
    return {name: [world.deals(s) for s in SEEDS] for name, world in WORLDS.items()}


@pytest.mark.parametrize("world", list(WORLDS.values()), ids=list(WORLDS))
def test_same_seed_same_frame(world, drawn):
    again = world.deals(SEEDS[0])
    pd.testing.assert_frame_equal(again, drawn[world.name][0])
    assert list(again.columns) == ["id", "created", "won", "close", "amount"]
    assert again["id"].is_unique and (again["created"] < world.end).all()
    assert not drawn[world.name][1]["created"].equals(again["created"])


def test_stationary_inflow_is_poisson_and_the_rate_steady(drawn):
    m = STATIONARY.per_week * COHORT_WEEKS
    counts = np.concatenate([cohort_counts(STATIONARY, d) for d in drawn["stationary"]])
    within(float(counts.mean()), m, math.sqrt(m / counts.size))
    check_variance(counts, stats.poisson(m))
    won = pd.concat(drawn["stationary"])["won"]
    within(float(won.mean()), STATIONARY.p, math.sqrt(STATIONARY.p * (1 - STATIONARY.p) / len(won)))


def test_drifting_win_rate_falls_by_thirty_percent(drawn):
    deals = pd.concat(drawn["drifting"], ignore_index=True)
    p = DRIFTING.win_rate(deals["created"])
    assert p.max() == DRIFTING.p and p.min() == pytest.approx(DRIFTING.p * 0.7)
    weeks = (deals["created"] - pd.Timestamp(DRIFTING.start)) / pd.Timedelta(weeks=1)
    early = (weeks < DRIFTING.drift_start_weeks).to_numpy()
    late = (weeks >= DRIFTING.drift_start_weeks + DRIFTING.drift_weeks).to_numpy()
    middle = ~early & ~late
    won = deals["won"].to_numpy()
    for part in (early, middle, late):  # wins given the creation dates are independent Bernoullis
        within(float(won[part].sum()), float(p[part].sum()), math.sqrt(float(np.sum(p[part] * (1 - p[part])))))
    # The drop from early to late cohorts, against 30% of the starting rate.
    drop = won[early].mean() - won[late].mean()
    se = math.sqrt(0.25 * 0.75 / early.sum() + 0.175 * 0.825 / late.sum())
    within(float(drop), 0.3 * DRIFTING.p, se)


def test_overdispersed_monthly_counts_are_negative_binomial(drawn):
    m, cv = OVERDISPERSED.per_week * COHORT_WEEKS, OVERDISPERSED.inflow_sd
    counts = np.concatenate([cohort_counts(OVERDISPERSED, d) for d in drawn["overdispersed"]])
    shape = 1 / cv**2
    mixture = stats.nbinom(shape, shape / (shape + m))  # Poisson(m G), G ~ Gamma(mean 1, sd cv)
    assert mixture.var() == pytest.approx(m + (cv * m) ** 2)
    within(float(counts.mean()), m, math.sqrt(mixture.var() / counts.size))
    check_variance(counts, mixture)
    # Far from Poisson's m: the sample variance is many Poisson SEs above it.
    with pytest.raises(AssertionError):
        check_variance(counts, stats.poisson(m))
    assert counts.max() > 2 * counts.min()  # months vary several-fold


def test_young_history_has_few_closes_before_its_first_origin(drawn):
    origin = YOUNG.first_origin
    days = (origin - pd.Timestamp(YOUNG.start)) / DAY
    rate = YOUNG.per_week / 7
    won_time, lost_time = lognorm(YOUNG.won_mean, YOUNG.won_sd), lognorm(YOUNG.lost_mean, YOUNG.lost_sd)

    def closed_by(age: float) -> float:
        return YOUNG.p * won_time.cdf(age) + (1 - YOUNG.p) * lost_time.cdf(age)

    # Closes by the origin are a thinned Poisson process: Poisson with this mean.
    expected = len(SEEDS) * rate * integrate.quad(closed_by, 0, days)[0]
    closes = sum(int((d["close"] <= origin).sum()) for d in drawn["young"])
    created = sum(int((d["created"] < origin).sum()) for d in drawn["young"])
    within(float(closes), expected, math.sqrt(expected))
    within(float(created), len(SEEDS) * rate * days, math.sqrt(len(SEEDS) * rate * days))
    assert expected < 0.15 * len(SEEDS) * rate * days  # heavy censoring: most deals are still open


@pytest.mark.parametrize("at", ["first_origin", "end"])
def test_zombie_deals_pile_up_open(drawn, at):
    world = ZOMBIES
    when = getattr(world, at)
    days = (when - pd.Timestamp(world.start)) / DAY
    share, p, old = world.zombie_share, world.p, 180.0
    won_time, lost_time = lognorm(world.won_mean, world.won_sd), lognorm(world.lost_mean, world.lost_sd)

    def open_at(age: float) -> float:
        return share * (1 - p) + p * won_time.sf(age) + (1 - share) * (1 - p) * lost_time.sf(age)

    # Deals open on the date (as the CRM's export of that day shows them) older than
    # `old` days: a thinned Poisson count.
    expected = len(SEEDS) * world.per_week / 7 * integrate.quad(open_at, old, days)[0]
    count = 0
    for deals in drawn["zombies"]:
        shown = read_deals(export_csv(deals, str(when.date())).encode()).deals
        opened = shown[shown["outcome"] == "open"]
        count += int(((when - opened["created"]) / DAY > old).sum())
    within(float(count), expected, math.sqrt(expected))
    # Nearly all are zombies (the world's own deals close within half a year), so their
    # number grows with the history: by the end about twice that of the first origin.
    assert expected > 0.9 * len(SEEDS) * world.per_week / 7 * share * (1 - p) * (days - old)

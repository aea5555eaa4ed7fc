"""Random numbers: one root seed, independent streams, and the draws both engines share.

The rules (NumPy's "Parallel random number generation" guide):

* one root ``SeedSequence(seed)``; its ``spawn`` children give independent streams, and
  child *i* is the same however many children are spawned, so replication *i* does not
  change when more runs are asked for or when work is split over more workers;
* within a replication, each kind of draw has its own stream, so changing one
  parameter (say the inflow) does not shift the random numbers behind another (the deal
  values): compared scenarios then see *common random numbers*;
* arrivals are generated in "unit-rate time" (a Poisson process of rate 1) and scaled
  by the inflow rate, and conversion rates come from inverse cdfs of fixed uniforms, so
  more inflow or a better rate can only add wins, never reshuffle them;
* one uniform ``u`` per deal and stage decides both whether the deal converts
  (``u < p``) and, if it does, how long it took: given ``u < p``, ``u / p`` is again
  uniform and independent of the decision, so the duration is the stage
  distribution's inverse cdf at ``u / p``. A better rate then converts a superset of
  deals, each no slower than before, and the engines never draw durations that
  cannot matter;
* deal values are i.i.d. and independent of everything else, so the *k*-th win of a
  replication takes the *k*-th value of the replication's value stream: revenue can
  only grow with the number of wins;
* a stage with follow-ups, no-shows or stalls (:attr:`sim.scenario.Stage.has_behaviour`)
  gives each deal two more uniforms there, from streams of their own (spawned after the
  existing ones, so scenarios without these keys draw exactly the numbers they drew
  before): one for the touches it needs, one for its meeting
  (:func:`stage_effects`). Both only ever take wins away through thresholds that move
  one way, so more persistence or fewer no-shows can only add wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from sim.distributions import QuantileTable
from sim.scenario import BetaRate, Scenario, Stage


def root_children(seed: int, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start`` to ``stop - 1`` of the root seed (one per replication or block).

    Child *i* is exactly ``SeedSequence(seed).spawn(n)[i]`` for any ``n > i``, built
    directly from its spawn key, so a worker makes only the seeds it needs.
    """
    return [np.random.SeedSequence(seed, spawn_key=(i,)) for i in range(start, stop)]


def generators(
    seed_sequence: np.random.SeedSequence, n: int, bit_generator: type[np.random.BitGenerator] = np.random.PCG64
) -> list[np.random.Generator]:
    """``n`` independent generators spawned from one seed sequence.

    Parameters
    ----------
    seed_sequence : numpy.random.SeedSequence
    n : int
    bit_generator : type, optional
        NumPy bit generator class; PCG64 (NumPy's default) unless an engine that is
        bound by raw draws asks for a faster one such as SFC64.
    """
    return [np.random.Generator(bit_generator(child)) for child in seed_sequence.spawn(n)]


def child(seed_sequence: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of a seed sequence, as ``spawn`` would make it, without spawning.

    ``spawn`` counts the children made so far; building the child from its spawn key
    gives the same stream whatever else has been spawned, so a new kind of draw can take
    a fixed index after the existing ones and leave their numbers alone.
    """
    return np.random.SeedSequence(
        seed_sequence.entropy, spawn_key=(*seed_sequence.spawn_key, index), pool_size=seed_sequence.pool_size
    )


def stream(
    seed_sequence: np.random.SeedSequence, index: int, bit_generator: type[np.random.BitGenerator] = np.random.PCG64
) -> np.random.Generator:
    """The generator of child ``index`` of a seed sequence, made on its own.

    It is ``generators(seed_sequence, n)[index]`` for a sequence that has spawned
    nothing yet, so a model can make only the streams it reads (each costs about 15
    microseconds, a good part of a short SimPy replication).
    """
    return np.random.Generator(bit_generator(child(seed_sequence, index)))


def touches(stage: Stage, u_touch: np.ndarray) -> np.ndarray:
    """Follow-ups each deal needs in the stage: ``ceil`` of ``touches_needed`` at ``u_touch``, at least 1."""
    return np.maximum(1.0, np.ceil(np.asarray(stage.touches_needed.ppf(u_touch), dtype=float)))


def meeting_thresholds(stage: Stage) -> tuple[float, float]:
    """Where ``u_meeting`` splits: below the first the deal is lost, below the second (``no_show``) rescheduled.

    ``[0, ns (1 - r))`` is a no-show never rescheduled, ``[ns (1 - r), ns (1 - r) + ns r l)``
    a reschedule never heard from again (both lost), ``[.., ns)`` a reschedule that is held
    and ``[ns, 1)`` a meeting held the first time.
    """
    ns = stage.no_show or 0.0
    r = stage.reschedule or 0.0
    return ns * (1.0 - r) + ns * r * stage.lost_after_reschedule, ns


def stage_effects(
    stage: Stage, days: np.ndarray, u_touch: np.ndarray | None, u_meeting: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Follow-ups, no-shows and stalls for deals that would convert out of ``stage`` (both engines).

    Parameters
    ----------
    stage : Stage
    days : ndarray
        Each deal's days in the stage from its conversion uniform, ``ppf(u / p)``.
    u_touch, u_meeting : ndarray or None
        Each deal's two behaviour uniforms for the stage (ignored, and may be None, where
        the stage has no follow-ups or no no-shows).

    Returns
    -------
    kept : ndarray of bool
        Whether the deal still converts: the touches it needs are at most ``max_touches``,
        its meeting is held (at the first try or after one reschedule), and its time in
        the stage is at most ``stale_after_days``.
    days : ndarray of float
        Its time in the stage: ``days + touch_interval_days * (touches - 1)``, plus
        ``reschedule_days`` if the meeting was rescheduled (meaningful where ``kept``).
    """
    days = np.asarray(days, dtype=float)
    kept = np.ones(days.shape, dtype=bool)
    needed = None
    if stage.touches_needed is not None:
        needed = touches(stage, u_touch)
        if stage.touch_interval_days:
            days = days + stage.touch_interval_days * (needed - 1.0)
    held = held_whatever_the_time(stage, u_touch, u_meeting, needed)
    if held is not None:
        kept &= held
    if stage.no_show is not None:
        _, rescheduled_below = meeting_thresholds(stage)
        days = np.where(u_meeting < rescheduled_below, days + stage.reschedule_days, days)
    if stage.stale_after_days is not None:
        kept &= days <= stage.stale_after_days
    return kept, days


def held_whatever_the_time(
    stage: Stage, u_touch: np.ndarray | None, u_meeting: np.ndarray | None, needed: np.ndarray | None = None
) -> np.ndarray | None:
    """Which deals that would convert out of ``stage`` still do, however long they take there.

    The conditions of :func:`stage_effects` that do not look at the time in the stage:
    the touches a deal needs (``needed``, when already worked out) are at most
    ``max_touches``, and its meeting is held. None when the stage has neither. The
    vectorised engine asks first, to work out the time only of the deals that pass.
    """
    held = None
    if stage.touches_needed is not None and stage.max_touches is not None:
        held = (touches(stage, u_touch) if needed is None else needed) <= stage.max_touches
    if stage.no_show is not None:
        meeting = u_meeting >= meeting_thresholds(stage)[0]
        held = meeting if held is None else held & meeting
    return held


def touch_ok_probability(stage: Stage) -> float:
    """P(the touches a deal needs are at most ``max_touches``): ``F(max_touches)`` (1 without a limit)."""
    if stage.touches_needed is None or stage.max_touches is None:
        return 1.0
    # ceil(x) <= m exactly when x <= m for a whole m >= 1 (and the floor of 1 is below m).
    return float(stage.touches_needed.cdf(float(stage.max_touches)))


def meeting_held_probability(stage: Stage) -> float:
    """P(the meeting happens): ``(1 - ns) + ns * r * (1 - l)`` (1 without ``no_show``)."""
    lost_below, _ = meeting_thresholds(stage)
    return 1.0 - lost_below


def effective_conversion(stage: Stage, rate: float) -> float:
    """``rate * P(touches within persistence) * P(meeting held)``: stalls are left out (they are timing)."""
    return rate * touch_ok_probability(stage) * meeting_held_probability(stage)


MAX_TOUCH_TERMS = 10_000
"""Touch counts summed over in :func:`mean_extra_days` (beyond it the tail is ignored)."""


def mean_extra_days(stage: Stage) -> float:
    """Mean days follow-ups and reschedules add to the time of a deal that converts (stalls ignored).

    ``touch_interval_days * (E[touches | touches <= max_touches] - 1)`` plus
    ``reschedule_days * P(rescheduled | meeting held)``.
    """
    extra = 0.0
    if stage.touches_needed is not None and stage.touch_interval_days:
        top = stage.max_touches
        if top is None:
            top = int(min(MAX_TOUCH_TERMS, max(1.0, math.ceil(float(stage.touches_needed.ppf(1.0 - 1e-12))))))
        k = np.arange(1, top + 1, dtype=float)
        cdf = np.asarray(stage.touches_needed.cdf(k), dtype=float)  # P(needed <= k): the floor of 1 folds in
        mass = np.diff(np.concatenate([[0.0], cdf]))
        if cdf[-1] > 0:
            extra += stage.touch_interval_days * (float(np.sum(k * mass)) / float(cdf[-1]) - 1.0)
    if stage.no_show is not None and stage.reschedule:
        lost_below, rescheduled_below = meeting_thresholds(stage)
        held = 1.0 - lost_below
        if held > 0:
            extra += stage.reschedule_days * (rescheduled_below - lost_below) / held
    return extra


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
    """The inverse cdf of Beta(a, b) as a :class:`sim.distributions.QuantileTable`.

    Exact ``betaincinv`` at ``u = i / n`` and for ``u < 2^-6`` or ``u >= 1 - 2^-6`` (64
    intervals at each end, where the quantile function bends most), linear in between.
    For ``u`` fixed, a better rate (a higher Beta mean) has higher exact quantiles at
    every grid point, and the chord between them uses the same weight, so the tabulated
    rate is monotone in the mean as the exact one is: under common random numbers a
    better rate can still only add wins. It is monotone in ``u`` as well.

    Error: measured over 10^6 uniforms, the largest difference from ``betaincinv`` is
    7e-7 on the rate (1.1e-5 of the Beta's sd) for the reference scenario's
    Beta(32.5, 17.5), 1.1e-6 (3.4e-5 sd) for a skewed Beta(0.5, 20);
    :mod:`tests.test_tables` holds it to 1e-4 sd.

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


def p_won_given_age(rate, won, lost, age):
    """Chance an open deal of a given age converts, by Bayes' rule on "still open at age a".

    ``rate * S_won(a) / (rate * S_won(a) + (1 - rate) * S_lost(a))`` with ``S`` the
    survival functions of the durations of deals that convert (``won``) and of deals that
    are lost (``lost``; None means "like converting deals", and the answer is ``rate``).
    Deals that are lost slowly make old open deals likelier losers, and the reverse.

    Parameters
    ----------
    rate : float or ndarray
        The stage's conversion rate (per replication in the engines).
    won, lost : Distribution or None
        Duration models (:mod:`sim.distributions`).
    age : float or ndarray
        Days the deal has been in the stage.

    Returns
    -------
    ndarray
        Broadcast over ``rate`` and ``age``.
    """
    s_won = np.asarray(won.sf(age), dtype=float)
    s_lost = s_won if lost is None else np.asarray(lost.sf(age), dtype=float)
    return _survivor_odds(rate, s_won, s_lost)


def aged_conversion(stage: Stage, rate, age):
    """:func:`p_won_given_age` for a stage: its ``duration`` against its ``lost_duration``."""
    return p_won_given_age(rate, stage.duration, stage.lost_duration, age)


def _survivor_odds(rate, s_won, s_lost):
    # A deal older than both models allow (both survivals 0) has outlived every deal the
    # model knows: 0, which is what a "zombie" in a CRM export usually is.
    rate = np.asarray(rate, dtype=float)
    numerator = rate * s_won
    denominator = numerator + (1.0 - rate) * s_lost
    return np.divide(
        numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape), where=denominator > 0
    )


@dataclass(frozen=True)
class ListedDeals:
    """The scenario's listed open deals, with what their ages imply worked out once.

    Attributes
    ----------
    stage : ndarray of int
        Index of the stage each deal is in.
    age : ndarray of float
        Days each deal has been in its stage.
    amount : ndarray of float
        Its amount, NaN where none is given (then a won deal takes a drawn value).
    s_won, s_lost : ndarray of float
        Survival of the stage's converting and losing durations at the deal's age.
    start : ndarray of float
        ``F(age)`` of the converting duration: where its remaining time starts.
    """

    stage: np.ndarray
    age: np.ndarray
    amount: np.ndarray
    s_won: np.ndarray
    s_lost: np.ndarray
    start: np.ndarray

    @classmethod
    def of(cls, scenario: Scenario) -> ListedDeals:
        """Work out the listed deals of a scenario (one scipy call per stage, not per deal)."""
        index = {name: j for j, name in enumerate(scenario.stage_names)}
        deals = scenario.open_deals
        stage = np.array([index[d.stage] for d in deals], dtype=np.int64)
        age = np.array([d.age_days for d in deals], dtype=float)
        amount = np.array([np.nan if d.amount is None else d.amount for d in deals], dtype=float)
        s_won, s_lost, start = np.ones(len(deals)), np.ones(len(deals)), np.zeros(len(deals))
        for j, st in enumerate(scenario.stages):
            here = stage == j
            if here.any():
                start[here] = st.duration.cdf(age[here])
                s_won[here] = st.duration.sf(age[here])
                s_lost[here] = s_won[here] if st.lost_duration is None else st.lost_duration.sf(age[here])
        return cls(stage, age, amount, s_won, s_lost, start)

    def __len__(self) -> int:
        return len(self.stage)

    def conversion(self, rate, deal: np.ndarray | None = None):
        """P(deals convert out of their stage | their age), for their stage's ``rate``.

        ``deal`` picks deals by index (all by default); ``rate`` holds the rate of each
        picked deal's stage: shape (deals,) or (deals, reps).
        """
        s_won, s_lost = (self.s_won, self.s_lost) if deal is None else (self.s_won[deal], self.s_lost[deal])
        shape = (-1,) + (1,) * (np.ndim(rate) - 1)
        return _survivor_odds(rate, s_won.reshape(shape), s_lost.reshape(shape))

    def remaining(self, scenario: Scenario, deal: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Days left in their stage for converting deals ``deal`` (indices) at uniforms ``v``.

        The duration conditioned on exceeding the age, ``F^-1(F(a) + v (1 - F(a))) - a``:
        monotone in ``v`` like a fresh deal's ``F^-1(v)``.
        """
        days = np.empty(len(deal))
        stage = self.stage[deal]
        for j in np.unique(stage):
            here = stage == j
            d, start = deal[here], self.start[deal[here]]
            days[here] = scenario.stages[j].duration.ppf(start + v[here] * (1.0 - start)) - self.age[d]
        return np.maximum(days, 0.0)

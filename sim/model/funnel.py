"""What a stage does to a deal: conversion with follow-ups, no-shows and stalls, and an open deal's age.

These are the model's meaning, shared by every engine and by calibration: given a
deal's uniforms in a stage, whether it still converts and how long it stays
(:func:`stage_effects`); given an open deal's age, how likely it is to convert
(:func:`p_won_given_age`, :class:`ListedDeals`); and the averages the plan on averages
uses (:func:`effective_conversion`, :func:`mean_extra_days`). Nothing here draws a
random number: the engines bring the uniforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.model.scenario import Scenario, Stage


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
        Duration models (:mod:`sim.model.distributions`).
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

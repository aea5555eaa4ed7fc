"""Synthetic deal histories that each show one way a forecast from a CRM export goes wrong.

Every world is a single-stage funnel played out by the SimPy engine, one creation cohort
at a time: the history is cut into cohorts of :data:`COHORT_WEEKS` weeks, and each
cohort is its own scenario (:func:`tests.crm_synth.engine_deals`) whose inflow runs
during the cohort's weeks only (weekly ``multipliers`` 1, then 0) and whose horizon is
long enough for every deal of it to close. What changes from cohort to cohort is what
a single calibrated scenario cannot say: the win rate drifts, the inflow level swings
more than Poisson, the history is young, or the CRM never records some losses.

A world is a :class:`CohortWorld`; its ``deals(seed)`` is the frame of
:meth:`tests.crm_synth.World.deals` (``id``, ``created``, ``won``, ``close``, the true
close, possibly after the export, NaT for a deal the CRM never closes, ``amount``), and
``export(seed)`` what the CRM shows on the last day. The worlds share their seeds'
streams, so the same seed gives the same arrivals in the stationary and drifting worlds
(common random numbers). Figures follow /work/shared/DOMAIN.md: a B2B win rate of 25%,
a cycle of a few weeks to a couple of months, a few tens of new opportunities a week.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.crm.backtest import rolling_origins
from sim.crm.reader import CrmData, read_deals
from sim.model.scenario import Inflow, Scenario
from tests.crm_synth import World, engine_deals, export_csv

COHORT_WEEKS = 4
"""Weeks of creation per cohort: a "month" of the overdispersed world."""
TAIL_DAYS = 1_000.0
"""Days a cohort is played out after its last creation, long enough for every deal to close."""
ORIGINS = 20
STEP_DAYS = 14
HORIZON_DAYS = 91
"""The rolling origins a world is made for: 20 of them, two weeks apart, each forecasting 91 days."""
AFTER_LAST_DAYS = HORIZON_DAYS + 7
"""Days of history after the last origin: its whole horizon, and a week so the export ends after it."""


LEVELS, ZOMBIE_FLAGS = 0, 1
"""The world's own streams, apart from the cohorts' engine seeds."""


def _world_rng(seed: int, which: int) -> np.random.Generator:
    # Child 0 of the seed holds the world's own streams; children 1, 2, ... seed the cohorts.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, which)))


@dataclass(frozen=True)
class CohortWorld:
    """A single-stage funnel played out cohort by cohort: the truth behind a synthetic export.

    Deals are created at ``per_week`` times the cohort's inflow level, each won with the
    rate of its creation date (:meth:`win_rate`) after a lognormal time, else lost after
    another, worth a lognormal amount. Days, deals per week and money as in
    :class:`tests.crm_synth.World`.

    Attributes
    ----------
    name : str
    history_weeks : int
        Weeks from the first deal to the first origin.
    per_week, p : float
        The inflow's base rate and the win rate before any drift.
    drift, drift_start_weeks, drift_weeks : float
        The win rate of deals created ``t`` weeks in is ``p`` until ``drift_start_weeks``,
        then falls linearly to ``p * (1 - drift)`` over ``drift_weeks``, and stays there.
    inflow_sd : float
        Each cohort's inflow level is ``Gamma`` with mean 1 and this sd (0: always 1).
    zombie_share : float
        Share of deals that, when lost, are never closed in the CRM (open for ever).
    won_mean, won_sd, lost_mean, lost_sd : float
        Lognormal days from creation to a win and to a loss.
    value_mean, value_sd : float
        Lognormal amount of a deal.
    start : str
        The first day of the history.
    """

    name: str
    history_weeks: int = 52
    per_week: float = 40.0
    p: float = 0.25
    drift: float = 0.0
    drift_start_weeks: float = 26.0
    drift_weeks: float = 52.0
    inflow_sd: float = 0.0
    zombie_share: float = 0.0
    won_mean: float = 45.0
    won_sd: float = 30.0
    lost_mean: float = 30.0
    lost_sd: float = 25.0
    value_mean: float = 20_000.0
    value_sd: float = 15_000.0
    start: str = "2022-01-03"

    @property
    def first_origin(self) -> pd.Timestamp:
        """The first as-of date of the backtest the world is made for."""
        return pd.Timestamp(self.start) + pd.Timedelta(weeks=self.history_weeks)

    def origins(self, n: int = ORIGINS, step_days: int = STEP_DAYS) -> list[pd.Timestamp]:
        """``n`` as-of dates ``step_days`` apart from :attr:`first_origin`."""
        return rolling_origins(self.first_origin, self.first_origin + pd.Timedelta(days=step_days * (n - 1)), step_days)

    @property
    def n_cohorts(self) -> int:
        """Cohorts of :data:`COHORT_WEEKS` weeks from the start to past the last origin's horizon."""
        last = self.origins()[-1] + pd.Timedelta(days=AFTER_LAST_DAYS)
        return math.ceil((last - pd.Timestamp(self.start)) / pd.Timedelta(weeks=COHORT_WEEKS))

    @property
    def end(self) -> pd.Timestamp:
        """The last day of the history: the export's date."""
        return pd.Timestamp(self.start) + pd.Timedelta(weeks=COHORT_WEEKS * self.n_cohorts)

    def win_rate(self, created) -> np.ndarray:
        """The true win rate of deals created on ``created`` (dates).

        The linear fall of :attr:`drift` taken at the middle of each deal's cohort (the
        engine plays a cohort at one rate), so the drift falls in steps of a cohort.
        """
        offset = pd.DatetimeIndex(np.atleast_1d(created)) - pd.Timestamp(self.start)
        cohort = np.floor(offset / pd.Timedelta(weeks=COHORT_WEEKS))
        weeks = (np.asarray(cohort, dtype=float) + 0.5) * COHORT_WEEKS
        fall = np.clip((weeks - self.drift_start_weeks) / self.drift_weeks, 0.0, 1.0)
        return self.p * (1.0 - self.drift * fall)

    def cohort_starts(self) -> pd.DatetimeIndex:
        """The first day of each cohort."""
        return pd.date_range(self.start, periods=self.n_cohorts, freq=f"{7 * COHORT_WEEKS}D")

    def inflow_levels(self, seed: int) -> np.ndarray:
        """Each cohort's inflow level (mean 1): Gamma with sd :attr:`inflow_sd`, or all 1."""
        if self.inflow_sd == 0:
            return np.ones(self.n_cohorts)
        shape = 1.0 / self.inflow_sd**2
        return _world_rng(seed, LEVELS).gamma(shape, 1.0 / shape, self.n_cohorts)

    def cohort_scenario(self, level: float, p: float) -> Scenario:
        """One cohort as a scenario: new deals for :data:`COHORT_WEEKS` weeks, then none until all close."""
        horizon = 7.0 * COHORT_WEEKS + TAIL_DAYS
        truth = World(
            per_week=self.per_week * level,
            p=p,
            won_mean=self.won_mean,
            won_sd=self.won_sd,
            lost_mean=self.lost_mean,
            lost_sd=self.lost_sd,
            value_mean=self.value_mean,
            value_sd=self.value_sd,
        ).scenario(horizon)
        weeks = [1.0] * COHORT_WEEKS + [0.0] * (truth.n_weeks - COHORT_WEEKS)
        return truth.model_copy(update={"inflow": Inflow(per_week=truth.inflow.per_week, multipliers=tuple(weeks))})

    def deals(self, seed: int) -> pd.DataFrame:
        """Every deal of the history with its true fate, as :meth:`tests.crm_synth.World.deals`.

        Each cohort is one replication of :meth:`cohort_scenario` at its
        :meth:`win_rate`; a lost deal that is a zombie keeps a NaT close (never closed).
        """
        starts = self.cohort_starts()
        levels = self.inflow_levels(seed)
        rates = self.win_rate(starts)
        # One engine seed per cohort, from the world's seed (children 1.. of it; 0 is the world's own).
        seeds = [int(np.random.SeedSequence(seed, spawn_key=(k + 1,)).generate_state(1)[0]) for k in range(len(starts))]
        frames = [
            engine_deals(self.cohort_scenario(level, p), start, cohort_seed)[0]
            for start, level, p, cohort_seed in zip(starts, levels, rates, seeds, strict=True)
        ]
        deals = pd.concat(frames, ignore_index=True)
        deals = deals[deals["created"] < self.end].sort_values("created", kind="stable").reset_index(drop=True)
        if self.zombie_share > 0:
            zombie = _world_rng(seed, ZOMBIE_FLAGS).uniform(size=len(deals)) < self.zombie_share
            deals.loc[zombie & ~deals["won"], "close"] = pd.NaT
        deals["id"] = [f"006{seed:03d}{i:07d}" for i in range(len(deals))]
        return deals

    def export(self, seed: int) -> CrmData:
        """What the CRM shows on :attr:`end`, read as :func:`sim.crm.reader.read_deals` reads a file."""
        return read_deals(export_csv(self.deals(seed), str(self.end.date())).encode())


STATIONARY = CohortWorld("stationary")
"""A steady funnel: 40 new deals a week, win rate 0.25, two years of history. A calibrated
scenario is correctly specified here; a forecast should be honest and beat the run rate."""

DRIFTING = CohortWorld("drifting", drift=0.3)
"""The win rate of deals created after half a year falls linearly by 30% over a year (0.25
to 0.175), then stays there: pooled history over-states the rate of the deals to come."""

OVERDISPERSED = CohortWorld("overdispersed", inflow_sd=0.35)
"""Each four-week month's inflow level is Gamma (mean 1, sd 0.35): a month's new deals vary
with variance ``m + (0.35 m)**2``, not Poisson's ``m``, and a trailing rate misleads."""

YOUNG = CohortWorld(
    "young", history_weeks=26, per_week=20.0, won_mean=200.0, won_sd=40.0, lost_mean=170.0, lost_sd=35.0
)
"""A young team (20 new deals a week), half a year of history before the first origin and
cycles of six to seven months: the first closes come in the month or two before it, so
early fits rest on few, quick deals."""

ZOMBIES = CohortWorld("zombies", zombie_share=0.1)
"""One deal in ten, when lost, is never closed in the CRM: old open deals pile up."""

WORLDS = {world.name: world for world in (STATIONARY, DRIFTING, OVERDISPERSED, YOUNG, ZOMBIES)}

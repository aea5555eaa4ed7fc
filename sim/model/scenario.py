"""The scenario: a validated description of a sales funnel, and its TOML form.

A scenario holds parameters only (no generators, environments or results). It is
checked once, at the edge, by :func:`scenario_from_dict`; everything downstream can
trust it. Problems are reported as :class:`ScenarioError`, whose lines name the
field path and the problem, e.g. ``stages[1].conversion: must be between 0 and 1,
got 1.3``.

Variants (what-ifs) are made with ``model_copy(update=...)`` or
:func:`with_updates`, never by mutation: every model is frozen.
"""

from __future__ import annotations

import math
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from scipy import stats

from sim.errors import QUOTE_CHARS, InputError, quoted, read_limited, shorten
from sim.model.distributions import (
    FAMILIES,
    MAX_COUNT,
    MAX_VALUE,
    Amount,
    Distribution,
    NonNegative,
    Positive,
    PositiveAmount,
    Real,
    Whole,
)

NEVER_BINDING = 10**9
"""Deals a rep works at once in :meth:`Scenario.with_enough_reps`: more than any run has."""
MAX_DEALS_PER_RUN = 1_000_000
"""Refuse scenarios whose expected deals per replication exceed this (memory and time)."""
MAX_HORIZON_DAYS = 3660.0
"""Ten years: the weekly tables and arrival streams stay a sensible size."""
MAX_FILE_BYTES = 5_000_000
"""Largest scenario file read (and the largest scenario text from a link or upload)."""
STAGE_NAME_CHARS = 80
"""Longest stage name."""
MAX_DEPTH = 8
"""Deepest nesting of tables and lists a scenario document may have (it needs 4)."""
MAX_DISPERSION = 3.0
"""Largest ``[inflow] dispersion`` and ``deal_value_dispersion``: beyond it a level is nearly always 0 or huge."""


MAX_MULTIPLIER = 1e6
"""Largest seasonal inflow multiplier: a week a million times the usual is a typo, and sums of them overflow."""
MIN_MONEY = 0.01
"""Smallest quota or cost: results are divided by them, and a cent keeps the ratios finite."""


def _money(value: float) -> float:
    """A quota or a cost: finite, from :data:`MIN_MONEY` to :data:`~sim.model.distributions.MAX_VALUE`."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value:g}")
    if not MIN_MONEY <= value <= MAX_VALUE:
        raise ValueError(f"must be an amount from {MIN_MONEY:g} to {MAX_VALUE:g} (a trillion), got {value:g}")
    return value


Money = Annotated[Real, AfterValidator(_money)]
"""A quota or cost field (money that results are divided by)."""


def _dispersion(value: float) -> float:
    """A coefficient of variation between replications: finite, 0 to :data:`MAX_DISPERSION`."""
    if not math.isfinite(value) or not 0.0 <= value <= MAX_DISPERSION:
        raise ValueError(f"must be a finite number between 0 and {MAX_DISPERSION:g}, got {value}")
    return value


class ScenarioError(InputError):
    """A scenario that cannot be used; ``problems`` holds one line per problem."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _check_probability(value: float) -> float:
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


class BetaRate(_Model):
    """An uncertain conversion rate: Beta(mean*c, (1-mean)*c), drawn once per replication.

    ``concentration`` (c) acts like a number of past deals the mean is based on: the
    larger it is, the surer the rate.
    """

    mean_: Real = Field(alias="mean")
    concentration: PositiveAmount

    @field_validator("mean_")
    @classmethod
    def _mean_inside(cls, value):
        if not (0.0 < value < 1.0):
            raise ValueError(f"must be strictly between 0 and 1, got {value}")
        return value

    def mean(self) -> float:
        """The rate's expected value."""
        return self.mean_

    def beta_parameters(self) -> tuple[float, float]:
        """Beta(a, b) parameters: a = mean * c, b = (1 - mean) * c."""
        return self.mean_ * self.concentration, (1 - self.mean_) * self.concentration

    def scipy(self):
        """The frozen ``scipy.stats.beta`` of the rate (built once, cached)."""
        return _frozen_beta(*self.beta_parameters())


@lru_cache(maxsize=512)
def _frozen_beta(a: float, b: float):
    return stats.beta(a, b)


def _conversion_kind(value: Any) -> str:
    return "beta" if isinstance(value, dict | BetaRate) else "fixed"


Conversion = Annotated[
    Annotated[Real, Tag("fixed")] | Annotated[BetaRate, Tag("beta")],
    Discriminator(_conversion_kind),
]


def _whole_at_least_one(value):
    """A count of at least 1 given as a whole number (``2.0`` is taken as 2; ``2.5`` or ``"2"`` is refused)."""
    return _whole_at_least(value, 1)


def _whole_at_least(value, least: int):
    """A count of at least ``least`` and at most :data:`MAX_COUNT`, given as a whole number (or None)."""
    if value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"must be a whole number >= {least}, got {quoted(value)}")
    if value > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT:,}, got {value:,}")
    return value


def listing(names: list[str], most: int = 5) -> str:
    """Names for a message: the first ``most``, each cut short, then how many more."""
    shown = ", ".join(shorten(name, QUOTE_CHARS) for name in names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def rate_mean(conversion: float | BetaRate) -> float:
    """Expected value of a conversion rate, fixed or Beta."""
    return conversion.mean() if isinstance(conversion, BetaRate) else float(conversion)


class Stage(_Model):
    """One funnel stage: how long deals stay in it and how many move on.

    Optional behaviour keys (see :func:`sim.model.funnel.stage_effects` for the draws):

    * follow-ups: ``touches_needed`` is how many follow-ups a deal needs before it
      converts (``ceil`` of a draw, at least 1), ``max_touches`` how many the rep makes
      before giving up (a deal that needs more is lost), ``touch_interval_days`` the
      days between touches (a converting deal needing ``k`` touches stays
      ``(k - 1) * touch_interval_days`` days longer);
    * no-shows: ``no_show`` is the chance the meeting that ends the stage does not
      happen; after a no-show the deal is rescheduled with chance ``reschedule`` (once at
      most, adding ``reschedule_days``), and a rescheduled deal is never heard from again
      with chance ``lost_after_reschedule``; a no-show that is not rescheduled is lost;
    * stalls: a deal still in the stage after ``stale_after_days`` days is lost.

    A deal converts when its conversion draw says so *and* its touches are within the
    rep's persistence, its meeting happens, and it does not go stale.
    """

    name: str = Field(min_length=1, max_length=STAGE_NAME_CHARS)
    conversion: Conversion
    duration: Distribution = Field(description="days in the stage")
    open: Whole = Field(default=0, ge=0, description="deals already in this stage at day 0")
    lost_duration: Distribution | None = Field(
        default=None, description="days a deal that will be lost stays before it is marked lost"
    )
    per_rep: int | None = Field(
        default=None, description="deals one rep can work at once in this stage (needs [capacity]); no limit if absent"
    )
    touches_needed: Distribution | None = Field(
        default=None, description="follow-ups a deal needs before it converts (ceil of a draw, at least 1)"
    )
    max_touches: int | None = Field(default=None, description="follow-ups the rep makes before giving up")
    touch_interval_days: Amount = Field(default=0.0, description="days between follow-ups")
    no_show: Real | None = Field(default=None, description="chance the meeting that ends the stage is a no-show")
    reschedule: Real | None = Field(default=None, description="chance a no-show is rescheduled (once)")
    lost_after_reschedule: Real = Field(default=0.0, description="chance a rescheduled deal is never heard from again")
    reschedule_days: Amount = Field(default=7.0, description="days a reschedule adds")
    stale_after_days: Positive | None = Field(
        default=None, description="a deal still here after this many days is lost"
    )

    @field_validator("conversion")
    @classmethod
    def _rate_inside(cls, value):
        if isinstance(value, float):
            _check_probability(value)
        return value

    @field_validator("per_rep", mode="before")
    @classmethod
    def _whole_per_rep(cls, value):
        return _whole_at_least_one(value)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("max_touches", mode="before")
    @classmethod
    def _whole_touches(cls, value):
        return _whole_at_least_one(value)

    @field_validator("no_show", "reschedule", "lost_after_reschedule")
    @classmethod
    def _probability(cls, value):
        return value if value is None else _check_probability(value)

    @model_validator(mode="after")
    def _behaviour_fits(self):
        """Keys that only mean something with another key."""
        if self.touches_needed is None:
            if self.max_touches is not None:
                raise ValueError("max_touches: needs touches_needed (how many follow-ups a deal needs); add it")
            if self.touch_interval_days != 0:
                raise ValueError("touch_interval_days: needs touches_needed (how many follow-ups a deal needs); add it")
        if self.no_show is None and self.reschedule is not None:
            raise ValueError("reschedule: needs no_show (the chance of a no-show); add it")
        if self.reschedule is None:
            if self.lost_after_reschedule != 0:
                raise ValueError("lost_after_reschedule: needs reschedule (the chance a no-show is rescheduled)")
            if self.reschedule_days != 7.0:
                raise ValueError("reschedule_days: needs reschedule (the chance a no-show is rescheduled)")
        return self

    @property
    def has_behaviour(self) -> bool:
        """Whether follow-ups, no-shows or stalls change which deals convert here, or when."""
        return self.touches_needed is not None or self.no_show is not None or self.stale_after_days is not None


DAYS_PER_MONTH = 365.25 / 12
"""Length of a month for inflow multipliers given per month."""


class Inflow(_Model):
    """New opportunities entering the first stage.

    ``multipliers`` (optional) make the inflow seasonal: one factor per week, or per
    month (of :data:`DAYS_PER_MONTH` days), of the horizon; the inflow in that period is
    ``per_week`` times the factor.

    ``dispersion`` (optional, default 0) makes the inflow's level vary between
    replications (between periods like the one simulated): each replication draws one
    multiplier ``G ~ Gamma(shape=1 / dispersion**2, scale=dispersion**2)`` (mean 1, sd
    ``dispersion``) and new opportunities arrive at ``per_week * G`` (times the seasonal
    factor) for the whole horizon. A period's count of Poisson arrivals with expected
    size ``m`` is then negative binomial, with variance ``m + (dispersion * m)**2``; 0
    is a steady Poisson inflow. With a ``[team]`` each rep draws its own multiplier.
    """

    per_week: NonNegative
    process: Literal["poisson", "fixed"] = "poisson"
    multipliers: tuple[Real, ...] | None = Field(default=None, min_length=1, max_length=600)
    dispersion: Real = Field(default=0.0, description="coefficient of variation of the inflow level between periods")

    @field_validator("multipliers")
    @classmethod
    def _factors(cls, value):
        if value is not None:
            bad = [m for m in value if not math.isfinite(m) or not 0 <= m <= MAX_MULTIPLIER]
            if bad:
                raise ValueError(f"every multiplier must be a number from 0 to {MAX_MULTIPLIER:g}, got {bad[0]:g}")
        return value

    @field_validator("dispersion")
    @classmethod
    def _spread(cls, value):
        return _dispersion(value)


class OpenDeal(_Model):
    """A deal already in the pipeline, listed by name: its stage, age and amount.

    An open deal of age ``a`` is not a fresh deal: the engines draw its outcome from
    what surviving ``a`` days in the stage implies, and its remaining time from the
    stage's duration conditioned on exceeding ``a`` (see :mod:`sim.engines.streams`). A listed
    deal that is won is worth its ``amount`` when one is given.
    """

    stage: str
    age_days: Amount = 0.0
    amount: Amount | None = None
    name: str = ""


class Capacity(_Model):
    """Reps shared by the funnel: how many deals can be worked at once.

    A stage with ``per_rep`` serves at most ``reps * per_rep`` deals at a time; a deal
    that finds every slot taken waits first in, first out, and with ``max_wait_days`` a
    deal that has waited longer than that is lost (neglected).
    """

    reps: int
    max_wait_days: Positive | None = None

    @field_validator("reps", mode="before")
    @classmethod
    def _whole_reps(cls, value):
        return _whole_at_least_one(value)


MAX_TEAM_REPS = 1000
"""A team is simulated rep by rep: beyond this the run time is out of proportion."""


class Team(_Model):
    """A team of reps, each with its own funnel drawn from a population.

    With a ``[team]`` section, ``[inflow] per_week`` is each rep's inflow and ``[quota]``
    is the team's. Each stage's conversion rate is drawn per rep (and per replication)
    from Beta(m * c, (1 - m) * c), with m the stage's mean rate and c
    ``rate_concentration``. The last ``new_reps`` reps are new: their inflow rises
    linearly from 0 at day 0 to full after ``ramp_months`` months (of
    :data:`DAYS_PER_MONTH` days). ``hire_month`` (default 0) is when the new reps start:
    before it they bring nothing and cost nothing, and their ramp begins then.
    ``cost_per_year`` is what one rep costs a year (salary, taxes, expenses): the
    denominator of the value ratio. See :mod:`sim.model.team`.
    """

    reps: int
    rep_quota: Money
    rate_concentration: PositiveAmount
    new_reps: int = 0
    ramp_months: Positive | None = None
    hire_month: NonNegative = 0.0
    cost_per_year: Money | None = None  # > 0: the value ratio divides by it

    @field_validator("reps", mode="before")
    @classmethod
    def _whole_reps(cls, value):
        value = _whole_at_least_one(value)
        if value > MAX_TEAM_REPS:
            raise ValueError(f"must be at most {MAX_TEAM_REPS:,}, got {value:,}")
        return value

    @field_validator("new_reps", mode="before")
    @classmethod
    def _whole_new_reps(cls, value):
        return _whole_at_least(value, 0)  # 0: no new reps

    @property
    def mixed(self) -> bool:
        """Whether the team has both experienced and new reps: results then come per group too."""
        return 0 < self.new_reps < self.reps

    @model_validator(mode="after")
    def _new_reps_fit(self):
        if self.new_reps > self.reps:
            raise ValueError(f"new_reps: must be <= team.reps ({self.reps}), got {self.new_reps}")
        if self.new_reps and self.ramp_months is None:
            raise ValueError(
                "ramp_months: new reps need ramp_months (months until a new rep's inflow is full); "
                "set it, or set new_reps = 0"
            )
        return self


class Quota(_Model):
    """The target: revenue or a number of won deals, exactly one of the two."""

    revenue: Money | None = None
    deals: Whole | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.revenue is None) == (self.deals is None):
            given = "both" if self.revenue is not None else "neither"
            raise ValueError(f"give exactly one of revenue or deals, got {given}")
        if self.deals is not None and self.deals <= 0:
            raise ValueError(f"deals: must be a number > 0, got {self.deals}")
        return self

    @property
    def unit(self) -> Literal["revenue", "deals"]:
        """Which quantity the quota counts."""
        return "revenue" if self.revenue is not None else "deals"

    @property
    def target(self) -> float:
        """The quota in its unit."""
        return float(self.revenue if self.revenue is not None else self.deals)


MAX_SEGMENTS = 200
"""Most segments a scenario may hold."""
SEGMENT_SECTIONS = ("inflow", "deal_value", "deal_value_dispersion", "stages", "open_deals", "capacity", "team")
"""The per-funnel sections a segment may give; any it leaves out it takes from the scenario's top level."""


class Segment(_Model):
    """One funnel of an organisation (a territory, product line or channel) inside a scenario.

    A segment gives its ``name`` and any of :data:`SEGMENT_SECTIONS`; the sections it
    leaves out are the scenario's own (the top level holds the defaults). ``quota``
    (optional) is the segment's own target; the scenario's ``[quota]`` is the total's.
    Segments share the horizon and nothing else: each is simulated on its own, and the
    total of a replication is the sum of the segments'.
    """

    name: str = Field(min_length=1, max_length=200)
    quota: Quota | None = None
    inflow: Inflow | None = None
    deal_value: Distribution | None = None
    deal_value_dispersion: Real | None = None
    stages: tuple[Stage, ...] | None = Field(default=None, min_length=1, max_length=30)
    open_deals: tuple[OpenDeal, ...] = Field(default=(), max_length=MAX_DEALS_PER_RUN)
    capacity: Capacity | None = None
    team: Team | None = None

    @field_validator("deal_value_dispersion")
    @classmethod
    def _value_spread(cls, value):
        return None if value is None else _dispersion(value)


class Scenario(_Model):
    """A whole funnel: horizon, quota, inflow, deal value and the stages in order.

    ``deal_value_dispersion`` (optional, default 0) makes the average deal value vary
    between replications (between periods like the one simulated): each replication
    draws one multiplier ``H ~ Gamma(shape=1 / d**2, scale=d**2)`` (mean 1, sd ``d``)
    and every value it draws from ``deal_value`` is ``H`` times as large; a listed open
    deal's ``amount`` is known and stays. Revenue from ``n`` wins then has mean ``n m``
    and, given ``n``, variance ``n s**2 (1 + d**2) + n**2 m**2 d**2`` (``m``, ``s``: the
    deal value's mean and sd): the values of one replication are correlated, ``m**2 d**2``
    between any two. 0 is today's independent values. With a ``[team]`` each rep draws
    its own multiplier.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    horizon_days: Real | None = None
    horizon_weeks: Real | None = None
    quota: Quota
    inflow: Inflow
    deal_value: Distribution
    deal_value_dispersion: Real = Field(
        default=0.0, description="coefficient of variation of the average deal value between periods"
    )
    stages: tuple[Stage, ...] = Field(min_length=1, max_length=30)
    open_deals: tuple[OpenDeal, ...] = Field(default=(), max_length=MAX_DEALS_PER_RUN)
    capacity: Capacity | None = None
    team: Team | None = None
    segments: tuple[Segment, ...] = Field(default=(), max_length=MAX_SEGMENTS)

    @field_validator("deal_value_dispersion")
    @classmethod
    def _value_spread(cls, value):
        return _dispersion(value)

    @model_validator(mode="after")
    def _whole(self):
        if (self.horizon_days is None) == (self.horizon_weeks is None):
            given = "both" if self.horizon_days is not None else "neither"
            raise ValueError(f"horizon_days: give exactly one of horizon_days or horizon_weeks, got {given}")
        if not (0 < self.horizon <= MAX_HORIZON_DAYS):
            field = "horizon_days" if self.horizon_days is not None else "horizon_weeks"
            raise ValueError(
                f"{field}: must be more than 0 and at most {MAX_HORIZON_DAYS:g} days, got {self.horizon:g} days"
            )
        names = [stage.name for stage in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stages: names must be unique, repeated: {listing(duplicates)}")
        if self.capacity is None:
            for i, stage in enumerate(self.stages):
                if stage.per_rep is not None:
                    raise ValueError(
                        f"stages[{i}].per_rep: needs a [capacity] section with reps (how many reps share the "
                        "funnel); add capacity.reps or remove per_rep"
                    )
        known = set(names)
        for i, deal in enumerate(self.open_deals):
            if deal.stage not in known:
                raise ValueError(
                    f"open_deals[{i}].stage: unknown stage {quoted(deal.stage)}; the stages are {listing(names)}"
                )
        multipliers = self.inflow.multipliers
        if multipliers is not None and len(multipliers) not in (self.n_weeks, self.n_months):
            raise ValueError(
                f"inflow.multipliers: give one per week ({self.n_weeks}) or one per month ({self.n_months}) "
                f"of the horizon, got {len(multipliers)}"
            )
        # A team's reps each bring per_week (new reps counted at full inflow: a bound).
        reps = 1 if self.team is None else self.team.reps
        expected = reps * self.expected_arrivals + sum(stage.open for stage in self.stages) + len(self.open_deals)
        if expected > MAX_DEALS_PER_RUN:
            team = f" for the team of {reps:,} reps" if self.team is not None else ""
            raise ValueError(
                f"inflow.per_week: about {expected:,.0f} deals per replication{team} is too many to simulate "
                f"(limit {MAX_DEALS_PER_RUN:,}); lower inflow.per_week, {'team.reps, ' if team else ''}the horizon "
                "or open deals"
            )
        return self

    @model_validator(mode="after")
    def _team_fits(self):
        """A ``[team]`` section against the rest: its quota's unit, and no shared capacity."""
        if self.team is None:
            return self
        if self.capacity is not None:
            raise ValueError(
                "team: cannot be combined with [capacity] (a team's reps each work their own deals, "
                "there is no shared capacity); remove one of the two sections"
            )
        if self.quota.unit == "deals" and not float(self.team.rep_quota).is_integer():
            raise ValueError(
                f"team.rep_quota: the quota counts won deals, so give a whole number, got {self.team.rep_quota:g}"
            )
        return self

    @model_validator(mode="after")
    def _segments_fit(self):
        """Each segment, with the sections it takes from the top level, must be a valid scenario itself."""
        if not self.segments:
            return self
        names = [segment.name for segment in self.segments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"segments: names must be unique, repeated: {listing(duplicates)}")
        if self.open_deals:
            raise ValueError(
                "open_deals: with segments, list each segment's open deals under its [[segments]] "
                "(a deal belongs to one segment)"
            )
        problems = []
        for i in range(len(self.segments)):
            funnel = self.segment(i)
            try:
                Scenario.model_validate({key: getattr(funnel, key) for key in Scenario.model_fields})
            except ValidationError as error:
                problems += [f"segments[{i}].{line}" for line in problems_from(error)]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def segment(self, index: int) -> Scenario:
        """Segment ``index`` as an ordinary scenario: its sections, the rest from the top level.

        Its name is the segment's, its quota the segment's own or, without one, the
        total's (a quota-free scenario's segments have none).
        """
        segment = self.segments[index]
        update: dict[str, Any] = {"name": segment.name, "description": "", "segments": ()}
        if segment.quota is not None or self.quota is None:
            update["quota"] = segment.quota
        for key in SEGMENT_SECTIONS:
            value = getattr(segment, key)
            if key == "open_deals" or value is not None:
                update[key] = value
        return self.model_copy(update=update)

    def with_segment(self, index: int, funnel: Scenario) -> Scenario:
        """The scenario with segment ``index`` replaced by ``funnel`` (a variant of :meth:`segment`; no re-validation).

        Every section of the funnel is written into the segment, so the segment no longer
        takes any from the top level; its name and quota stay.
        """
        sections = {key: getattr(funnel, key) for key in SEGMENT_SECTIONS}
        segments = list(self.segments)
        segments[index] = segments[index].model_copy(update=sections)
        return self.model_copy(update={"segments": tuple(segments)})

    @property
    def horizon(self) -> float:
        """The horizon in days."""
        return float(self.horizon_days if self.horizon_days is not None else 7 * self.horizon_weeks)

    @property
    def n_weeks(self) -> int:
        """Number of (possibly partial) weeks the horizon spans."""
        return max(1, math.ceil(self.horizon / 7 - 1e-9))

    @property
    def n_months(self) -> int:
        """Number of (possibly partial) months of :data:`DAYS_PER_MONTH` days the horizon spans."""
        return max(1, math.ceil(self.horizon / DAYS_PER_MONTH - 1e-9))

    def inflow_knots(self) -> tuple[np.ndarray, np.ndarray]:
        """Days and cumulative inflow weight at the period boundaries of the horizon.

        The weight ``W(t)`` is the integral of the inflow multiplier from day 0 to day
        ``t`` (``W(t) = t`` without multipliers); new opportunities arrive at rate
        ``per_week / 7`` in weight, so ``W`` maps days to unit-rate time and back.
        """
        multipliers = self.inflow.multipliers
        if multipliers is None:
            return np.array([0.0, self.horizon]), np.array([0.0, self.horizon])
        period = 7.0 if len(multipliers) == self.n_weeks else DAYS_PER_MONTH
        days = np.minimum(np.arange(len(multipliers) + 1) * period, self.horizon)
        weight = np.concatenate([[0.0], np.cumsum(np.diff(days) * np.asarray(multipliers))])
        return days, weight

    def weight_at(self, day):
        """Cumulative inflow weight ``W(day)`` (array-friendly)."""
        return np.interp(day, *self.inflow_knots())

    def day_at(self, weight):
        """The day at which the cumulative inflow weight reaches ``weight``: ``W^-1`` (array-friendly)."""
        days, weights = self.inflow_knots()
        return np.interp(weight, weights, days)

    @property
    def inflow_weight(self) -> float:
        """Cumulative inflow weight over the whole horizon (the horizon in days without multipliers)."""
        return float(self.inflow_knots()[1][-1])

    @property
    def expected_arrivals(self) -> float:
        """Expected new opportunities over the horizon."""
        return self.inflow.per_week / 7 * self.inflow_weight

    @property
    def stage_names(self) -> list[str]:
        """Stage names in funnel order."""
        return [stage.name for stage in self.stages]

    def slots(self) -> list[int | None]:
        """Deals each stage can work at once (``reps * per_rep``), None where there is no limit."""
        reps = None if self.capacity is None else self.capacity.reps
        return [None if reps is None or stage.per_rep is None else reps * stage.per_rep for stage in self.stages]

    @property
    def has_capacity_limits(self) -> bool:
        """Whether some stage has a limited number of slots (deals then interact)."""
        return any(n is not None for n in self.slots())

    def with_inflow(self, per_week: float) -> Scenario:
        """The scenario with another weekly inflow (no re-validation: ``per_week`` >= 0).

        The dispersion, a spread relative to the level, and the seasonality stay.
        """
        return self.model_copy(update={"inflow": self.inflow.model_copy(update={"per_week": per_week})})

    def with_enough_reps(self) -> Scenario:
        """The same funnel worked by as many reps as its deals need: every limited stage gets more slots than deals.

        Slots that never bind give the numbers of the funnel without limits while the
        engine and its random numbers stay those of the limited funnel, so the two
        compare with the same luck on any engine.
        """
        if not self.has_capacity_limits:
            return self
        stages = tuple(
            stage if stage.per_rep is None else stage.model_copy(update={"per_rep": NEVER_BINDING})
            for stage in self.stages
        )
        return self.model_copy(update={"stages": stages})


# --- reading and writing -------------------------------------------------------------

_FRIENDLY = {
    "extra_forbidden": "unknown key (check the spelling)",
    "missing": "missing (required)",
}


def _path(loc: tuple) -> str:
    """Turn pydantic's location into ``stages[1].duration.mean``.

    Union tags (the distribution family, "fixed"/"beta") and validator names that
    pydantic inserts are not part of what the user wrote, so they are dropped; a key
    the user wrote is cut short (it may be of any length).
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in FAMILIES or part in ("beta", "function-after[_strip(), str]"):
            continue
        elif isinstance(part, str) and ("[" in part or "(" in part):
            continue
        else:
            name = "mean" if part == "mean_" else shorten(part, QUOTE_CHARS)
            out += f".{name}" if out else name
    return out or "scenario"


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    if kind == "union_tag_invalid":
        return f"unknown distribution {quoted(ctx.get('tag'))}; expected one of {', '.join(FAMILIES)}"
    if kind == "union_tag_not_found":
        return f"needs a 'dist' key, one of {', '.join(FAMILIES)}"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        bound = f"at least {ctx['min_length']:,}" if kind == "too_short" else f"at most {ctx['max_length']:,}"
        return f"must have {bound} items, got {ctx['actual_length']:,}"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = error.get("input")
    # Only a plain value is quoted, and briefly: a table or list may be huge or deep.
    plain = "input" in error and not isinstance(given, dict | list | tuple | BaseModel)
    if kind not in ("value_error", "assertion_error") and plain and " got " not in message:
        message += f", got {quoted(given)}"
    return message


def _inside(loc: tuple, other: tuple) -> bool:
    return len(other) > len(loc) and other[: len(loc)] == loc


_NAMED = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.*)$", re.DOTALL)


def problems_from(error: ValidationError) -> list[str]:
    """One ``path: problem`` line per pydantic error.

    A list's "too short" that only says its items failed (pydantic counts the valid
    ones: "at least 1 item after validation, not 0") is left out when an item's own
    problem is reported.
    """
    items = error.errors(include_url=False)
    lines = []
    for item in items:
        if item["type"] == "too_short" and any(_inside(item["loc"], other["loc"]) for other in items):
            continue
        where = _path(item["loc"])
        for message in _message(item).split("\n"):  # a segment's check gives a line per problem
            path = where
            named = _NAMED.match(message)
            if named:  # a whole-model check that names its own field, relative to `path`
                inner, message = named.groups()
                path = inner if path == "scenario" else f"{path}.{inner}"
            line = f"{path}: {message}"
            if line not in lines:
                lines.append(line)
    return lines


def _too_deep(document: Any) -> str | None:
    """The path where ``document`` nests deeper than :data:`MAX_DEPTH`, or None (walked without recursion)."""
    stack = [(document, "scenario", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(node, dict):
            stack += [(v, f"{path}.{shorten(str(k), QUOTE_CHARS)}", depth + 1) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            stack += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
    return None


def scenario_from_dict(document: dict) -> Scenario:
    """Validate a plain dictionary (a parsed TOML document) into a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        With one line per problem, each naming the field path.
    """
    if not isinstance(document, dict):
        raise ScenarioError([f"scenario: must be a table of keys, got {type(document).__name__}"])
    deep = _too_deep(document)
    if deep is not None:
        path = deep.removeprefix("scenario.")
        raise ScenarioError([f"{shorten(path, 80)}: nested too deeply (a scenario nests at most {MAX_DEPTH} levels)"])
    try:
        return Scenario.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(problems_from(error)) from None


def scenario_from_toml(text: str, source: str = "scenario") -> Scenario:
    """Parse and validate TOML text."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError([f"{source}: malformed TOML: {error}"]) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ScenarioError(
            [f"{source}: malformed TOML: nested too deeply (a scenario nests at most {MAX_DEPTH} levels)"]
        ) from None
    return scenario_from_dict(document)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file.

    Parameters
    ----------
    path : str or Path
        The TOML file: a regular file of at most :data:`MAX_FILE_BYTES` bytes.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If the file is missing, not a regular file, too large, not TOML, or not a valid scenario.
    """
    data = read_limited(path, MAX_FILE_BYTES, "a scenario file", ScenarioError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}: not a UTF-8 text file"]) from None
    return scenario_from_toml(text, source=str(path))


def _distribution_entry(entry: dict) -> dict | float:
    """Write ``dist`` first, and a fixed value as a bare number, as people write them."""
    if entry["dist"] == "fixed":
        return entry["value"]
    return {"dist": entry["dist"], **{k: v for k, v in entry.items() if k != "dist"}}


def _file_form(document: dict, model: Scenario | Segment) -> None:
    """Write a funnel's sections (a scenario's or a segment's) as people write them, in place."""
    if "deal_value" in document:
        document["deal_value"] = _distribution_entry(document["deal_value"])
    for stage, stage_model in zip(document.get("stages") or (), model.stages or (), strict=True):
        if stage_model.open == 0:
            stage.pop("open")
        stage["duration"] = _distribution_entry(stage["duration"])
        if "lost_duration" in stage:
            stage["lost_duration"] = _distribution_entry(stage["lost_duration"])
        if "touches_needed" in stage:
            stage["touches_needed"] = _distribution_entry(stage["touches_needed"])
        for key, default in (("touch_interval_days", 0.0), ("lost_after_reschedule", 0.0), ("reschedule_days", 7.0)):
            if getattr(stage_model, key) == default:
                stage.pop(key)
    if not model.open_deals:
        document.pop("open_deals", None)
    if model.inflow is not None and model.inflow.dispersion == 0:
        document["inflow"].pop("dispersion")
    if model.deal_value_dispersion == 0:
        document.pop("deal_value_dispersion")
    if model.team is not None:
        for key in ("new_reps", "hire_month"):
            if getattr(model.team, key) == 0:
                document["team"].pop(key)
    for deal in document.get("open_deals", []):
        if not deal["name"]:
            deal.pop("name")


def scenario_to_dict(scenario: Scenario) -> dict:
    """The scenario as a plain dictionary in file form (defaults and unset keys left out)."""
    document = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    _file_form(document, scenario)
    for entry, segment in zip(document.get("segments", []), scenario.segments, strict=True):
        _file_form(entry, segment)
    if not scenario.segments:
        document.pop("segments")
    if not scenario.description:
        document.pop("description")
    return document


def scenario_to_toml(scenario: Scenario) -> str:
    """Write the scenario as TOML that :func:`load_scenario` reads back to an equal scenario."""
    return tomli_w.dumps(scenario_to_dict(scenario))


def max_weekly_inflow(scenario: Scenario) -> float:
    """The largest weekly inflow (per rep, with a team) the size limit allows for this horizon and open pipeline."""
    room = MAX_DEALS_PER_RUN - sum(stage.open for stage in scenario.stages) - len(scenario.open_deals)
    reps = 1 if scenario.team is None else scenario.team.reps
    return max(0.0, room) / reps / scenario.inflow_weight * 7.0 if scenario.inflow_weight > 0 else 0.0

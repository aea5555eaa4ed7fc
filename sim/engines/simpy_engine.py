"""The discrete-event engine: the funnel as a SimPy model, one environment per replication.

A :class:`FunnelModel` holds the environment and a recorder. Each deal that will be
won is a process of its own that waits out its time in the funnel and records the win
at the simulated moment it happens, taking the next deal value then. This is the
reference implementation of the model's semantics (see the README); the vectorised
engine must agree with it, and features that make deals interact (such as shared rep
capacity) live only here. This is the only module that imports SimPy.

Speed comes from two things, neither of which changes a result:

* random numbers are drawn in blocks (:class:`DealDraws`), not one scalar at a time,
  and the stage arithmetic of a batch of deals is NumPy's (:meth:`FunnelModel.follow`);
* no event is scheduled that nothing can observe. A deal's path is fixed by its
  draws the moment it enters (see :mod:`sim.engines.streams`), and in the basic model the
  only thing with a time stamp is a win, so the stage counters are updated at entry
  and a deal that will be lost (or that is still in the funnel at the horizon) needs
  no event at all. Arrival days are draws too, so every deal's path, and every win
  day, is known at day 0: a winning deal's process starts then and waits for its win
  (three events: start, timeout, end), so it is won exactly at its arrival day plus
  its stage days, summed as the vectorised engine sums them.

Shared rep capacity (``[capacity]`` with ``per_rep`` on some stage) makes deals
interact: when a deal gets a slot depends on every deal before it. Then each deal is a
process that goes stage by stage (:meth:`FunnelModel.worked_deal`), waiting first in,
first out for a slot of a ``simpy.Resource`` in each limited stage. The draws stay those
of the basic model (the same conversion uniforms, so the same deals convert and a
converting deal works a stage for the same number of days); a deal that is lost in a
limited stage holds its slot while it is being worked, for a time drawn from the
stage's ``lost_duration`` (its ``duration`` when none is given) at a uniform of the
deal's own from a separate stream (:class:`LostDraws`). Without capacity none of this
runs and the basic model's numbers do not change.

Follow-ups, no-shows and stalls (the optional stage keys of :class:`sim.model.scenario.Stage`)
are part of a deal's path: :class:`DealDraws` applies :func:`sim.model.funnel.stage_effects`,
the same function the vectorised engine uses, to each block of deals, with two more
uniforms per deal and stage from streams of their own (replication seed children 7 and
8). A deal that fails them is lost in that stage; one that passes stays the longer time.

With ``[inflow] dispersion`` a replication's new opportunities arrive at its own level
``G`` times the inflow (:func:`replication_levels`, one uniform from replication seed
child 10): its arrival times are the unit-rate ones divided by ``G``; nothing else changes.
With ``deal_value_dispersion`` a replication's deal values are its own level ``H`` times
the drawn ones (one uniform from replication seed child 11; :class:`ValueDraws`).
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.engines.draws import arrival_days, at_level, gamma_levels, planned_arrivals, unit_rate_cap
from sim.engines.outcomes import Outcomes, weekly_cumulative
from sim.engines.streams import ReplicationStream as Stream
from sim.engines.streams import child, generators, stream
from sim.engines.tables import conversion_rates
from sim.model.funnel import ListedDeals, stage_effects
from sim.model.scenario import Scenario

DRAW_BLOCK = 128
"""Deals, arrivals or values whose random numbers are drawn in one go, at the least.

A replication draws the paths of all its anonymous open and new deals in one block,
and nearly every replication's arrivals in the first one; the streams are read in
order, so block sizes never change a number.
"""


class DealDraws:
    """Stage durations of deal 0, 1, 2, ... of one replication, drawn in blocks.

    Deal *k* always receives the *k*-th row of conversion uniforms, however many deals
    come before or after it; from them follow, for each stage, whether the deal
    converts and how long it stays (NaN where it is lost). With ``effects_rngs``
    (touch and meeting streams, for scenarios with stage behaviour keys) deal *k* also
    takes their *k*-th rows, and :func:`sim.model.funnel.stage_effects` decides the rest.
    ``block`` deals are drawn at a time; the streams are read in order, so the rows do
    not depend on it. Deals are taken as arrays (:meth:`take`) or one by one as lists
    (:meth:`next`, for the capacity runs), from the same rows.
    """

    def __init__(
        self,
        scenario: Scenario,
        rates: np.ndarray,
        rng: np.random.Generator,
        effects_rngs: tuple[np.random.Generator, np.random.Generator] | None = None,
        block: int = DRAW_BLOCK,
    ):
        self._stages = scenario.stages
        self._block = block
        self._rates = rates
        self._rng = rng
        self._effects_rngs = effects_rngs
        self._days = np.empty((0, len(self._stages)))  # the current block: (deals, stages)
        self._rows: list[list[float | None]] | None = None  # the same block as lists, for next()
        self._next = 0

    def _refill(self) -> None:
        n_stages = len(self._stages)
        with np.errstate(divide="ignore", over="ignore"):  # a rate of 0 (or 5e-324): u / p = inf, never converts
            conditional = self._rng.random((self._block, n_stages)) / self._rates
        if self._effects_rngs is not None:
            u_touch, u_meeting = (rng.random((self._block, n_stages)) for rng in self._effects_rngs)
        days = np.full((self._block, n_stages), np.nan)
        for j, stage in enumerate(self._stages):
            q = conditional[:, j]
            moves = q < 1.0
            stay = stage.duration.ppf(q[moves])
            if stage.has_behaviour:
                kept, stay = stage_effects(stage, stay, u_touch[moves, j], u_meeting[moves, j])
                stay = np.where(kept, stay, np.nan)
            days[moves, j] = stay
        self._days, self._rows, self._next = days, None, 0

    def take(self, n: int) -> np.ndarray:
        """Days in each stage for the next ``n`` deals, shape (n, stages), NaN for the stage where each is lost."""
        parts = []
        while n > 0:
            if self._next == len(self._days):
                self._refill()
            part = self._days[self._next : self._next + n]
            self._next += len(part)
            n -= len(part)
            parts.append(part)
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty((0, len(self._stages)))

    def next(self) -> list[float | None]:
        """Days in each stage for the next deal, ``None`` for the stage where it is lost (one deal at a time)."""
        if self._next == len(self._days):
            self._refill()
        if self._rows is None:
            self._rows = [[None if d != d else d for d in row] for row in self._days.tolist()]
        row = self._rows[self._next]
        self._next += 1
        return row


class LostDraws:
    """Days a deal that is lost in a stage is worked there, for deal 0, 1, 2, ... (capacity runs only).

    Deal *k* takes the *k*-th uniform of its own stream, one per deal (a deal is lost at
    most once), and its days in stage *j* are the quantile of that stage's
    ``lost_duration`` (``duration`` when none is given) at it. A separate stream keeps
    the conversion uniforms, and so which deals convert, those of the basic model. A deal
    still in a stage with ``stale_after_days`` after that many days is marked lost then.
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self._models = [
            stage.duration if stage.lost_duration is None else stage.lost_duration for stage in scenario.stages
        ]
        self._stale = np.array(
            [np.inf if st.stale_after_days is None else st.stale_after_days for st in scenario.stages]
        )
        self._rng = rng
        self._rows: list[list[float]] = []
        self._next = 0

    def next(self) -> list[float]:
        """Days in each stage for the next deal, were it lost there."""
        if self._next == len(self._rows):
            u = self._rng.random(DRAW_BLOCK)
            self._rows = np.minimum(np.column_stack([model.ppf(u) for model in self._models]), self._stale).tolist()
            self._next = 0
        row = self._rows[self._next]
        self._next += 1
        return row


def listed_lost_days(scenario: Scenario, listed: ListedDeals, uniforms: np.ndarray) -> list[list[float]]:
    """Days each listed open deal is worked in each stage were it lost there (capacity runs only).

    In its own stage the deal has already been open ``age`` days, so its time to being
    marked lost is the lost-time model conditioned on exceeding the age (the same rule as
    :meth:`ListedDeals.remaining` for converting deals); in later stages it is fresh.
    """
    days = np.empty((len(listed), len(scenario.stages)))
    for j, stage in enumerate(scenario.stages):
        model = stage.duration if stage.lost_duration is None else stage.lost_duration
        days[:, j] = model.ppf(uniforms)
        here = listed.stage == j
        if here.any():
            start = model.cdf(listed.age[here])
            days[here, j] = np.maximum(model.ppf(start + uniforms[here] * (1.0 - start)) - listed.age[here], 0.0)
        if stage.stale_after_days is not None:
            # Marked lost on going stale (in its own stage, counted from the deal's age).
            stale = np.full(len(listed), stage.stale_after_days)
            stale[here] = np.maximum(stage.stale_after_days - listed.age[here], 0.0)
            days[:, j] = np.minimum(days[:, j], stale)
    return days.tolist()


class ValueDraws:
    """Deal values in the order deals are won (values are independent of everything else).

    With ``level`` (the replication's deal value level ``H``, for ``deal_value_dispersion``)
    each value is ``H`` times the one drawn from ``deal_value``.
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator, level: float | None = None):
        self._distribution = scenario.deal_value
        self._rng = rng
        self.level = level
        self._values: list[float] = []

    def next(self) -> float:
        """The value of the next win."""
        if not self._values:
            values = self._distribution.rvs(DRAW_BLOCK, random_state=self._rng)
            if self.level is not None:
                values = values * self.level
            self._values = values.tolist()[::-1]
        return self._values.pop()


def arrival_times(scenario: Scenario, rng: np.random.Generator, level: float | None = None) -> np.ndarray:
    """The arrival days of new opportunities over the horizon, in order.

    Poisson arrivals are unit-rate exponential gaps, drawn in blocks and turned into
    days by the rate (and the seasonal multipliers); fixed arrivals are evenly spaced in
    unit-rate time, the first one interval after day 0. The first block holds nearly
    every replication's arrivals (:func:`sim.engines.draws.planned_arrivals`); the gaps are
    read in order, so block sizes do not change the days. With ``level`` (the
    replication's inflow level ``G``, for ``[inflow] dispersion``) the inflow is ``G``
    times the scenario's: unit-rate times are divided by it (:func:`sim.engines.draws.at_level`).
    """
    cap = unit_rate_cap(scenario)
    most = cap if level is None else cap * level
    size = max(DRAW_BLOCK, planned_arrivals(most)) if most > 0 else 0
    blocks = [np.zeros(0)]
    unit_time = 0.0
    while size:
        if scenario.inflow.process == "fixed":
            gaps = np.ones(size)
        else:
            gaps = rng.standard_exponential(size)
        gaps[0] += unit_time
        units = np.cumsum(gaps)
        unit_time = float(units[-1])
        if level is not None:
            units = at_level(units, level)
        inside = units[units <= cap]
        blocks.append(arrival_days(scenario, inside))
        size = DRAW_BLOCK if len(inside) == size else 0
    return np.concatenate(blocks)


def listed_deal_path(
    scenario: Scenario,
    listed: ListedDeals,
    k: int,
    rates: list[float],
    uniforms: list[float],
    effects: tuple[list[float], list[float]] | None = None,
) -> list[float | None]:
    """Days in each stage for listed open deal ``k`` (None where it is lost, or before its stage).

    Its own stage uses its age (:class:`sim.model.funnel.ListedDeals`); later stages are as
    for any deal: the same rules as the vectorised engine. Follow-ups, no-shows and
    stalls (``effects``: the deal's touch and meeting uniforms per stage) apply to the
    later stages only: its age-conditioned chance in its own stage already reflects what
    has happened to it there.
    """
    path: list[float | None] = [None] * len(scenario.stages)
    first = int(listed.stage[k])
    for j in range(first, len(scenario.stages)):
        p = float(listed.conversion(np.array([rates[j]]), np.array([k]))[0]) if j == first else rates[j]
        if not uniforms[j] < p:
            break
        v = uniforms[j] / p
        if j == first:
            path[j] = float(listed.remaining(scenario, np.array([k]), np.array([v]))[0])
        else:
            stage = scenario.stages[j]
            days = float(stage.duration.ppf(v))
            if stage.has_behaviour:
                kept, stay = stage_effects(
                    stage, np.array([days]), np.array([effects[0][j]]), np.array([effects[1][j]])
                )
                if not kept[0]:
                    break
                days = float(stay[0])
            path[j] = days
    return path


class FunnelModel:
    """One replication of the funnel.

    Parameters
    ----------
    scenario : Scenario
    seed_sequence : numpy.random.SeedSequence
        This replication's own seed; it is split into streams for rates, arrivals,
        deal paths and deal values.
    listed : ListedDeals, optional
        The scenario's listed open deals, if already worked out.
    rates : ndarray, optional
        This replication's conversion rates, if already drawn (:func:`replication_rates`).
    level : float, optional
        This replication's inflow level, if already drawn (:func:`replication_levels`;
        only with ``[inflow] dispersion``).
    value_level : float, optional
        This replication's deal value level, if already drawn (:func:`replication_levels`;
        only with ``deal_value_dispersion``).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed_sequence: np.random.SeedSequence,
        listed: ListedDeals | None = None,
        rates: np.ndarray | None = None,
        level: float | None = None,
        value_level: float | None = None,
    ):
        # The replication's streams (sim.engines.streams.ReplicationStream): arrivals, deal paths, values and
        # listed deals (made only when there are some); the rates are drawn beforehand.
        arrivals_rng, deals_rng, values_rng = (
            stream(seed_sequence, kind) for kind in (Stream.ARRIVALS, Stream.PATHS, Stream.VALUES)
        )
        n_stages = len(scenario.stages)
        self.scenario = scenario
        self.env = simpy.Environment()
        self.horizon = scenario.horizon
        if rates is None:
            rates = replication_rates(scenario, [seed_sequence])[0]
        self.rates = rates.tolist()
        effects_rngs = None
        self.listed = ListedDeals.of(scenario) if listed is None else listed
        self._listed_effects = [None] * len(self.listed)
        if any(stage.has_behaviour for stage in scenario.stages):
            effects_rngs = tuple(generators(child(seed_sequence, Stream.EFFECTS), 2))
            touch, meeting = (
                rng.random((len(self.listed), n_stages)).tolist()
                for rng in generators(child(seed_sequence, Stream.LISTED_EFFECTS), 2)
            )
            self._listed_effects = list(zip(touch, meeting, strict=True))
        if level is None and scenario.inflow.dispersion > 0:
            level = float(replication_levels(scenario.inflow.dispersion, [seed_sequence], Stream.INFLOW)[0])
        self.level = level
        self._arrivals = arrival_times(scenario, arrivals_rng, level)
        # Anonymous open deals and new ones take paths in turn: one block holds them all.
        deals = sum(stage.open for stage in scenario.stages) + len(self._arrivals)
        self.paths = DealDraws(scenario, rates, deals_rng, effects_rngs, block=max(deals, 1))
        if value_level is None and scenario.deal_value_dispersion > 0:
            value_levels = replication_levels(scenario.deal_value_dispersion, [seed_sequence], Stream.VALUE_LEVEL)
            value_level = float(value_levels[0])
        self.values = ValueDraws(scenario, values_rng, value_level)
        self._listed_uniforms = np.zeros((0, n_stages))
        if len(self.listed):
            self._listed_uniforms = stream(seed_sequence, Stream.LISTED).random((len(self.listed), n_stages))
        # The recorder: plain counters and a list of (day, value) wins.
        self.entered = [0] * n_stages
        self.converted = [0] * n_stages
        self.wins: list[tuple[float, float]] = []
        self.slots = [None] * n_stages
        if scenario.has_capacity_limits:
            self._set_up_capacity(seed_sequence)

    def _set_up_capacity(self, seed_sequence: np.random.SeedSequence) -> None:
        """Resources, lost-time draws and the capacity recorder (only when reps are limited)."""
        scenario, n_stages = self.scenario, len(self.scenario.stages)
        # The capacity streams: a lost deal's days in its stage, for new and for listed deals.
        lost_rng, listed_lost_rng = stream(seed_sequence, Stream.LOST), stream(seed_sequence, Stream.LISTED_LOST)
        self.lost = LostDraws(scenario, lost_rng)
        self._listed_lost = listed_lost_days(scenario, self.listed, listed_lost_rng.random(len(self.listed)))
        self.slots = [None if n is None else simpy.Resource(self.env, capacity=n) for n in scenario.slots()]
        self.max_wait = scenario.capacity.max_wait_days
        self.served = [0] * n_stages
        self.queued = [0] * n_stages
        self.neglected = [0] * n_stages
        self.wait_days = [0.0] * n_stages
        # Slot use as (start, end) intervals clipped to the horizon, and the queue length
        # after each change as (day, length): summarised once at the end of the run.
        self.service: list[list[tuple[float, float]]] = [[] for _ in range(n_stages)]
        self.queue_log: list[list[tuple[float, int]]] = [[] for _ in range(n_stages)]

    def follow(self, stage: int, day: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count deals entering ``stage`` at ``day`` along their paths; return which are won, and when.

        ``days`` holds each deal's path, shape (deals, stages): days per stage, NaN where
        it is lost. A deal is counted in each stage it reaches by the horizon and as
        converting out of each it leaves by then; its days are added stage by stage, in
        the same order as one deal at a time would add them.

        Returns
        -------
        won : ndarray of int
            Positions (in ``day``) of the deals won by the horizon, in order.
        win_day : ndarray of float
            Their win days.
        """
        won = np.arange(len(day))
        for j in range(stage, days.shape[1]):
            self.entered[j] += len(won)
            day = day + days[won, j]  # NaN for a deal lost here: not <= the horizon
            inside = np.flatnonzero(day <= self.horizon)
            won, day = won.take(inside), day.take(inside)
            self.converted[j] += len(won)
        return won, day

    def deal(self, win_day: float, amount: float | None = None):
        """SimPy process: a deal that will be won waits out the funnel, then is won on ``win_day``.

        It is started at day 0 (see the module docstring). Every win takes the next value
        of the value stream, in the order the wins happen; a listed deal with an amount
        is worth its amount instead.
        """
        yield self.env.timeout(win_day - self.env.now)
        value = self.values.next()
        self.wins.append((self.env.now, value if amount is None else amount))

    def _start_new_deals(self) -> None:
        """New opportunities arrive and enter the first stage; a process for each that will be won.

        Their arrival days are drawn (:func:`arrival_times`), so this happens at day 0;
        a deal that will not be won is only counted, as nothing later depends on when it
        arrived.
        """
        arrivals = self._arrivals
        _, win_days = self.follow(0, arrivals, self.paths.take(len(arrivals)))
        for win_day in win_days.tolist():
            self.env.process(self.deal(win_day))

    def _through_free_stages(self, j: int, day: float, days: list[float | None]) -> tuple[int, float] | None:
        """Step a deal that reaches stage ``j`` at ``day`` through the stages without a rep limit.

        Nothing can delay a deal there, so this is arithmetic, as in :meth:`follow`, and
        needs no event. Returns the next limited stage (or ``len(days)``: won) and the day
        the deal gets there, or None if it is lost first or the horizon comes first.
        """
        horizon, n = self.horizon, len(days)
        while j < n and self.slots[j] is None:
            self.entered[j] += 1
            self.served[j] += 1
            if days[j] is None or day + days[j] > horizon:
                return None
            day += days[j]
            self.converted[j] += 1
            j += 1
        return j, day

    def _start(self, stage: int, day: float, days: list[float | None], lost_days: list[float], amount=None) -> None:
        """Let a deal reach ``stage`` at ``day`` (now or later); a process only if a rep or a win awaits it."""
        reached = self._through_free_stages(stage, day, days)
        if reached is not None:
            self.env.process(self.worked_deal(*reached, days, lost_days, amount))

    def worked_deal(
        self, stage: int, day: float, days: list[float | None], lost_days: list[float], amount: float | None = None
    ):
        """SimPy process: a deal works its way through the funnel, waiting for a rep where reps are limited.

        The deal reaches ``stage`` (a limited stage, or ``len(days)``: won) at ``day``.
        ``days`` is its path as in the basic model (None where it is lost) and
        ``lost_days`` its time in each stage were it lost there. In a limited stage it
        asks for a slot (first in, first out), gives up after ``max_wait_days``
        (neglected, lost), and holds the slot while it is worked, whether it then
        converts or is lost; stages without a limit in between take no event
        (:meth:`_through_free_stages`).
        """
        env, horizon, n = self.env, self.horizon, len(days)
        j = stage
        if day > env.now:
            yield env.timeout(day - env.now)
        while j < n:
            slots = self.slots[j]
            self.entered[j] += 1
            stay = lost_days[j] if days[j] is None else days[j]
            with slots.request() as request:
                if not request.triggered:  # every slot taken: wait in line
                    arrived = env.now
                    self.queued[j] += 1
                    self._queue_changed(j, slots)
                    yield request if self.max_wait is None else request | env.timeout(self.max_wait)
                    # Granted at the very moment the patience ran out still counts as granted.
                    if not request.triggered:
                        self.neglected[j] += 1
                        # It leaves the line as the with block ends, which withdraws the request.
                        self.queue_log[j].append((env.now, len(slots.queue) - 1))
                        return
                    self._queue_changed(j, slots)
                    self.wait_days[j] += env.now - arrived
                self.served[j] += 1
                self.service[j].append((env.now, min(env.now + stay, horizon)))
                yield env.timeout(stay)
            if days[j] is None:
                return
            self.converted[j] += 1
            reached = self._through_free_stages(j + 1, env.now, days)
            if reached is None:
                return
            j, day = reached
            if day > env.now:
                yield env.timeout(day - env.now)
        value = self.values.next()
        self.wins.append((env.now, value if amount is None else amount))

    def _queue_changed(self, j: int, slots: simpy.Resource) -> None:
        self.queue_log[j].append((self.env.now, len(slots.queue)))

    def _worked_source(self):
        """SimPy process: new opportunities arrive and start working through the funnel (capacity runs)."""
        env = self.env
        for day in self._arrivals.tolist():
            yield env.timeout(day - env.now)
            self._start(0, env.now, self.paths.next(), self.lost.next())

    def _run_with_capacity(self) -> None:
        """Simulate the horizon with limited reps: every deal is a process, in arrival order."""
        env = self.env
        # Open deals are already being worked at day 0 and take slots before any new deal,
        # anonymous ones first, then listed ones; more than the slots wait in line like any deal.
        for j, stage in enumerate(self.scenario.stages):
            for _ in range(stage.open):
                self._start(j, 0.0, self.paths.next(), self.lost.next())
        listed = self.listed
        for k, uniforms in enumerate(self._listed_uniforms.tolist()):
            path = listed_deal_path(self.scenario, listed, k, self.rates, uniforms, self._listed_effects[k])
            amount = float(listed.amount[k])
            self._start(int(listed.stage[k]), 0.0, path, self._listed_lost[k], None if amount != amount else amount)
        env.process(self._worked_source())
        # Deals wait and are worked past the horizon, so the run must stop there. run(until=)
        # stops before the events due exactly at the horizon; those (a win at the horizon
        # counts) are processed one by one afterwards.
        env.run(until=self.horizon)
        while env.peek() <= self.horizon:
            env.step()

    def capacity_figures(self) -> dict[str, np.ndarray]:
        """This replication's waits, queues and slot use: arrays per stage, and per stage and week."""
        horizon, n_weeks = self.horizon, self.scenario.n_weeks
        week_ends = np.minimum(7.0 * np.arange(1, n_weeks + 1), horizon)
        edges = np.concatenate([[0.0], week_ends])
        n_stages = len(self.slots)
        busy_by_week = np.zeros((n_stages, n_weeks))
        queue_by_week = np.zeros((n_stages, n_weeks), dtype=np.int64)
        mean_queue = np.zeros(n_stages)
        for j in range(n_stages):
            if self.service[j]:
                start, end = np.array(self.service[j]).T
                # Slot-days used by day t: sum of min(t, end) - min(t, start) over the services.
                used = _sum_of_minimum(end, edges) - _sum_of_minimum(start, edges)
                busy_by_week[j] = np.diff(used)
            if self.queue_log[j]:
                day, length = np.array(self.queue_log[j]).T
                after = np.searchsorted(day, week_ends, side="right") - 1
                queue_by_week[j] = np.where(after >= 0, length[np.maximum(after, 0)], 0)
                mean_queue[j] = float(np.sum(length * np.diff(np.append(day, horizon)))) / horizon
        return {
            "served": np.array(self.served, dtype=np.int64),
            "queued": np.array(self.queued, dtype=np.int64),
            "neglected": np.array(self.neglected, dtype=np.int64),
            "wait_days": np.array(self.wait_days),
            "busy_days": busy_by_week.sum(axis=1),
            "mean_queue": mean_queue,
            "queue_by_week": queue_by_week,
            "busy_by_week": busy_by_week,
        }

    def run(self) -> None:
        """Simulate the horizon: open deals (anonymous, then listed) enter at day 0, then new ones arrive."""
        if self.scenario.has_capacity_limits:
            self._run_with_capacity()
            return
        for j, stage in enumerate(self.scenario.stages):
            if stage.open:
                _, win_days = self.follow(j, np.zeros(stage.open), self.paths.take(stage.open))
                for win_day in win_days.tolist():
                    self.env.process(self.deal(win_day))
        for win_day, amount in self._listed_wins():
            self.env.process(self.deal(win_day, amount))
        self._start_new_deals()
        # Nothing is ever scheduled past the horizon, so the run ends by itself, and
        # a deal won exactly at the horizon still counts.
        self.env.run()

    def _listed_wins(self) -> list[tuple[float, float | None]]:
        """Win day and amount (None: a drawn value) of each listed open deal that will be won, in list order."""
        listed = self.listed
        if not len(listed):
            return []
        paths = np.array(
            [
                listed_deal_path(self.scenario, listed, k, self.rates, uniforms, self._listed_effects[k])
                for k, uniforms in enumerate(self._listed_uniforms.tolist())
            ],
            dtype=float,  # None (lost) becomes NaN
        )
        wins = []
        for j in np.unique(listed.stage).tolist():
            deals = np.flatnonzero(listed.stage == j)
            won, win_days = self.follow(j, np.zeros(len(deals)), paths[deals])
            wins.extend(zip(deals.take(won).tolist(), win_days.tolist(), strict=True))
        amounts = listed.amount.tolist()
        return [(day, None if amounts[k] != amounts[k] else amounts[k]) for k, day in sorted(wins)]


def replication_rates(scenario: Scenario, seeds: list[np.random.SeedSequence]) -> np.ndarray:
    """Each replication's conversion rates, shape (replications, stages).

    Replication *i* draws one uniform per stage from its own stream (child 0 of its
    seed); the rates of all of them come from one call of
    :func:`sim.engines.tables.conversion_rates`, which works value by value, so a replication
    gets the same rates in any company (a Beta quantile lookup costs some 15
    microseconds a call, whatever its size).
    """
    uniforms = np.empty((len(scenario.stages), len(seeds)))
    for i, seed in enumerate(seeds):
        uniforms[:, i] = stream(seed, Stream.RATES).random(len(scenario.stages))
    return conversion_rates(scenario, uniforms).T


def replication_levels(dispersion: float, seeds: list[np.random.SeedSequence], kind: Stream) -> np.ndarray | None:
    """Each replication's level of mean 1 and sd ``dispersion`` (None when it is 0).

    Replication *i* reads one uniform from a stream of its own, ``kind``
    (``ReplicationStream.INFLOW`` for the inflow level ``G``, ``VALUE_LEVEL`` for the deal
    value level ``H``), read only with a dispersion, so scenarios without it draw what
    they drew before; the Gamma quantiles of all of them come from one call
    (:func:`sim.engines.draws.gamma_levels`).
    """
    if dispersion == 0:
        return None
    uniforms = np.array([stream(seed, kind).random() for seed in seeds])
    return gamma_levels(dispersion, uniforms)


def run_replications(scenario: Scenario, seeds: list[np.random.SeedSequence]) -> Outcomes:
    """Run one SimPy replication per seed and return their outcomes in order.

    Parameters
    ----------
    scenario : Scenario
    seeds : list of numpy.random.SeedSequence
        One per replication (children of the root seed).

    Returns
    -------
    Outcomes
    """
    n, n_stages = len(seeds), len(scenario.stages)
    entered = np.zeros((n, n_stages), dtype=np.int64)
    converted = np.zeros((n, n_stages), dtype=np.int64)
    rates = np.zeros((n, n_stages))
    win_rep, win_day, win_value = [], [], []
    listed = ListedDeals.of(scenario)  # worked out once for all replications
    all_rates = replication_rates(scenario, seeds)
    levels = replication_levels(scenario.inflow.dispersion, seeds, Stream.INFLOW)
    value_levels = replication_levels(scenario.deal_value_dispersion, seeds, Stream.VALUE_LEVEL)
    capacity: dict[str, list[np.ndarray]] = {}
    for i, seed in enumerate(seeds):
        model = FunnelModel(
            scenario,
            seed,
            listed,
            all_rates[i],
            None if levels is None else float(levels[i]),
            None if value_levels is None else float(value_levels[i]),
        )
        model.run()
        entered[i], converted[i], rates[i] = model.entered, model.converted, model.rates
        if scenario.has_capacity_limits:
            for name, figures in model.capacity_figures().items():
                capacity.setdefault(name, []).append(figures)
        win_rep.extend([i] * len(model.wins))
        for day, value in model.wins:
            win_day.append(day)
            win_value.append(value)
    win_rep = np.asarray(win_rep, dtype=np.int64)
    win_value = np.asarray(win_value, dtype=float)
    return Outcomes(
        won_deals=np.bincount(win_rep, minlength=n).astype(np.int64),
        revenue=np.bincount(win_rep, weights=win_value, minlength=n),
        weekly_revenue=weekly_cumulative(win_rep, np.asarray(win_day), win_value, n, scenario.n_weeks),
        entered=entered,
        converted=converted,
        rates=rates,
        **{name: np.stack(rows) for name, rows in capacity.items()},
    )


def _sum_of_minimum(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``sum(min(t_k, x))`` for each ``t_k``: sorted prefix sums instead of a (len(x), len(t)) table."""
    x = np.sort(x)
    below = np.searchsorted(x, t, side="left")
    prefix = np.concatenate([[0.0], np.cumsum(x)])
    return prefix[below] + (len(x) - below) * t

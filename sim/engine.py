"""The discrete-event engine: the funnel as a SimPy model, one environment per replication.

A :class:`FunnelModel` holds the environment and a recorder. A *source* process
releases new opportunities into the first stage; each deal that will be won is a
process of its own that waits out its time in the funnel and records the win at the
simulated moment it happens. This is the reference implementation of the model's
semantics (see the README); the vectorised engine must agree with it, and features
that make deals interact (such as shared rep capacity) live only here. This is the
only module that imports SimPy.

Speed comes from two things, neither of which changes a result:

* random numbers are drawn in blocks (:class:`DealDraws`), not one scalar at a time;
* no event is scheduled that nothing can observe. A deal's path is fixed by its
  draws the moment it enters (see :mod:`sim.streams`), and in the basic model the
  only thing with a time stamp is a win, so the stage counters are updated at entry,
  a deal that will be lost (or that is still in the funnel at the horizon) needs no
  event at all, and a winning deal needs its arrival and a single timeout to its win.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.outcomes import Outcomes, weekly_cumulative
from sim.scenario import Scenario
from sim.streams import ListedDeals, arrival_days, conversion_rates, generators, unit_rate_cap

DRAW_BLOCK = 128
"""Deals (or values) whose random numbers are drawn in one go."""


class DealDraws:
    """Stage durations of deal 0, 1, 2, ... of one replication, drawn in blocks.

    Deal *k* always receives the *k*-th row of conversion uniforms, however many deals
    come before or after it; from them follow, for each stage, whether the deal
    converts and how long it stays (``None`` where it is lost).
    """

    def __init__(self, scenario: Scenario, rates: np.ndarray, rng: np.random.Generator):
        self._stages = scenario.stages
        self._rates = rates
        self._rng = rng
        self._rows: list[list[float | None]] = []
        self._next = 0

    def _refill(self) -> None:
        with np.errstate(divide="ignore", over="ignore"):  # a rate of 0 (or 5e-324): u / p = inf, never converts
            conditional = self._rng.random((DRAW_BLOCK, len(self._stages))) / self._rates
        columns = []
        for j, stage in enumerate(self._stages):
            q = conditional[:, j]
            moves = q < 1.0
            days = np.full(DRAW_BLOCK, np.nan)
            days[moves] = stage.duration.ppf(q[moves])
            columns.append(days)
        self._rows = [[None if d != d else d for d in row] for row in np.column_stack(columns).tolist()]
        self._next = 0

    def next(self) -> list[float | None]:
        """Days in each stage for the next deal, ``None`` for the stage where it is lost."""
        if self._next == len(self._rows):
            self._refill()
        row = self._rows[self._next]
        self._next += 1
        return row


class ValueDraws:
    """Deal values in the order deals are won (values are independent of everything else)."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self._distribution = scenario.deal_value
        self._rng = rng
        self._values: list[float] = []

    def next(self) -> float:
        """The value of the next win."""
        if not self._values:
            self._values = self._distribution.rvs(DRAW_BLOCK, random_state=self._rng).tolist()[::-1]
        return self._values.pop()


def arrival_times(scenario: Scenario, rng: np.random.Generator):
    """Yield the arrival days of new opportunities over the horizon, in order.

    Poisson arrivals are unit-rate exponential gaps, drawn in blocks and turned into
    days by the rate (and the seasonal multipliers); fixed arrivals are evenly spaced in
    unit-rate time, the first one interval after day 0.
    """
    cap = unit_rate_cap(scenario)
    if cap <= 0:
        return
    unit_time = 0.0
    while True:
        if scenario.inflow.process == "fixed":
            gaps = np.ones(DRAW_BLOCK)
        else:
            gaps = rng.standard_exponential(DRAW_BLOCK)
        gaps[0] += unit_time
        units = np.cumsum(gaps)
        unit_time = float(units[-1])
        inside = units[units <= cap]
        yield from arrival_days(scenario, inside).tolist()
        if len(inside) < DRAW_BLOCK:
            return


def listed_deal_path(
    scenario: Scenario, listed: ListedDeals, k: int, rates: list[float], uniforms: list[float]
) -> list[float | None]:
    """Days in each stage for listed open deal ``k`` (None where it is lost, or before its stage).

    Its own stage uses its age (:class:`sim.streams.ListedDeals`); later stages are as
    for any deal: the same rules as the vectorised engine.
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
            path[j] = float(scenario.stages[j].duration.ppf(v))
    return path


class FunnelModel:
    """One replication of the funnel.

    Parameters
    ----------
    scenario : Scenario
    seed_sequence : numpy.random.SeedSequence
        This replication's own seed; it is split into streams for rates, arrivals,
        deal paths and deal values.
    """

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence, listed: ListedDeals | None = None):
        rates_rng, arrivals_rng, deals_rng, values_rng, listed_rng = generators(seed_sequence, 5)
        n_stages = len(scenario.stages)
        self.scenario = scenario
        self.env = simpy.Environment()
        self.horizon = scenario.horizon
        rates = conversion_rates(scenario, rates_rng.random((n_stages, 1)))[:, 0]
        self.rates = rates.tolist()
        self.paths = DealDraws(scenario, rates, deals_rng)
        self.values = ValueDraws(scenario, values_rng)
        self._arrivals = arrival_times(scenario, arrivals_rng)
        self.listed = ListedDeals.of(scenario) if listed is None else listed
        self._listed_uniforms = listed_rng.random((len(self.listed), n_stages))
        # The recorder: plain counters and a list of (day, value) wins.
        self.entered = [0] * n_stages
        self.converted = [0] * n_stages
        self.wins: list[tuple[float, float]] = []

    def follow(self, stage: int, day: float, days: list[float | None] | None = None) -> float | None:
        """Count a deal entering ``stage`` at ``day`` along its path; return its win day.

        ``days`` is the deal's path (days per stage, None where lost); by default the
        next fresh deal's. Returns None if the deal is lost, or still in the funnel at
        the horizon.
        """
        if days is None:
            days = self.paths.next()
        for j in range(stage, len(days)):
            self.entered[j] += 1
            if days[j] is None or day + days[j] > self.horizon:
                return None
            day += days[j]
            self.converted[j] += 1
        return day

    def deal(self, win_day: float, amount: float | None = None):
        """SimPy process: a deal that will be won waits out the funnel, then is won.

        Every win takes the next value of the value stream; a listed deal with an
        amount is worth its amount instead.
        """
        yield self.env.timeout(win_day - self.env.now)
        value = self.values.next()
        self.wins.append((self.env.now, value if amount is None else amount))

    def source(self):
        """SimPy process: new opportunities arrive and enter the first stage.

        A deal that will not be won is only counted: nothing later depends on when it
        arrived, so the source does not wait for it.
        """
        env = self.env
        for day in self._arrivals:
            win_day = self.follow(0, day)
            if win_day is not None:
                yield env.timeout(day - env.now)
                env.process(self.deal(win_day))

    def run(self) -> None:
        """Simulate the horizon: open deals (anonymous, then listed) enter at day 0, then new ones arrive."""
        for j, stage in enumerate(self.scenario.stages):
            for _ in range(stage.open):
                win_day = self.follow(j, 0.0)
                if win_day is not None:
                    self.env.process(self.deal(win_day))
        listed = self.listed
        for k, uniforms in enumerate(self._listed_uniforms.tolist()):
            path = listed_deal_path(self.scenario, listed, k, self.rates, uniforms)
            win_day = self.follow(int(listed.stage[k]), 0.0, path)
            if win_day is not None:
                amount = float(listed.amount[k])
                self.env.process(self.deal(win_day, None if amount != amount else amount))
        self.env.process(self.source())
        # Nothing is ever scheduled past the horizon, so the run ends by itself, and
        # a deal won exactly at the horizon still counts.
        self.env.run()


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
    for i, seed in enumerate(seeds):
        model = FunnelModel(scenario, seed, listed)
        model.run()
        entered[i], converted[i], rates[i] = model.entered, model.converted, model.rates
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
    )

"""One replication deal by deal: what a CRM would have recorded of it.

The engines count what happens by the horizon; a CRM lists deals. :func:`deal_history`
replays one replication of the SimPy engine's basic model with the very same draws (the
same arrivals, at the replication's own inflow level with ``[inflow] dispersion``, the
same path through the stages for each deal, the same deal values in the order deals are
won, at the replication's own deal value level with ``deal_value_dispersion``:
:class:`sim.engines.simpy_engine.FunnelModel` draws them all), so its won deals are
exactly that replication's wins, on the same days and worth the same, and writes every
deal down: when it was created, when it entered each stage, and whether by the horizon it
was won, lost or still open.

A lost deal is closed when its time in the stage it is lost in runs out: the quantile
of that stage's ``lost_duration`` (its ``duration`` when none is given) at a uniform of
the deal's own, the draw the capacity path uses (:class:`sim.engines.simpy_engine.LostDraws`). Every
deal has an amount: a won deal the value it was won with, any other a draw of its own
from ``deal_value`` (a CRM shows amounts on open and lost deals too), at the same
deal value level as the replication's wins.

This is how synthetic CRM exports are made from a known scenario
(``tests/crm_synth.py``), so that calibration is checked against the engine itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.engines.simpy_engine import FunnelModel, LostDraws
from sim.engines.streams import ReplicationStream, stream
from sim.model.scenario import Scenario


def deal_history(scenario: Scenario, seed_sequence: np.random.SeedSequence) -> pd.DataFrame:
    """Every deal of one replication, as a CRM would list it at the horizon.

    Parameters
    ----------
    scenario : Scenario
        A scenario of the basic model: no ``[capacity]`` limits, ``[team]`` or listed
        ``[[open_deals]]`` (anonymous ``open`` deals are taken to be created at day 0,
        in their stage).
    seed_sequence : numpy.random.SeedSequence
        The replication's seed, as :func:`sim.engines.simpy_engine.run_replications` takes it.

    Returns
    -------
    pandas.DataFrame
        One row per deal, open deals first (stage by stage), then new ones in arrival
        order: ``deal`` (its number), ``created`` (day), ``outcome`` (``won``, ``lost``
        or ``open`` at the horizon), ``stage`` (the stage it was won from, lost in or is
        still in), ``closed`` (the day it was won or lost; NaN while open), ``amount``,
        and ``entered[<stage>]`` for each stage: the day it entered it (NaN if it did
        not by the horizon).
    """
    if scenario.has_capacity_limits or scenario.team is not None or scenario.open_deals:
        raise ValueError(
            "deal_history: only for the basic model (no [capacity] limits, [team] or listed [[open_deals]])"
        )
    model = FunnelModel(scenario, seed_sequence)
    names = scenario.stage_names
    n_stages, horizon = len(names), scenario.horizon
    # The order FunnelModel.run takes paths in: open deals stage by stage, then the new ones.
    first = np.concatenate(
        [np.full(stage.open, j) for j, stage in enumerate(scenario.stages)] + [np.zeros(len(model._arrivals))]
    ).astype(int)
    n = len(first)
    created = np.concatenate([np.zeros(n - len(model._arrivals)), model._arrivals])
    paths = model.paths.take(n)
    lost = LostDraws(scenario, stream(seed_sequence, ReplicationStream.LOST))
    lost_days = np.array([lost.next() for _ in range(n)]).reshape(n, n_stages)

    entered = np.full((n, n_stages), np.nan)
    outcome = np.full(n, "open", dtype=object)
    closed = np.full(n, np.nan)
    stage = first.copy()
    day, going = created.copy(), np.ones(n, dtype=bool)  # deals still moving through the funnel
    for j in range(n_stages):
        here = going & (first <= j)
        entered[here, j] = day[here]
        stage[here] = j
        stay = paths[:, j]
        lost_at = day + lost_days[:, j]
        gone = here & np.isnan(stay) & (lost_at <= horizon)
        outcome[gone], closed[gone] = "lost", lost_at[gone]
        # Days are added stage by stage, as the engine adds them, so win days agree to the bit.
        moved = here & ~np.isnan(stay) & (day + stay <= horizon)
        day = np.where(moved, day + stay, day)
        going = moved | (going & (first > j))
    outcome[going], closed[going] = "won", day[going]

    # Wins take the value stream in the order they happen (ties in deal order, as SimPy
    # runs them); every other deal an amount of its own.
    amount = scenario.deal_value.rvs(n, random_state=stream(seed_sequence, ReplicationStream.AMOUNTS)).astype(float)
    if model.values.level is not None:  # the period's deal value level holds for every deal created in it
        amount *= model.values.level
    won = np.flatnonzero(going)
    for k in won[np.argsort(day[won], kind="stable")].tolist():
        amount[k] = model.values.next()
    frame = pd.DataFrame(
        {
            "deal": np.arange(n),
            "created": created,
            "outcome": outcome,
            "stage": np.asarray(names, dtype=object)[stage],
            "closed": closed,
            "amount": amount,
        }
    )
    for j, name in enumerate(names):
        frame[f"entered[{name}]"] = entered[:, j]
    return frame

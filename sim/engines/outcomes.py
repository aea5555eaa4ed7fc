"""What one batch of replications produced: plain arrays, one row per replication.

Both engines return :class:`Outcomes`; the runner concatenates batches in replication
order and wraps them in a :class:`~sim.runner.SimulationResult`. Keeping this a dumb
container of NumPy arrays means the engines never build tables while they run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class Outcomes:
    """Per-replication results of a batch.

    Attributes
    ----------
    won_deals : ndarray of int, shape (n,)
        Deals won at times <= horizon.
    revenue : ndarray of float, shape (n,)
        Value of those deals.
    weekly_revenue : ndarray of float, shape (n, weeks)
        Cumulative won revenue at the end of each week (the last week ends at the horizon).
    entered, converted : ndarray of int, shape (n, stages)
        Deals that entered each stage, and that converted out of it, by the horizon.
    rates : ndarray of float, shape (n, stages)
        The conversion rate each replication used (drawn once per replication for a
        Beta rate).

    The rest is recorded only when the scenario limits rep capacity (``[capacity]`` with
    ``per_rep`` on some stage; SimPy engine). Left out (None), each becomes an empty
    array with no stage columns, shape (n, 0) or (n, 0, 0), so that every field is an
    array that stacks, slices and compares like the others. Every figure counts
    what happened within [0, horizon]; a stage without a limit serves every deal at once
    (``served`` = ``entered``, no wait, no queue) and has no slot-time (``busy_days`` 0).

    served : ndarray of int, shape (n, stages)
        Deals that got a slot in the stage.
    queued : ndarray of int, shape (n, stages)
        Deals that found every slot taken and had to wait (some may still wait at the horizon).
    neglected : ndarray of int, shape (n, stages)
        Deals lost because they waited longer than ``capacity.max_wait_days``.
    wait_days : ndarray of float, shape (n, stages)
        Total days waited by the deals that got a slot.
    busy_days : ndarray of float, shape (n, stages)
        Slot-days in use (a deal holds its slot until it converts or is lost).
    mean_queue : ndarray of float, shape (n, stages)
        Time-average number of deals waiting over [0, horizon].
    queue_by_week : ndarray of int, shape (n, stages, weeks)
        Deals waiting at the end of each week (the last week ends at the horizon).
    busy_by_week : ndarray of float, shape (n, stages, weeks)
        Slot-days in use during each week.
    """

    won_deals: np.ndarray
    revenue: np.ndarray
    weekly_revenue: np.ndarray
    entered: np.ndarray
    converted: np.ndarray
    rates: np.ndarray
    served: np.ndarray | None = None
    queued: np.ndarray | None = None
    neglected: np.ndarray | None = None
    wait_days: np.ndarray | None = None
    busy_days: np.ndarray | None = None
    mean_queue: np.ndarray | None = None
    queue_by_week: np.ndarray | None = None
    busy_by_week: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.revenue)

    def __post_init__(self):
        n = len(self.revenue)
        for name, shape, dtype in _CAPACITY_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros((n, *shape), dtype=dtype))  # frozen: set once, here

    @property
    def has_capacity(self) -> bool:
        """Whether the capacity figures (waits, queues, slot use) were recorded."""
        return self.served.shape[1] > 0

    @classmethod
    def concat(cls, parts: list[Outcomes]) -> Outcomes:
        """Stack batches in the given order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def head(self, n: int) -> Outcomes:
        """The first ``n`` replications."""
        return Outcomes(**{f.name: getattr(self, f.name)[:n] for f in fields(self)})


_CAPACITY_FIELDS = (
    ("served", (0,), np.int64),
    ("queued", (0,), np.int64),
    ("neglected", (0,), np.int64),
    ("wait_days", (0,), float),
    ("busy_days", (0,), float),
    ("mean_queue", (0,), float),
    ("queue_by_week", (0, 0), np.int64),
    ("busy_by_week", (0, 0), float),
)
"""The optional capacity figures: their shape after the replication axis when absent, and dtype."""


def weekly_cumulative(
    replication: np.ndarray, times: np.ndarray, values: np.ndarray, n_reps: int, n_weeks: int
) -> np.ndarray:
    """Cumulative value won by the end of each week, per replication.

    Parameters
    ----------
    replication : ndarray of int
        Replication index (0..n_reps-1) of each won deal.
    times : ndarray of float
        Day each deal was won (all <= horizon).
    values : ndarray of float
        Value of each deal.
    n_reps, n_weeks : int
        Shape of the table.

    Returns
    -------
    ndarray of float, shape (n_reps, n_weeks)
    """
    # A deal won at day t counts from week ceil(t / 7): day 7 is still week 1.
    week = np.clip(np.ceil(times / 7.0).astype(np.int64), 1, n_weeks) - 1
    sums = np.bincount(replication * n_weeks + week, weights=values, minlength=n_reps * n_weeks)
    return np.cumsum(sums.reshape(n_reps, n_weeks), axis=1)

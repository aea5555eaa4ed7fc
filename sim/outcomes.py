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
    """

    won_deals: np.ndarray
    revenue: np.ndarray
    weekly_revenue: np.ndarray
    entered: np.ndarray
    converted: np.ndarray
    rates: np.ndarray

    def __len__(self) -> int:
        return len(self.revenue)

    @classmethod
    def concat(cls, parts: list[Outcomes]) -> Outcomes:
        """Stack batches in the given order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def head(self, n: int) -> Outcomes:
        """The first ``n`` replications."""
        return Outcomes(**{f.name: getattr(self, f.name)[:n] for f in fields(self)})


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

"""Synthetic CRM exports from a known world, for the calibration and backtest tests.

Two sources of truth. :func:`engine_deals` takes a scenario and lets the SimPy engine
play it out deal by deal (:func:`sim.crm.synthetic.deal_history`), so calibration is checked
against the engine itself. The worlds below draw deals of the same model with NumPy,
independently of the engine, and add what a scenario cannot say (calendar seasonality).

A :class:`World` is the truth: opportunities created by a Poisson process (optionally
seasonal, one factor per calendar month), each won with probability ``p`` after a
lognormal time, or lost after another lognormal time, with a lognormal amount. It is
exactly the single-stage scenario :mod:`sim.crm.calibrate` writes (:meth:`World.scenario`),
so a calibration of its exports is correctly specified. :func:`export_csv` writes what a
CRM would show on a given day: closed deals with their close date, open deals with a
blank or expected close date and an open stage name, in Salesforce's column names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.crm.synthetic import deal_history
from sim.engines.streams import root_children
from sim.model.scenario import Scenario, scenario_from_dict

OPEN_STAGES = ("Prospecting", "Negotiation")


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of log X for a lognormal with this mean and sd."""
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


@dataclass(frozen=True)
class World:
    """The truth behind a synthetic export (days, deals per week, money)."""

    per_week: float = 20.0
    p: float = 0.3
    won_mean: float = 40.0
    won_sd: float = 25.0
    lost_mean: float = 25.0
    lost_sd: float = 20.0
    value_mean: float = 20_000.0
    value_sd: float = 12_000.0
    start: str = "2021-01-01"
    monthly: tuple[float, ...] | None = None
    """Inflow factor per calendar month (January first), mean 1; None for a flat inflow."""

    def deals(self, end: str, seed: int) -> pd.DataFrame:
        """Every deal created from ``start`` to ``end`` with its true fate.

        Columns ``id``, ``created``, ``won`` (bool), ``close`` (the true close time,
        possibly after ``end``) and ``amount``.
        """
        rng = np.random.default_rng(seed)
        start, stop = pd.Timestamp(self.start), pd.Timestamp(end)
        days = (stop - start) / pd.Timedelta(days=1)
        peak = max(self.monthly) if self.monthly else 1.0
        n = rng.poisson(self.per_week / 7 * peak * days)
        offsets = np.sort(rng.uniform(0, days, n))
        created = start + pd.to_timedelta(offsets, unit="D")
        if self.monthly:  # thinning: keep each arrival with its month's factor / peak
            keep = rng.uniform(0, peak, n) < np.asarray(self.monthly)[created.month - 1]
            created, n = created[keep], int(keep.sum())
        won = rng.uniform(size=n) < self.p
        won_mu, won_sigma = lognormal_params(self.won_mean, self.won_sd)
        lost_mu, lost_sigma = lognormal_params(self.lost_mean, self.lost_sd)
        duration = np.where(won, rng.lognormal(won_mu, won_sigma, n), rng.lognormal(lost_mu, lost_sigma, n))
        value_mu, value_sigma = lognormal_params(self.value_mean, self.value_sd)
        return pd.DataFrame(
            {
                "id": [f"006{seed:03d}{i:07d}" for i in range(n)],
                "created": created,
                "won": won,
                "close": created + pd.to_timedelta(duration, unit="D"),
                "amount": np.round(rng.lognormal(value_mu, value_sigma, n), 2),
            }
        )

    def scenario(self, horizon_days: float = 91) -> Scenario:
        """The truth as a single-stage scenario (flat inflow, no open deals)."""
        return scenario_from_dict(
            {
                "name": "synthetic truth",
                "horizon_days": horizon_days,
                "quota": {"deals": 1},
                "inflow": {"per_week": self.per_week},
                "deal_value": {"dist": "lognormal", "mean": self.value_mean, "sd": self.value_sd},
                "stages": [
                    {
                        "name": "Open pipeline",
                        "conversion": self.p,
                        "duration": {"dist": "lognormal", "mean": self.won_mean, "sd": self.won_sd},
                        "lost_duration": {"dist": "lognormal", "mean": self.lost_mean, "sd": self.lost_sd},
                    }
                ],
            }
        )


def export_frame(
    deals: pd.DataFrame, export_date: str, zombies: int = 0, zombie_age_days: float = 1_000
) -> pd.DataFrame:
    """The CRM's view on ``export_date``, with Salesforce column names.

    Deals created after the export are absent; closed ones show ``Closed Won`` /
    ``Closed Lost`` and their close time; open ones an open stage and an *expected*
    close date 30 days ahead (as Salesforce does: the reader must ignore it). ``zombies``
    adds that many deals created ``zombie_age_days`` before the export and still open.
    """
    end = pd.Timestamp(export_date)
    known = deals[deals["created"] <= end]
    closed = known["close"] <= end
    stage = np.where(known["won"], "Closed Won", "Closed Lost").astype(object)
    stage[~closed.to_numpy()] = [OPEN_STAGES[i % 2] for i in range(int((~closed).sum()))]
    close = known["close"].where(closed, end + pd.Timedelta(days=30))
    frame = pd.DataFrame(
        {
            "Id": known["id"],
            "CreatedDate": known["created"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "CloseDate": close.dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "StageName": stage,
            "Amount": known["amount"],
            "OwnerId": "005A",
        }
    )
    if zombies:
        created = (end - pd.Timedelta(days=zombie_age_days)).strftime("%Y-%m-%dT%H:%M:%S")
        extra = pd.DataFrame(
            {
                "Id": [f"zombie{i}" for i in range(zombies)],
                "CreatedDate": created,
                "CloseDate": "",
                "StageName": "Negotiation",
                "Amount": 50_000.0,
                "OwnerId": "005B",
            }
        )
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


def export_csv(deals: pd.DataFrame, export_date: str, path=None, **options) -> str:
    """:func:`export_frame` as CSV text, also written to ``path`` when given."""
    text = export_frame(deals, export_date, **options).to_csv(index=False)
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return text


# --- deals played out by the engine --------------------------------------------------------


def engine_deals(scenario: Scenario, start: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One replication of ``scenario`` deal by deal, from ``start`` on: deals and stage entries.

    The frames of :meth:`StageWorld.deals` (``id``, ``created``, ``won``, ``close``,
    ``amount``; ``id``, ``stage``, ``entered``). Deals still open at the horizon have no
    close (NaT): an export at any date up to the horizon shows them open.
    """
    history = deal_history(scenario, root_children(seed, 0, 1)[0])
    origin = pd.Timestamp(start)

    def dates(days) -> pd.Series:
        return origin + pd.to_timedelta(np.asarray(days, dtype=float), unit="D")

    ids = np.array([f"006{seed:03d}{i:07d}" for i in range(len(history))])
    deals = pd.DataFrame(
        {
            "id": ids,
            "created": dates(history["created"]),
            "won": (history["outcome"] == "won").to_numpy(),
            "close": dates(history["closed"]),
            "amount": np.round(history["amount"].to_numpy(), 2),
        }
    )
    rows = [
        pd.DataFrame({"id": ids[entered.notna()], "stage": name, "entered": dates(entered[entered.notna()])})
        for name in scenario.stage_names
        for entered in [history[f"entered[{name}]"]]
    ]
    return deals, pd.concat(rows, ignore_index=True)


# --- a multi-stage world, with a stage history ------------------------------------------


@dataclass(frozen=True)
class StageTruth:
    """One true stage: conversion rate, lognormal days to move on and to be lost."""

    name: str
    p: float
    won_mean: float
    won_sd: float
    lost_mean: float
    lost_sd: float


DEFAULT_STAGES = (
    StageTruth("Discovery", 0.6, 12.0, 8.0, 10.0, 8.0),
    StageTruth("Proposal", 0.5, 20.0, 12.0, 15.0, 10.0),
    StageTruth("Negotiation", 0.7, 10.0, 6.0, 12.0, 9.0),
)


@dataclass(frozen=True)
class StageWorld:
    """A funnel of known stages: each deal enters the first on creation and goes stage by stage.

    In stage ``j`` a deal moves on with probability ``p_j`` after a lognormal time, or is
    lost after another; moving on from the last stage is a win. This is exactly the
    multi-stage scenario calibration writes, so calibration is correctly specified.
    """

    stages: tuple[StageTruth, ...] = DEFAULT_STAGES
    per_week: float = 25.0
    value_mean: float = 20_000.0
    value_sd: float = 12_000.0
    start: str = "2023-06-01"

    def deals(self, end: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every deal created from ``start`` to ``end`` with its true fate, and its stage entries.

        Returns the deals (as :meth:`World.deals`) and the history: ``id``, ``stage``,
        ``entered`` for every stage entry, possibly after ``end``.
        """
        rng = np.random.default_rng(seed)
        start, stop = pd.Timestamp(self.start), pd.Timestamp(end)
        days = (stop - start) / pd.Timedelta(days=1)
        n = rng.poisson(self.per_week / 7 * days)
        created = start + pd.to_timedelta(np.sort(rng.uniform(0, days, n)), unit="D")
        ids = np.array([f"006{seed:03d}{i:07d}" for i in range(n)])
        clock = np.zeros(n)
        alive = np.ones(n, dtype=bool)
        rows = []
        for stage in self.stages:
            rows.append(pd.DataFrame({"id": ids[alive], "stage": stage.name, "entered": clock[alive]}))
            moves = rng.uniform(size=n) < stage.p
            won_mu, won_sigma = lognormal_params(stage.won_mean, stage.won_sd)
            lost_mu, lost_sigma = lognormal_params(stage.lost_mean, stage.lost_sd)
            stay = np.where(moves, rng.lognormal(won_mu, won_sigma, n), rng.lognormal(lost_mu, lost_sigma, n))
            clock = np.where(alive, clock + stay, clock)
            alive &= moves
        value_mu, value_sigma = lognormal_params(self.value_mean, self.value_sd)
        deals = pd.DataFrame(
            {
                "id": ids,
                "created": created,
                "won": alive,
                "close": created + pd.to_timedelta(clock, unit="D"),
                "amount": np.round(rng.lognormal(value_mu, value_sigma, n), 2),
            }
        )
        history = pd.concat(rows, ignore_index=True)
        offset = pd.Series(created, index=ids)
        history["entered"] = offset.reindex(history["id"]).to_numpy() + pd.to_timedelta(history["entered"], unit="D")
        return deals, history

    def scenario(self, horizon_days: float) -> Scenario:
        """The truth as a scenario: the stages, lognormal times, flat inflow, no open deals."""

        def lognormal(mean: float, sd: float) -> dict:
            return {"dist": "lognormal", "mean": mean, "sd": sd}

        return scenario_from_dict(
            {
                "name": "synthetic stages",
                "horizon_days": horizon_days,
                "quota": {"deals": 1},
                "inflow": {"per_week": self.per_week},
                "deal_value": lognormal(self.value_mean, self.value_sd),
                "stages": [
                    {
                        "name": t.name,
                        "conversion": t.p,
                        "duration": lognormal(t.won_mean, t.won_sd),
                        "lost_duration": lognormal(t.lost_mean, t.lost_sd),
                    }
                    for t in self.stages
                ],
            }
        )


def history_frame(deals: pd.DataFrame, history: pd.DataFrame, export_date: str) -> pd.DataFrame:
    """The CRM's stage history on ``export_date``, as Salesforce's OpportunityHistory.

    Stage entries up to the export, plus a ``Closed Won`` / ``Closed Lost`` row at each
    close up to it (which calibration must not take for a stage).
    """
    end = pd.Timestamp(export_date)
    known = deals[deals["created"] <= end]
    closed = known[known["close"] <= end]
    closing = pd.DataFrame(
        {"id": closed["id"], "stage": np.where(closed["won"], "Closed Won", "Closed Lost"), "entered": closed["close"]}
    )
    rows = pd.concat([history[history["entered"] <= end], closing], ignore_index=True)
    rows = rows.sort_values(["entered", "id"], kind="stable")
    return pd.DataFrame(
        {
            "Id": [f"008{i:08d}" for i in range(len(rows))],
            "OpportunityId": rows["id"].to_numpy(),
            "StageName": rows["stage"].to_numpy(),
            "CreatedDate": rows["entered"].dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        }
    )


def history_csv(deals: pd.DataFrame, history: pd.DataFrame, export_date: str, path=None) -> str:
    """:func:`history_frame` as CSV text, also written to ``path`` when given."""
    text = history_frame(deals, history, export_date).to_csv(index=False)
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return text

"""Choosing how much recent history should count, by backtesting the history before the date.

A half-life of recency weighting trades noise for drift: a short one follows a win rate
that moves but reads fewer deals. Which is better depends on the funnel, so it is chosen
per date ``D`` the honest way: each candidate is backtested at origins whose outcome was
already known on ``D`` (``origin + horizon <= D``, each calibration reading only what was
known at its origin), and the candidate whose forecasts scored best there is used at
``D``. Nothing after ``D`` is read, so a backtest of the choice is itself honest.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.crm import DEFAULT_HALF_LIFE_WEEKS, scoring
from sim.crm.baselines import actual_wins
from sim.crm.calibrate import (
    Calibration,
    CalibrationError,
    calibrate,
    date_label,
    parse_as_of,
)
from sim.crm.reader import CrmData
from sim.runner import simulate
from sim.words import counted

CANDIDATES: tuple[float | None, ...] = (None, 26.0, 13.0)
"""Half-lives tried, in weeks (None: every deal counts the same)."""
INNER_ORIGINS = 4
"""Past origins each candidate is scored at."""
INNER_EVERY_DAYS = 28
MIN_INNER_ORIGINS = 3
"""Fewer scored origins than this: too little history to choose, every deal counts the same."""
INNER_RUNS = 300
LEVELS = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class HalfLifeChoice:
    """The half-life chosen at a date, and the evidence.

    Attributes
    ----------
    half_life_weeks : float or None
    scores : dict of str to float
        Each candidate's mean pinball loss of revenue over the inner origins, scaled by
        the mean actual (lower is better); ``"none"`` for no weighting.
    origins : tuple of str
        The inner origins scored.
    note : str
        The choice in words.
    """

    half_life_weeks: float | None
    scores: dict[str, float]
    origins: tuple[str, ...]
    note: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary of the attributes."""
        return {
            "half_life_weeks": self.half_life_weeks,
            "scores": dict(self.scores),
            "origins": list(self.origins),
            "note": self.note,
        }


def _label(half_life: float | None) -> str:
    return "none" if half_life is None else f"{half_life:g}"


def _forecast(
    crm: CrmData | pd.DataFrame,
    origin: pd.Timestamp,
    half_life: float | None,
    memo: MutableMapping,
    horizon_days: float,
    runs: int,
    seed: int,
    options: dict[str, Any],
) -> np.ndarray | None:
    """P10, P50, P90 of revenue forecast at ``origin`` with this half-life (None if nothing can be calibrated)."""
    key = (origin, half_life)
    if key not in memo:
        try:
            scenario = calibrate(crm, origin, horizon_days=horizon_days, half_life_weeks=half_life, **options).scenario
        except CalibrationError:
            memo[key] = None
        else:
            revenue = simulate(scenario, runs=runs, seed=seed).outcomes.revenue
            memo[key] = np.quantile(revenue, LEVELS)
    return memo[key]


def choose_half_life(
    crm: CrmData | pd.DataFrame,
    as_of: pd.Timestamp,
    horizon_days: float = 91,
    *,
    candidates: tuple[float | None, ...] = CANDIDATES,
    runs: int = INNER_RUNS,
    seed: int = 0,
    memo: MutableMapping | None = None,
    **calibration_options: Any,
) -> HalfLifeChoice:
    """The half-life whose forecasts did best before ``as_of``, by a backtest that reads nothing later.

    Parameters
    ----------
    crm : CrmData or pandas.DataFrame
    as_of : pandas.Timestamp
        The date the choice is for.
    horizon_days : float
    candidates : tuple
        Half-lives to try, in weeks (None: no weighting).
    runs, seed : int
        Each inner forecast's replications and seed.
    memo : mapping, optional
        Inner forecasts by (origin, half-life), shared between dates: a backtest's
        neighbouring dates score many of the same inner origins.
    **calibration_options
        Passed on to :func:`sim.crm.calibrate.calibrate` (not ``half_life_weeks``).

    Returns
    -------
    HalfLifeChoice
        The candidate with the lowest mean pinball loss of revenue (P10, P50, P90) over
        up to :data:`INNER_ORIGINS` origins ``as_of - horizon - k * 28 days``; ties go to
        the longer half-life. With fewer than :data:`MIN_INNER_ORIGINS` origins that
        every candidate can forecast, no weighting.
    """
    memo = {} if memo is None else memo
    deals = crm.deals if isinstance(crm, CrmData) else crm
    last_origin = as_of - pd.Timedelta(days=horizon_days)
    origins = [last_origin - pd.Timedelta(days=INNER_EVERY_DAYS * k) for k in range(INNER_ORIGINS)]
    scored, losses = [], {c: [] for c in candidates}
    for origin in origins:
        forecasts = {
            c: _forecast(crm, origin, c, memo, horizon_days, runs, seed, calibration_options) for c in candidates
        }
        if any(f is None for f in forecasts.values()):
            continue
        actual = actual_wins(deals, origin, horizon_days)["revenue"]
        scored.append((origin, actual))
        for c, quantiles in forecasts.items():
            losses[c].append(scoring.pinball_loss(quantiles[None, :], LEVELS, [actual]))
    labels = tuple(date_label(origin) for origin, _ in scored)
    if len(scored) < MIN_INNER_ORIGINS:
        return HalfLifeChoice(
            None,
            {},
            labels,
            f"too little history before {date_label(as_of)} to choose ({counted(len(scored), 'past forecast')}): "
            "every deal counts the same",
        )
    mean_actual = float(np.mean([actual for _, actual in scored])) or 1.0
    scores = {_label(c): float(np.mean(losses[c])) / mean_actual for c in candidates}
    # The longest half-life (None first) wins ties: no more weighting than the data ask for.
    best = min(candidates, key=lambda c: (round(scores[_label(c)], 12), -(c or np.inf)))
    chosen = "every deal counting the same" if best is None else f"a half-life of {counted(best, 'week')}"
    return HalfLifeChoice(
        best,
        scores,
        labels,
        f"{chosen}: its forecasts at {counted(len(scored), 'date')} before {date_label(as_of)} scored best",
    )


def calibrate_choosing(
    crm: CrmData | pd.DataFrame,
    as_of: Any,
    *,
    half_life_weeks: float | str | None = DEFAULT_HALF_LIFE_WEEKS,
    seed: int = 0,
    memo: MutableMapping | None = None,
    **options: Any,
) -> tuple[Calibration, HalfLifeChoice | None]:
    """:func:`sim.crm.calibrate.calibrate`, with ``half_life_weeks="auto"`` chosen first by :func:`choose_half_life`.

    ``seed`` and ``memo`` go to :func:`choose_half_life` (a backtest shares one memo
    between its origins); ``options`` to :func:`sim.crm.calibrate.calibrate`.

    Returns
    -------
    (Calibration, HalfLifeChoice or None)
        The calibration, and the choice when one was made.
    """
    if half_life_weeks != "auto":
        return calibrate(crm, as_of, half_life_weeks=half_life_weeks, **options), None
    as_of = parse_as_of(as_of) if isinstance(as_of, str) else pd.Timestamp(as_of)
    inner = {key: value for key, value in options.items() if key not in ("quota_revenue", "quota_deals", "name")}
    choice = choose_half_life(crm, as_of, seed=seed, memo=memo, **inner)
    return calibrate(crm, as_of, half_life_weeks=choice.half_life_weeks, **options), choice

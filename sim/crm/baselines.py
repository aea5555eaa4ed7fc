"""What happened after a date, and the naive forecasts a backtest sets beside the simulation.

:func:`actual_wins` is the truth every forecast of ``(D, D + N]`` is scored against.

The two naive forecasts look only at what was known on the origin ``D`` and forecast the won revenue and
won deals of ``(D, D + N]``. The run-rate says the next ``N`` days will win what the
last ``N`` did. The weighted pipeline is the spreadsheet's forecast: each open deal's
amount times its chance of being won (by its stage and age, from the calibration at
``D``), plus what new deals won at the recent pace. A simulation earns its keep only if
it misses less than these.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.model.funnel import ListedDeals
from sim.model.scenario import Scenario, rate_mean

DAY = pd.Timedelta(days=1)


def actual_wins(deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float) -> dict[str, float]:
    """Won deals and their revenue, closed in ``(as_of, as_of + horizon_days]``, created at any time."""
    end = as_of + pd.Timedelta(days=horizon_days)
    won = deals[(deals["outcome"] == "won") & (deals["closed"] > as_of) & (deals["closed"] <= end)]
    return {"revenue": float(won["amount"].sum()), "deals": int(len(won))}


def run_rate(
    deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float, *, new_business: bool = False
) -> dict[str, float]:
    """Won revenue and won deals of the ``horizon_days`` before ``as_of``: the forecast "as before".

    When fewer than ``horizon_days`` days have passed since the first close known on
    ``as_of``, the window is the whole time since that close, and its wins are scaled
    up to ``horizon_days``.

    Parameters
    ----------
    deals : pandas.DataFrame
        :attr:`sim.crm.reader.CrmData.deals`.
    as_of : pandas.Timestamp
        The origin; nothing after it is looked at.
    horizon_days : float
        ``N``, the window's length and the forecast's.
    new_business : bool
        Count only the wins of deals created in the window too (the pace at which new
        deals are won, which an open pipeline leaves out).

    Returns
    -------
    dict
        ``revenue`` and ``deals`` (a float: scaled when the window is short); both 0
        when nothing had closed by ``as_of``.
    """
    closed = deals["closed"].where(deals["outcome"].isin(["won", "lost"]) & (deals["closed"] <= as_of))
    first = closed.min()
    if pd.isna(first) or first >= as_of:
        return {"revenue": 0.0, "deals": 0.0}
    days = min(float(horizon_days), (as_of - first) / DAY)
    start = as_of - pd.Timedelta(days=days)
    short = days < horizon_days

    def inside(times: pd.Series) -> pd.Series:
        # A window cut short starts at the first close and holds it.
        return (times >= start) if short else (times > start)

    won = (deals["outcome"] == "won") & inside(closed)
    if new_business:
        won &= inside(deals["created"])
    scale = float(horizon_days) / days
    return {
        "revenue": float(deals.loc[won, "amount"].sum()) * scale,
        "deals": float(won.sum()) * scale,
    }


def open_win_chances(scenario: Scenario) -> np.ndarray:
    """Each listed open deal's chance of being won eventually, given its stage and its age there.

    The chance of leaving its stage forwards at its age
    (:meth:`sim.model.funnel.ListedDeals.conversion` at the stage's mean rate: Bayes' rule
    on "still open"), times the mean rates of every later stage.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    ndarray
        One chance per entry of ``scenario.open_deals``, in their order.
    """
    listed = ListedDeals.of(scenario)
    means = np.array([rate_mean(stage.conversion) for stage in scenario.stages])
    # later[j]: the product of the mean rates of the stages after j.
    later = np.append(np.cumprod(means[::-1])[::-1][1:], 1.0)
    return np.asarray(listed.conversion(means[listed.stage]), dtype=float) * later[listed.stage]


def weighted_pipeline(
    deals: pd.DataFrame, scenario: Scenario, as_of: pd.Timestamp, horizon_days: float
) -> dict[str, float]:
    """The weighted-pipeline forecast: open deals times their chance, plus new business at the recent pace.

    Parameters
    ----------
    deals : pandas.DataFrame
        :attr:`sim.crm.reader.CrmData.deals`.
    scenario : Scenario
        Calibrated on ``as_of``: its listed open deals, stages and deal value. A deal
        without an amount counts at the mean deal value.
    as_of : pandas.Timestamp
    horizon_days : float

    Returns
    -------
    dict
        ``revenue``: the sum of chance times amount, plus :func:`run_rate` of new
        business; ``deals``: the sum of the chances, plus the new deals won at that pace.
        The open deals count whenever they would be won, not only within the horizon,
        as a weighted pipeline does.
    """
    chances = open_win_chances(scenario)
    amounts = np.array([scenario.deal_value.mean() if d.amount is None else d.amount for d in scenario.open_deals])
    new = run_rate(deals, as_of, horizon_days, new_business=True)
    return {
        "revenue": float(np.sum(chances * amounts)) + new["revenue"],
        "deals": float(np.sum(chances)) + new["deals"],
    }

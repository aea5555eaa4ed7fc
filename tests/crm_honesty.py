"""How honest a calibrated forecast is on the synthetic worlds: coverage, error and skill with their SEs.

:func:`honesty` backtests a world (:mod:`tests.crm_worlds`) from its rolling origins
(20, two weeks apart, 91 days ahead) on a few independent world seeds, with any
calibration options, and pools the origins. The one idea: neighbouring origins are not
independent (their 91-day windows overlap for six steps, and their calibrations share
most of their history), so a score's standard error is that of the mean of a
correlated series: autocovariances up to the overlap, pooled over the seeds (which are
independent), with Bartlett weights (Newey-West), never below the independent SE.
"""

from __future__ import annotations

import math
import time

import numpy as np

from sim.crm import scoring
from sim.crm.backtest import backtest
from tests.crm_worlds import HORIZON_DAYS, STEP_DAYS, CohortWorld

SEEDS = (1, 2, 3, 4)
"""World seeds pooled by default."""
RUNS = 1_000
LAGS = math.ceil(HORIZON_DAYS / STEP_DAYS) - 1
"""Origins this many steps apart still forecast overlapping windows."""


def long_run_se(series: np.ndarray, lags: int = LAGS) -> float:
    """Standard error of the mean of ``series`` (seeds x origins), each row a correlated series.

    Parameters
    ----------
    series : ndarray
        One row per independent world seed, one column per origin in time order.
    lags : int
        Autocovariances up to this lag count, with Bartlett weights ``1 - h / (lags + 1)``.

    Returns
    -------
    float
        ``sqrt(long-run variance / size)``, the long-run variance at least the variance
        (a negative estimated autocorrelation is not taken as a gain).
    """
    x = np.asarray(series, dtype=float)
    x = x - x.mean()
    gamma0 = float(np.mean(x * x))
    reach = min(lags, x.shape[1] - 1)
    gammas = [float(np.sum(x[:, h:] * x[:, :-h])) / x.size for h in range(1, reach + 1)]
    longrun = gamma0 + 2 * sum((1 - h / (lags + 1)) * g for h, g in enumerate(gammas, start=1))
    return math.sqrt(max(longrun, gamma0) / x.size)


def honesty(world: CohortWorld, seeds=SEEDS, *, runs: int = RUNS, seed: int = 0, **calibration_options) -> dict:
    """Backtest ``world`` on each of ``seeds`` and score the forecasts, pooled over origins and seeds.

    Parameters
    ----------
    world : CohortWorld
        The truth; its :meth:`~tests.crm_worlds.CohortWorld.origins` are the origins.
    seeds : sequence of int
        World seeds (independent histories).
    runs, seed : int
        Replications and the simulation's seed, as :func:`sim.crm.backtest.backtest`.
    **calibration_options
        Passed on to :func:`sim.crm.calibrate.calibrate` (e.g. ``uncertainty``).

    Returns
    -------
    dict
        ``coverage`` (P10-P90, revenue), ``mape_p50``, ``mape_run_rate`` (the trailing
        run-rate's MAPE), ``skill`` (``1 - mape_p50 / mape_run_rate``) and ``mape_gap``
        (``mape_p50 - mape_run_rate``), each with its standard error ``<key>_se``;
        ``origins`` (pooled), ``seeds``, ``runs``, ``seconds`` (wall time) and
        ``per_seed`` (each seed's backtest ``coverage``, ``mape_p50``,
        ``mape_run_rate``).
    """
    started = time.perf_counter()
    dates = [str(d.date()) for d in world.origins()]
    rows, per_seed = [], []
    for world_seed in seeds:
        answer = backtest(world.export(world_seed), dates, HORIZON_DAYS, runs=runs, seed=seed, **calibration_options)
        rows.append(answer["dates"])
        per_seed.append(
            {
                "seed": world_seed,
                "coverage": answer["coverage"],
                "mape_p50": answer["mape_p50"],
                "mape_run_rate": answer["baselines"]["run_rate"]["mape_p50"],
            }
        )

    def table(read) -> np.ndarray:
        return np.array([[read(r) for r in seed_rows] for seed_rows in rows], dtype=float)

    actual = table(lambda r: r["actual"]["revenue"])
    p10, p50, p90 = (table(lambda r, k=k: r["forecast"]["revenue"][k]) for k in ("p10", "p50", "p90"))
    point = table(lambda r: r["baselines"]["run_rate"]["revenue"])
    inside = (p10 <= actual) & (actual <= p90)
    # Every origin of these worlds wins something, so each relative error is defined.
    miss, miss_rr = np.abs(p50 - actual) / actual, np.abs(point - actual) / actual
    mape_p50 = scoring.mape(p50.ravel(), actual.ravel())
    mape_rr = scoring.mape(point.ravel(), actual.ravel())
    ratio = mape_p50 / mape_rr
    return {
        "coverage": scoring.coverage(p10.ravel(), p90.ravel(), actual.ravel()),
        "coverage_se": long_run_se(inside),
        "mape_p50": mape_p50,
        "mape_p50_se": long_run_se(miss),
        "mape_run_rate": mape_rr,
        "mape_run_rate_se": long_run_se(miss_rr),
        "skill": scoring.skill(mape_p50, mape_rr),
        # The delta method: skill moves with mape_p50 - ratio * mape_run_rate.
        "skill_se": long_run_se(miss - ratio * miss_rr) / mape_rr,
        "mape_gap": mape_p50 - mape_rr,
        "mape_gap_se": long_run_se(miss - miss_rr),
        "origins": int(actual.size),
        "seeds": list(seeds),
        "runs": runs,
        "seconds": time.perf_counter() - started,
        "per_seed": per_seed,
    }

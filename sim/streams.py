"""Random numbers: one root seed, independent streams, and the draws both engines share.

The rules (NumPy's "Parallel random number generation" guide):

* one root ``SeedSequence(seed)``; its ``spawn`` children give independent streams, and
  child *i* is the same however many children are spawned, so replication *i* does not
  change when more runs are asked for or when work is split over more workers;
* within a replication, each kind of draw has its own stream, so changing one
  parameter (say the inflow) does not shift the random numbers behind another (the deal
  values): compared scenarios then see *common random numbers*;
* arrivals are generated in "unit-rate time" (a Poisson process of rate 1) and scaled
  by the inflow rate, and conversion rates come from inverse cdfs of fixed uniforms, so
  more inflow or a better rate can only add wins, never reshuffle them;
* one uniform ``u`` per deal and stage decides both whether the deal converts
  (``u < p``) and, if it does, how long it took: given ``u < p``, ``u / p`` is again
  uniform and independent of the decision, so the duration is the stage
  distribution's inverse cdf at ``u / p``. A better rate then converts a superset of
  deals, each no slower than before, and the engines never draw durations that
  cannot matter;
* deal values are i.i.d. and independent of everything else, so the *k*-th win of a
  replication takes the *k*-th value of the replication's value stream: revenue can
  only grow with the number of wins.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sim.scenario import BetaRate, Scenario


def root_children(seed: int, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start`` to ``stop - 1`` of the root seed (one per replication or block).

    Child *i* is exactly ``SeedSequence(seed).spawn(n)[i]`` for any ``n > i``, built
    directly from its spawn key, so a worker makes only the seeds it needs.
    """
    return [np.random.SeedSequence(seed, spawn_key=(i,)) for i in range(start, stop)]


def generators(seed_sequence: np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators spawned from one seed sequence."""
    return [np.random.Generator(np.random.PCG64(child)) for child in seed_sequence.spawn(n)]


def conversion_rates(scenario: Scenario, uniforms: np.ndarray) -> np.ndarray:
    """Conversion rate of each stage for each replication.

    Parameters
    ----------
    scenario : Scenario
    uniforms : ndarray, shape (stages, reps)
        Uniform(0, 1) draws; a Beta rate is its inverse cdf at them (monotone in the
        rate's mean under common random numbers), a fixed rate ignores them.

    Returns
    -------
    ndarray, shape (stages, reps)
    """
    rates = np.empty_like(uniforms, dtype=float)
    for j, stage in enumerate(scenario.stages):
        conversion = stage.conversion
        if isinstance(conversion, BetaRate):
            a, b = conversion.beta_parameters()
            rates[j] = special.betaincinv(a, b, uniforms[j])  # the Beta's ppf, minus checks
        else:
            rates[j] = conversion
    return rates


def unit_rate_cap(scenario: Scenario) -> float:
    """Length of the horizon in unit-rate time: arrivals with cumulative time <= it count."""
    # Multiply first (17 * 91 / 7 is exactly 221; 17 / 7 * 91 rounds below it), and allow
    # for the last bit so the arrival exactly at the horizon is not lost to rounding.
    return scenario.inflow.per_week * scenario.horizon / 7.0 * (1.0 + 1e-12)

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
  only grow with the number of wins;
* a stage with follow-ups, no-shows or stalls (:attr:`sim.model.scenario.Stage.has_behaviour`)
  gives each deal two more uniforms there, from streams of their own (spawned after the
  existing ones, so scenarios without these keys draw exactly the numbers they drew
  before): one for the touches it needs, one for its meeting
  (:func:`stage_effects`). Both only ever take wins away through thresholds that move
  one way, so more persistence or fewer no-shows can only add wins;
* an inflow with ``dispersion`` gives each replication one more uniform, from a stream
  of its own (the last of each table, read only then), whose Gamma quantile is the
  replication's inflow level ``G`` (:func:`sim.engines.draws.gamma_levels`): its
  unit-rate arrival times are divided by ``G``, so a scenario with another
  ``per_week`` or dispersion reads the same uniform and keeps common random numbers;
* a ``deal_value_dispersion`` likewise gives each replication one uniform from a new
  last stream, whose Gamma quantile is its deal value level ``H``: every value the
  replication draws from ``deal_value`` is multiplied by ``H`` (listed amounts are not),
  so the *k*-th win still takes the *k*-th value and revenue only grows with wins.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class ReplicationStream(IntEnum):
    """The SimPy engine's streams: children of a replication's seed (:func:`child` / :func:`stream`).

    Numbers are fixed: a new kind of draw takes the next free one, so the others keep
    their numbers. Those past ``VALUES`` are made only when a scenario reads them.
    """

    RATES = 0  # one uniform per stage: the replication's Beta rates
    ARRIVALS = 1  # unit-rate arrival gaps
    PATHS = 2  # one uniform per deal and stage: converts (u < p) and, if so, its days (ppf(u / p))
    VALUES = 3  # deal values, in the order deals are won
    LISTED = 4  # listed open deals' uniforms
    LOST = 5  # with limited reps: a lost deal's days in its stage
    LISTED_LOST = 6  # the same for listed open deals
    EFFECTS = 7  # follow-up and meeting uniforms (two streams spawned under it)
    LISTED_EFFECTS = 8  # the same for listed open deals
    AMOUNTS = 9  # a synthetic CRM export's amounts of deals not won (sim.crm.synthetic)
    INFLOW = 10  # with [inflow] dispersion: one uniform, the replication's inflow level
    VALUE_LEVEL = 11  # with deal_value_dispersion: one uniform, the replication's deal value level


class BlockStream(IntEnum):
    """The vectorised engine's streams: children of a block's seed (one block: :data:`BLOCK` replications)."""

    RATES = 0
    OPEN = 1  # anonymous open deals' conversion uniforms, one stream per stage
    NEW = 2  # new deals' conversion uniforms, one stream per stage
    VALUES = 3
    GAPS = 4  # unit-rate arrival gaps
    LISTED = 5  # listed open deals' conversion uniforms, one stream per stage
    EFFECTS = 6  # follow-up and meeting uniforms, for open, listed and new deals (spawned under it)
    INFLOW = 7  # with [inflow] dispersion: one uniform per replication, its inflow level
    VALUE_LEVEL = 8  # with deal_value_dispersion: one uniform per replication, its deal value level


class QueueStream(IntEnum):
    """The vectorised queues' streams (limited reps): children of a block's seed."""

    RATES = 0
    PATHS = 1  # conversion uniforms, one stream per stage
    LOST = 2  # one uniform per deal: a lost deal's days in the stage it is lost in
    EFFECTS = 3  # follow-up and meeting uniforms, two streams per stage
    GAPS = 4
    VALUES = 5
    INFLOW = 6  # with [inflow] dispersion: one uniform per replication, its inflow level
    VALUE_LEVEL = 7  # with deal_value_dispersion: one uniform per replication, its deal value level


def root_children(seed: int, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start`` to ``stop - 1`` of the root seed (one per replication or block).

    Child *i* is exactly ``SeedSequence(seed).spawn(n)[i]`` for any ``n > i``, built
    directly from its spawn key, so a worker makes only the seeds it needs.
    """
    return [np.random.SeedSequence(seed, spawn_key=(i,)) for i in range(start, stop)]


def generators(
    seed_sequence: np.random.SeedSequence, n: int, bit_generator: type[np.random.BitGenerator] = np.random.PCG64
) -> list[np.random.Generator]:
    """``n`` independent generators spawned from one seed sequence.

    Parameters
    ----------
    seed_sequence : numpy.random.SeedSequence
    n : int
    bit_generator : type, optional
        NumPy bit generator class; PCG64 (NumPy's default) unless an engine that is
        bound by raw draws asks for a faster one such as SFC64.
    """
    return [np.random.Generator(bit_generator(child)) for child in seed_sequence.spawn(n)]


def child(seed_sequence: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of a seed sequence, as ``spawn`` would make it, without spawning.

    ``spawn`` counts the children made so far; building the child from its spawn key
    gives the same stream whatever else has been spawned, so a new kind of draw can take
    a fixed index after the existing ones and leave their numbers alone.
    """
    return np.random.SeedSequence(
        seed_sequence.entropy, spawn_key=(*seed_sequence.spawn_key, index), pool_size=seed_sequence.pool_size
    )


def stream(
    seed_sequence: np.random.SeedSequence, index: int, bit_generator: type[np.random.BitGenerator] = np.random.PCG64
) -> np.random.Generator:
    """The generator of child ``index`` of a seed sequence, made on its own.

    It is ``generators(seed_sequence, n)[index]`` for a sequence that has spawned
    nothing yet, so a model can make only the streams it reads (each costs about 15
    microseconds, a good part of a short SimPy replication).
    """
    return np.random.Generator(bit_generator(child(seed_sequence, index)))


TEAM_STREAM = 0x7EA7
"""First spawn-key word of the reps' seeds: keeps them apart from the replication streams."""


SEGMENT_STREAM = 0x5E6
"""First spawn-key word of the segments' seeds: apart from the replications' and the reps'."""


def _derived_seed(seed: int, stream: int, index: int) -> int:
    """A 128-bit root seed drawn from ``SeedSequence(seed, spawn_key=(stream, index))``."""
    words = np.random.SeedSequence(int(seed), spawn_key=(stream, int(index))).generate_state(4, np.uint32)
    return int.from_bytes(words.astype("<u4").tobytes(), "little")


def rep_seed(seed: int, rep: int) -> int:
    """Root seed of rep ``rep``: a 128-bit integer drawn from ``SeedSequence(seed, spawn_key=(TEAM_STREAM, rep))``.

    It depends on nothing but ``seed`` and ``rep``. The spawn key has two words, unlike a
    replication's (one word), so no rep reuses a replication stream of the root seed.
    """
    return _derived_seed(seed, TEAM_STREAM, rep)


def segment_seed(seed: int, segment: int) -> int:
    """Root seed of segment ``segment`` of a scenario: from ``SeedSequence(seed, spawn_key=(SEGMENT_STREAM, segment))``.

    Running the segment on its own with this seed gives exactly its numbers within the
    scenario; its reps' seeds are drawn from it (:func:`rep_seed`).
    """
    return _derived_seed(seed, SEGMENT_STREAM, segment)


BLOCK = 512
"""Replications simulated together; one seed child each (a power of two)."""

"""The engines: each a way to simulate the same model (:mod:`sim.model`), with the same random streams.

- :mod:`sim.engines.simpy_engine`: the discrete-event reference, one SimPy environment per replication.
- :mod:`sim.engines.vectorized`: deals that do not wait for each other, a block of replications as arrays.
- :mod:`sim.engines.thresholds`: the vectorised engine run from day 0: the inflow from which each deal is won.
- :mod:`sim.engines.queues`: limited reps on arrays, the first-in, first-out lines walked by compiled code.
- :mod:`sim.engines.streams`: the one table of random streams all of them read, and the seeding rules.
- :mod:`sim.engines.draws`, :mod:`sim.engines.tables`: the array draws and quantile tables they share.
- :mod:`sim.engines.outcomes`: what an engine returns, one row per replication.

Only :mod:`sim.runner` calls an engine.
"""

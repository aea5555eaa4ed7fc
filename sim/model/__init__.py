"""The model: what a scenario is and what it means, independent of any engine.

- :mod:`sim.model.scenario`: the validated scenario (frozen pydantic models), TOML in and out.
- :mod:`sim.model.distributions`: durations and deal values, scipy.stats underneath.
- :mod:`sim.model.funnel`: what a stage does to a deal (follow-ups, no-shows, stalls, an open deal's age).
- :mod:`sim.model.team`: a team as one scenario per rep (rates, ramp, open pipeline).
- :mod:`sim.model.average_math`: the plan with every quantity at its mean.
"""

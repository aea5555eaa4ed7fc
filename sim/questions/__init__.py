"""The questions people bring: each asks the runner and judges its results.

- :mod:`sim.questions.magic_number`: weekly new opportunities for a chance of hitting quota.
- :mod:`sim.questions.quota`: the quota hit with a chosen confidence, for a funnel, a team or its reps.
- :mod:`sim.questions.sensitivity`: which lever matters, as paired differences.
"""

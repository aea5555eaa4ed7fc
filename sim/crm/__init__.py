"""The CRM side: reading an export, fitting with censoring, calibrating a scenario as of a date, backtests.

- :mod:`sim.crm.reader`: a CRM export (and a stage history) into a clean table of deals.
- :mod:`sim.crm.fitting`: maximum-likelihood fits with open deals as censored.
- :mod:`sim.crm.calibrate`: a scenario from what was known on a date, and its report.
- :mod:`sim.crm.segments`: one funnel per segment (territory, product, channel) of an export, thin ones pooled.
- :mod:`sim.crm.rounding`: calibrated numbers as a person writes them (cents, 4-decimal rates, tenths of days).
- :mod:`sim.crm.backtest.backtest`: calibrate at past dates, forecast, compare with what happened.
- :mod:`sim.crm.synthetic`: one replication written down deal by deal, as a CRM would.
"""

DEFAULT_HALF_LIFE_WEEKS = 13.0
"""Recency weighting unless asked otherwise: a deal a quarter old counts half. Across the
synthetic worlds (steady, drifting, swinging inflow, zombies) it held the forecast band's
coverage closer to its 80% than weighing every deal the same, and missed no more where the
funnel is steady."""

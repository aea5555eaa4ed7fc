"""The CRM side: reading an export, fitting with censoring, calibrating a scenario as of a date, backtests.

- :mod:`sim.crm.reader`: a CRM export (and a stage history) into a clean table of deals.
- :mod:`sim.crm.fitting`: maximum-likelihood fits with open deals as censored.
- :mod:`sim.crm.calibrate`: a scenario from what was known on a date, and its report.
- :mod:`sim.crm.backtest.backtest`: calibrate at past dates, forecast, compare with what happened.
- :mod:`sim.crm.synthetic`: one replication written down deal by deal, as a CRM would.
"""

"""The Streamlit app's helpers: ``app.py`` is the page, these modules do its work.

- :mod:`ui.form`: between a scenario and the inputs (widget values, the stage table,
  the link); pure functions, no Streamlit.
- :mod:`ui.explain`: numbers in words: formats, sentences, the funnel math written out.
- :mod:`ui.charts`: the charts as Vega-Lite specs, and their PNG/SVG export (vl-convert, offline).
- :mod:`ui.compute`: the cached calls into :mod:`sim`.
- :mod:`ui.inputs`: the sidebar, the stage editor, validation, the URL, and the inputs for the
  scenario keys no other input shows (listed open deals, seasonal inflow).
- :mod:`ui.pages`: the seven pages.
- :mod:`ui.safe`: what keeps a shared server safe from its visitors: user strings shown as text,
  a guard around each page (plain message, details to the log), stopping work for a closed tab.
- :mod:`ui.segments_page`: Segments: each segment's odds and share of the total's risk, and an editor.
- :mod:`ui.wording`: library problem lines and field paths as a visitor reads them.
- :mod:`ui.calibrate_page`: Calibrate: a scenario from a CRM export, its report and fits, a backtest.

Imports point one way: app -> ui -> sim. Nothing in ``sim`` imports Streamlit or ``ui``.
"""

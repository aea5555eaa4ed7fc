"""funnel-sim's Streamlit page: a thin view over ``sim`` (helpers in ``ui``).

Run with ``make run`` (or ``streamlit run app.py -- [SCENARIO.toml]``). The page reads
the inputs, validates them into a scenario with :func:`sim.model.scenario.scenario_from_dict`,
keeps the last valid one when they are wrong, writes the what-if into the URL and draws
the open page only: the tabs track which one is open, so hidden pages compute nothing.
The tabs and the open page are a fragment (:func:`open_page`): switching page, or a
page's own slider, reruns the page alone, not the inputs above it.
The seven pages of :mod:`ui.pages` are followed by Segments (:mod:`ui.segments_page`) and Calibrate
(:mod:`ui.calibrate_page`, imported when first opened).
"""

from __future__ import annotations

import sys

import streamlit as st

from sim import Scenario
from sim.runner import choose_engine
from ui import compute, form, inputs, safe, segments_page
from ui import explain as say
from ui.form import stage_names
from ui.pages import PAGES, Context


def calibrate(ctx: Context) -> None:
    """The Calibrate page, imported when first opened: it brings the CRM readers and fits (a third of a second)."""
    from ui.calibrate_page import calibrate_page

    calibrate_page(ctx)


ALL_PAGES = {**PAGES, "Segments": segments_page.page, "Calibrate": calibrate}


def inputs_now() -> tuple:
    """What the inputs above the pages hold; a page's callback that changes it needs the whole script again."""
    state = st.session_state
    return inputs.read_values(), state.get("stages_key"), state.get("behaviour_key"), id(state.get("loaded"))


@st.fragment
def open_page(
    scenario: Scenario, wanted: int, seed: int, engine: str, drawn: tuple, link: inputs.Settings | None
) -> None:
    """The tabs and the open page: switching page, or moving a page's own slider, reruns only this.

    A page's button may change the inputs above (Use this quota, Use this pace, Calibrate's Use as the current
    scenario): then the whole script runs again, so the sidebar, the link and every page follow. ``link``: the
    settings to write into the address bar once the page is drawn, so it carries what the page's own inputs
    hold after a run of this fragment alone (None while some inputs need fixing: the link keeps the last
    valid what-if).
    """
    if inputs_now() != drawn:
        st.rerun()
    for tab, (title, page) in zip(
        st.tabs(list(ALL_PAGES), key="page", bind="query-params"), ALL_PAGES.items(), strict=True
    ):
        if tab.open:
            with tab, safe.guard(title):
                runs = compute.runs_within_budget(title, scenario, wanted, engine)
                if runs < form.MIN_RUNS:
                    st.warning(say.too_much_work(form.MIN_RUNS), icon=":material/block:")
                    continue
                if runs < wanted:
                    st.info(say.capped_runs(wanted, runs), icon=":material/speed:")
                page(Context(scenario, runs, seed, engine))
    if link is not None:
        inputs.sync_url(scenario, link)


st.set_page_config(page_title="funnel-sim: the odds of hitting quota", page_icon=":material/filter_alt:", layout="wide")
inputs.start(sys.argv[1:])
compute.serve()

st.title("What are the odds we hit quota?")
slots, settings = inputs.sidebar()
slots.scenario = st.container()
for line in st.session_state.get("notices", []):
    slots.scenario.error(safe.text(line))

with st.expander("**The funnel**: stages in order, conversion rates, days in each stage, open deals", expanded=True):
    st.caption(
        "Edit any cell (hover a column title for what it means). Add a stage with the empty row at the bottom, "
        "delete one by ticking its row and pressing Delete, reorder with the # column. Rate = the share of deals "
        "that move on; a deal that moves on from the last stage is won. Days: how long a deal stays in the stage."
    )
    frame = inputs.stage_editor()
    carried = inputs.carried_inputs()  # listed open deals, seasonal inflow: kept though no input shows them
    slots.stages = st.container()

# Closed on every scenario, so the answer (the open page's headline) shows without scrolling; its title says
# what of it the scenario uses.
in_use = inputs.optional_in_use(st.session_state["last_valid"])
with st.expander(
    "**Optional**: rep capacity, a team of reps, follow-ups, no-shows, stalled deals"
    + (f" (in use: {', '.join(in_use)})" if in_use else ""),
    expanded=False,
    key="optional_section",  # the same section whatever its title says, so it stays open while being edited
):
    optional = inputs.optional_sections(frame)
    slots.capacity, slots.team, slots.behaviour = (optional["slots"][k] for k in ("capacity", "team", "behaviour"))

values = inputs.read_values() | carried | {"behaviours": optional["behaviours"]}
scenario, problems = inputs.validate(values, frame)
problems = form.condense_problems(problems)
if scenario is None:
    scenario = st.session_state["last_valid"]
    inputs.show_problems(problems, slots, stage_names(frame))
    slots.scenario.warning(
        "Some inputs need fixing (see the red notes next to them). Until then the results below are for the last "
        "valid version of the scenario.",
        icon=":material/warning:",
    )
else:
    st.session_state["last_valid"] = scenario
    inputs.sync_url(scenario, settings)
inputs.offer_download(slots.download, scenario, stale=bool(problems))

st.caption(f"**{safe.text(scenario.name)}**" + (f": {safe.text(scenario.description)}" if scenario.description else ""))
try:
    engine = settings.engine
    running = choose_engine(scenario, engine)
except ValueError:  # the vectorised engine picked for what only the SimPy engine models
    engine = running = "simpy"
wanted = form.runs_for(settings.runs, scenario, running)
drawn = inputs_now()


open_page(scenario, wanted, settings.seed, engine, drawn, None if problems else settings)
compute.start_workers_in_background()

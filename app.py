"""funnel-sim's Streamlit page: a thin view over ``sim``.

Run with ``make run`` (or ``streamlit run app.py -- [SCENARIO.toml]``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from sim import ScenarioError, load_scenario, simulate
from sim.scenario import Scenario

SCENARIOS = Path(__file__).parent / "scenarios"
DEFAULT = SCENARIOS / "reference_quarter.toml"


@st.cache_data(show_spinner=False)
def run(scenario: Scenario, runs: int, seed: int) -> dict:
    """One cached simulation; returns the summary and the per-run results."""
    result = simulate(scenario, runs=runs, seed=seed)
    return {"summary": result.summary(), "result": result.result}


def main() -> None:
    st.set_page_config(page_title="funnel-sim", layout="wide")
    st.title("funnel-sim: what are the odds we hit quota?")
    start = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    files = sorted(SCENARIOS.glob("*.toml"))
    names = [f.name for f in files]
    chosen = st.sidebar.selectbox("Scenario", names, index=names.index(start.name) if start.name in names else 0)
    runs = st.sidebar.number_input("Runs", 100, 200_000, 10_000, step=1000)
    seed = st.sidebar.number_input("Seed", 0, 2**31 - 1, 0)
    try:
        scenario = load_scenario(SCENARIOS / chosen)
    except ScenarioError as error:
        st.error("\n".join(error.problems))
        return
    out = run(scenario, int(runs), int(seed))
    summary = out["summary"]
    low, high = summary["p_hit_ci"]
    st.metric("P(hit quota)", f"{summary['p_hit']:.1%}", help=f"95% interval {low:.1%} to {high:.1%}")
    frame = pd.DataFrame({"result": out["result"]})
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            alt.X("result:Q", bin=alt.Bin(maxbins=50), title=summary["quota"]["unit"]),
            alt.Y("count()", title="runs"),
        )
    )
    quota = alt.Chart(pd.DataFrame({"quota": [summary["quota"]["target"]]})).mark_rule(color="red").encode(x="quota:Q")
    st.altair_chart(chart + quota, use_container_width=True)


main()

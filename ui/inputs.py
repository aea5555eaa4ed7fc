"""The inputs: scenario chooser and upload, the sidebar, the stage table, validation, the link.

Widget values live in ``st.session_state`` under the keys of :func:`ui.form.widget_values`
(plus ``runs``, ``seed``, ``engine``). Loading a scenario (a file, an upload, a link)
writes those keys from callbacks, before the widgets are drawn. Each rerun reads them
back into a plain dictionary, validates it with :func:`sim.model.scenario.scenario_from_dict`
and either accepts the scenario (it becomes ``last_valid`` and goes into the URL) or
shows the problems next to the inputs they concern and keeps ``last_valid`` on screen.

The stage table is an ``st.data_editor`` over a frame that stays fixed between loads
(``stages_base``): the editor keeps the user's edits as its own state, and a new load
gives it a new key (``stages_key``) so old edits do not apply to a new scenario.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from sim.model.distributions import FAMILIES
from sim.model.scenario import (
    MAX_FILE_BYTES,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_from_dict,
    scenario_from_toml,
    scenario_to_toml,
)
from sim.runner import choose_engine
from sim.runner.budget import APP, runs_that_fit
from sim.runner.request import CORES
from ui import form, safe, wording

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS_DIR = ROOT / "scenarios"
DEFAULT_FILE = SCENARIOS_DIR / "reference_quarter.toml"
URL_KEYS = ("file", "s", *form.LINK_SETTINGS, *form.PAGE_SETTINGS, "actual", "baseline")
"""The query parameters the app writes (the open page's ``page`` is the tabs' own, bound by Streamlit)."""

FAMILY_WORDS = {
    "fixed": "fixed (always the mean)",
    "uniform": "uniform (low to high)",
    "triangular": "triangular (low, most likely, high)",
    "exponential": "exponential (mean)",
    "lognormal": "lognormal (mean, sd; long right tail)",
    "gamma": "gamma (mean, sd)",
    "empirical": "empirical (resample observed values)",
}
PARAMETER_LABELS = {"mean": "mean", "sd": "sd (spread)", "low": "low", "mode": "most likely", "high": "high"}


@dataclass(frozen=True)
class Settings:
    """How to simulate, as opposed to what: not part of the scenario file."""

    runs: int
    seed: int
    engine: str


# --- files and loading ------------------------------------------------------------------------


def scenario_files(argv: list[str]) -> tuple[dict[str, Path], str]:
    """The chooser's options (label -> file) and the label to start from.

    The shipped ``scenarios/*.toml`` by file name, plus the file named on the command
    line (``streamlit run app.py -- FILE.toml``) when it lives elsewhere.
    """
    files = {path.name: path for path in sorted(SCENARIOS_DIR.glob("*.toml"))}
    start = DEFAULT_FILE.name if DEFAULT_FILE.name in files else next(iter(files), "")
    if argv:
        path = Path(argv[0]).expanduser()
        resolved = path.resolve()
        shipped = [label for label, p in files.items() if p.resolve() == resolved]
        if shipped:
            start = shipped[0]
        else:
            files[str(path)] = path
            start = str(path)
    return files, start


def _load(scenario: Scenario, origin: str) -> None:
    """Put a scenario into the inputs (from a callback, or before the widgets are drawn)."""
    state = st.session_state
    state.update(form.widget_values(scenario))
    state["stages_base"] = form.stages_frame(scenario)
    state["stages_version"] = state.get("stages_version", 0) + 1
    state["stages_key"] = f"stages_{state['stages_version']}"
    # The optional stage keys, by stage-table row (see stage_editor for the row identities).
    state["behaviours"] = {str(i): cells for i, cells in enumerate(form.behaviour_cells(scenario))}
    state["behaviour_key"] = f"behaviour_{state['stages_version']}"
    state["behaviour_rows"] = []
    state["loaded"] = scenario
    state["last_valid"] = scenario
    state["origin"] = origin


def _read_file(label: str) -> Scenario:
    files = st.session_state["files"]
    return load_scenario(files[label])


def start(argv: list[str]) -> None:
    """On a session's first run: the scenario from the link, else from the command line, and the link's settings.

    Every value the link gives that cannot be used is refused or clamped with a plain notice.
    """
    state = st.session_state
    if "loaded" in state:
        return
    files, label = scenario_files(argv)
    state["files"] = files
    query = st.query_params
    notices: list[str] = []
    wanted = query.get("file")
    if wanted:
        if wanted in files:
            label = wanted
        else:
            notices.append(f"link: unknown scenario file {wanted!r}; starting from {label}")
    try:
        base = _read_file(label)
    except ScenarioError as error:
        notices.extend(wording.plain_problem(line, where=label) for line in error.problems)
        label = DEFAULT_FILE.name
        base = load_scenario(DEFAULT_FILE)
    scenario, origin = base, label
    if query.get("s"):
        scenario, origin = _from_link(query["s"], "the scenario", notices) or (base, label)
    state["file"] = label
    state["file_scenario"] = base
    settings, refused = form.link_settings(query)
    state.update(settings)
    notices.extend(refused)
    _load(scenario, origin)
    if query.get("actual") is not None:
        pace, notice = form.read_barometer(query["actual"], scenario.inflow.per_week)
        if pace is not None:
            state[form.barometer_key(scenario.inflow.per_week)] = pace
        notices.extend([notice] if notice else [])
    if query.get("baseline"):
        baseline = _from_link(query["baseline"], "Compare's baseline", notices)
        if baseline is not None and _baseline_fits(baseline[0], scenario, settings):
            state["baseline"] = baseline[0]
        elif baseline is not None:
            notices.append("link: Compare's baseline is too much work for this server next to the scenario; pin one")
    state["notices"] = notices


def _from_link(text: str, what: str, notices: list[str]) -> tuple[Scenario, str] | None:
    """A scenario packed in the link, or None with its problems added to ``notices``."""
    try:
        return form.decode_scenario(text), "the link"
    except ScenarioError as error:
        lines = [wording.plain_problem(line) for line in error.problems]
        if what != "the scenario":
            lines = [f"link: {what}: {line.removeprefix('link: ')}" for line in lines]
        notices.extend(lines)
    except Exception:  # a link no check foresaw: the visitor gets a line, the server log the details
        safe.LOG.exception("reading %s in a link", what)
        notices.append(f"link: {what} in the link cannot be read")
    return None


def _baseline_fits(baseline: Scenario, scenario: Scenario, settings: Mapping[str, Any]) -> bool:
    """Whether Compare can simulate the link's baseline next to its scenario at the runs it uses for the scenario.

    Compare simulates two scenarios at the runs that fit two copies of the current one; a baseline
    heavier than that would overrun the server's budget for one visitor.
    """

    def engine(s: Scenario) -> str:
        try:
            return choose_engine(s, settings["engine"])
        except ValueError:  # the vectorised engine asked for what only the SimPy engine models
            return "simpy"

    runs = int(settings["runs"])
    alone = runs_that_fit([scenario] * 2, [engine(scenario)] * 2, runs, APP, CORES)
    return runs_that_fit([scenario, baseline], [engine(scenario), engine(baseline)], alone, APP, CORES) >= alone


def _on_file() -> None:
    state = st.session_state
    try:
        scenario = _read_file(state["file"])
    except ScenarioError as error:
        state["notices"] = [wording.plain_problem(line, where=state["file"]) for line in error.problems]
        return
    state["file_scenario"] = scenario
    state["notices"] = []
    _load(scenario, state["file"])


def _on_upload() -> None:
    state = st.session_state
    upload = state.get("upload")
    if upload is None:
        return
    if upload.size > MAX_FILE_BYTES:  # the command line's limit, before reading a byte of it
        state["upload_problems"] = [f"{upload.name}: file is larger than {MAX_FILE_BYTES:,} bytes"]
        return
    try:
        text = upload.getvalue().decode("utf-8")
        scenario = scenario_from_toml(text, source=upload.name)
    except UnicodeDecodeError:
        state["upload_problems"] = [f"{upload.name}: not a UTF-8 text file"]
        return
    except ScenarioError as error:
        state["upload_problems"] = [wording.plain_problem(line, where=upload.name) for line in error.problems]
        return
    except Exception:  # a file no check foresaw
        safe.LOG.exception("reading an uploaded scenario")
        state["upload_problems"] = [f"{upload.name}: cannot be read as a scenario"]
        return
    state["upload_problems"] = []
    _load(scenario, f"upload: {upload.name}")


def _on_reset() -> None:
    state = st.session_state
    _load(state["loaded"], state["origin"])


def use_quota(target: float) -> None:
    """A button's callback: make ``target`` the quota in the sidebar, in the quota's current unit.

    Rounded down (whole deals, whole dollars), so the quota a page found is still made at
    least as often as it said.
    """
    state = st.session_state
    if state["quota_unit"] == "deals":
        state["quota_deals"] = max(1, math.floor(target))
    else:
        state["quota_revenue"] = float(math.floor(target))


def use_inflow(per_week: float) -> None:
    """A button's callback: make ``per_week`` the sidebar's new opportunities a week, rounded up to the
    input's two decimals (so the pace a page found still gives at least the chance it said)."""
    st.session_state["per_week"] = math.ceil(100 * per_week - 1e-9) / 100


# --- the widgets ------------------------------------------------------------------------------


@dataclass
class Slots:
    """Places next to the inputs where their problems are shown, filled after validation."""

    scenario: Any
    quota: Any
    horizon: Any
    inflow: Any
    deal_value: Any
    stages: Any
    about: Any
    download: Any
    capacity: Any = None
    team: Any = None
    behaviour: Any = None


def sidebar() -> tuple[Slots, Settings]:
    """Draw the sidebar; return where problems go and the simulation settings."""
    state = st.session_state
    bar = st.sidebar
    bar.header("Scenario")
    bar.selectbox("Start from a shipped scenario", list(state["files"]), key="file", on_change=_on_file)
    bar.file_uploader(
        "or upload a scenario file (TOML)",
        type=["toml"],
        key="upload",
        max_upload_size=-(-MAX_FILE_BYTES // 2**20),  # in MiB, rounded up: the byte limit is checked on upload
        on_change=_on_upload,
        help="The same format as the files in scenarios/ and the command line.",
    )
    for line in state.get("upload_problems", []):
        bar.error(safe.text(line))
    bar.caption(
        f"Loaded from {safe.text(state['origin'])}. The address bar holds the current what-if: copy it to share."
    )
    download = bar.container()
    bar.button("Undo my changes", on_click=_on_reset, help="Back to the scenario as it was loaded.")

    bar.header("What if...")
    unit = bar.segmented_control(
        "The quota counts",
        form.QUOTA_UNITS,
        key="quota_unit",
        required=True,
        format_func=lambda u: "revenue ($)" if u == "revenue" else "won deals",
    )
    if unit == "deals":
        bar.number_input("Quota: won deals in the period", key="quota_deals", step=1, persist_state="session")
    else:
        bar.number_input(
            "Quota: won revenue in the period ($)",
            key="quota_revenue",
            step=10_000.0,
            format="%.0f",
            persist_state="session",
        )
    quota = bar.container()
    left, right = bar.columns([3, 2])
    left.number_input("Period length", key="horizon", step=1.0, format="%.0f")
    right.selectbox("in", form.HORIZON_UNITS, key="horizon_unit")
    horizon = bar.container()
    bar.number_input(
        "New opportunities per week" + (" (each rep)" if state.get("team_on") else ""),
        key="per_week",
        step=1.0,
        format="%.2f",
        help="New deals entering the first stage each week, on average.",
    )
    bar.radio(
        "They arrive",
        form.PROCESSES,
        key="process",
        horizontal=True,
        format_func=lambda p: "at random (Poisson)" if p == "poisson" else "evenly spaced",
    )
    bar.number_input(
        "Inflow swings between periods (± %)",
        key="dispersion",
        min_value=0.0,
        step=5.0,
        format="%g",
        help=(
            "How much the weekly new opportunities swing from one period to the next, as a percentage of the "
            "average: 25 means a period's inflow is typically 25% above or below it. 0 = a steady "
            "Poisson inflow (only chance varies the count)."
        ),
    )
    inflow = bar.container()
    family = bar.selectbox(
        "Deal value: how it varies",
        FAMILIES,
        key="value_dist",
        format_func=FAMILY_WORDS.get,
        help="The value of each won deal is drawn from this distribution.",
    )
    needed = form.PARAMETERS.get(family, ())
    columns = iter(bar.columns(2) if len(needed) > 1 else [bar])
    for key in needed:
        if key == "values":
            bar.text_input("Observed deal values ($, comma-separated)", key="value_values", persist_state="session")
            continue
        target = next(columns, None) or bar
        label = "Deal value ($)" if family == "fixed" else f"Deal value {PARAMETER_LABELS[key]} ($)"
        target.number_input(label, key=f"value_{key}", step=1000.0, format="%.0f", persist_state="session")
    bar.number_input(
        "Average deal value swings between periods (± %)",
        key="value_dispersion",
        min_value=0.0,
        step=5.0,
        format="%g",
        help=(
            "How much the average won deal's value swings from one period to the next, as a percentage of the "
            "average: 10 means a period's deals are typically worth 10% more or less than usual. 0 = only "
            "chance varies each deal's value. Listed open deals with an amount keep it."
        ),
    )
    deal_value = bar.container()

    with bar.expander("Advanced"):
        st.number_input(
            "Runs (simulated periods)",
            min_value=form.MIN_RUNS,
            max_value=form.MAX_RUNS,
            step=1000,
            key="runs",
            help=f"More runs give steadier numbers but take longer. The default, {form.DEFAULT_RUNS:,}, answers in "
            f"well under a second; with limited reps on the slower SimPy engine the default means "
            f"{form.DEFAULT_SIMPY_RUNS:,}.",
        )
        st.number_input(
            "Seed",
            min_value=0,
            max_value=2**32 - 1,
            step=1,
            key="seed",
            help="The same seed gives the same numbers; comparisons use one seed for both sides.",
        )
        st.selectbox(
            "Engine",
            form.ENGINES,
            key="engine",
            help="auto = the fast vectorised engine (with limited reps too); simpy = the discrete-event model "
            "(slower, same answers in distribution).",
        )
        st.text_input("Scenario name", key="name")
        st.text_area("Description", key="description", height=80)
        about = st.container()
    slots = Slots(
        scenario=None,
        quota=quota,
        horizon=horizon,
        inflow=inflow,
        deal_value=deal_value,
        stages=None,
        about=about,
        download=download,
    )
    return slots, Settings(runs=int(state["runs"]), seed=int(state["seed"]), engine=str(state["engine"]))


def _table_editor(frame: pd.DataFrame, key: str, num_rows: str, config: dict, shown=None) -> pd.DataFrame:
    """An editable table as both stage tables draw it: full width, no index, blank cells left blank.

    Only the ``shown`` columns show (all configured ones by default): the stage table's ``loaded_rate`` rides
    along hidden.
    """
    return st.data_editor(
        frame,
        key=key,
        num_rows=num_rows,
        hide_index=True,
        column_config=config,
        column_order=list(shown or config),
        width="stretch",
        placeholder="",
    )


def stage_editor() -> pd.DataFrame:
    """The funnel as an editable table; returns the edited frame."""
    number, days = st.column_config.NumberColumn, "Days in the stage"
    config = {
        "order": number(
            "#", help="Order in the funnel: change the numbers to reorder stages.", step=1, format="%d", width=48
        ),
        "name": st.column_config.TextColumn("Stage", help="Names must be unique.", default="New stage", width=120),
        "conversion": number(
            "Rate",
            help="Conversion rate: the percentage of deals in this stage that move on to the next (type 35 for "
            "35%). After the last stage a deal is won.",
            format="%g%%",
            default=50.0,
            width=76,
        ),
        "certainty": number(
            "Rate from (deals)",
            help="How well you know the rate, as the number of past deals it was measured on: 10 is a rough guess, "
            "200 is well known; blank: the rate is known exactly. In statistics: the rate is drawn each run from a "
            "Beta distribution around it with concentration c, this number.",
            step=1.0,
            format="%g",
            width=140,
        ),
        "duration": st.column_config.SelectboxColumn(
            "Days",
            help=f"{days}: the shape of its distribution. Its columns: fixed: mean | exponential: mean | "
            "lognormal, gamma: mean, sd | uniform: low, high | triangular: low, mode, high | empirical: values.",
            options=list(FAMILIES),
            default="lognormal",
            required=True,
            width=110,
        ),
        "mean": number("mean", help=f"{days}: mean.", step=0.5, format="%g", default=14.0, width=64),
        "sd": number("sd", help=f"{days}: standard deviation.", step=0.5, format="%g", default=7.0, width=56),
        "low": number("low", help=f"{days}: lowest.", step=0.5, format="%g", width=56),
        "mode": number("mode", help=f"{days}: most likely.", step=0.5, format="%g", width=64),
        "high": number("high", help=f"{days}: highest.", step=0.5, format="%g", width=56),
        "values": st.column_config.TextColumn(
            "values", help=f"{days}, for empirical: the days past deals took, e.g. 5, 9, 12.", width=80
        ),
        "open": number("Open", help="Deals already in this stage on day 0.", step=1, format="%d", default=0, width=64),
        "loaded_rate": number(
            "Rate as loaded (fraction)",
            help="The rate the scenario held when loaded, to full precision: used while Rate is unchanged.",
            disabled=True,
        ),
    }
    state = st.session_state
    base = state["stages_base"]
    frame = _table_editor(base, state["stages_key"], "dynamic", config, form.SHOWN_STAGE_COLUMNS)
    # Row identities that survive edits: a loaded row keeps its label ("0", "1", ...), an
    # added one is "new k". (The editor drops deleted rows before it appends added ones,
    # and may give an added row the label of a deleted one, so labels alone would mix them.)
    deleted = set((state.get(state["stages_key"]) or {}).get("deleted_rows") or ())
    kept = len(base) - len(deleted)
    frame = frame.copy()
    frame.index = [str(label) for label in frame.index[:kept]] + [f"new {k}" for k in range(len(frame) - kept)]
    return frame


BEHAVIOUR_HELP = {
    "per_rep": "Rep capacity: deals one rep can work at once in this stage (blank: no limit). Needs rep capacity on.",
    "touches_needed": "Follow-ups a deal needs before it converts: a number (5), past counts to resample "
    "(1, 3, 5, 5, 8), or a distribution such as lognormal(mean=4, sd=2). Blank: no follow-ups.",
    "max_touches": "Follow-ups the rep makes before giving up: a deal that needs more is lost.",
    "touch_interval_days": "Days between follow-ups: a deal that needs k touches stays (k - 1) x this longer.",
    "no_show": "Chance the meeting that ends this stage is a no-show, in percent (type 20 for 20%).",
    "reschedule": "Chance a no-show is rescheduled, once, in percent; a no-show that is not rescheduled is lost.",
    "lost_after_reschedule": "Chance a rescheduled deal is never heard from again, in percent (about 80 when the "
    "seller moved the meeting).",
    "reschedule_days": "Days a reschedule adds (blank: 7).",
    "stale_after_days": "A deal still in this stage after this many days is lost (a stalled deal).",
    "lost_duration": "How long a deal that will be lost stays before it is marked lost (matters when reps are "
    "limited: it holds a slot), e.g. lognormal(mean=20, sd=10). Blank: as long as a deal that moves on.",
}


def behaviour_editor(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The optional stage table, one row per stage of the (edited) stage table; returns the cells by row.

    The cells live in ``behaviours`` (row identity -> cells, in file units: chances as fractions), so they
    follow a stage through renames, reordering and deletions of others. The editor's own edits are
    folded in on every run; they are given as values, so folding them twice is harmless.
    """
    state = st.session_state
    store: dict[str, dict[str, Any]] = state["behaviours"]
    drawn = state.get("behaviour_rows") or []
    for position, change in ((state.get(state["behaviour_key"]) or {}).get("edited_rows") or {}).items():
        if int(position) < len(drawn):
            store.setdefault(drawn[int(position)], {}).update(form.behaviour_edit(change))
    rows = form.ordered_rows(frame)
    identities = [row[form.ROW] for row in rows]
    if identities != drawn:
        # Other rows, or another order: the editor starts afresh under a new key (its edits are
        # in the store), so edits by position can never land on the wrong stage.
        state["behaviour_version"] = state.get("behaviour_version", 0) + 1
        state["behaviour_key"] = f"behaviour_{state['stages_version']}_{state['behaviour_version']}"
    state["behaviour_rows"] = identities
    table = form.behaviour_frame(form.stage_names(frame), [store.get(i, {}) for i in identities], identities)
    number, text = st.column_config.NumberColumn, st.column_config.TextColumn
    config = {
        "stage": text("Stage", disabled=True, width="medium"),
        "per_rep": number("Deals per rep", help=BEHAVIOUR_HELP["per_rep"], step=1, format="%d", min_value=1),
        "touches_needed": text("Touches needed", help=BEHAVIOUR_HELP["touches_needed"]),
        "max_touches": number(
            "Rep gives up after", help=BEHAVIOUR_HELP["max_touches"], step=1, format="%d", min_value=1
        ),
        "touch_interval_days": number(
            "Days between touches", help=BEHAVIOUR_HELP["touch_interval_days"], step=0.5, format="%g"
        ),
        "no_show": number("No-show chance (%)", help=BEHAVIOUR_HELP["no_show"], format="%g%%"),
        "reschedule": number("Rescheduled chance (%)", help=BEHAVIOUR_HELP["reschedule"], format="%g%%"),
        "lost_after_reschedule": number(
            "Lost after reschedule (%)", help=BEHAVIOUR_HELP["lost_after_reschedule"], format="%g%%"
        ),
        "reschedule_days": number("Reschedule adds (days)", help=BEHAVIOUR_HELP["reschedule_days"], format="%g"),
        "stale_after_days": number("Stale after (days)", help=BEHAVIOUR_HELP["stale_after_days"], format="%g"),
        "lost_duration": text("Days to a loss", help=BEHAVIOUR_HELP["lost_duration"]),
    }
    _table_editor(table, state["behaviour_key"], "fixed", config)
    return {identity: dict(store.get(identity, {})) for identity in identities}


def optional_in_use(scenario: Scenario) -> list[str]:
    """What of the Optional section the scenario uses (rep capacity, a team, per-stage keys), for its title."""
    cells = form.behaviour_cells(scenario)
    used = {
        "rep capacity": scenario.capacity is not None,
        "a team of reps": scenario.team is not None,
        "per-stage settings": any(v is not None for c in cells for v in c.values()),
    }
    return [name for name, on in used.items() if on]


def optional_sections(frame: pd.DataFrame) -> dict[str, Any]:
    """Rep capacity, a team, and the optional stage table; returns their values for the scenario.

    Each is off unless the scenario uses it; its problems are shown in the slots returned
    with the values (``capacity``, ``team``, ``behaviour``).
    """
    state = st.session_state
    left, right = st.columns(2)
    with left:
        st.toggle(
            "**Rep capacity**: reps can only work so many deals at once",
            key="capacity_on",
            help="Deals that find every rep in a stage busy wait their turn (first in, first out). Set how many "
            "deals one rep works at once per stage in the table below (Per rep).",
        )
        if state.get("capacity_on"):
            a, b = st.columns(2)
            a.number_input("Reps sharing the funnel", key="capacity_reps", min_value=1, step=1)
            b.number_input(
                "A deal waiting longer is lost (days)",
                key="max_wait_days",
                min_value=0.0,
                step=1.0,
                format="%g",
                help="Neglected deals: one left waiting for a rep longer than this is lost. 0: it waits.",
            )
        capacity_slot = st.container()
    with right:
        st.toggle(
            "**A team of reps**, each with a funnel of their own",
            key="team_on",
            help="Reps differ: each stage's rate is drawn per rep around the stage's rate. New opportunities per "
            "week are then each rep's, and the quota is the team's. Cannot be combined with rep capacity.",
        )
        if state.get("team_on"):
            a, b, c = st.columns(3)
            a.number_input("Reps", key="team_reps", min_value=1, step=1)
            b.number_input("Each rep's quota", key="rep_quota", min_value=0.0, step=1000.0, format="%g")
            c.number_input(
                "How alike the reps are",
                key="rate_concentration",
                min_value=0.0,
                step=5.0,
                format="%g",
                help="How much reps' conversion rates differ: 5 = a lot (some reps close twice as often as others), "
                "100 = nearly the same. In statistics: each rep's rate ~ Beta(m c, (1 - m) c) around the stage's "
                "rate m, with c this number.",
            )
            a, b, c = st.columns(3)
            a.number_input("New reps (ramping)", key="new_reps", min_value=0, step=1)
            b.number_input(
                "Months to full speed",
                key="ramp_months",
                min_value=0.0,
                step=1.0,
                format="%g",
                help="A new rep's inflow rises from 0 to full over this many months.",
            )
            c.number_input(
                "Cost per rep a year ($)",
                key="cost_per_year",
                min_value=0.0,
                step=10_000.0,
                format="%.0f",
                help="Salary, taxes, expenses: gives each rep's value ratio (won value a year / cost). 0: not given.",
            )
        team_slot = st.container()
    st.markdown(
        "**Per stage** (blank = not used): rep limits, follow-ups and persistence, no-shows and reschedules, "
        "stalled deals, and how long lost deals take. Hover a column title for what it means."
    )
    behaviours = behaviour_editor(frame)
    behaviour_slot = st.container()
    return {
        "behaviours": behaviours,
        "slots": {"capacity": capacity_slot, "team": team_slot, "behaviour": behaviour_slot},
    }


# --- validation --------------------------------------------------------------------------------


def read_values() -> dict[str, Any]:
    """The scenario inputs' current values, from session state."""
    names = (
        "name",
        "description",
        "horizon_unit",
        "horizon",
        "quota_unit",
        "quota_revenue",
        "quota_deals",
        "per_week",
        "process",
        "dispersion",
        "value_dist",
        "value_dispersion",
        *(f"loaded_{key}" for key in form.SHARE_KEYS),
        *(f"value_{key}" for key in form.PARAMETER_NAMES),
        *form.CAPACITY_KEYS,
        *form.TEAM_KEYS,
    )
    return {name: st.session_state.get(name) for name in names}


def validate(values: Mapping[str, Any], frame: pd.DataFrame) -> tuple[Scenario | None, list[str]]:
    """The scenario the inputs describe, or the problems with them (``field.path: problem``)."""
    try:
        return scenario_from_dict(form.scenario_document(values, frame)), []
    except ScenarioError as error:
        return None, error.problems


_STAGE = re.compile(r"^stages\[(\d+)\]")


def show_problems(problems: list[str], slots: Slots, names: list[str]) -> None:
    """Each problem next to its input, in plain words (:func:`ui.wording.plain_problem`) with the stage's row."""
    for problem in problems:
        path = problem.split(":", 1)[0]
        line = wording.plain_problem(problem, names)
        match = _STAGE.match(path)
        if match and int(match.group(1)) < len(names):
            line = f"{line} (row {int(match.group(1)) + 1} of the funnel table)"
        line = safe.text(line)
        if path.startswith("stages") and path.split(".")[1:2] and path.split(".")[1] in form.BEHAVIOUR_COLUMNS:
            slot = slots.behaviour or slots.stages
        elif path.startswith("stages"):
            slot = slots.stages
        elif path.startswith("capacity"):
            slot = slots.capacity or slots.scenario
        elif path.startswith("team"):
            slot = slots.team or slots.scenario
        elif path.startswith("quota"):
            slot = slots.quota
        elif path.startswith("horizon"):
            slot = slots.horizon
        elif path.startswith("inflow"):
            slot = slots.inflow
        elif path.startswith("deal_value"):
            slot = slots.deal_value
        elif path.startswith(("name", "description")):
            slot = slots.about
        else:
            slot = slots.scenario
        slot.error(line)


def offer_download(slot, scenario: Scenario, stale: bool) -> None:
    """The current (or last valid) scenario as a TOML file."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", scenario.name).strip("_").lower() or "scenario"
    slot.download_button(
        "Download this scenario (TOML)",
        data=scenario_to_toml(scenario),
        file_name=f"{stem}.toml",
        mime="application/toml",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        help="The last valid version, while some inputs need fixing." if stale else "Reads back exactly.",
    )


def sync_url(scenario: Scenario, settings: Settings) -> None:
    """Write the what-if into the address bar: the file, the scenario if edited, and every setting that is not
    at its default (how to simulate, each page's own choices, the barometer's pace, Compare's baseline)."""
    state = st.session_state
    wanted = {"file": state["file"]}
    if scenario != state["file_scenario"]:
        wanted["s"] = form.encode_scenario(scenario)
    values = {"runs": settings.runs, "seed": settings.seed, "engine": settings.engine}
    wanted |= form.settings_query(values | {key: state.get(key) for key in form.PAGE_SETTINGS})
    plan = scenario.inflow.per_week
    pace = state.get(form.barometer_key(plan))
    if pace is not None and pace != float(round(plan, 2)):  # the input starts at the plan, to two decimals
        wanted["actual"] = form.format_values([pace])
    baseline = state.get("baseline")
    if baseline is not None:
        packed = state.get("baseline_link")
        if packed is None or packed[0] is not baseline:  # packed once per pin, not on every rerun
            state["baseline_link"] = packed = (baseline, form.encode_scenario(baseline))
        wanted["baseline"] = packed[1]
    query = st.query_params
    for key in URL_KEYS:
        if key in wanted:
            if query.get(key) != wanted[key]:
                query[key] = wanted[key]
        elif key in query:
            del query[key]


def carried_inputs() -> dict[str, Any]:
    """Under the stage table: what the loaded scenario keeps that no input shows, with a way to drop it.

    Returns the extra values for :func:`ui.form.scenario_document` (see :func:`ui.form.carried`).
    """
    state = st.session_state
    loaded: Scenario = state["loaded"]
    for line in form.carried_summary(loaded):
        st.caption(safe.text(line))
    if loaded.open_deals or loaded.inflow.multipliers:
        left, right = st.columns(2)
        if loaded.open_deals:
            left.checkbox(
                f"Include the {len(loaded.open_deals):,} listed open deals",
                key="keep_open_deals",
                help="Untick to forecast without them (new opportunities and the Open column only).",
            )
        if loaded.inflow.multipliers:
            right.checkbox(
                "Keep the seasonal inflow",
                key="keep_multipliers",
                help="There is one factor per week or month of the period: untick it to change the period's length.",
            )
    return form.carried(
        loaded,
        keep_open_deals=bool(state.get("keep_open_deals", True)),
        keep_multipliers=bool(state.get("keep_multipliers", True)),
    )

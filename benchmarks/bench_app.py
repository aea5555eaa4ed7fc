"""How long the app takes to answer a change, page by page, on every shipped scenario.

For each shipped scenario and each page, the page is opened (which fills the caches
for the scenario as loaded), then one input is changed and the rerun is timed: the
quota (raised by 5%; simulations do not depend on it, so the cached runs serve), the
first stage's conversion rate (a new funnel: every simulation of the page is new), and
the page's own slider where it has one (the target chance, the confidence, the step,
the share of reps). The caches are emptied before each try, so no try gains from another.
Runs are the app's default. AppTest runs the script in this process, so the figure is
the server's share of the answer (the browser draws the charts in addition; the browser
test prints that total for the Forecast page).

    .venv/bin/python benchmarks/bench_app.py
    .venv/bin/python benchmarks/bench_app.py --scenario outbound_sdr --page "Magic number" --change rate

Without options it prints the full table; ``--scenario``, ``--page`` and ``--change``
(each repeatable) time only those cells, ``--repeats`` sets the changes per cell.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from sim.model.scenario import rate_mean  # noqa: E402
from tests.app_helpers import PAGES, SCENARIO_FILES, edit_stages, new_app, no_exception, open_page  # noqa: E402
from ui import charts  # noqa: E402


def change_quota(at, i: int) -> None:
    key = "quota_revenue" if at.session_state["quota_unit"] == "revenue" else "quota_deals"
    box = at.number_input(key=key)
    box.set_value(box.value * (1.05 + 0.01 * i)).run()  # a new value each time: no cache hit


def change_rate(at, i: int) -> None:
    rate = rate_mean(at.session_state["last_valid"].stages[0].conversion)
    percent = round(min(99.0, 100 * rate * (1.05 + 0.01 * i)), 2)  # the table takes percentages
    edit_stages(at, edited_rows={0: {"conversion": percent}})


SLIDERS = {
    "Magic number": ("target", (85, 75, 90)),
    "Quota setting": ("confidence", (80, 60, 90)),
    "Sensitivity": ("step", (20, 5, 30)),
    "Team": ("rep_share", (60, 50, 80)),
}
"""Each page's own slider and the values it is moved to (a new one each time: no cache hit)."""


def change_slider(at, i: int) -> None:
    key, values = SLIDERS[at.session_state["page"]]
    slider = next((s for s in [*at.slider, *at.select_slider] if s.key == key), None)
    if slider is not None:  # the Team page has no slider without a team
        slider.set_value(values[i]).run()


def time_change(path: Path, page: str, change, repeats: int = 3) -> float | None:
    """Median seconds of the rerun after ``change`` on ``page`` (None: the page has no such input)."""
    if change is change_slider and page not in SLIDERS:
        return None
    times = []
    for i in range(repeats):
        # Caches start empty each time, as in a fresh server: what one change simulated
        # (the app caches simulations without the quota) must not speed up the next.
        st.cache_data.clear()
        st.cache_resource.clear()
        charts.forget()  # the pages' charts are remembered by their inputs, for every session
        at = new_app({"file": path.name})
        at.run()
        open_page(at, page)
        start = time.perf_counter()
        change(at, i)
        times.append(time.perf_counter() - start)
        no_exception(at)
        assert not at.error, [e.value for e in at.error]
        if change is change_slider and page == "Team" and not at.slider:  # no team: no slider
            return None
    return statistics.median(times)


CHANGES = {
    "quota": ("quota", change_quota),
    "rate": ("first stage's conversion rate", change_rate),
    "slider": ("page's slider", change_slider),
}
"""The changes timed, by the name ``--change`` takes: (label, function)."""


def arguments(argv: list[str]) -> argparse.Namespace:
    """The cells to time: every scenario, page and change unless narrowed down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stems = [path.stem for path in SCENARIO_FILES]
    parser.add_argument("--scenario", action="append", choices=stems, help="a shipped scenario (repeatable)")
    parser.add_argument("--page", action="append", choices=PAGES, help="a page (repeatable)")
    parser.add_argument("--change", action="append", choices=list(CHANGES), help="the input changed (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="changes timed per cell (the median is shown)")
    args = parser.parse_args(argv)
    if args.repeats > len(SLIDERS["Magic number"][1]):
        parser.error(f"--repeats: at most {len(SLIDERS['Magic number'][1])} (each change needs a new value)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = arguments(sys.argv[1:] if argv is None else argv)
    # Emptying the caches and running the script outside a server make Streamlit warn on every try,
    # burying the table; the app's own errors fail the try (no_exception) rather than being logged.
    logging.disable(logging.WARNING)
    sys.argv = ["app.py"]  # the app reads a scenario path from its own arguments
    paths = [path for path in SCENARIO_FILES if args.scenario is None or path.stem in args.scenario]
    pages = [page for page in PAGES if args.page is None or page in args.page]
    for name, (label, change) in CHANGES.items():
        if args.change is not None and name not in args.change:
            continue
        print(f"\nAfter a change of the {label}:")
        print(f"{'scenario':<24}" + "".join(f"{page:>15}" for page in pages))
        worst = 0.0
        for path in paths:
            row = [time_change(path, page, change, args.repeats) for page in pages]
            worst = max(worst, *(t for t in row if t is not None), 0.0)
            print(f"{path.stem:<24}" + "".join(f"{t:>14.2f}s" if t is not None else f"{'-':>15}" for t in row))
        print(f"slowest page: {worst:.2f} s (median of {args.repeats} changes each)")


if __name__ == "__main__":
    main()

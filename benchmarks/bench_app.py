"""How long the app takes to answer a change, page by page, on every shipped scenario.

For each shipped scenario and each page, the page is opened (which fills the caches
for the scenario as loaded), then one input is changed and the rerun is timed: the
quota (raised by 5%; simulations do not depend on it, so the cached runs serve), the
first stage's conversion rate (a new funnel: every simulation of the page is new), and
the page's own slider where it has one (the target chance, the confidence, the step,
the share of reps).
Runs are the app's default. AppTest runs the script in this process, so the figure is
the server's share of the answer (the browser draws the charts in addition; the browser
test prints that total for the Forecast page).

    .venv/bin/python benchmarks/bench_app.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.scenario import rate_mean  # noqa: E402
from tests.app_helpers import PAGES, SCENARIO_FILES, edit_stages, new_app, no_exception, open_page  # noqa: E402


def change_quota(at, i: int) -> None:
    key = "quota_revenue" if at.session_state["quota_unit"] == "revenue" else "quota_deals"
    box = at.number_input(key=key)
    box.set_value(box.value * (1.05 + 0.01 * i)).run()  # a new value each time: no cache hit


def change_rate(at, i: int) -> None:
    rate = rate_mean(at.session_state["last_valid"].stages[0].conversion)
    edit_stages(at, edited_rows={0: {"conversion": round(min(0.99, rate * (1.05 + 0.01 * i)), 4)}})


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


def main() -> None:
    sys.argv = ["app.py"]  # the app reads a scenario path from its own arguments
    changes = (
        ("quota", change_quota),
        ("first stage's conversion rate", change_rate),
        ("page's slider", change_slider),
    )
    for label, change in changes:
        print(f"\nAfter a change of the {label}:")
        print(f"{'scenario':<24}" + "".join(f"{page:>15}" for page in PAGES))
        worst = 0.0
        for path in SCENARIO_FILES:
            row = [time_change(path, page, change) for page in PAGES]
            worst = max(worst, *(t for t in row if t is not None))
            print(f"{path.stem:<24}" + "".join(f"{t:>14.2f}s" if t is not None else f"{'-':>15}" for t in row))
        print(f"slowest page: {worst:.2f} s (median of 3 changes each)")


if __name__ == "__main__":
    main()

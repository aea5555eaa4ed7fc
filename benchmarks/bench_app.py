"""How long the app takes to answer a change, page by page, on every shipped scenario.

For each shipped scenario and each page, the page is opened (which fills the caches
for the scenario as loaded), then the quota is raised by 5% and the rerun is timed:
a new scenario value, so every cached simulation of that page is computed afresh.
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

from tests.app_helpers import PAGES, SCENARIO_FILES, new_app, no_exception, open_page  # noqa: E402


def quota_key(at) -> str:
    return "quota_revenue" if at.session_state["quota_unit"] == "revenue" else "quota_deals"


def time_change(path: Path, page: str, repeats: int = 3) -> float:
    """Median seconds of the rerun after a quota change on ``page``."""
    times = []
    for i in range(repeats):
        at = new_app({"file": path.name})
        at.run()
        open_page(at, page)
        key = quota_key(at)
        box = at.number_input(key=key)
        start = time.perf_counter()
        box.set_value(box.value * (1.05 + 0.01 * i)).run()  # a new value each time: no cache hit
        times.append(time.perf_counter() - start)
        no_exception(at)
    return statistics.median(times)


def main() -> None:
    sys.argv = ["app.py"]  # the app reads a scenario path from its own arguments
    print(f"{'scenario':<24}" + "".join(f"{page:>15}" for page in PAGES))
    worst = 0.0
    for path in SCENARIO_FILES:
        row = [time_change(path, page) for page in PAGES]
        worst = max(worst, *row)
        print(f"{path.stem:<24}" + "".join(f"{t:>14.2f}s" for t in row))
    print(f"slowest page after a quota change: {worst:.2f} s (median of 3 changes each)")


if __name__ == "__main__":
    main()

"""Heavy links on a real server: how long each takes to answer and the memory the server's processes reach.

Starts ``streamlit run app.py`` on a free port, opens each link in chromium, waits for the
page to finish, and prints the seconds and the peak resident memory (VmHWM) of the server
and its worker processes. Links: a ``?s=`` scenario of about a million deals a run,
the SimPy engine with limited reps at 200,000 runs, and Sensitivity at 200,000 runs.

    .venv/bin/python benchmarks/bench_hostile_links.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim import load_scenario  # noqa: E402
from tests.app.test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE  # noqa: E402
from tests.app_helpers import ROOT, free_port, streamlit_server  # noqa: E402
from ui.form import encode_scenario  # noqa: E402


def tree(pid: int) -> list[int]:
    """A process and its descendants."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    todo.append(int(entry))
    return found


def peak_mb(pid: int) -> float:
    """The largest resident memory each process of the tree has reached, summed (MB)."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main() -> None:
    reference = load_scenario(ROOT / "scenarios" / "reference_quarter.toml")
    million = encode_scenario(reference.with_inflow(76_000))
    links = {
        f"?s= of ~1M deals a run ({len(million)} characters)": f"?s={million}",
        "capacity_quarter, SimPy, 200,000 runs": "?file=capacity_quarter.toml&engine=simpy&runs=200000",
        "Sensitivity, 200,000 runs": "?runs=200000&seed=5&page=Sensitivity",
    }
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for what, query in links.items():  # a fresh server each, so the peaks are each link's own
            port = free_port()
            with streamlit_server(port, Path(folder) / "streamlit.log") as url:
                server = server_pid(port)
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.goto(url)
                page.wait_for_selector(IDLE, timeout=120_000)
                before = peak_mb(server)
                started = time.perf_counter()
                page.goto(f"{url}/{query}")
                page.wait_for_timeout(500)
                page.wait_for_selector(IDLE, timeout=600_000)
                seconds = time.perf_counter() - started
                notice = page.locator('[data-testid="stAlert"]').first.inner_text()[:90].replace("\n", " ")
                print(
                    f"{what}: {seconds:.1f} s; server and workers peak {peak_mb(server):,.0f} MB "
                    f"(after the first page {before:,.0f} MB); {notice!r}"
                )
                page.close()
        browser.close()


def server_pid(port: int) -> int:
    """The streamlit process serving ``port``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(command) and str(port).encode() in command:
                return int(entry)
    raise RuntimeError(f"no streamlit process on port {port}")


if __name__ == "__main__":
    main()

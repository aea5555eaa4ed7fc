"""The app in a real browser: ``streamlit run`` on a free port, driven by Playwright in Debian's chromium.

It checks what AppTest cannot: the page loads in a browser, the charts draw (Vega
renders Altair charts as SVG inside ``.vega-embed`` containers: bars are ``.mark-rect``
paths, bands ``.mark-area``, lines ``.mark-line``), and typing a new quota updates
P(hit). A screenshot is saved in the test's temporary folder. The server is always
stopped, whatever happens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from sim import load_scenario, simulate
from tests.app_helpers import ROOT, free_port, streamlit_server
from ui.form import DEFAULT_RUNS

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    # CI installs chromium (.ci/run) and must run this test; elsewhere, say how to get it.
    message = f"Debian's chromium is not at {CHROMIUM}: install it with `sudo apt-get install chromium`"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    pytest.skip(message + " (CI installs it and runs this test)", allow_module_level=True)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
QUOTA_INPUT = "Quota: won revenue in the period ($)"
PHISHING = "[Session expired: log in again](https://evil.example/login)"
SCREENSHOTS = os.environ.get("FUNNEL_SIM_SCREENSHOTS")
"""A folder (``docs``): the README's screenshots are saved there too (``FUNNEL_SIM_SCREENSHOTS=docs make test``)."""


def marks(page, kind: str) -> int:
    """SVG marks of one kind (``rect``, ``area``, ``line``, ``rule``) drawn inside Vega charts."""
    return page.locator(f".vega-embed svg .mark-{kind} path").count()


def p_hit(page):
    return page.locator('[data-testid="stMetric"]', has_text="P(hit quota)").locator('[data-testid="stMetricValue"]')


@pytest.mark.browser
def test_quota_change_updates_the_page_in_a_browser(tmp_path):
    with (
        streamlit_server(free_port(), tmp_path / "streamlit.log") as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(url)
            page.wait_for_selector(IDLE, timeout=60_000)
            # The page shows what the library computes for the default scenario and runs.
            expected = simulate(load_scenario(ROOT / "scenarios" / "reference_quarter.toml"), runs=DEFAULT_RUNS).p_hit
            expect(p_hit(page)).to_have_text(f"{100 * expected:.1f}%", timeout=30_000)
            expect(page.locator(".vega-embed svg")).to_have_count(3, timeout=30_000)
            assert marks(page, "rect") > 20  # histogram bars and funnel bars
            assert marks(page, "area") >= 1 and marks(page, "line") >= 2  # the fan chart
            before = p_hit(page).inner_text()

            box = page.get_by_label(QUOTA_INPUT)
            box.fill("1500000")
            started = time.perf_counter()
            box.press("Enter")
            expect(p_hit(page)).not_to_have_text(before, timeout=30_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            elapsed = time.perf_counter() - started
            after = p_hit(page).inner_text()
            assert float(after.rstrip("%")) < float(before.rstrip("%"))
            expect(page.locator(".vega-embed svg")).to_have_count(3, timeout=30_000)
            assert marks(page, "rect") > 20 and marks(page, "area") >= 1
            assert "s=" in page.url  # the what-if is in the address bar
            assert not page.locator('[data-testid="stException"]').count()
            page.wait_for_timeout(500)  # let the charts finish their transitions
            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 50_000
            if SCREENSHOTS:
                readme_screenshots(browser, url, Path(SCREENSHOTS))
            print(f"P(hit) {before} -> {after}; quota change to finished rerun in the browser: {elapsed:.2f} s")
            hostile_links(browser, url)
        finally:
            browser.close()


def readme_screenshots(browser, url: str, folder: Path) -> None:
    """The README's two screenshots at 1440 x 1000: the Forecast page and the Sensitivity page."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, address in (("forecast.png", url), ("sensitivity.png", f"{url}/?page=Sensitivity")):
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(address)
        page.wait_for_selector(IDLE, timeout=60_000)
        chart = page.locator(".vega-embed svg").first
        expect(chart).to_be_visible(timeout=60_000)
        if name != "forecast.png":  # the page's own chart, below the funnel editor
            chart.scroll_into_view_if_needed()
        page.wait_for_timeout(1_000)  # let the charts finish their transitions
        page.screenshot(path=str(folder / name))
        page.close()


def hostile_links(browser, url: str) -> None:
    """Links a visitor could be sent: Markdown shows as its characters, a heavy what-if is capped and answers."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?file={quote(PHISHING)}")
    page.wait_for_selector(IDLE, timeout=60_000)
    expect(page.locator('[data-testid="stAlert"]', has_text=PHISHING).first).to_be_visible(timeout=30_000)
    assert not page.locator('a[href*="evil.example"]').count()  # the text, not a link
    assert not page.locator('[data-testid="stException"]').count()
    page.close()

    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    started = time.perf_counter()
    page.goto(f"{url}/?runs=200000&seed=3&page=Sensitivity")  # eleven scenarios of 200,000 runs asked for
    expect(page.get_by_text("not the 200,000 asked for")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stMetric"]', has_text="P(hit quota) now")).to_be_visible(timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    assert not page.locator('[data-testid="stException"]').count()
    print(f"Sensitivity asked for 200,000 runs, capped: answered in {time.perf_counter() - started:.1f} s")
    page.close()

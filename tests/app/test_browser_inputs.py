"""Percent input and a link with page settings, in a real browser (issue 16's checks).

A rate is typed into the stage table as a percentage (70 for 70%) and reaches the
scenario in the address bar as a fraction (0.7); a link with page settings opens the
page it names with its choices, and a value no page offers gives a plain notice. The
server and chromium are those of :mod:`tests.app.test_browser` (its helpers are reused).
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.app.test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, p_hit
from tests.app_helpers import free_port, streamlit_server
from ui.form import decode_scenario

RATE_COLUMN_X = 34 + 48 + 120 + 38
"""The middle of the stage table's Rate column: after the row selectors (34 px), # (48 px) and Stage (120 px),
half of its 76 px (the widths ui/inputs.py gives them)."""


def query(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def type_rate(page, row: int, text: str) -> None:
    """Type into the stage table's Rate cell of a row (0: the first stage), as a visitor does: select the cell,
    open its editor (Enter), replace what it holds, and commit (Enter)."""
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    header = row_height = 35
    table.click(position={"x": RATE_COLUMN_X, "y": header + row_height * row + row_height / 2})
    for key in ("Enter", "Control+a"):
        page.wait_for_timeout(300)  # the grid opens its editor on the next frame
        page.keyboard.press(key)
    page.keyboard.type(text)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")


@contextlib.contextmanager
def app_in_chromium(tmp_path):
    """The app on a free port and Debian's chromium, both stopped after the block whatever happens."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(streamlit_server(free_port(), tmp_path / "streamlit.log"))
        browser = stack.enter_context(sync_playwright()).chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        yield url, browser


@pytest.mark.browser
def test_percent_input_and_a_link_with_page_settings_in_a_browser(tmp_path):
    with app_in_chromium(tmp_path) as (url, browser):
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        page.goto(url)
        page.wait_for_selector(IDLE, timeout=60_000)
        expect(p_hit(page)).to_be_visible(timeout=60_000)
        before = p_hit(page).inner_text()
        started = time.perf_counter()
        type_rate(page, 0, "90")  # Discovery 65% -> 90%
        expect(p_hit(page)).not_to_have_text(before, timeout=30_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        elapsed = time.perf_counter() - started
        after = p_hit(page).inner_text()
        scenario = decode_scenario(query(page)["s"])
        assert scenario.stages[0].conversion.mean() == 0.9  # 90 typed, a fraction in the scenario
        assert float(after.rstrip("%")) > float(before.rstrip("%"))
        assert not page.locator('[data-testid="stException"]').count()
        print(f"Discovery rate typed as 90 (%): P(hit) {before} -> {after}, rerun {elapsed:.2f} s")
        page.close()

        # A link with page settings: the page it names, its own choices, and another page's.
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        started = time.perf_counter()
        page.goto(f"{url}/?page=Quota+setting&confidence=85&step=20&target=83")
        quota = page.locator('[data-testid="stMetric"]', has_text="Realistic quota at 85%")
        expect(quota).to_be_visible(timeout=60_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        print(f"Link to Quota setting at 85% confidence: answered in {time.perf_counter() - started:.1f} s")
        # 83% is not a step of the target slider: the nearest is used, and the visitor is told.
        expect(page.get_by_text("cannot be 83%").first).to_be_visible(timeout=30_000)
        page.get_by_role("tab", name="Sensitivity").click()
        expect(page.get_by_text("Raising", exact=False).first).to_be_visible(timeout=60_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        slider = page.locator('[data-testid="stSlider"]', has_text="Improve each lever by")
        expect(slider).to_contain_text("20%")
        link = query(page)
        assert link["page"] == "Sensitivity" and link["step"] == "20" and link["confidence"] == "85"
        assert link["target"] == "85"  # the clamped value, as the page now has it
        assert not page.locator('[data-testid="stException"]').count()
        page.close()

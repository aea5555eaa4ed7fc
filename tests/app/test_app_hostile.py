"""The app against a hostile or careless visitor (AppTest): text stays text, work stays bounded, errors stay plain.

A link can carry Markdown (a phishing link in the error box, a name in the caption): it
is shown as its characters. A link can ask for more work than a shared server should do
for one visitor: the page is capped to what fits the app's budget, and says so, or
declines. An error inside a page shows a plain line, never a traceback; a visitor who
has gone stops the work.
"""

from __future__ import annotations

import base64
import re
import sys
import zlib

import pytest

from sim import load_scenario
from sim.model.scenario import MAX_FILE_BYTES, scenario_to_toml
from sim.runner import choose_engine
from sim.runner.budget import APP, runs_that_fit
from sim.runner.request import CORES
from tests.app_helpers import ROOT, new_app, no_exception, open_page
from ui import compute, safe
from ui.form import encode_scenario

REFERENCE = load_scenario(ROOT / "scenarios" / "reference_quarter.toml")
LINK = re.compile(r"(?<!\\)\]\(")  # "](" not escaped
DIRECTIVE = re.compile(r"(?<!\\):red\[")
PHISHING = "[Session expired: log in again](https://evil.example/login)"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py"])


def shown(at) -> list[str]:
    """Every message, caption and Markdown body on the page, as Streamlit received it (Markdown source)."""
    return [e.value for kind in ("error", "warning", "info", "caption", "markdown") for e in getattr(at, kind)]


def test_markdown_in_a_link_is_shown_as_text():
    at = new_app({"file": PHISHING}).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(safe.text(PHISHING) in line for line in errors), errors
    assert not any(LINK.search(line) for line in shown(at))  # no Markdown link anywhere on the page


def test_a_scenario_name_from_a_link_is_shown_as_text():
    name = "**Urgent** :red[call] [support](https://evil.example)"
    at = new_app({"s": encode_scenario(REFERENCE.model_copy(update={"name": name}))}).run()
    no_exception(at)
    captions = [c.value for c in at.caption]
    assert any(safe.text(name) in c for c in captions), captions
    assert not any(LINK.search(line) or DIRECTIVE.search(line) for line in shown(at))


def test_text_escapes_what_starts_markdown_and_leaves_plain_messages_alone():
    assert safe.text("quota.revenue: must be a number > 0, got -5.0") == "quota.revenue: must be a number > 0, got -5.0"
    assert safe.text(PHISHING) == "[Session expired: log in again\\](https:\u200b//evil.example/login)"
    assert safe.text("# one\n\n1. two *three* :material/home: www.x.y a@b.c") == (
        "\\# one 1. two \\*three\\* :\u200bmaterial/home: www\u200b.x.y a\u200b@b.c"
    )


def test_a_heavy_link_is_capped_with_a_notice():
    wanted = 200_000
    variants = 2 * len(REFERENCE.stages) + 3
    fit = runs_that_fit([REFERENCE] * variants, [choose_engine(REFERENCE)] * variants, wanted, APP, CORES)
    assert 0 < fit < wanted
    at = open_page(new_app({"runs": str(wanted), "seed": "11"}), "Sensitivity")
    no_exception(at)
    notices = [i.value for i in at.info]
    assert any(f"simulates {fit:,} runs, not the {wanted:,} asked for" in line for line in notices), notices
    assert any(m.label == "P(hit quota) now" for m in at.metric)  # and the page answers


def test_a_link_of_a_million_deals_a_run_is_declined_with_a_notice():
    huge = REFERENCE.with_inflow(76_000)  # about 990,000 deals a run: GBs for one block of runs
    at = new_app({"s": encode_scenario(huge)}).run()
    no_exception(at)
    assert any("too much work for this server" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.metric


def test_a_long_name_in_a_link_gives_one_short_line():
    toml = scenario_to_toml(REFERENCE).replace(REFERENCE.name, "x" * 200_000)
    link = base64.urlsafe_b64encode(zlib.compress(toml.encode(), 9)).rstrip(b"=").decode()
    at = new_app({"s": link}).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert errors and all(len(line) < 500 for line in errors), [len(line) for line in errors]


def test_an_error_in_a_page_shows_a_plain_message_and_no_traceback(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("/srv/secret/path: something internal")

    monkeypatch.setattr(compute, "run_together", broken)
    at = new_app({"seed": "12"}).run()
    no_exception(at)
    assert [e.value for e in at.error] == [safe.PLAIN_ERROR]
    assert not any("secret" in line for line in shown(at))
    assert "/srv/secret/path" in caplog.text  # the details go to the server log


def test_work_for_a_session_that_has_gone_stops(monkeypatch):
    asked = []

    def gone() -> bool:
        asked.append(True)
        return False

    monkeypatch.setattr(safe, "session_alive", gone)
    at = new_app({"seed": "13", "runs": "50000"}).run()  # a seed no other test simulates: nothing remembered
    no_exception(at)
    assert asked  # the runner asked between chunks of work
    assert not at.metric and not at.error  # and stopped: nothing drawn, nothing to show to nobody


def test_an_upload_over_the_file_limit_is_refused_before_it_is_read(monkeypatch):
    def unread(*args, **kwargs):
        raise AssertionError("an oversized upload was parsed")

    at = new_app().run()
    monkeypatch.setattr("ui.inputs.scenario_from_toml", unread)
    big = b"# " + b"x" * MAX_FILE_BYTES + b"\n"
    at.file_uploader(key="upload").upload("big.toml", big, "application/toml").run()
    no_exception(at)
    errors = [e.value for e in at.sidebar.error]
    assert errors == [f"big.toml: file is larger than {MAX_FILE_BYTES:,} bytes"], errors


def test_a_deeply_nested_upload_gives_one_line_and_no_traceback():
    nested = "x = " + "[" * 1_000 + "]" * 1_000 + "\n"
    at = new_app().run()
    at.file_uploader(key="upload").upload("deep.toml", nested.encode(), "application/toml").run()
    no_exception(at)
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("deep.toml"), errors

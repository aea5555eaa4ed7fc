"""Helpers for driving the app: through Streamlit's AppTest, and as a real server.

AppTest runs ``app.py`` in this process; these helpers open a page, edit the stage
table (AppTest cannot type into ``st.data_editor``, so the editor's keyed edit state is
set in session state), read metrics, and capture what the download buttons would hand
to the browser (the bytes, or the callable of a deferred download).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.toml"))
PAGES = ("Forecast", "Magic number", "Quota setting", "Sensitivity", "Compare", "Funnel math", "Team", "Segments")
TIMEOUT = 60


def new_app(query: dict | None = None) -> AppTest:
    """A fresh session of the app (not yet run), optionally opened with query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at


def open_page(at: AppTest, label: str) -> AppTest:
    """Switch to a page and run.

    The tabs are bound to the ``page`` query parameter, which wins over session state
    on a rerun, so both are set (as a click in the browser does).
    """
    at.session_state["page"] = label
    if label == PAGES[0]:
        at.query_params.pop("page", None)
    else:
        at.query_params["page"] = label
    return at.run()


def edit_stages(at: AppTest, edited_rows=None, added_rows=None, deleted_rows=None) -> AppTest:
    """Apply edits to the stage table, as the browser's data editor reports them, and run.

    ``edited_rows`` maps a row position of the table as loaded to ``{column: value}``;
    the edit state replaces any earlier one (the browser sends it whole, too).
    """
    key = at.session_state["stages_key"]
    at.session_state[key] = {
        "edited_rows": edited_rows or {},
        "added_rows": added_rows or [],
        "deleted_rows": deleted_rows or [],
    }
    return at.run()


def edit_behaviour(at: AppTest, edited_rows: dict) -> AppTest:
    """Apply edits to the optional stage table (rows in funnel order, ``{column: value}``) and run."""
    at.session_state[at.session_state["behaviour_key"]] = {
        "edited_rows": edited_rows,
        "added_rows": [],
        "deleted_rows": [],
    }
    return at.run()


def metric(at: AppTest, label: str) -> str:
    """The shown value of the metric with this label."""
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; metrics: {[m.label for m in at.metric]}"
    return found[0].value


def number(text: str) -> float:
    """A displayed number back as a float: ``44.8%`` -> 44.8, ``$1.16M`` -> 1.16e6, ``21.7 a week`` -> 21.7."""
    match = re.search(r"-?[\d,]*\.?\d+", text)
    assert match, text
    value = float(match.group(0).replace(",", ""))
    suffix = text[match.end() : match.end() + 1]
    return value * {"M": 1e6, "k": 1e3}.get(suffix, 1.0)


def no_exception(at: AppTest) -> None:
    """Assert the run raised nothing (AppTest records exceptions instead of raising)."""
    assert not at.exception, [e.value for e in at.exception]


@contextlib.contextmanager
def captured_downloads(monkeypatch):
    """Record what download buttons register: ``{file_name: bytes or str or callable}``."""
    files: dict[str, object] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if file_name:
            files[file_name] = path_or_data
        return add(self, path_or_data, mimetype, coordinates, file_name, is_for_static_download)

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            files[file_name] = data_callable
        return add_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    yield files


# --- a real server ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(port: int, log: Path, args: tuple[str, ...] = ()):
    """Run ``streamlit run app.py`` on a port until the block ends; always stopped after."""
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.port", str(port),
    ]  # fmt: skip
    if args:
        command += ["--", *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {process.returncode}: {log.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start in 60 s: {log.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

"""Every command the README shows as runnable works as written, from a fresh clone's point of view.

The README's ``sh`` blocks hold two kinds of line: commands that start with ``.venv/bin/``
(run as written, after ``make run`` or ``make test`` made the environment) and
synopses with placeholders (``SCENARIO``), which are not run. Each runnable line runs in
bash, verbatim, in an empty folder that holds only what a clone ships: the scenarios,
the examples and the environment (linked), so files a command writes land there.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.app_helpers import ROOT

SHIPPED = ("scenarios", "examples", ".venv")


def runnable_lines() -> list[str]:
    """The lines of the README's ``sh`` blocks that start with ``.venv/bin/``."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.startswith(".venv/bin/")]


def test_the_readme_shows_runnable_commands():
    assert len(runnable_lines()) >= 8


@pytest.mark.parametrize("line", runnable_lines())
def test_a_readme_command_runs_as_written(line, tmp_path):
    for name in SHIPPED:
        (tmp_path / name).symlink_to(ROOT / name)
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), "prints an answer"
    assert "Traceback" not in done.stderr

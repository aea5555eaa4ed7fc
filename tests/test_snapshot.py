"""Every command's JSON on every shipped scenario, held to a recorded snapshot, bit for bit.

The snapshot (``tests/snapshots/cli.json``) pins the numbers the code gives today at
fixed seeds: ``run`` on both engines, ``solve``, ``quota`` and ``sensitivity`` on every
shipped scenario, and ``calibrate`` and ``backtest`` on synthetic exports. A change that
moves code must leave them identical; a change meant to alter numbers (a new stream
layout, a better fit) re-records them and says why in its commit:

    .venv/bin/python -m tests.test_snapshot     # re-record tests/snapshots/cli.json
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from sim.cli import main
from tests.conftest import SCENARIOS_DIR
from tests.crm_synth import StageWorld, World, export_csv, history_csv

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "cli.json"
RUNS = ["--runs", "400", "--seed", "7"]
LIMITED = {"capacity_quarter"}
"""Scenarios with limited reps: the SimPy engine runs them only for `run` (it takes seconds a question)."""


def commands() -> list[list[str]]:
    """The command lines of the snapshot; ``{dir}`` stands for a folder of synthetic exports."""
    out = []
    for path in sorted(SCENARIOS_DIR.glob("*.toml")):
        name = f"scenarios/{path.name}"
        queues = ["--engine", "vectorized"] if path.stem in LIMITED else []
        out.append(["run", name, *RUNS])
        out.append(["run", name, "--runs", "100", "--seed", "3", "--engine", "simpy"])
        out.append(["solve", name, *RUNS, "--target", "0.7", *queues])
        out.append(["quota", name, *RUNS, "--confidence", "0.7", *queues])
        out.append(["sensitivity", name, *RUNS, "--step", "0.1", *queues])
    out.append(["calibrate", "{dir}/deals.csv", "--as-of", "2024-03-01", "-o", "{dir}/out.toml", "--force"])
    dates = ["--as-of", "2023-09-01", "--as-of", "2024-01-15"]
    out.append(["backtest", "{dir}/deals.csv", *dates, "--horizon-days", "60", "--runs", "300"])
    out.append(["calibrate", "{dir}/staged.csv", "--history", "{dir}/stages.csv", "--as-of", "2024-03-01"])
    out[-1] += ["-o", "{dir}/staged.toml", "--force"]
    history = ["--history", "{dir}/stages.csv", "--as-of", "2023-12-01", "--as-of", "2024-04-01"]
    out.append(["backtest", "{dir}/staged.csv", *history, "--horizon-days", "45", "--runs", "300"])
    return out


def write_exports(folder: Path) -> None:
    """The synthetic exports the data commands read (NumPy's own generators: the same files every time)."""
    export_csv(World(per_week=8, start="2022-01-01").deals("2024-06-01", seed=3), "2024-06-01", folder / "deals.csv")
    deals, history = StageWorld(per_week=10, start="2022-06-01").deals("2024-06-01", seed=4)
    export_csv(deals, "2024-06-01", folder / "staged.csv")
    history_csv(deals, history, "2024-06-01", folder / "stages.csv")


def answer(argv: list[str], folder: Path) -> dict:
    """Exit code, JSON and (for calibrate) the scenario written, of one command line."""
    argv = [arg.replace("{dir}", str(folder)) for arg in argv] + ["--json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    # The exports' folder is a temporary one: written back as {dir}.
    result = {"code": code, "json": json.loads(out.getvalue().replace(str(folder), "{dir}"))}
    if argv[0] == "calibrate":
        written = Path(argv[argv.index("-o") + 1])
        result["toml"] = written.read_text().replace(str(folder), "{dir}")
    return result


def key(argv: list[str]) -> str:
    return " ".join(argv)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    write_exports(folder)
    return folder


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(SNAPSHOT.read_text())


@pytest.mark.parametrize("argv", commands(), ids=key)
def test_command_gives_the_recorded_numbers(argv, exports, recorded, monkeypatch):
    monkeypatch.chdir(SCENARIOS_DIR.parent)
    assert key(argv) in recorded, "a command without a snapshot: re-record (see the module docstring)"
    assert answer(argv, exports) == recorded[key(argv)]


if __name__ == "__main__":
    import os
    import tempfile

    os.chdir(SCENARIOS_DIR.parent)
    with tempfile.TemporaryDirectory() as folder:
        write_exports(Path(folder))
        snapshot = {}
        for argv in commands():
            print(key(argv), file=sys.stderr)
            snapshot[key(argv)] = answer(argv, Path(folder))
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")

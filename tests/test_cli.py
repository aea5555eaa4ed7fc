"""The command line: readable output, one JSON object, and the documented keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sim.cli import main
from tests.conftest import ROOT

REFERENCE = str(ROOT / "scenarios" / "reference_quarter.toml")
SUMMARY_KEYS = {"mean", "sd", "p10", "p50", "p90"}


def test_run_json_has_the_documented_keys(capsys):
    assert main(["run", REFERENCE, "--runs", "500", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"scenario", "runs", "seed", "p_hit", "p_hit_ci", "deals", "revenue", "stages"} <= set(out)
    assert out["runs"] == 500 and out["seed"] == 3
    low, high = out["p_hit_ci"]
    assert low <= out["p_hit"] <= high
    assert set(out["deals"]) == SUMMARY_KEYS and set(out["revenue"]) == SUMMARY_KEYS
    assert [s["name"] for s in out["stages"]] == ["Discovery", "Proposal", "Negotiation"]
    assert all({"name", "entered", "converted"} <= set(s) for s in out["stages"])


def test_run_human_output(capsys):
    assert main(["run", REFERENCE, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert "P(hit quota)" in out and "Discovery" in out and "Average math" in out


def test_engines_and_jobs_give_valid_json(capsys):
    for options in (["--engine", "simpy", "--runs", "50"], ["--jobs", "2", "--runs", "2100"]):
        assert main(["run", REFERENCE, "--json", *options]) == 0
        assert 0 <= json.loads(capsys.readouterr().out)["p_hit"] <= 1


def test_module_and_console_script():
    python = Path(sys.executable)
    for command in ([str(python), "-m", "sim"], [str(python.parent / "funnel-sim")]):
        done = subprocess.run(
            [*command, "run", REFERENCE, "--runs", "200", "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["runs"] == 200
        assert done.stderr == ""  # no progress bar when not on a terminal

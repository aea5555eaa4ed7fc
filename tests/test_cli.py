"""The command line: readable output, one JSON object with the documented keys, the same
numbers as the Python API, and the two ways to start it (``python -m sim``, ``funnel-sim``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import load_scenario, simulate
from sim.cli import main
from tests.conftest import ROOT, SCENARIOS_DIR

REFERENCE = str(SCENARIOS_DIR / "reference_quarter.toml")
SUMMARY_KEYS = {"mean", "sd", "p10", "p50", "p90"}
DOCUMENTED_KEYS = {"scenario", "runs", "seed", "p_hit", "p_hit_ci", "deals", "revenue", "stages"}


def run_json(capsys, *argv: str) -> dict:
    assert main(["run", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress bar in JSON mode
    assert len(out.strip().splitlines()) == 1, "one JSON object on one line"
    return json.loads(out)


def test_run_json_has_the_documented_keys(capsys):
    out = run_json(capsys, REFERENCE, "--runs", "500", "--seed", "3")
    assert DOCUMENTED_KEYS <= set(out)
    assert out["scenario"] == "AE new business, reference quarter"
    assert out["runs"] == 500 and out["seed"] == 3
    low, high = out["p_hit_ci"]
    assert 0 <= low <= out["p_hit"] <= high <= 1
    for key in ("deals", "revenue"):
        summary = out[key]
        assert set(summary) == SUMMARY_KEYS
        assert all(isinstance(v, int | float) for v in summary.values())
        assert summary["p10"] <= summary["p50"] <= summary["p90"] and summary["sd"] >= 0
    assert [s["name"] for s in out["stages"]] == ["Discovery", "Proposal", "Negotiation"]
    for stage in out["stages"]:
        assert {"name", "entered", "converted"} <= set(stage)
        assert 0 <= stage["converted"] <= stage["entered"]


def test_json_is_the_python_summary(capsys):
    # The CLI adds nothing of its own: same seed, same figures as simulate().summary().
    out = run_json(capsys, REFERENCE, "--runs", "700", "--seed", "5")
    summary = simulate(load_scenario(REFERENCE), runs=700, seed=5).summary()
    assert out == json.loads(json.dumps(summary))


def test_defaults_are_10000_runs_and_seed_0(capsys):
    out = run_json(capsys, REFERENCE)
    assert out["runs"] == 10_000 and out["seed"] == 0


def test_engines_and_jobs(capsys):
    simpy = run_json(capsys, REFERENCE, "--engine", "simpy", "--runs", "50")
    assert 0 <= simpy["p_hit"] <= 1
    # One worker or two: the same numbers, through the command line as well.
    one = run_json(capsys, REFERENCE, "--jobs", "1", "--runs", "1100", "--seed", "2")
    two = run_json(capsys, REFERENCE, "--jobs", "2", "--runs", "1100", "--seed", "2")
    assert one == two


def test_run_human_output(capsys):
    assert main(["run", REFERENCE, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert "P(hit quota)" in out and "95% CI" in out
    assert all(name in out for name in ("Discovery", "Proposal", "Negotiation"))
    assert "Average math" in out
    assert not out.lstrip().startswith("{")


def test_help_lists_the_run_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "run" in capsys.readouterr().out


def _subprocess(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command, "run", REFERENCE, "--runs", "200", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def test_python_dash_m_sim():
    done = _subprocess([sys.executable, "-m", "sim"])
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert DOCUMENTED_KEYS <= set(out) and out["runs"] == 200
    assert done.stderr == ""  # no progress bar when not on a terminal


def test_console_script():
    script = Path(sys.executable).parent / "funnel-sim"
    assert script.is_file() and os.access(script, os.X_OK), f"{script} is not installed"
    done = _subprocess([str(script)])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"] == 200


def test_bad_input_from_a_subprocess_is_two_lines_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((SCENARIOS_DIR / "reference_quarter.toml").read_text().replace("mean = 0.50", "mean = 1.3"))
    done = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(bad)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: stages[1].conversion.mean: must be strictly between 0 and 1, got 1.3")
    assert "Traceback" not in done.stderr


def test_a_reader_that_stops_early_gets_no_traceback():
    # `funnel-sim run ... | head -1`: head closes the pipe before the answer is written.
    command = [sys.executable, "-m", "sim", "run", REFERENCE, "--runs", "200"]
    done = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    done.stdout.close()
    assert done.wait(timeout=120) == 0
    assert done.stderr.read() == b""

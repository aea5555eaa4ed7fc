"""The command line: readable output, one JSON object with the documented keys, the same
numbers as the Python API, and the two ways to start it (``python -m sim``, ``funnel-sim``)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from importlib import metadata
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
    assert "Average-math forecast" in out
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


# --- numbers and words for people ---------------------------------------------------------------------

from sim.words import counted, human  # noqa: E402

CAPACITY = str(SCENARIOS_DIR / "capacity_quarter.toml")
TEAM = str(SCENARIOS_DIR / "team_quarter.toml")


@pytest.mark.parametrize(
    ("x", "kind", "text"),
    [
        (1_023_784, "money", "$1.02M"),
        (1_200_000, "money", "$1.2M"),
        (250_000, "money", "$250k"),
        (27_500, "money", "$27.5k"),
        (8_400, "money", "$8,400"),
        (8_437, "money", "$8,440"),
        (999_600, "money", "$1M"),  # rounding carries into the next unit
        (2.5e9, "money", "$2.5B"),
        (-109_380, "money", "-$109k"),
        (0, "money", "$0"),
        (25_000, "figure", "25,000"),
        (27_500, "figure", "27,500"),
        (0.825, "figure", "0.825"),
        (12.6, "figure", "12.6"),
        (15.15, "figure", "15.2"),
        (1_211.8, "figure", "1,210"),
        (9.996, "figure", "10"),
        (0.000123456, "figure", "0.000123"),
        (1e12, "figure", "1,000,000,000,000"),
        (1_023_784, "count", "1,023,784"),
        (float("nan"), "figure", "n/a"),
    ],
)
def test_numbers_read_as_people_write_them(x, kind, text):
    assert human(x, kind) == text


def test_signed_numbers_and_plurals():
    assert human(109_380, "money", signed=True) == "+$109k"
    assert human(-3.2, signed=True) == "-3.2"
    assert counted(1, "open deal") == "1 open deal"
    assert counted(0, "open deal") == "0 open deals"
    assert counted(1_200, "run") == "1,200 runs"
    assert counted(2, "reply", "replies") == "2 replies"
    assert counted(6.5, "week") == "6.5 weeks"


def test_text_has_no_scientific_notation_nor_raw_money(capsys):
    assert main(["sensitivity", REFERENCE, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert "e+0" not in out and "$25k" in out and "$27.5k" in out  # the deal value lever: 25,000 to 27,500
    assert main(["quota", REFERENCE, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert "$" in out and not re.search(r"\d,\d{3},\d{3}", out)  # money as $1.02M, not 1,023,784


def test_one_run_is_a_run(capsys):
    assert main(["run", REFERENCE, "--runs", "1"]) == 0
    assert "(1 run, seed 0" in capsys.readouterr().out


def _with_quota(tmp_path, revenue: float) -> str:
    text = (SCENARIOS_DIR / "reference_quarter.toml").read_text()
    path = tmp_path / "quota.toml"
    path.write_text(re.sub(r"(?m)^revenue = .*$", f"revenue = {revenue}", text, count=1))
    return str(path)


def test_no_run_hitting_gives_a_one_sided_bound(tmp_path, capsys):
    # Clopper-Pearson with no hit in n runs: P(hit) < 1 - 0.05 ** (1 / n) with 95% confidence.
    assert main(["run", _with_quota(tmp_path, 1e10), "--runs", "1000"]) == 0
    out = capsys.readouterr().out
    assert 1 - 0.05 ** (1 / 1000) == pytest.approx(0.002991, abs=1e-6)
    assert "P(hit quota): below 0.299%" in out and "none of 1,000 runs" in out
    assert "0.0% (95% CI" not in out and "0.0%" not in out.split("P(hit quota):")[1].splitlines()[0]


def test_every_run_hitting_gives_a_one_sided_bound(tmp_path, capsys):
    assert main(["run", _with_quota(tmp_path, 0.01), "--runs", "1000"]) == 0
    out = capsys.readouterr().out
    assert "P(hit quota): above 99.7%" in out and "all of 1,000 runs" in out  # 100% - 0.299%
    assert "100.0%" not in out


def test_a_team_answer_says_per_rep_and_gives_its_chance_once(capsys):
    assert main(["solve", TEAM, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert "new opportunities per rep a week" in out and "Average-math pace" in out
    assert main(["run", TEAM, "--runs", "300"]) == 0
    out = capsys.readouterr().out
    assert out.count("P(team hits its quota)") == 1 and "P(hit quota)" not in out


# --- version and help -------------------------------------------------------------------------------------


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"funnel-sim {metadata.version('funnel-sim')}"


@pytest.mark.parametrize("command", [[], ["run"], ["solve"], ["quota"], ["sensitivity"], ["calibrate"], ["backtest"]])
def test_help_shows_no_markup(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    # argparse's own " | " between exclusive options is usage syntax; "run|solve" is a docstring's.
    assert not re.search(r"\w\|\w", out), out


# --- progress on a terminal -----------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as tqdm asks."""

    def isatty(self) -> bool:
        return True


QUESTIONS = [
    ["run", REFERENCE, "--runs", "600"],
    ["solve", REFERENCE, "--runs", "600"],
    ["quota", REFERENCE, "--runs", "600"],
    ["sensitivity", REFERENCE, "--runs", "600"],
    ["solve", CAPACITY, "--runs", "100", "--target", "0.3"],  # a search of several simulations
]


@pytest.mark.parametrize("argv", QUESTIONS, ids=lambda argv: f"{argv[0]} {Path(argv[1]).stem}")
def test_progress_shows_on_a_terminal_only(argv, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(argv) == 0
    assert re.search(r"\d+/\d+ \[", terminal.getvalue()), terminal.getvalue()  # tqdm's "600/600 ["
    out = capsys.readouterr().out
    assert out.strip() and "\r" not in out
    # With --json, nothing on the terminal either: the JSON stays clean.
    terminal.seek(0)
    terminal.truncate()
    assert main([*argv, "--json"]) == 0
    assert terminal.getvalue() == ""
    json.loads(capsys.readouterr().out)


def test_no_progress_when_stderr_is_not_a_terminal(capsys):
    for argv in QUESTIONS[:4]:
        assert main(argv) == 0
        assert capsys.readouterr().err == ""


def test_auto_runs_limited_reps_on_the_vectorised_queues(capsys):
    # The queues model limited reps without listed open deals: auto is their answer, bit for bit.
    auto = run_json(capsys, CAPACITY, "--runs", "300")
    queues = run_json(capsys, CAPACITY, "--runs", "300", "--engine", "vectorized")
    assert auto["engine"] == "vectorized" and auto == queues

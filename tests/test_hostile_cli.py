"""Hostile and careless input on the command line: a clean answer or a short refusal, never a traceback.

Each case of the table is a command line over a file of ``tests/hostile/`` (or one made
here: big files are written at test time, not committed), the exit code it must end with
and a fragment of what it must say. Every case also holds the general promises: exit 0,
1 or 2; no traceback; with ``--json``, stdout is one line of strict JSON (no ``NaN`` or
``Infinity``); a refusal is ``error:`` lines of bounded length. Ctrl-C is sent to real
processes: ``interrupted`` on stderr, exit 130, no output file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.cli import main
from sim.crm.reader import MAX_CSV_BYTES
from sim.errors import MAX_LINE
from sim.model.scenario import MAX_FILE_BYTES
from tests.conftest import ROOT, SCENARIOS_DIR
from tests.crm_synth import World, export_csv

HOSTILE = Path(__file__).resolve().parent / "hostile"
REFERENCE = SCENARIOS_DIR / "reference_quarter.toml"

# Rows appended to a synthetic export (columns Id, CreatedDate, CloseDate, StageName, Amount, OwnerId).
BAD_ROWS = {
    "dates.csv": [
        "X1,0001-01-01T00:00:00,2023-05-01T00:00:00,Closed Won,1000,005A",
        "X2,2023-01-01T00:00:00,9999-12-31T00:00:00,Closed Lost,1000,005A",
    ],
    "amounts.csv": [
        "X3,2023-01-05T00:00:00,2023-02-01T00:00:00,Closed Won,1e308,005A",
        "X4,2023-01-05T00:00:00,2023-02-01T00:00:00,Closed Won,inf,005A",
    ],
}


def _history(deals_csv: str, path: Path, names) -> None:
    """A stage history giving the first 300 deals the stages ``names`` an hour apart."""
    lines = ["OpportunityId,StageName,EnteredDate"]
    for row in deals_csv.splitlines()[1:301]:
        deal, created = row.split(",")[:2]
        hour = int(created[11:13])
        lines += [f"{deal},{name},{created[:11]}{min(hour + k, 23):02d}{created[13:]}" for k, name in enumerate(names)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The files made at test time: exports, histories, oversized and deeply nested scenarios, a FIFO."""
    folder = tmp_path_factory.mktemp("hostile")
    deals = export_csv(World(per_week=8, start="2022-01-01").deals("2024-06-01", seed=3), "2024-06-01")
    (folder / "deals.csv").write_text(deals)
    for name, rows in BAD_ROWS.items():
        (folder / name).write_text(deals + "\n".join(rows) + "\n")
    _history(deals, folder / "forty_stages.csv", [f"Stage {k:02d}" for k in range(40)])
    _history(deals, folder / "long_stage.csv", ["Qualify", "Q" * 200, "Close"])
    reference = REFERENCE.read_text()
    (folder / "four_mb_name.toml").write_text(reference.replace('name = "Proposal"', f'name = "{"P" * 4_000_000}"'))
    (folder / "long_key.toml").write_text(reference.replace("[[stages]]", f'[[stages]]\n"{"K" * 1_000_000}" = 1', 1))
    (folder / "deep_tables.toml").write_text("name = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n")
    with open(folder / "sparse.toml", "wb") as sparse:  # a hole: no disk used
        sparse.truncate(MAX_FILE_BYTES + 10)
    with open(folder / "sparse.csv", "wb") as sparse:
        sparse.truncate(MAX_CSV_BYTES + 10)
    (folder / "latin1.toml").write_bytes(b"name = '\xe9'\n")
    os.mkfifo(folder / "fifo")
    (folder / "out").mkdir()
    return folder


CALIBRATE = ["--as-of", "2024-03-01", "-o", "{made}/out/scenario.toml", "--force"]

# (id, argv, exit code, fragment of stdout + stderr); {hostile} and {made} are the folders.
CASES = [
    # numbers are numbers
    ("string horizon", ["run", "{hostile}/string_horizon.toml"], 2, "error: horizon_weeks: must be a number, got '13'"),
    (
        "string rate",
        ["run", "{hostile}/string_conversion.toml"],
        2,
        "stages[0].conversion: must be a number, got '0.5'",
    ),
    ("boolean rate", ["run", "{hostile}/bool_conversion.toml"], 2, "stages[0].conversion: must be a number, got True"),
    ("string count", ["run", "{hostile}/string_open.toml"], 2, "stages[0].open: must be a number, got '20'"),
    ("integer rate is fine", ["run", "{hostile}/int_conversion.toml"], 0, '"runs": 20'),
    ("no magic number", ["solve", "{hostile}/zero_rate.toml"], 1, '"deterministic_weekly_opportunities": null'),
    ("string horizon, solve", ["solve", "{hostile}/string_horizon.toml"], 2, "horizon_weeks: must be a number"),
    ("string horizon, quota", ["quota", "{hostile}/string_horizon.toml"], 2, "horizon_weeks: must be a number"),
    ("string horizon, levers", ["sensitivity", "{hostile}/string_horizon.toml"], 2, "horizon_weeks: must be"),
    # overflow
    (
        "1e308 deal values",
        ["run", "{hostile}/empirical_overflow.toml"],
        2,
        "deal_value.values: every value must be at most 1e+12",
    ),
    ("1e308 quota", ["run", "{hostile}/huge_quota.toml"], 2, "quota.revenue: must be an amount from 0.01 to 1e+12"),
    ("1e308 multipliers", ["run", "{hostile}/overflowing_multipliers.toml"], 2, "inflow.multipliers: every multiplier"),
    ("1e39 count", ["run", "{hostile}/huge_integer.toml"], 2, "stages[0].open: must be a number of a sensible size"),
    # messages
    (
        "typo in the only stage",
        ["run", "{hostile}/stage_typo.toml"],
        2,
        "stages[0].converson: unknown key (check the spelling)",
    ),
    (
        "stage name of 100",
        ["run", "{hostile}/long_stage_name.toml"],
        2,
        "stages[1].name: String should have at most 80",
    ),
    ("stage name of 4 MB", ["run", "{made}/four_mb_name.toml"], 2, "stages[1].name: String should have at most 80"),
    ("key of 1 MB", ["run", "{made}/long_key.toml"], 2, "unknown key (check the spelling)"),
    # teams
    ("every rep new, run", ["run", "{hostile}/team_all_new.toml"], 0, '"new_reps": 3'),
    ("every rep new, quota", ["quota", "{hostile}/team_all_new.toml"], 0, '"rep_quota"'),
    ("a thousand reps", ["run", "{hostile}/team_runaway.toml"], 2, "for the team of 1,000 reps is too many"),
    # nesting
    ("1,000-deep arrays", ["run", "{hostile}/deep_arrays.toml"], 2, "malformed TOML: nested too deeply"),
    ("1,000-deep tables", ["run", "{made}/deep_tables.toml"], 2, "malformed TOML: nested too deeply"),
    # files that are not scenario files
    ("/dev/zero", ["run", "/dev/zero"], 2, "error: /dev/zero: is a device, not a scenario file"),
    ("FIFO", ["run", "{made}/fifo"], 2, "fifo: is a FIFO (named pipe), not a scenario file"),
    ("directory", ["run", "{made}"], 2, "is a directory, not a scenario file"),
    ("missing", ["run", "{made}/nope.toml"], 2, "nope.toml: no such file"),
    ("too large", ["run", "{made}/sparse.toml"], 2, f"file is larger than {MAX_FILE_BYTES:,} bytes"),
    ("not UTF-8", ["run", "{made}/latin1.toml"], 2, "latin1.toml: not a UTF-8 text file"),
    # CRM exports
    ("dates 0001 and 9999", ["calibrate", "{made}/dates.csv", *CALIBRATE], 0, "implausible date in CreatedDate"),
    ("close date 9999", ["calibrate", "{made}/dates.csv", *CALIBRATE], 0, "implausible date in CloseDate"),
    ("amount 1e308", ["calibrate", "{made}/amounts.csv", *CALIBRATE], 0, "amount above 1e+12 (a trillion) in Amount"),
    (
        "amount 1e308, backtest",
        ["backtest", "{made}/amounts.csv", "--as-of", "2024-01-15", "--horizon-days", "30", "--runs", "50"],
        0,
        '"origins": 1',
    ),
    (
        "40 stages",
        ["calibrate", "{made}/deals.csv", "--history", "{made}/forty_stages.csv", *CALIBRATE],
        2,
        "stages: must have at most 30 items, got 40",
    ),
    (
        "stage name of 200",
        ["calibrate", "{made}/deals.csv", "--history", "{made}/long_stage.csv", *CALIBRATE],
        0,
        "stage name longer than 80 characters (StageName)",
    ),
    ("CSV /dev/zero", ["calibrate", "/dev/zero", *CALIBRATE], 2, "/dev/zero: is a device, not a CSV file"),
    ("CSV FIFO", ["calibrate", "{made}/fifo", *CALIBRATE], 2, "is a FIFO (named pipe), not a CSV file"),
    ("CSV too large", ["calibrate", "{made}/sparse.csv", *CALIBRATE], 2, f"larger than {MAX_CSV_BYTES:,} bytes"),
    # -o and --force
    (
        "-o the export",
        ["calibrate", "{made}/deals.csv", "--as-of", "2024-03-01", "-o", "{made}/deals.csv", "--force"],
        2,
        "-o: {made}/deals.csv is an input (the CRM export)",
    ),
    (
        "-o the history",
        ["calibrate", "{made}/deals.csv", "--history", "{made}/long_stage.csv", "--as-of", "2024-03-01"]
        + ["-o", "{made}/long_stage.csv", "--force"],
        2,
        "is an input (--history)",
    ),
    (
        "-o a device",
        ["calibrate", "{made}/deals.csv", "--as-of", "2024-03-01", "-o", "/dev/null", "--force"],
        2,
        "-o: /dev/null is a device, not a regular file",
    ),
    (
        "-o a FIFO",
        ["calibrate", "{made}/deals.csv", "--as-of", "2024-03-01", "-o", "{made}/fifo", "--force"],
        2,
        "is a FIFO (named pipe), not a regular file",
    ),
]


def fill(argv: list[str], made: Path) -> list[str]:
    return [arg.replace("{hostile}", str(HOSTILE)).replace("{made}", str(made)) for arg in argv]


def _refuse_constant(name: str):
    raise AssertionError(f"not strict JSON: {name}")


@pytest.mark.parametrize(("argv", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_case(argv, code, fragment, made, capsys):
    inputs = {path: path.read_bytes() for path in made.glob("*.csv")}
    argv = fill(argv, made)
    if argv[0] in ("run", "solve", "quota", "sensitivity"):
        argv += ["--runs", "20"]
    assert main([*argv, "--json"]) == code
    out, err = capsys.readouterr()
    assert fill([fragment], made)[0] in out + err
    if code in (0, 1):
        assert err == "" and len(out.splitlines()) == 1
        json.loads(out, parse_constant=_refuse_constant)
    else:
        assert out == "" and err
        assert all(line.startswith("error: ") and len(line) <= len("error: ") + MAX_LINE for line in err.splitlines())
    assert "Tuple should have" not in err
    # Nothing was written over an input.
    assert {path: path.read_bytes() for path in made.glob("*.csv")} == inputs


def test_the_only_problem_of_a_misspelt_stage_key_is_one_line(capsys):
    assert main(["run", str(HOSTILE / "stage_typo.toml")]) == 2
    assert capsys.readouterr().err == "error: stages[0].converson: unknown key (check the spelling)\n"


def test_a_4_mb_name_is_quoted_briefly(made, capsys):
    assert main(["run", str(made / "four_mb_name.toml")]) == 2
    err = capsys.readouterr().err
    assert "(4,000,000 characters)" in err and len(err) < 400


def test_every_corpus_scenario_is_in_the_table():
    named = {Path(arg).name for _, argv, _, _ in CASES for arg in argv if arg.startswith("{hostile}/")}
    assert named == {path.name for path in HOSTILE.glob("*.toml")}


@pytest.mark.parametrize(
    "argv",
    [["run", "{hostile}/deep_arrays.toml"], ["run", "/dev/zero"], ["run", "{hostile}/team_runaway.toml"]],
    ids=["deep", "/dev/zero", "a thousand reps"],
)
def test_a_real_process_says_one_line(argv, made):
    done = subprocess.run(
        [sys.executable, "-m", "sim", *fill(argv, made)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


# --- Ctrl-C ---------------------------------------------------------------------------------

READY = (
    "import sys; from sim.cli import main; print('ready', file=sys.stderr, flush=True); sys.exit(main(sys.argv[1:]))"
)


def interrupted(argv: list[str]) -> subprocess.CompletedProcess:
    """Start the command, wait until ``main`` runs, send it SIGINT (what Ctrl-C sends)."""
    process = subprocess.Popen(
        [sys.executable, "-c", READY, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # A child of a shell's background job would inherit SIGINT ignored: restore the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr.readline() == "ready\n"
    time.sleep(1)  # into main's work: a signal between the print and main's first line is Python's to report
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


SLOW_RUN = ["run", str(REFERENCE), "--engine", "simpy", "--runs", "1000000"]


@pytest.mark.parametrize(
    "argv", [SLOW_RUN, [*SLOW_RUN, "--json"], [*SLOW_RUN, "--jobs", "2"]], ids=["run", "--json", "--jobs 2"]
)
def test_ctrl_c_during_a_run(argv):
    done = interrupted(argv)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "interrupted\n")


def test_ctrl_c_during_calibrate_and_backtest_leaves_no_file(made):
    out = made / "interrupted" / "scenario.toml"
    out.parent.mkdir()
    # Choosing the half-life backtests the history: seconds of work to interrupt.
    calibrate = ["calibrate", str(made / "deals.csv"), "--as-of", "2024-03-01", "--half-life-weeks", "auto"]
    calibrate = interrupted([*calibrate, "-o", str(out)])
    assert (calibrate.returncode, calibrate.stdout, calibrate.stderr) == (130, "", "interrupted\n")
    assert list(out.parent.iterdir()) == []
    backtest = ["backtest", str(made / "deals.csv"), "--from", "2023-01-01", "--to", "2024-03-01"]
    done = interrupted([*backtest, "--horizon-days", "60"])
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "interrupted\n")

"""The work budget: estimates against hand computation, refusals that say what fits, capped workers and jobs.

Also what keeps a server's processes bounded: a simulation stops when its progress
callback says so, and worker processes end when the process that started them is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sim import load_scenario
from sim.engines.streams import BLOCK
from sim.questions.sensitivity import levers
from sim.runner import Request, budget, choose_engine, run
from sim.runner.budget import APP, COST, DEAL_BYTES, LIBRARY, Limits, estimate, result_bytes, runs_that_fit
from sim.runner.request import CORES
from tests.app_helpers import ROOT, SCENARIO_FILES

REFERENCE = ROOT / "scenarios" / "reference_quarter.toml"


@pytest.fixture(scope="module")
def reference():
    return load_scenario(REFERENCE)


def test_the_estimate_is_runs_times_deals_times_stages_weighted_by_the_engine(reference):
    deals = reference.expected_arrivals + sum(stage.open for stage in reference.stages)  # 16/week x 13 + 38
    assert deals == pytest.approx(16 * 13 + 38)
    stages = len(reference.stages)
    # The arrays simulate whole blocks: 1,000 runs are two blocks of 512.
    vectorized = estimate([reference], ["vectorized"], 1_000)
    assert vectorized.work == pytest.approx(2 * BLOCK * deals * stages * COST["vectorized"])
    assert vectorized.memory == pytest.approx(DEAL_BYTES["vectorized"] * deals * BLOCK + result_bytes(reference, 1_000))
    simpy = estimate([reference], ["simpy"], 1_000)
    assert simpy.work == pytest.approx(1_000 * deals * stages * COST["simpy"])
    assert simpy.memory == pytest.approx(DEAL_BYTES["simpy"] * deals + result_bytes(reference, 1_000))
    # Scenarios simulated together add up; each worker holds a block of its own.
    both = estimate([reference, reference], ["vectorized"] * 2, 1_000, workers=2)
    assert both.work == pytest.approx(2 * vectorized.work)
    assert both.memory == pytest.approx(
        2 * 2 * DEAL_BYTES["vectorized"] * deals * BLOCK + 2 * result_bytes(reference, 1_000)
    )


def test_a_team_counts_every_rep():
    team = load_scenario(ROOT / "scenarios" / "team_quarter.toml")
    alone = team.model_copy(update={"team": None})
    reps = team.team.reps
    assert estimate([team], ["vectorized"], 600).work == pytest.approx(
        reps * estimate([alone], ["vectorized"], 600).work
    )


def test_runs_that_fit_is_the_most_that_fits_in_two_figures(reference):
    per_block = estimate([reference], ["vectorized"], BLOCK).work
    limits = Limits(work=37.5 * per_block, memory=2**30)
    fit = runs_that_fit([reference], ["vectorized"], 1_000_000, limits)
    assert fit == 18_000  # 37 whole blocks are 18,944 runs: two figures of it
    assert estimate([reference], ["vectorized"], fit).fits(limits)
    assert runs_that_fit([reference], ["vectorized"], 5_000, limits) == 5_000  # what fits is left alone
    assert runs_that_fit([reference], ["vectorized"], 5_000, Limits(work=per_block / 2, memory=2**30)) == 0


def test_the_runner_refuses_beyond_the_budget_saying_how_many_runs_fit(reference, monkeypatch):
    monkeypatch.setattr(budget, "LIBRARY", Limits(work=estimate([reference], ["simpy"], 400).work, memory=2**30))
    with pytest.raises(ValueError, match=r"^runs: 200,000 runs .* at most 400 runs fit") as refused:
        run(Request.of(reference, runs=200_000, engine="simpy"))
    assert "\n" not in str(refused.value)


def test_deals_no_number_of_runs_can_hold_are_refused_by_inflow(reference):
    heavy = reference.with_inflow(70_000)  # about 910,000 deals a run: GBs for one block
    with pytest.raises(ValueError, match=r"^inflow\.per_week: about 910,038 deals a run .* GB"):
        run(Request.of(heavy, runs=100))


def test_the_defaults_refuse_nothing_the_shipped_scenarios_ask():
    # Every command's default runs (10,000) on every shipped scenario and engine; Sensitivity asks for the most.
    for path in SCENARIO_FILES:
        scenario = load_scenario(path)
        variants = [scenario, *(v for _, v in levers(scenario, 0.1))]
        for engine in ("auto", "simpy"):
            engines = [choose_engine(scenario, engine)] * len(variants)
            assert estimate(variants, engines, 10_000, CORES).fits(LIBRARY), (path.name, engine)
            assert runs_that_fit(variants[:1], engines[:1], 2_000, APP, CORES) >= 500, (path.name, engine)
        # The app's pages at their default runs on the auto engine, Sensitivity too.
        engines = [choose_engine(scenario)] * len(variants)
        assert runs_that_fit(variants, engines, 2_000, APP, CORES) == 2_000, path.name


def test_more_jobs_than_cores_are_capped():
    assert Request.of(load_scenario(REFERENCE), jobs=1_000).jobs == CORES


def test_a_progress_callback_that_raises_stops_the_simulation(reference):
    seen = []

    def stop(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(Request.of(reference, runs=1_000, seed=7, engine="simpy"), stop)  # ten tasks of 100
    assert seen == [100, 200]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def test_worker_processes_end_when_their_parent_is_killed():
    code = (
        "import time\nfrom sim.runner import start_workers\n"
        "start_workers(2)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        children = _children(parent.pid)  # the workers and their resource trackers
        assert len(children) >= 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 120  # generous: a bound on waiting, not a measure of speed
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in children if _alive(pid)], "worker processes outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()

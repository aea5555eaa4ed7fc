"""Plans on Dask: a local cluster gives the in-process table, and a worker killed mid-plan loses no cell.

Local clusters listen on 127.0.0.1 with no dashboard; these tests share one xdist group so
their worker processes never compete with each other.
"""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

from sim.cli import main
from sim.plan import execute as execute_module
from sim.plan.execute import dask_client, execute
from sim.plan.spec import plan_from_dict
from tests.plan.helpers import grid, write_plan

pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="module")
def plan():
    return plan_from_dict(grid({"team.reps": [3, 4, 5, 6], "team.new_reps": [0, 1, 2]}, runs=1_000))


@pytest.fixture(scope="module")
def in_process(plan):
    return execute(plan, workers=0)[0]


def test_a_local_cluster_gives_the_in_process_table(plan, in_process, tmp_path):
    table, simulated = execute(plan, tmp_path / "results.parquet", workers=2)
    assert simulated == len(plan.cells) == 12
    pd.testing.assert_frame_equal(table, in_process)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), in_process)


def test_a_worker_killed_mid_plan_loses_no_cell(plan, in_process):
    killed = []
    with dask_client(workers=2) as client:

        def kill_one_busy_worker(done, total):
            if done == 3 and not killed:  # cells are still running and queued
                busy = [address for address, keys in client.processing().items() if keys]
                busy = busy or list(client.scheduler_info()["workers"])  # between two tasks: any worker
                pids = client.run(os.getpid, workers=busy[:1])
                for pid in pids.values():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

        table, simulated = execute(plan, client=client, progress=kill_one_busy_worker)
        alive = client.run(os.getpid)
    assert len(killed) == 1 and killed[0] not in alive.values()  # the nanny started a new worker
    assert simulated == len(plan.cells)
    pd.testing.assert_frame_equal(table, in_process)


def test_a_scheduler_out_of_reach_is_one_line(plan, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(execute_module, "CONNECT_TIMEOUT", "1s")
    path = write_plan(tmp_path, grid({"team.reps": [2]}))
    assert main(["plan", str(path), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scheduler: cannot reach tcp://127.0.0.1:9 (") and len(err.splitlines()) == 1


def test_scheduler_sends_the_cells_to_an_existing_cluster(plan, in_process):
    with dask_client(workers=1) as cluster:
        table, simulated = execute(plan, scheduler=cluster.scheduler.address)
    assert simulated == len(plan.cells)
    pd.testing.assert_frame_equal(table, in_process)


def test_a_local_cluster_serves_nothing_on_a_fixed_port_or_beyond_this_machine():
    with dask_client(workers=1) as client:
        scheduler = client.cluster.scheduler
        assert scheduler.address.startswith("tcp://127.0.0.1:")
        # Its HTTP routes (health, metrics) on a free local port: 8787 may be another cluster's.
        http = scheduler.services["dashboard"]
        ports = {s.getsockname()[:2] for s in http._sockets.values()}
        assert ports and all(host == "127.0.0.1" and port != 8787 for host, port in ports)

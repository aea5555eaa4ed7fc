"""Simulating a plan's cells: each an ordinary simulation with the plan's seed, on Dask, kept as it finishes.

A cell's numbers are :func:`sim.runner.simulate` of its scenario with the plan's runs
and seed: the same seed for every cell, so cells compare with common random numbers,
and a cell is, bit for bit, what ``funnel-sim run`` gives its scenario. The one idea:
those numbers depend on nothing else, so which worker ran a cell, in what order, and
whether the plan was interrupted and resumed never changes the table. (Nor does the
quota change what is simulated: cells that differ only in quota share one simulation.)

Simulations run on a ``dask.distributed`` client (a local cluster of worker processes,
or an existing scheduler), each submitted with Dask's retries; a worker that dies loses
no cell (the scheduler gives its tasks to another). Each finished cell is written to a
:class:`CellStore` beside the output at once, keyed by :func:`~sim.plan.spec.cell_key`,
so ``--resume`` recomputes only what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError, is_regular_file, shorten
from sim.model.scenario import Scenario
from sim.model.segments import cost_of_reps
from sim.model.segments import reps as rep_count
from sim.plan.spec import Cell, Plan, new_reps
from sim.runner import Request, run
from sim.runner.request import quota_free

RETRIES = 3
"""Dask retries of a cell whose task failed (a lost worker is the scheduler's to reschedule: ``allowed-failures``)."""
OUTPUTS = (".parquet", ".csv")
"""The table's formats, by the output's suffix."""
CONNECT_TIMEOUT = "20s"
"""How long to try reaching a ``--scheduler`` before giving up."""
MAX_CELL_BYTES = 1_000_000
"""Largest cell file read back on resume."""

Done = Callable[[int, int], None]


class SchedulerError(InputError):
    """A Dask scheduler that cannot be reached."""


class OutputError(InputError):
    """An output that cannot be written as asked (exists without ``--resume``, unknown format)."""


# --- the cells of one simulation ----------------------------------------------------------------------------


def cells_figures(scenarios: list[Scenario], runs: int, seed: int) -> list[dict]:
    """Figures of cells that differ only in their quotas: P(hit) (total and per segment), revenue P10/P50/P90,
    won deals P50.

    Runs on a worker. What a simulation produces does not depend on the quota, so the
    cells are simulated once (:func:`sim.runner.run`, one process) and each is judged
    against its own quota, exactly as :func:`sim.runner.simulate` does for one scenario:
    the numbers are those of ``funnel-sim run`` on each scenario with these runs and seed.
    """
    request = Request.of(scenarios[0], runs=runs, seed=seed, jobs=1)
    simulation = run(request)
    return [_figures(simulation.result(scenario, request.seed).summary()) for scenario in scenarios]


def _figures(summary: dict) -> dict:
    revenue = summary["revenue"]
    row = {
        "p_hit": summary["p_hit"],
        "revenue_p10": revenue["p10"],
        "revenue_p50": revenue["p50"],
        "revenue_p90": revenue["p90"],
        "won_deals_p50": summary["deals"]["p50"],
    }
    for segment in summary.get("segments", ()):  # a segment's P(hit) where it has its own quota
        if segment["p_hit"] is not None:
            row[f"p_hit[{segment['name']}]"] = segment["p_hit"]
        row[f"revenue_p50[{segment['name']}]"] = segment["revenue"]["p50"]
    return row


def simulations(cells: list[Cell]) -> list[list[Cell]]:
    """The cells grouped by what is simulated: cells whose scenarios differ only in quotas share one simulation."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        simulated = quota_free(cell.scenario).model_dump(mode="json", exclude={"name", "description"})
        groups.setdefault(json.dumps(simulated, sort_keys=True), []).append(cell)
    return list(groups.values())


# --- where cells are kept --------------------------------------------------------------------------------


def output_format(path: str | Path) -> str:
    """``parquet`` or ``csv`` from the output's suffix.

    Raises
    ------
    OutputError
        Another suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUTS:
        raise OutputError([f"output: {path}: give a .parquet or .csv file, got {suffix or 'no suffix'}"])
    return suffix[1:]


class CellStore:
    """Finished cells of one output: a JSON file per cell in ``OUTPUT.cells/``, written as each finishes.

    JSON keeps every float exactly (it writes the shortest text that reads back to the
    same number), so a resumed table equals an uninterrupted one. Once the table is
    written the folder is removed; resuming then reads the cells from the table itself
    (its ``cell`` column).
    """

    def __init__(self, output: str | Path):
        self.output = Path(output)
        self.folder = self.output.with_name(self.output.name + ".cells")
        output_format(self.output)
        if self.output.exists() and not is_regular_file(self.output):
            raise OutputError([f"output: {self.output} is not a regular file; give a file name"])

    def check_fresh(self) -> None:
        """Refuse to start over an output or an interrupted plan's cells (``--resume`` uses them)."""
        if self.output.exists():
            raise OutputError(
                [f"output: {self.output} exists; add --resume to reuse its cells and add what is missing, "
                 "or give another -o"]
            )  # fmt: skip
        if self.folder.exists():
            raise OutputError(
                [f"output: {self.folder} holds the cells of an interrupted plan; add --resume to continue it, "
                 "or remove the folder"]
            )  # fmt: skip

    def load(self) -> dict[str, dict]:
        """Cells already done: from the table (if written) and from the folder, by key."""
        done: dict[str, dict] = {}
        if self.output.exists():
            table = read_table(self.output)
            if "cell" not in table.columns:
                raise OutputError([f"output: {self.output} is not a plan's table (no cell column); give another -o"])
            figures = [c for c in table.columns if c == "p_hit" or c.startswith(FIGURES)]
            for record in table[["cell", *figures]].to_dict("records"):
                key = str(record.pop("cell"))
                done[key] = {k: _plain(v) for k, v in record.items()}
        if self.folder.is_dir():
            for path in self.folder.glob("*.json"):
                if path.stat().st_size <= MAX_CELL_BYTES:
                    with contextlib.suppress(ValueError, OSError):  # a file cut short by a crash: recompute it
                        done[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        return done

    def put(self, key: str, row: dict) -> None:
        """Keep a finished cell (written whole, then renamed, so a crash leaves no half file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f"{key}.json.part"
        part.write_text(json.dumps(row), encoding="utf-8")
        os.replace(part, self.folder / f"{key}.json")

    def finish(self, table: pd.DataFrame) -> None:
        """Write the table (whole, then renamed) and drop the cell folder."""
        part = self.output.with_name(self.output.name + ".part")
        if output_format(self.output) == "parquet":
            table.to_parquet(part, index=False)
        else:
            table.to_csv(part, index=False)
        os.replace(part, self.output)
        shutil.rmtree(self.folder, ignore_errors=True)


FIGURES = ("p_hit[", "revenue_p", "won_deals_p")
"""Column names (or their starts) of a cell's figures, as :func:`cells_figures` names them."""


def _plain(value):
    """A table's value as :func:`cells_figures` gives it: a Python float, None for a missing one."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    return float(value) if isinstance(value, float | np.floating) else value


def read_table(path: str | Path) -> pd.DataFrame:
    """A plan's table from its parquet or CSV file (CSV floats read back exactly)."""
    if output_format(path) == "parquet":
        return pd.read_parquet(path)
    # pandas 3 reads floats back exactly by default (and deprecates the option); pandas 2 needs asking.
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, **exact)


# --- running the cells -------------------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None) -> Iterator:
    """A ``dask.distributed`` client: to ``scheduler`` (``tcp://HOST:8786``), else a local cluster.

    The local cluster has ``workers`` processes of one thread each, listens on 127.0.0.1
    only and has no dashboard, so nothing reaches outside the machine.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as problem:
            raise SchedulerError([f"scheduler: cannot reach {scheduler} ({shorten(str(problem), 200)})"]) from None
        with client:
            # Workers must run the same dask, distributed and Python as this process (the project, the
            # same commit: see the README); dask raises on a mismatch it knows is fatal.
            client.get_versions(check=True)
            yield client
        return
    with _deaf_to_ctrl_c():
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler's HTTP routes (health, metrics) still start: on a free local port, not on 8787,
            # which another cluster on the machine may hold.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """Worker processes started meanwhile ignore Ctrl-C (they inherit an ignored SIGINT).

    Ctrl-C reaches every process of the terminal's group: the workers would each die with
    a traceback. Ignoring it, they wait for this process, which stops them on its way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_cells(
    cells: list[Cell],
    runs: int,
    seed: int,
    finished: Callable[[str, dict], None],
    client=None,
) -> None:
    """Simulate cells (one per key) and call ``finished(key, figures)`` as each is done.

    Cells that differ only in their quotas are one task: one simulation judged against
    each quota (:func:`simulations`).

    Parameters
    ----------
    cells : list of Cell
        Distinct keys.
    runs, seed : int
        Every cell's.
    finished : callable
        Called in this process, in the order cells finish.
    client : distributed.Client, optional
        Where the tasks run, each with :data:`RETRIES` retries; without one, here, one
        after the other.
    """
    groups = simulations(cells)
    if client is None:
        for group in groups:
            for cell, row in zip(group, cells_figures([c.scenario for c in group], runs, seed), strict=True):
                finished(cell.key, row)
        return
    from distributed import as_completed

    futures = {}
    for group in groups:
        name = hashlib.sha256(",".join(c.key for c in group).encode()).hexdigest()[:32]
        scenarios = [c.scenario for c in group]
        future = client.submit(cells_figures, scenarios, runs, seed, key=f"funnel-sim-cells-{name}", retries=RETRIES)
        futures[future] = group
    for future in as_completed(list(futures)):
        for cell, row in zip(futures[future], future.result(), strict=True):
            finished(cell.key, row)
        future.release()


def plan_table(plan: Plan, figures: dict[str, dict]) -> pd.DataFrame:
    """The plan's tidy table: one row per cell, in plan order.

    Columns: ``plan`` (named plans), each varied path with the cell's value, the
    figures of :func:`cells_figures` (``p_hit``, ``p_hit[SEGMENT]``, ``revenue_p10``,
    ``revenue_p50``, ``revenue_p90``, ``won_deals_p50``, ``revenue_p50[SEGMENT]``),
    ``reps``, ``new_reps``, ``cost`` (of reps for the period,
    :func:`~sim.model.segments.cost_of_reps`), ``value_ratio`` (revenue P50 / cost), ``runs``,
    ``seed`` and ``cell`` (the key the cell is kept under).
    """
    rows = []
    for cell in plan.cells:
        row = {"plan": cell.name} if plan.named else {}
        row.update(cell.values)
        row.update(figures[cell.key])
        cost = cost_of_reps(cell.scenario)
        row.update(
            {
                "reps": rep_count(cell.scenario),
                "new_reps": new_reps(cell.scenario),
                "cost": cost,
                "value_ratio": None if not cost else row["revenue_p50"] / cost,
                "runs": plan.runs,
                "seed": plan.seed,
                "cell": cell.key,
            }
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in plan.columns:  # a column of mixed kinds (numbers and text, tables) is written as text
        kinds = {type(v) for v in table[column] if v is not None}
        if kinds - {int, float} and len(kinds) > 1 or kinds & {dict, list}:
            table[column] = [None if v is None else json.dumps(v) for v in table[column]]
    return table


def execute(
    plan: Plan,
    output: str | Path | None = None,
    resume: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    client=None,
    progress: Done | None = None,
) -> tuple[pd.DataFrame, int]:
    """Simulate a plan and return its table (:func:`plan_table`) and the number of cells simulated now.

    Parameters
    ----------
    plan : Plan
    output : str or Path, optional
        The table's file (``.parquet`` or ``.csv``); each cell is kept beside it as it
        finishes (:class:`CellStore`). An existing output or kept cells are refused
        unless ``resume``.
    resume : bool
        Reuse the cells of an earlier, possibly interrupted, run of the plan to the same
        output: only cells with other keys (missing, or changed) are simulated.
    workers : int
        Worker processes of the local Dask cluster (no more than the cells to simulate); 0
        simulates in this process, without Dask.
    scheduler : str, optional
        An existing Dask scheduler (``tcp://HOST:8786``) instead of a local cluster.
    client : distributed.Client, optional
        A client to use as it is (tests pass one, to reach its workers).
    progress : callable, optional
        Called as ``progress(done, total)`` with cells, also once before the first is simulated.

    Raises
    ------
    OutputError
        The output exists (or kept cells do) without ``resume``, or its suffix is unknown.
    """
    store = None if output is None else CellStore(output)
    if store is not None and not resume:
        store.check_fresh()
    if resume and store is None:
        raise OutputError(["resume: needs -o, the output whose cells to reuse"])
    done = store.load() if store is not None and resume else {}
    known = {key: done[key] for key in {c.key for c in plan.cells} if key in done}
    todo = list({c.key: c for c in plan.cells if c.key not in known}.values())
    total = len(known) + len(todo)
    if progress is not None:
        progress(len(known), total)

    def finished(key: str, row: dict) -> None:
        known[key] = row
        if store is not None:
            store.put(key, row)
        if progress is not None:
            progress(len(known), total)

    if todo:
        if client is not None or (workers == 0 and scheduler is None):
            run_cells(todo, plan.runs, plan.seed, finished, client)
        else:
            with dask_client(min(workers, len(todo)), scheduler) as own:  # no idle workers to start
                run_cells(todo, plan.runs, plan.seed, finished, own)
    table = plan_table(plan, known)
    if store is not None:
        store.finish(table)
    return table, len(todo)


def cheapest(table: pd.DataFrame, target: float, most: int = 5) -> tuple[bool, pd.DataFrame]:
    """The cheapest cells whose P(hit) reaches ``target``, or, when none does, those with the best P(hit).

    Cheapest by ``cost`` (then fewer reps, then higher P(hit)); without costs by reps.
    A pure function of the table, so any target reads the same simulation.

    Returns
    -------
    reached : bool
        Whether any cell reaches the target.
    rows : DataFrame
        At most ``most`` rows, best first.
    """
    reaching = table[table["p_hit"] >= target]
    if reaching.empty:
        best = table.sort_values(["p_hit", "cost", "reps"], ascending=[False, True, True], na_position="last")
        return False, best.head(most)
    best = reaching.sort_values(["cost", "reps", "p_hit"], ascending=[True, True, False], na_position="last")
    return True, best.head(most)

"""An organisation-wide plan on Dask: seconds per cell, cells per second on 1 and 2 local workers, efficiency.

The full-size plan of issue 15 is 40 segments of 25 reps over 12 months, a few hundred
cells (hiring plans), 2,000 runs each. Scaled to run in a few minutes here: ``--segments``
segments (0: one team of 25 reps, no segments), ``--runs`` runs and a grid of
``--cells`` cells (new reps x the month they start x inflow). A cell's cost grows in proportion to its
funnels (segments x reps) and its runs, so the figure printed last is the measured CPU
seconds per cell (on one worker) scaled to the full size, the one the README's cluster
estimate uses (CPU time, because on a shared machine the wall clock also counts other
processes' turns).

Each worker count gets a fresh local cluster whose workers have imported and compiled
everything before the clock starts (a one-off cost, not the plan's); both tables must be
identical.

    .venv/bin/python benchmarks/bench_plan.py [--segments 4] [--runs 250] [--cells 12]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pandas as pd  # noqa: E402

from sim.model.scenario import scenario_from_dict  # noqa: E402
from sim.plan.execute import cells_figures, dask_client, execute  # noqa: E402
from sim.plan.spec import plan_from_dict  # noqa: E402

FULL = {"segments": 40, "reps": 25, "cells": 300, "runs": 2_000}
"""The full-size plan the README's cluster estimate is for."""
REPS = 25

FUNNEL = {
    "inflow": {"per_week": 4},
    "deal_value": {"dist": "lognormal", "mean": 25_000, "sd": 15_000},
    "stages": [
        {"name": "First appointment", "conversion": 0.65, "duration": {"dist": "lognormal", "mean": 14, "sd": 8}},
        {"name": "Proposal", "conversion": 0.28, "duration": {"dist": "lognormal", "mean": 14, "sd": 8}},
    ],
}
TEAM = {"reps": REPS, "rep_quota": 700_000, "rate_concentration": 20, "ramp_months": 4, "cost_per_year": 120_000}


def organisation(segments: int) -> dict:
    """A 12-month scenario: one team of 25 reps, or ``segments`` segments each with its own team of 25."""
    document = {"name": "Organisation plan", "horizon_weeks": 52, "quota": {"revenue": 14_000_000}, **FUNNEL}
    document["team"] = copy.deepcopy(TEAM)
    if segments:
        document["quota"] = {"revenue": 14_000_000 * segments}
        document["segments"] = [{"name": f"territory {i + 1}", "team": copy.deepcopy(TEAM)} for i in range(segments)]
    return document


def grid(segments: int, cells: int) -> dict:
    """About ``cells`` hiring plans (in the first segment when there are segments): new reps, the month they
    start, inflow. No quota is varied: cells differing only in quota share one simulation, which would
    flatter the cost of a cell."""
    prefix = "segments[0]." if segments else ""
    new = [2, 4, 6, 8, 10, 12]
    months = [0, 3, 6]
    inflows = [3.5, 4, 4.5, 5, 5.5, 6]
    shape = {1: (1, 1, 1), 6: (2, 3, 1), 12: (2, 3, 2), 18: (3, 3, 2), 36: (6, 3, 2), 108: (6, 3, 6)}
    n, m, i = shape[max(k for k in shape if k <= cells)]
    return {
        f"{prefix}team.new_reps": new[:n],
        f"{prefix}team.hire_month": months[:m],
        f"{prefix}inflow.per_week": inflows[:i],
    }


def timed(plan, workers: int) -> tuple[float, float, pd.DataFrame]:
    """Wall seconds and workers' CPU seconds the plan takes on a warm local cluster, and its table.

    On a shared machine the wall clock also counts other processes' turns; the workers' CPU
    time does not, so it is what a cell costs (and what grows if two workers slow each other).
    """
    with dask_client(workers=workers) as client:
        warm = plan.cells[0].scenario
        client.run(cells_figures, [warm], 20, 0)  # every worker imports and compiles before the clock starts
        cpu = client.run(time.process_time)
        start = time.perf_counter()
        table, _ = execute(plan, client=client)
        wall = time.perf_counter() - start
        used = sum(after - cpu[worker] for worker, after in client.run(time.process_time).items())
        return wall, used, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=4, help="segments of 25 reps (0: one team, no segments)")
    parser.add_argument("--runs", type=int, default=250)
    parser.add_argument("--cells", type=int, default=12, help="about this many cells: 1, 6, 12, 18, 36 or 108")
    args = parser.parse_args()
    document = organisation(args.segments)
    scenario_from_dict(document)
    plan = plan_from_dict({"base": document, "runs": args.runs, "seed": 0, "vary": grid(args.segments, args.cells)})
    cells = len(plan.cells)
    seconds, cpu, tables = {}, {}, {}
    for workers in (1, 2):
        seconds[workers], cpu[workers], tables[workers] = timed(plan, workers)
    pd.testing.assert_frame_equal(tables[1], tables[2])
    funnels = max(1, args.segments) * REPS
    print(
        f"{plan.name}: {cells} cells, {max(1, args.segments)} x {REPS} reps, 52 weeks, {args.runs:,} runs a cell"
        + (f", {args.segments} segments" if args.segments else ", one team (no segments)")
    )
    for workers in (1, 2):
        print(
            f"  {workers} worker{'s' if workers > 1 else ' '}  {seconds[workers]:7.1f} s   "
            f"{cells / seconds[workers]:6.2f} cells/s   {seconds[workers] / cells:6.2f} s a cell, "
            f"{cpu[workers] / cells:.2f} CPU s a cell"
        )
    speedup = seconds[1] / seconds[2]
    print(f"  speed-up {speedup:.2f}x, parallel efficiency {speedup / 2:.0%}; load average {os.getloadavg()[0]:.1f}")
    full_funnels = FULL["segments"] * FULL["reps"]
    full = cpu[1] / cells * (full_funnels / funnels) * (FULL["runs"] / args.runs)
    print(
        f"  a full-size cell ({FULL['segments']} x {FULL['reps']} reps, {FULL['runs']:,} runs), from the CPU time: "
        f"about {full:,.0f} core-seconds; {FULL['cells']} cells: {FULL['cells'] * full / 3600:,.1f} core-hours"
    )
    print("  tables on 1 and 2 workers: identical")


if __name__ == "__main__":
    main()

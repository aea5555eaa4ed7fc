"""Does ``--jobs 2`` pay? One large simulation on one and on two worker processes, measured in one run.

The reference quarter, 200,000 runs (the runner gives the work to workers only from
about 20 million new deals), timed alternately on 1 and 2 jobs, median of 3, with the
same answer checked on both. On a machine whose two cores are one core's two
hyperthreads, expect about 1.3x at best.

    .venv/bin/python benchmarks/bench_jobs.py [--runs N] [--repeat K]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sim import load_scenario, simulate  # noqa: E402
from sim.runner import start_workers  # noqa: E402

REFERENCE = HERE.parent / "scenarios" / "reference_quarter.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scenario = load_scenario(REFERENCE)
    start_workers(2)  # a one-off cost, not the simulation's
    simulate(scenario, runs=2_000)  # compiled kernels and tables ready
    times: dict[int, list[float]] = {1: [], 2: []}
    answers = {}
    for _ in range(args.repeat):
        for jobs in (1, 2):
            start = time.perf_counter()
            result = simulate(scenario, runs=args.runs, seed=0, jobs=jobs)
            times[jobs].append(time.perf_counter() - start)
            answers[jobs] = result.p_hit
    assert answers[1] == answers[2], answers
    one, two = (statistics.median(times[j]) for j in (1, 2))
    print(f"{scenario.name}: {args.runs:,} runs, median of {args.repeat}")
    print(f"  --jobs 1   {one:6.2f} s   ({args.runs / one:,.0f} runs/s)")
    print(f"  --jobs 2   {two:6.2f} s   ({args.runs / two:,.0f} runs/s)")
    print(f"  speed-up   {one / two:6.2f}x  (>= 1: two workers are no slower); P(hit) {answers[1]:.4f} on both")


if __name__ == "__main__":
    main()

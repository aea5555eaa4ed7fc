"""How long a rolling-origin backtest takes: 26 origins of a 10,000-row export, split into calibration and simulation.

The export is synthetic (:class:`tests.crm_synth.World`, about 48 new deals a week over
four years, exported on 2024-12-31); the origins are every 14 days from 2023-10-02, each
forecasting 92 days. The backtest's ``progress`` callback marks the end of each
calibration and each simulation, so the split needs no change to the library. With
``--profile`` one origin's calibration is profiled (cProfile, top functions by
cumulative time).

    .venv/bin/python benchmarks/bench_backtest.py [--runs N] [--origins K] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sim.crm.backtest import backtest, rolling_origins  # noqa: E402
from sim.crm.calibrate import calibrate  # noqa: E402
from sim.crm.reader import read_deals  # noqa: E402
from sim.runner import simulate  # noqa: E402
from tests.crm_synth import World, export_csv  # noqa: E402

HORIZON_DAYS = 92


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2_000, help="replications per origin (the CLI's default)")
    parser.add_argument("--origins", type=int, default=26)
    parser.add_argument("--profile", action="store_true", help="profile one calibration")
    args = parser.parse_args()

    text = export_csv(World(per_week=48, start="2021-01-01").deals("2024-12-31", seed=1), "2024-12-31")
    start = time.perf_counter()
    crm = read_deals(text.encode())
    read_seconds = time.perf_counter() - start
    origins = rolling_origins("2023-10-02", "2024-09-30", 14)[: args.origins]
    print(f"Export: {len(crm.deals):,} deals, read in {read_seconds:.2f} s.")
    print(
        f"Origins: {len(origins)}, {origins[0]:%Y-%m-%d} to {origins[-1]:%Y-%m-%d}, {HORIZON_DAYS}-day horizon, "
        f"{args.runs:,} runs each."
    )

    # Compiled kernels and tables ready: a one-off cost, not the backtest's.
    simulate(calibrate(crm, origins[0], horizon_days=HORIZON_DAYS).scenario, runs=200)

    marks = []
    start = time.perf_counter()
    answer = backtest(
        crm, origins, HORIZON_DAYS, runs=args.runs, progress=lambda done, total: marks.append(time.perf_counter())
    )
    total = time.perf_counter() - start
    k = len(origins)
    ends = [start, *marks]
    steps = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    calibration, simulation = steps[:k], steps[k:]
    print(f"Total: {total:.1f} s for {k} origins ({total / k:.2f} s an origin).")
    for label, times in (("calibration", calibration), ("simulation and scores", simulation)):
        print(
            f"  {label:<22} {sum(times):6.1f} s ({sum(times) / total:.0%}); per origin median "
            f"{statistics.median(times):.2f} s, max {max(times):.2f} s"
        )
    print(
        f"Coverage P10-P90 {answer['coverage']:.0%}, MAPE of P50 {answer['mape_p50']:.1%}, "
        f"run-rate {answer['baselines']['run_rate']['mape_p50']:.1%} (a check that it ran, not a result)."
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(calibrate, crm, origins[k // 2], horizon_days=HORIZON_DAYS)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()

"""How honest is the calibrated forecast on each synthetic world? A table of scores, with their SEs and times.

For every world of ``tests/crm_worlds.py`` (or those named), a rolling-origin backtest
(20 origins two weeks apart, 91 days ahead) on several world seeds, pooled by
``tests/crm_honesty.py``: P10-P90 coverage (nominal 0.80), MAPE of P50, the trailing
run-rate's MAPE and the skill ``1 - MAPE / run-rate MAPE``, each +- its standard error
(origins correlated within a seed, seeds independent), and the wall time.

    .venv/bin/python benchmarks/bench_forecasts.py [WORLD ...] [--seeds 1 2 ...] [--runs N]
        [--uncertainty sampling|history] [--half-life-weeks WEEKS|none|auto]
        [--durations auto|parametric|nonparametric]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.crm_honesty import RUNS, honesty  # noqa: E402
from tests.crm_worlds import WORLDS  # noqa: E402

BENCH_SEEDS = tuple(range(1, 9))
"""Eight world seeds: the coverage's SE about 0.05 or less on these worlds."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="*", default=list(WORLDS), help=f"some of {', '.join(WORLDS)} (all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(BENCH_SEEDS))
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--uncertainty", default=None, help="calibrate's uncertainty (default: its own)")
    parser.add_argument(
        "--half-life-weeks",
        default=None,
        help="calibrate's recency half-life: weeks, none or auto (default: calibrate's)",
    )
    parser.add_argument("--durations", default=None, help="calibrate's durations (default: its own)")
    args = parser.parse_args()
    unknown = [name for name in args.worlds if name not in WORLDS]
    if unknown:
        parser.error(f"worlds: unknown {', '.join(unknown)} (known: {', '.join(WORLDS)})")
    options = {} if args.uncertainty is None else {"uncertainty": args.uncertainty}
    if args.half_life_weeks is not None:
        word = args.half_life_weeks
        options["half_life_weeks"] = {"auto": "auto", "none": None}[word] if word in ("auto", "none") else float(word)
    if args.durations is not None:
        options["durations"] = args.durations
    method = (
        (args.uncertainty or "calibrate's default")
        + (f", half-life {args.half_life_weeks}" if args.half_life_weeks else "")
        + (f", durations {args.durations}" if args.durations else "")
    )
    print(f"uncertainty: {method}; {len(args.seeds)} world seeds x 20 origins, {args.runs:,} runs each")
    print(f"{'world':<14} {'coverage':>13} {'MAPE P50':>13} {'run-rate':>13} {'skill':>14} {'time':>7}")
    for name in args.worlds:
        r = honesty(WORLDS[name], tuple(args.seeds), runs=args.runs, **options)
        cells = [f"{r[k]:.3f} ±{r[k + '_se']:.3f}" for k in ("coverage", "mape_p50", "mape_run_rate")]
        skill = f"{r['skill']:+.3f} ±{r['skill_se']:.3f}"
        print(f"{name:<14} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {skill:>14} {r['seconds']:6.0f}s", flush=True)


if __name__ == "__main__":
    main()

"""Speed of the engines on the reference scenario, measured in one run.

Prints replications per second for the plain SimPy baseline (benchmarks/plain_simpy.py),
the SimPy engine on one and two workers and the vectorised engine, the ratios the
speed targets are stated in, the cost of solving the magic number in vectorised runs,
and the peak memory of a million vectorised replications; then, with limited reps
(capacity_quarter.toml), the SimPy engine against the vectorised queues; and last the
Sensitivity page's work (a scenario and its 8 levers, 2,000 runs, one process) simulated
together against one by one, for the queues and the biggest funnel (outbound_sdr.toml).
Timings are wall-clock on a shared machine: read the ratios, which are measured side by side.

    .venv/bin/python benchmarks/bench_engines.py            # full: about 2 minutes
    .venv/bin/python benchmarks/bench_engines.py --quick    # fewer baseline runs
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from plain_simpy import plain_simulate  # noqa: E402

from sim import load_scenario, simulate  # noqa: E402
from sim.questions.magic_number import solve_magic_number  # noqa: E402
from sim.questions.sensitivity import levers  # noqa: E402
from sim.runner import simulate_variants  # noqa: E402

REFERENCE = HERE.parent / "scenarios" / "reference_quarter.toml"
CAPACITY = HERE.parent / "scenarios" / "capacity_quarter.toml"
OUTBOUND = HERE.parent / "scenarios" / "outbound_sdr.toml"


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def million_peak_memory(runs: int) -> str:
    """Run ``runs`` vectorised replications in a fresh process; return its peak RSS line."""
    code = (
        "import resource, time; from sim import load_scenario, simulate; "
        f"s = load_scenario({str(REFERENCE)!r}); t = time.perf_counter(); "
        f"r = simulate(s, runs={runs}, seed=0); "
        "print(f'{r.runs:,} runs in {time.perf_counter() - t:.1f} s, P(hit) {r.p_hit:.4f}, '"
        "f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=HERE.parent)
    return out.stdout.strip()


def capacity_figures(runs: int) -> None:
    """Limited reps: the SimPy engine (one worker) against the vectorised queues, best of three in turns."""
    scenario = load_scenario(CAPACITY)
    simpy_runs = max(runs // 10, 100)  # the SimPy engine is far slower here: fewer runs, rates compared
    simulate(scenario, runs=256, seed=1, engine="vectorized")  # Numba's cache loaded, not timed
    best = {}
    for _ in range(3):
        for name, n, engine in (("simpy", simpy_runs, "simpy"), ("queues", runs, "vectorized")):
            seconds, result = timed(simulate, scenario, runs=n, seed=0, jobs=1, engine=engine)
            best[name] = min(best.get(name, float("inf")), seconds)
            p_hit = result.p_hit
            print(f"  ({name}: {n:,} runs in {seconds:.2f} s, P(hit) {p_hit:.3f})")
    simpy_rate, queue_rate = simpy_runs / best["simpy"], runs / best["queues"]
    print(f"\nLimited reps: {scenario.name} ({CAPACITY.name})")
    print(f"  SimPy engine, 1 worker          {simpy_rate:>12,.0f} replications/s")
    print(f"  vectorised queues, 1 worker     {queue_rate:>12,.0f} replications/s")
    print(f"  queues / SimPy engine           {queue_rate / simpy_rate:>8.0f}x")
    print(f"  2,000 runs (the app's default)  {2_000 / queue_rate:>8.2f} s")


def lever_figures(runs: int = 2_000) -> None:
    """A scenario and its levers (the Sensitivity page's work) simulated together and one by one, best of three."""
    print(f"\nA scenario and its 8 levers, {runs:,} runs, one process (best of 3)")
    for path in (CAPACITY, OUTBOUND):
        scenario = load_scenario(path)
        variants = [scenario, *(variant for _, variant in levers(scenario, 0.1))]
        simulate_variants(variants[:2], runs=256, seed=1, engine="vectorized")  # caches and tables loaded, not timed
        best = {}
        for _ in range(3):
            for name, call in (
                ("together", lambda vs=variants: simulate_variants(vs, runs=runs, seed=0, engine="vectorized")),
                ("one by one", lambda vs=variants: [simulate(v, runs=runs, seed=0, engine="vectorized") for v in vs]),
            ):
                seconds, _ = timed(call)
                best[name] = min(best.get(name, float("inf")), seconds)
        print(
            f"  {path.stem:<20} together {best['together']:.2f} s, one by one {best['one by one']:.2f} s "
            f"({best['one by one'] / best['together']:.1f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="replications per engine")
    parser.add_argument("--quick", action="store_true", help="1,500 baseline runs, no million-run check")
    parser.add_argument("--million", type=int, default=1_000_000, help="runs of the memory check")
    args = parser.parse_args()
    scenario = load_scenario(REFERENCE)
    runs = args.runs
    plain_runs = 1_500 if args.quick else runs

    simulate(scenario, runs=256, seed=1)  # import and cache warm-up, not timed
    # The machine is shared: every figure is the best of three repetitions, taken in
    # turns so that a slow spell hurts all engines alike. The baseline's runs are split
    # in three parts, so it still runs `plain_runs` replications in all.
    best = {}
    for rep in range(3):
        for name, call in (
            ("plain", lambda rep=rep: plain_simulate(scenario, plain_runs // 3, rep)),
            ("simpy1", lambda: simulate(scenario, runs=runs, seed=0, jobs=1, engine="simpy")),
            ("simpy2", lambda: simulate(scenario, runs=runs, seed=0, jobs=2, engine="simpy")),
            ("vec1", lambda: simulate(scenario, runs=runs, seed=0, jobs=1, engine="vectorized")),
            ("vec2", lambda: simulate(scenario, runs=runs, seed=0, jobs=2, engine="vectorized")),
        ):
            best[name] = min(best.get(name, float("inf")), timed(call)[0])
    t_plain, t_simpy1, t_simpy2, t_vec, t_vec2 = (best[k] for k in ("plain", "simpy1", "simpy2", "vec1", "vec2"))
    t_solve, answer = timed(solve_magic_number, scenario, 0.8, runs=runs, seed=0)

    rate = {
        "plain SimPy baseline": (plain_runs // 3) / t_plain,
        "SimPy engine, 1 worker": runs / t_simpy1,
        "SimPy engine, 2 workers": runs / t_simpy2,
        "vectorised engine, 1 worker": runs / t_vec,
        "vectorised engine, 2 workers": runs / t_vec2,
    }
    print(f"Reference scenario: {scenario.name} ({REFERENCE.name})")
    print(f"{runs:,} replications per engine ({plain_runs:,} for the baseline)\n")
    for name, value in rate.items():
        print(f"  {name:<32}{value:>12,.0f} replications/s")
    base = rate["plain SimPy baseline"]
    vec_ratio = rate["vectorised engine, 1 worker"] / base
    simpy_ratio = rate["SimPy engine, 1 worker"] / base
    scaling = rate["SimPy engine, 2 workers"] / rate["SimPy engine, 1 worker"]
    solve_cost = t_solve / t_vec
    print()
    print(
        f"  vectorised / plain (1 worker)   {vec_ratio:>8.0f}x   target >= 200x  "
        f"{'ok' if vec_ratio >= 200 else 'MISSED'}"
    )
    print(
        f"  SimPy engine / plain (1 worker) {simpy_ratio:>8.1f}x   target >= 3x    "
        f"{'ok' if simpy_ratio >= 3 else 'MISSED'}"
    )
    print(f"  SimPy engine, 2 workers / 1     {scaling:>8.2f}x   (2 cores)")
    print(
        f"  magic number solve              {solve_cost:>8.1f} vectorised runs "
        f"({answer.evaluations} evaluations, {answer.weekly_opportunities:.2f}/week)   "
        f"target <= ~20  {'ok' if solve_cost <= 20 else 'MISSED'}"
    )
    if not args.quick:
        print(f"\n  memory: {million_peak_memory(args.million)}   target < 2 GiB")
    capacity_figures(2_000 if args.quick else runs)
    lever_figures()
    print(f"\n  (this process's peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB)")


if __name__ == "__main__":
    main()

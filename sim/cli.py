"""The command line: ``funnel-sim run|solve|quota|sensitivity SCENARIO.toml ...``.

Every command prints a short readable report, or one JSON object with ``--json``.
Bad input (a missing file, an invalid scenario, an impossible option) exits with code 2
and lines that name the field and the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from sim.runner import ENGINES, MAX_RUNS, SimulationResult, simulate
from sim.scenario import Scenario, ScenarioError, load_scenario

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors use the same exit code and style as scenario errors."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}\n")


def _positive_int(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be from 1 to {limit:,}, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_common(parser: argparse.ArgumentParser, runs: int = 10_000) -> None:
    parser.add_argument("scenario", help="scenario TOML file")
    parser.add_argument("--runs", type=_positive_int(MAX_RUNS), default=runs,
                        help=f"replications (default {runs:,})")
    parser.add_argument("--seed", type=_seed, default=0, help="root random seed (default 0)")
    parser.add_argument("--jobs", type=_positive_int(256), default=1,
                        help="worker processes (default 1); results do not depend on it")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="simulation engine (default auto: vectorised when possible)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The ``funnel-sim`` argument parser with its sub-commands."""
    parser = _Parser(prog="funnel-sim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="simulate a scenario: odds of hitting quota")
    _add_common(run)
    return parser


def _progress_bar(enabled: bool, total: int):
    """A tqdm bar on the terminal's stderr (none when piped or in JSON mode)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="run", disable=None, leave=False, file=sys.stderr)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _format_run(summary: dict) -> str:
    quota = summary["quota"]
    unit_fmt = _money if quota["unit"] == "revenue" else (lambda x: f"{x:,.1f}")
    low, high = summary["p_hit_ci"]
    lines = [
        f"{summary['scenario']}  ({summary['runs']:,} runs, seed {summary['seed']}, "
        f"{summary['engine']} engine)",
        f"Quota: {unit_fmt(quota['target'])} {'' if quota['unit'] == 'revenue' else 'deals'}".rstrip(),
        f"P(hit quota): {summary['p_hit']:.1%}  (95% CI {low:.1%} to {high:.1%})",
        "",
        f"{'':<10}{'mean':>14}{'sd':>14}{'P10':>14}{'P50':>14}{'P90':>14}",
    ]
    for key, fmt in (("revenue", _money), ("deals", lambda x: f"{x:,.1f}")):
        s = summary[key]
        lines.append(f"{key:<10}" + "".join(f"{fmt(s[k]):>14}" for k in ("mean", "sd", "p10", "p50", "p90")))
    lines += ["", f"{'stage':<24}{'entered':>12}{'converted':>12}   (mean per run)"]
    for stage in summary["stages"]:
        lines.append(f"{stage['name']:<24}{stage['entered']:>12,.1f}{stage['converted']:>12,.1f}")
    avg = summary["average_math"]
    lines += [
        "",
        f"Average math (every quantity at its mean): {avg['won_deals']:,.1f} deals, "
        f"revenue {_money(avg['revenue'])}: {'hits' if avg['hit'] else 'misses'} the quota.",
    ]
    return "\n".join(lines)


def _run(args, scenario: Scenario) -> tuple[dict, str]:
    update, close = _progress_bar(not args.json, args.runs)
    try:
        result: SimulationResult = simulate(
            scenario, runs=args.runs, seed=args.seed, jobs=args.jobs, engine=args.engine,
            progress=update,
        )
    finally:
        close()
    summary = result.summary()
    return summary, _format_run(summary)


COMMANDS = {"run": _run}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``funnel-sim`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
        payload, text = COMMANDS[args.command](args, scenario)
    except (ScenarioError, ValueError) as error:
        problems = error.problems if isinstance(error, ScenarioError) else str(error).splitlines()
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(payload))
    else:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

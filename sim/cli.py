"""The command line: ``funnel-sim run|solve|quota|sensitivity SCENARIO.toml ...``, ``calibrate|backtest DEALS.csv``.

Every command prints a short readable report, or one JSON object with ``--json``.
Bad input (a missing file, an invalid scenario, an impossible option) exits with code 2
and lines that name the field and the problem, never a traceback. A question with no
numeric answer (an unreachable target) says why and exits with code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sim.crm import DEFAULT_HALF_LIFE_WEEKS
from sim.errors import InputError, file_kind, shorten
from sim.model.average_math import deterministic_weekly_opportunities
from sim.model.scenario import Scenario, load_scenario
from sim.questions.magic_number import Unreachable, solve_magic_number
from sim.questions.quota import realistic_quota
from sim.questions.sensitivity import sensitivity
from sim.runner import ENGINES, MAX_RUNS, SimulationResult, simulate, simulate_team

if TYPE_CHECKING:  # the data commands import sim.crm only when they run
    from sim.crm.report import CalibrationReport, FitSummary, RowCounts

EXIT_BAD_INPUT = 2
EXIT_NO_ANSWER = 1
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C: 128 + SIGINT, as shells report a command stopped by it."""
EVERY_DAYS = 14
"""Days between backtest origins from --from to --to when --every is not given."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors use the same exit code and style as scenario errors."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}\n")


def _number(kind: type, accept: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """An argparse type: parse ``kind`` (int or float) and check it, naming what is wanted."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    return parse


def _count(limit: int) -> Callable[[str], int]:
    return _number(int, lambda v: 1 <= v <= limit, f"from 1 to {limit:,}")


_seed = _number(int, lambda v: v >= 0, ">= 0")
_probability = _number(float, lambda v: 0.0 < v < 1.0, "strictly between 0 and 1")


def _add_common(parser: argparse.ArgumentParser, runs: int = 10_000) -> None:
    parser.add_argument("scenario", help="scenario TOML file")
    parser.add_argument("--runs", type=_count(MAX_RUNS), default=runs, help=f"replications (default {runs:,})")
    parser.add_argument("--seed", type=_seed, default=0, help="root random seed (default 0)")
    parser.add_argument(
        "--jobs", type=_count(256), default=1, help="worker processes (default 1); results do not depend on it"
    )
    parser.add_argument(
        "--engine", choices=ENGINES, default="auto", help="simulation engine (default auto: vectorised when possible)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The ``funnel-sim`` argument parser with its sub-commands."""
    parser = _Parser(prog="funnel-sim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="simulate a scenario: odds of hitting quota")
    _add_common(run)
    solve = commands.add_parser("solve", help="the magic number: weekly new opportunities needed")
    _add_common(solve)
    solve.add_argument(
        "--target", type=_probability, default=0.8, help="wanted P(hit quota), between 0 and 1 (default 0.8)"
    )
    quota = commands.add_parser("quota", help="a realistic quota: hit with a chosen probability")
    _add_common(quota)
    quota.add_argument(
        "--confidence", type=_probability, default=0.7, help="wanted P(hit quota), between 0 and 1 (default 0.7)"
    )
    sens = commands.add_parser("sensitivity", help="which lever matters: the tornado chart's data")
    _add_common(sens)
    sens.add_argument(
        "--step", type=_probability, default=0.1, help="relative improvement of each lever (default 0.1 = 10%%)"
    )
    _add_data_commands(commands)
    return parser


_positive = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
_days = _number(float, lambda v: 0 < v <= 3660, "a number of days from 1 to 3660")


def _add_export(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by calibrate and backtest: the export, its columns, the window."""
    parser.add_argument("deals", help="CRM export of opportunities (CSV, one row per deal)")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="the file's column for a role (id, created, closed, outcome, amount, owner) when not recognised",
    )
    parser.add_argument("--window-weeks", type=_positive, default=13, help="trailing weeks for the inflow (default 13)")
    parser.add_argument(
        "--history",
        metavar="STAGES.csv",
        help="stage history (CSV: deal id, stage, date entered) for a funnel of several stages; "
        "without it the funnel is one stage from creation to close",
    )
    parser.add_argument(
        "--history-column",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="the history file's column for a role (id, stage, entered) when not recognised",
    )
    parser.add_argument(
        "--uncertainty",
        choices=("history", "sampling"),
        default="history",
        help="history (default): rates and inflow vary between periods as they did in the file; "
        "sampling: only the fits' sampling error (too narrow where periods differ)",
    )
    parser.add_argument(
        "--half-life-weeks",
        type=_half_life,
        default=DEFAULT_HALF_LIFE_WEEKS,
        metavar="WEEKS|none|auto",
        help="recent history counts more: a deal this many weeks old counts half "
        f"(default {DEFAULT_HALF_LIFE_WEEKS:g}); none: every deal the same; auto: chosen at each date by "
        "backtesting the history before it",
    )
    parser.add_argument(
        "--durations",
        choices=("auto", "parametric", "nonparametric"),
        default="auto",
        help="how long deals take: auto (default) fits a family unless none fits, then uses the data themselves",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _half_life(text: str) -> float | str | None:
    """``--half-life-weeks``: a number of weeks in (0, 520], ``none`` or ``auto``."""
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    return _number(float, lambda v: 0 < v <= 520, "a number of weeks above 0 and at most 520, none or auto")(text)


def _calibration_options(args) -> dict:
    """The calibration options both data commands pass on."""
    return {"uncertainty": args.uncertainty, "half_life_weeks": args.half_life_weeks, "durations": args.durations}


def _add_data_commands(commands) -> None:
    """The ``calibrate`` and ``backtest`` sub-commands, which read a CRM export."""
    cal = commands.add_parser("calibrate", help="a scenario from a CRM export, as known on a date")
    _add_export(cal)
    cal.add_argument("--as-of", required=True, help="the date whose knowledge to use (YYYY-MM-DD)")
    cal.add_argument("-o", "--output", required=True, help="scenario TOML file to write")
    cal.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    cal.add_argument("--horizon-days", type=_days, default=91, help="the scenario's horizon (default 91)")
    quota = cal.add_mutually_exclusive_group()
    quota.add_argument("--quota-revenue", type=_positive, help="quota in revenue")
    quota.add_argument("--quota-deals", type=_count(10**9), help="quota in won deals")
    cal.epilog = (
        "Without --quota-revenue or --quota-deals, the quota is the revenue won in the trailing "
        "window, scaled to the horizon (the recent pace)."
    )
    back = commands.add_parser("backtest", help="calibrate at past dates, forecast, and compare with what happened")
    _add_export(back)
    back.add_argument(
        "--as-of", action="append", default=[], help="a date to forecast from (YYYY-MM-DD); repeat for several"
    )
    back.add_argument("--from", dest="start", metavar="DATE", help="the first of origins every --every days")
    back.add_argument("--to", dest="stop", metavar="DATE", help="the last date such an origin may fall on")
    back.add_argument(
        "--every", metavar="DAYS", help=f"days between origins from --from to --to (default {EVERY_DAYS})"
    )
    back.add_argument("--horizon-days", type=_days, required=True, help="days forecast after each date")
    back.add_argument("--runs", type=_count(MAX_RUNS), default=2_000, help="replications per date (default 2,000)")
    back.add_argument("--seed", type=_seed, default=0, help="root random seed (default 0)")
    back.add_argument(
        "--jobs", type=_count(256), default=1, help="worker processes (default 1); results do not depend on it"
    )
    back.add_argument(
        "--engine", choices=ENGINES, default="auto", help="simulation engine (default auto: vectorised when possible)"
    )
    back.epilog = (
        "Origins are the --as-of dates and those from --from to --to, sorted, each once. A bar shows progress "
        "when stderr is a terminal."
    )


def _read_export(args):
    from sim.crm.reader import parse_column_options, read_deals

    return read_deals(args.deals, parse_column_options(args.column))


def _read_history(args, crm):
    """The ``--history`` file read against the deals, or None without one."""
    from sim.crm.reader import parse_column_options, read_stage_history

    if args.history is None:
        return None
    return read_stage_history(args.history, parse_column_options(args.history_column), deals=crm)


def _format_rows(what: str, rows: RowCounts) -> list[str]:
    """A rows-read line, then one line per reason rows were skipped, with their line numbers."""
    reasons = rows.reasons
    lines = [
        f"{what}: {rows.read:,} read, {rows.rows_used:,} used, {rows.skipped or 0:,} skipped"
        + (" (by line of the file; the header is line 1):" if reasons else ".")
    ]
    for reason, entry in reasons.items():
        count, shown = entry.count, entry.lines
        more = f" and {count - len(shown):,} more" if count > len(shown) else ""
        plural = "s" if count > 1 else ""
        lines.append(f"  {reason}: {count:,} row{plural} (line{plural} {', '.join(map(str, shown))}{more})")
    return lines


def _format_fit(label: str, fit: FitSummary | None) -> str:
    if fit is None:
        return f"  {label:<15}none fitted"
    aic = "" if fit.aic is None else f", AIC {fit.aic:,.1f}"
    return (
        f"  {label:<15}{fit.family}: mean {fit.mean:,.1f}, sd {fit.sd:,.1f}{aic}, KS {fit.ks_distance:.3f}"
        f" ({fit.n_complete} closed, {fit.n_censored} open as censored)"
    )


def _format_one_stage(r: CalibrationReport) -> list[str]:
    return [
        f"Win rate: {r.rate.mean:.1%} (Beta concentration {r.rate.concentration:,.0f}; {r.rate.spread_note}).",
        _format_fit("won in", r.won_duration),
        _format_fit("lost in", r.lost_duration),
    ]


def _format_stages(r: CalibrationReport) -> list[str]:
    h = r.history
    lines = [
        *_format_rows("Stage history rows", h.rows),
        f"Deals with a stage history: {h.deals_with_history:,}; without: {h.deals_without_history:,} (taken "
        "to enter the first stage on creation).",
        f"Stages in the order deals enter them ({len(r.stages)}):",
    ]
    for stage in r.stages:
        c = stage.counts
        skipped = f", {c.skipped:,} went past it" if c.skipped else ""
        lines += [
            f"{stage.name}: {c.entered:,} entered, {c.converted:,} moved on, {c.lost:,} lost, "
            f"{c.open:,} open{skipped}; conversion {stage.rate.mean:.1%} "
            f"(Beta concentration {stage.rate.concentration:,.0f}; {stage.rate.spread_note}).",
            _format_fit("moved on in", stage.duration),
            _format_fit("lost in", stage.lost_duration),
        ]
    return lines


FLAGS = {
    "as_of": "--as-of",
    "horizon_days": "--horizon-days",
    "window_weeks": "--window-weeks",
    "quota_revenue": "--quota-revenue",
    "quota_deals": "--quota-deals",
    "history": "--history",
    "from": "--from",
    "to": "--to",
    "every_days": "--every",
    "uncertainty": "--uncertainty",
    "half_life_weeks": "--half-life-weeks",
    "durations": "--durations",
}
"""The data commands' flag for each field that calibration and backtest problems name."""
_FIELD = re.compile(r"\b(" + "|".join(name for name in FLAGS if "_" in name) + r")\b")


def _as_flags(problem: str) -> str:
    """A problem line in the command line's words: ``horizon_days: ...`` becomes ``--horizon-days: ...``.

    The field that starts the line is replaced by its flag, and so is any other
    field with an underscore in its name (``quota_deals``) further on.
    """
    head, sep, rest = problem.partition(":")
    first, space, detail = head.partition(" ")
    if first in FLAGS:
        head = FLAGS[first] + space + detail
    return _FIELD.sub(lambda m: FLAGS[m.group(1)], head) + sep + _FIELD.sub(lambda m: FLAGS[m.group(1)], rest)


@contextlib.contextmanager
def _in_flag_words():
    """Re-raise calibration problems (and a bad ``--as-of``) with the command line's flags for field names."""
    from sim.crm.calibrate import CalibrationError

    try:
        yield
    except CalibrationError as error:
        raise CalibrationError([_as_flags(line) for line in error.problems]) from None
    except InputError:
        raise
    except ValueError as error:  # parse_as_of
        raise ValueError("\n".join(_as_flags(line) for line in str(error).splitlines())) from None


def _check_not_input(args) -> None:
    """``-o`` never names an input file or anything but a regular file, with or without ``--force``.

    ``--force`` replaces a scenario written before; a device, a FIFO or the export
    being read is never one (a directory is refused by ``check_output``).
    """
    output = args.output
    try:
        mode = os.stat(output).st_mode
    except OSError:
        return  # nothing there yet (or a dangling link, which os.replace replaces, not follows)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ValueError(f"-o: {output} is {file_kind(mode)}, not a regular file; give a file path for the scenario")
    for flag, given in (("the CRM export", args.deals), ("--history", args.history)):
        with contextlib.suppress(OSError):
            if given is not None and os.path.samefile(output, given):
                raise ValueError(
                    f"-o: {output} is an input ({flag}); the scenario is never written over an input, "
                    "even with --force: choose another file"
                )


def _calibrate(args) -> tuple[dict, str]:
    from sim.crm.calibrate import check_output, parse_as_of, write_scenario
    from sim.crm.half_life import calibrate_choosing

    with _in_flag_words():
        as_of = parse_as_of(args.as_of)
    _check_not_input(args)
    check_output(args.output, force=args.force)  # say so before the work, not after
    crm = _read_export(args)
    history = _read_history(args, crm)
    with _in_flag_words():
        calibration, choice = calibrate_choosing(
            crm,
            as_of,
            horizon_days=args.horizon_days,
            window_weeks=args.window_weeks,
            quota_revenue=args.quota_revenue,
            quota_deals=args.quota_deals,
            history=history,
            **_calibration_options(args),
        )
    path = write_scenario(calibration.scenario, args.output, force=args.force)
    r = calibration.report
    c, inflow, pipeline, quota = r.counts, r.inflow, r.open_pipeline, r.quota
    lines = [
        f"Wrote {path}: calibrated from {r.source} as of {r.as_of} ({r.horizon_days:g}-day horizon).",
        "Columns: " + ", ".join(f"{role} = {column}" for role, column in r.columns.items()) + ".",
        *_format_rows("Rows", r.rows),
        f"Deals known: {c.known:,} ({c.won:,} won, {c.lost:,} lost, {c.open:,} open); "
        f"{c.created_in_window:,} created in the last {r.window_weeks:g} weeks.",
        *(_format_stages(r) if r.history else _format_one_stage(r)),
        _format_fit("deal value", r.deal_value),
        f"Inflow: {inflow.per_week:,.2f} a week (observed {inflow.observed_per_week:,.2f})"
        + (
            f"; seasonal multipliers by month {', '.join(f'{m:.2f}' for m in r.seasonality.multipliers)}"
            if r.seasonality
            else ""
        )
        + (
            f"; swings by ±{inflow.dispersion:.0%} between periods ({inflow.dispersion_note})"
            if inflow.dispersion
            else ""
        ),
        *(
            [f"Recent history counts more: a deal {r.half_life_weeks:g} weeks old counts half."]
            if r.half_life_weeks
            else []
        ),
        *(
            [f"Deal values: the monthly average won amount moves by about ±{r.deal_value_spread:.0%}."]
            if r.deal_value_spread > 0.02
            else []
        ),
        f"Open pipeline: {pipeline.deals:,} deals, about {pipeline.expected_wins:,.1f} expected to be won eventually.",
        f"Quota: {_money(quota.target)}{' deals' if quota.unit == 'deals' else ''} ({quota.basis}).",
    ]
    if choice is not None:
        lines.append(f"Half-life chosen: {choice.note}.")
    lines += [f"warning: {w}" for w in r.warnings]
    answer = {"output": str(path), **r.as_dict()}
    if choice is not None:
        answer["half_life_choice"] = choice.as_dict()
    return answer, "\n".join(lines)


def _number_or_text(text: str) -> float | str:
    """A flag's text as a number when it is one; otherwise as given, for the library to name."""
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def _origins(args) -> list:
    """The backtest's origins: the ``--as-of`` dates and those of the ``--from``/``--to`` range, sorted, each once."""
    from sim.crm.backtest import rolling_origins
    from sim.crm.calibrate import parse_as_of

    ranged = args.start is not None or args.stop is not None
    if not args.as_of and not ranged:
        raise ValueError("give the origins: --as-of DATE (repeatable), or --from DATE --to DATE [--every DAYS]")
    if args.every is not None and not ranged:
        raise ValueError("--every: give it with --from and --to")
    with _in_flag_words():
        dates = {parse_as_of(d) for d in args.as_of}
        if ranged:
            every = EVERY_DAYS if args.every is None else _number_or_text(args.every)
            dates.update(rolling_origins(args.start, args.stop, every))
    return sorted(dates)


def _held(rows: list[dict], band: str, suffix: str) -> str:
    inside = sum(r[f"inside_{band}{suffix}"] for r in rows)
    return f"{inside} time{'s' if inside != 1 else ''} in {len(rows)}"


def _format_backtest(answer: dict, args, crm, history) -> str:
    """The backtest's report: per origin, then the methods' errors side by side, coverage in words, PIT."""
    from sim.crm.report import RowCounts

    rows = answer["dates"]
    lines = [
        f"Backtest over {args.horizon_days:g} days from each of {answer['origins']} origins "
        f"({args.runs:,} runs, seed {args.seed}).",
        *_format_rows(f"Rows of {crm.source}", RowCounts.from_dict(crm.report())),
        *(
            _format_rows("Stage history rows", RowCounts.from_dict(history.attrs["report"]))
            if history is not None
            else ()
        ),
        "",
        f"{'as of':<12}{'revenue P10':>14}{'P50':>14}{'P90':>14}{'actual':>14}  in band"
        f"{'deals P10':>11}{'P50':>7}{'P90':>7}{'actual':>8}  in band",
    ]
    for row in rows:
        rev, deals = row["forecast"]["revenue"], row["forecast"]["deals"]
        lines.append(
            f"{row['as_of']:<12}{_money(rev['p10']):>14}{_money(rev['p50']):>14}{_money(rev['p90']):>14}"
            f"{_money(row['actual']['revenue']):>14}  {'yes' if row['inside_p10_p90'] else 'no':<7}"
            f"{deals['p10']:>11,.0f}{deals['p50']:>7,.0f}{deals['p90']:>7,.0f}{row['actual']['deals']:>8,}"
            f"  {'yes' if row['inside_p10_p90_deals'] else 'no'}"
        )
    lines += [
        "",
        f"{'as of':<12}{'revenue':>14}{'sim. P50':>14}{'run-rate':>14}{'pipeline':>14}{'PIT':>7}"
        f"{'deals':>8}{'P50':>7}{'run-rate':>10}{'pipeline':>10}{'PIT':>7}",
    ]
    for row in rows:
        base, pit, actual = row["baselines"], row["pit"], row["actual"]
        lines.append(
            f"{row['as_of']:<12}{_money(actual['revenue']):>14}{_money(row['forecast']['revenue']['p50']):>14}"
            f"{_money(base['run_rate']['revenue']):>14}{_money(base['weighted_pipeline']['revenue']):>14}"
            f"{pit['revenue']:>7.2f}{actual['deals']:>8,}{row['forecast']['deals']['p50']:>7,.0f}"
            f"{base['run_rate']['deals']:>10,.1f}{base['weighted_pipeline']['deals']:>10,.1f}{pit['deals']:>7.2f}"
        )

    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    def signed(x):
        return "n/a" if x is None else f"{x:+.2f}"

    baselines, pinball, pit, skill = answer["baselines"], answer["pinball"], answer["pit"], answer["skill"]
    lines += [
        "",
        f"Revenue: actual inside P10-P90 on {pct(answer['coverage'])} of dates (nominal 80%); "
        f"mean absolute error of P50 {pct(answer['mape_p50'])}.",
        f"Won deals: inside on {pct(answer['coverage_deals'])}; mean absolute error of P50 "
        f"{pct(answer['mape_p50_deals'])}.",
        f"The P10-P90 band held the actual revenue {_held(rows, 'p10_p90', '')} (80% is honest), the P25-P75 "
        f"band {_held(rows, 'p25_p75', '')} (50%); won deals: {_held(rows, 'p10_p90', '_deals')} and "
        f"{_held(rows, 'p25_p75', '_deals')}.",
        "",
        f"{'Mean absolute % error':<26}{'revenue':>10}{'won deals':>11}",
        f"{'  simulation P50':<26}{pct(answer['mape_p50']):>10}{pct(answer['mape_p50_deals']):>11}",
        *(
            f"{'  ' + label:<26}{pct(baselines[name]['mape_p50']):>10}{pct(baselines[name]['mape_p50_deals']):>11}"
            for name, label in (("run_rate", "run-rate"), ("weighted_pipeline", "weighted pipeline"))
        ),
        f"Skill against the run-rate (1 - the simulation's error / the run-rate's; above 0 the simulation misses "
        f"less): revenue {signed(skill['revenue'])}, won deals {signed(skill['deals'])}.",
        f"Pinball loss over P10, P50, P90: revenue {_money(pinball['revenue']['loss'])} "
        f"({pct(pinball['revenue']['scaled'])} of the mean actual), won deals {pinball['deals']['loss']:,.2f} "
        f"({pct(pinball['deals']['scaled'])}).",
        "Where the actuals fell in the forecasts (PIT; spread evenly if the forecast is honest):",
        *(
            f"  {label}: KS {pit[m]['ks_statistic']:.3f}, p = {pit[m]['p_value']:.3g}: {pit[m]['verdict']}."
            for m, label in (("revenue", "revenue"), ("deals", "won deals"))
        ),
    ]
    return "\n".join(lines)


def _backtest(args) -> tuple[dict, str]:
    from sim.crm.backtest import backtest

    dates = _origins(args)
    crm = _read_export(args)
    history = _read_history(args, crm)
    # On a terminal's stderr only: stdout (and --json) stays clean.
    update, close = _progress_bar(True, 2 * len(dates), unit="step")
    try:
        with _in_flag_words():
            answer = backtest(
                crm,
                dates,
                args.horizon_days,
                runs=args.runs,
                seed=args.seed,
                window_weeks=args.window_weeks,
                jobs=args.jobs,
                engine=args.engine,
                history=history,
                progress=update,
                **_calibration_options(args),
            )
    finally:
        close()
    return answer, _format_backtest(answer, args, crm, history)


DATA_COMMANDS = {"calibrate": _calibrate, "backtest": _backtest}


def _progress_bar(enabled: bool, total: int, unit: str = "run"):
    """A tqdm bar on stderr when it is a terminal (none when piped, or when not ``enabled``)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, disable=None, leave=False, file=sys.stderr)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _format_run(summary: dict) -> str:
    quota = summary["quota"]
    low, high = summary["p_hit_ci"]
    lines = [
        f"{summary['scenario']}  ({summary['runs']:,} runs, seed {summary['seed']}, {summary['engine']} engine)",
        f"Quota: {_money(quota['target'])}{'' if quota['unit'] == 'revenue' else ' deals'}",
        f"P(hit quota): {summary['p_hit']:.1%}  (95% CI {low:.1%} to {high:.1%})",
        "",
        f"{'':<10}{'mean':>14}{'sd':>14}{'P10':>14}{'P50':>14}{'P90':>14}",
    ]
    for key, fmt in (("revenue", _money), ("deals", lambda x: f"{x:,.1f}")):
        s = summary[key]
        lines.append(f"{key:<10}" + "".join(f"{fmt(s[k]):>14}" for k in ("mean", "sd", "p10", "p50", "p90")))
    capacity = "utilisation" in summary["stages"][0]
    extra = f"{'wait days':>12}{'utilisation':>13}" if capacity else ""
    lines += ["", f"{'stage':<24}{'entered':>12}{'converted':>12}{extra}   (mean per run)"]
    for stage in summary["stages"]:
        line = f"{stage['name']:<24}{stage['entered']:>12,.1f}{stage['converted']:>12,.1f}"
        if capacity:
            wait, busy = stage["mean_wait_days"], stage["utilisation"]
            # A stage without a rep limit has no slots to fill: a dash, not 0%.
            line += f"{'-' if wait is None else f'{wait:,.2f}':>12}{'-' if busy is None else f'{busy:.1%}':>13}"
        lines.append(line)
    avg = summary["average_math"]
    lines += [
        "",
        f"Average math (every quantity at its mean): {avg['won_deals']:,.1f} deals, "
        f"revenue {_money(avg['revenue'])}: {'hits' if avg['hit'] else 'misses'} the quota.",
    ]
    return "\n".join(lines)


def _format_team(team: dict) -> str:
    fmt = _money if team["unit"] == "revenue" else (lambda x: f"{x:,.0f} deals")
    low, high = team["p_team_hit_ci"]

    def figures(group: dict, label: str) -> list[str]:
        a, v = group["attainment"], group["value_ratio"]
        lines = [
            f"{label:<13}{group['share_at_quota']:>8.1%} at quota;  attainment mean {a['mean']:.0%}, "
            f"P10 {a['p10']:.0%}, P50 {a['p50']:.0%}, P90 {a['p90']:.0%}"
        ]
        if v is not None:
            lines.append(
                f"{'':<13}value ratio mean {v['mean']:.1f}, P10 {v['p10']:.1f}, P50 {v['p50']:.1f}, P90 {v['p90']:.1f}"
            )
        return lines

    new = f", {team['new_reps']} new ({team['ramp_months']:g}-month ramp)" if team["new_reps"] else ""
    avg = team["average_rep"]
    lines = [
        "",
        f"Team: {team['reps']} reps{new}; rep quota {fmt(team['rep_quota'])}, team quota {fmt(team['team_quota'])}.",
        f"P(team hits its quota): {team['p_team_hit']:.1%}  (95% CI {low:.1%} to {high:.1%})",
        *figures(team, "all reps"),
    ]
    for name, group in team.get("by_group", {}).items():
        lines += figures(group, name)
    made = avg["revenue"] if team["unit"] == "revenue" else avg["won_deals"]
    lines.append(
        f"The average rep on average math makes {fmt(made)}: {'at or above' if avg['hit'] else 'below'} the rep quota."
    )
    return "\n".join(lines)


def _run(args, scenario: Scenario) -> tuple[dict, str]:
    team = scenario.team is not None
    reps = scenario.team.reps if team else 1
    update, close = _progress_bar(not args.json, args.runs * reps)
    try:
        if team:  # rep by rep; the usual figures are the team total's, the team's in `team`
            run = simulate_team
        else:
            run = simulate
        result: SimulationResult = run(
            scenario,
            runs=args.runs,
            seed=args.seed,
            jobs=args.jobs,
            engine=args.engine,
            progress=update,
        )
    finally:
        close()
    summary = result.summary()
    text = _format_run(summary)
    if team:
        text += "\n" + _format_team(summary["team"])
    return summary, text


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _solve(args, scenario: Scenario) -> tuple[dict, str]:
    try:
        answer = solve_magic_number(
            scenario, args.target, runs=args.runs, seed=args.seed, jobs=args.jobs, engine=args.engine
        )
    except Unreachable as reason:
        payload = {
            "scenario": scenario.name,
            "target": args.target,
            "weekly_opportunities": None,
            "reachable": False,
            "reason": str(reason),
            # Infinite when a rate or the deal value is 0: JSON has no infinity, so null.
            "deterministic_weekly_opportunities": _finite_or_none(deterministic_weekly_opportunities(scenario)),
        }
        raise _NoAnswer(payload, f"No magic number for the {args.target:.0%} target: {reason}.") from None
    payload = {"scenario": scenario.name, "runs": args.runs, "seed": args.seed, "reachable": True, **answer.as_dict()}
    payload["deterministic_weekly_opportunities"] = _finite_or_none(answer.deterministic_weekly_opportunities)
    lines = [
        f"{scenario.name}: P(hit quota) reaches {args.target:.0%} at "
        f"{answer.weekly_opportunities:,.2f} new opportunities a week "
        f"(P(hit) there {answer.p_hit_at_solution:.1%}; {args.runs:,} runs, seed {args.seed}).",
        f"Average math says {answer.deterministic_weekly_opportunities:,.2f} a week "
        "(quota / mean deal value / product of rates, spread over the horizon, timing ignored).",
        "",
        "Weekly volume stage by stage at the magic number:",
    ]
    lines += [f"  {row['name']:<24}{row['per_week']:>10,.2f}" for row in answer.activity_per_stage]
    return payload, "\n".join(lines)


def _quota(args, scenario: Scenario) -> tuple[dict, str]:
    team = None
    if scenario.team is not None:  # the team quota from the team total, and `per_rep`
        from sim.questions.quota import realistic_rep_quota

        team = simulate_team(scenario, runs=args.runs, seed=args.seed, jobs=args.jobs, engine=args.engine)
        result = team.total
    else:
        result = simulate(scenario, runs=args.runs, seed=args.seed, jobs=args.jobs, engine=args.engine)
    answer = realistic_quota(result, args.confidence)
    payload = {"scenario": scenario.name, "runs": args.runs, "seed": args.seed, **answer}
    fmt = _money if answer["unit"] == "revenue" else (lambda x: f"{x:,.0f} deals")
    a = answer["attainment"]
    lines = [
        f"{scenario.name}: a quota of {fmt(answer['quota'])} is hit in "
        f"{answer['p_hit_at_quota']:.1%} of runs (wanted {args.confidence:.0%}).",
        f"At the current quota of {fmt(answer['current_quota'])}, P(hit) is "
        f"{answer['p_hit_at_current_quota']:.1%}; attainment mean {a['mean']:.0%}, "
        f"P10 {a['p10']:.0%}, P50 {a['p50']:.0%}, P90 {a['p90']:.0%}.",
    ]
    if team is not None:
        per_rep = payload["per_rep"] = realistic_rep_quota(team, args.confidence)
        lines.append(
            f"Per rep: {args.confidence:.0%} of reps make {fmt(per_rep['quota'])}; at the rep quota of "
            f"{fmt(per_rep['rep_quota'])}, {per_rep['share_at_rep_quota']:.1%} of reps make it."
        )
        for name, group in per_rep.get("by_group", {}).items():
            lines.append(
                f"  {name} reps: {args.confidence:.0%} make {fmt(group['quota'])}; "
                f"{group['share_at_rep_quota']:.1%} make the rep quota."
            )
    return payload, "\n".join(lines)


def _sensitivity(args, scenario: Scenario) -> tuple[dict, str]:
    answer = sensitivity(scenario, step=args.step, runs=args.runs, seed=args.seed, jobs=args.jobs, engine=args.engine)
    payload = {"scenario": scenario.name, **answer}
    lines = [
        f"{scenario.name}: each lever improved by {args.step:.0%} (base P(hit) "
        f"{answer['base']['p_hit']:.1%}; {args.runs:,} runs, common random numbers)",
        "",
        f"{'lever':<30}{'from':>12}{'to':>12}{'P(hit) change':>16}{'revenue change':>16}",
    ]
    for row in answer["levers"]:
        lines.append(
            f"{row['lever']:<30}{row['from']:>12,.3g}{row['to']:>12,.3g}"
            f"{row['p_hit_change'] * 100:>+13.1f} pt{row['revenue_change']:>16,.0f}"
        )
    return payload, "\n".join(lines)


class _NoAnswer(Exception):
    """A question without a numeric answer: printed, exit code 1."""

    def __init__(self, payload: dict, text: str):
        super().__init__(text)
        self.payload, self.text = payload, text


COMMANDS = {"run": _run, "solve": _solve, "quota": _quota, "sensitivity": _sensitivity}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``funnel-sim`` console script; returns the exit code."""
    try:
        return _answer(build_parser().parse_args(argv))
    except KeyboardInterrupt:
        # Ctrl-C: a word, not a traceback. No output file is left: calibrate writes its
        # scenario in one step once the work is done.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _answer(args) -> int:
    """Run the command and print its answer (text or strict JSON) or its problems; return the exit code."""
    code = 0
    try:
        if args.command in DATA_COMMANDS:
            payload, text = DATA_COMMANDS[args.command](args)
        else:
            scenario = load_scenario(args.scenario)
            payload, text = COMMANDS[args.command](args, scenario)
    except _NoAnswer as no_answer:
        payload, text, code = no_answer.payload, no_answer.text, EXIT_NO_ANSWER
    except ValueError as error:  # InputError (scenario, CRM export, calibration) or a bad option
        return _refused(error.problems if isinstance(error, InputError) else str(error).splitlines())
    if args.json:
        try:
            text = strict_json(payload)
        except ValueError as error:
            return _refused([str(error)])
    return _printed(text, code)


def _refused(problems: list[str]) -> int:
    """Print one short ``error:`` line per problem; return :data:`EXIT_BAD_INPUT`."""
    for line in problems:
        print(f"error: {shorten(line)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def strict_json(payload: dict) -> str:
    """``payload`` as one line of strict JSON: never ``NaN`` or ``Infinity``.

    Raises
    ------
    ValueError
        Naming the first key whose number is not finite.
    """
    try:
        return json.dumps(payload, allow_nan=False)
    except ValueError:
        where = _not_finite(payload) or "answer"
        raise ValueError(
            f"{where}: the answer is not a finite number; the input's values are too large to compute with"
        ) from None


def _not_finite(node, path: str = "") -> str | None:
    """The path (``revenue.mean``) of the first number in ``node`` that is not finite, or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return path or "answer"
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list | tuple) else ()
    for key, value in children:
        found = _not_finite(value, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key)
        if found:
            return found
    return None


def _printed(text: str, code: int) -> int:
    """Print the answer and return ``code``; a reader that stops early (``| head``) is no error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at devnull so that fails quietly too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

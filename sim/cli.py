"""The command line: simulate a scenario and answer the questions people bring, or calibrate one from a CRM export.

Every command prints a short readable report, or one JSON object with ``--json``. The
report's numbers read as people write them (:func:`human`, :func:`counted`); JSON keeps
full precision.
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

from scipy import stats

from sim.crm import DEFAULT_HALF_LIFE_WEEKS
from sim.errors import InputError, file_kind, shorten
from sim.model.average_math import deterministic_weekly_opportunities
from sim.model.measures import kind_of
from sim.model.scenario import Scenario, load_scenario
from sim.model.segments import funnel_count
from sim.questions.magic_number import Unreachable, solve_magic_number, solve_segment_magic_numbers
from sim.questions.quota import realistic_quota
from sim.questions.sensitivity import levers, sensitivity
from sim.runner import ENGINES, MAX_RUNS, SimulationResult, simulate, simulate_team
from sim.runner.request import CORES
from sim.runner.results import wilson_interval
from sim.words import counted, human

if TYPE_CHECKING:  # the data commands import sim.crm only when they run
    from sim.crm.report import CalibrationReport, FitSummary, RowCounts

EXIT_BAD_INPUT = 2
EXIT_NO_ANSWER = 1
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C: 128 + SIGINT, as shells report a command stopped by it."""
EVERY_DAYS = 14
"""Days between backtest origins from --from to --to when --every is not given."""


def _amount(x: float, unit: str) -> str:
    """A quantity in a quota's unit: money for revenue, ``N deals`` for won deals."""
    if unit == "revenue":
        return human(x, "money")
    return f"{human(x)} deal{'' if x == 1 else 's'}"


def _chance(p: float, runs: int) -> str:
    """A probability estimated from ``runs`` runs: ``33.1%``, or a one-sided bound when none or every run hit.

    Zero hits in ``runs`` does not mean impossible: the Clopper-Pearson one-sided 95% bound
    (1 - 0.05 ** (1 / runs)) says how small the chance may still be.
    """
    if 0.0 < p < 1.0:
        return f"{p:.1%}"
    percent = 100 * float(stats.beta.ppf(0.95, 1, runs))
    if p == 0.0:
        return f"below {human(percent)}%"
    return f"above {human(100 - percent)}%"


def _chance_with_interval(p: float, interval: list[float], runs: int) -> str:
    """``33.1%  (95% CI 32.2% to 34.0%)``; with no run or every run hitting, the one-sided bound instead."""
    if 0.0 < p < 1.0:
        low, high = interval
        return f"{p:.1%}  (95% CI {low:.1%} to {high:.1%})"
    which = "none" if p == 0.0 else "all"
    return f"{_chance(p, runs)}  ({which} of {counted(runs, 'run')} hit it; one-sided 95% bound)"


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


DESCRIPTION = (
    "Monte Carlo simulation of a sales funnel: the odds of hitting quota, the weekly new opportunities it "
    "takes, a realistic quota, the levers that matter; and scenarios calibrated from a CRM export."
)
"""What ``funnel-sim --help`` says first."""


def _version() -> str:
    """The installed package's version (its metadata), or ``unknown`` when run from a source tree not installed."""
    from importlib import metadata

    try:
        return metadata.version("funnel-sim")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``funnel-sim`` argument parser with its sub-commands."""
    parser = _Parser(prog="funnel-sim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    _add_plan_command(commands)
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
        help="the file's column for a role (id, created, closed, outcome, amount, owner) when not recognised; "
        "segment=NAME calibrates one funnel per value of column NAME (territory, product, channel...)",
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
        metavar="WEEKS",
        help="WEEKS, none or auto: recent history counts more, a deal this many weeks old counts half "
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


def _calibrate_options(args, history) -> dict:
    """What ``calibrate`` passes on: the horizon, window, quota and history, and the calibration options."""
    return {
        "horizon_days": args.horizon_days,
        "window_weeks": args.window_weeks,
        "quota_revenue": args.quota_revenue,
        "quota_deals": args.quota_deals,
        "history": history,
        **_calibration_options(args),
    }


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
        f"{what}: {human(rows.read, 'count')} read, {human(rows.rows_used, 'count')} used, "
        f"{human(rows.skipped or 0, 'count')} skipped"
        + (" (by line of the file; the header is line 1):" if reasons else ".")
    ]
    for reason, entry in reasons.items():
        count, shown = entry.count, entry.lines
        more = f" and {human(count - len(shown), 'count')} more" if count > len(shown) else ""
        line = "line" if count == 1 else "lines"
        lines.append(f"  {reason}: {counted(count, 'row')} ({line} {', '.join(map(str, shown))}{more})")
    return lines


def _format_fit(label: str, fit: FitSummary | None, kind: str = "figure") -> str:
    """One fitted distribution: family, mean and sd (days, or money with ``kind="money"``), fit and data."""
    if fit is None:
        return f"  {label:<15}none fitted"
    aic = "" if fit.aic is None else f", AIC {human(fit.aic)}"
    days = " days" if kind == "figure" else ""
    return (
        f"  {label:<15}{fit.family}: mean {human(fit.mean, kind)}{days}, sd {human(fit.sd, kind)}{days}{aic}, "
        f"KS {human(fit.ks_distance)} ({human(fit.n_complete, 'count')} closed, "
        f"{human(fit.n_censored, 'count')} open as censored)"
    )


def _format_one_stage(r: CalibrationReport) -> list[str]:
    return [
        f"Win rate: {r.rate.mean:.1%} (Beta concentration {human(r.rate.concentration)}; {r.rate.spread_note}).",
        _format_fit("won in", r.won_duration),
        _format_fit("lost in", r.lost_duration),
    ]


def _format_stages(r: CalibrationReport) -> list[str]:
    h = r.history
    lines = [
        *_format_rows("Stage history rows", h.rows),
        f"Deals with a stage history: {human(h.deals_with_history, 'count')}; without: "
        f"{human(h.deals_without_history, 'count')} (taken "
        "to enter the first stage on creation).",
        f"Stages in the order deals enter them ({len(r.stages)}):",
    ]
    for stage in r.stages:
        c = stage.counts
        skipped = f", {human(c.skipped, 'count')} went past it" if c.skipped else ""
        lines += [
            f"{stage.name}: {human(c.entered, 'count')} entered, {human(c.converted, 'count')} moved on, "
            f"{human(c.lost, 'count')} lost, {human(c.open, 'count')} open{skipped}; conversion "
            f"{stage.rate.mean:.1%} (Beta concentration {human(stage.rate.concentration)}; {stage.rate.spread_note}).",
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
    if "segment" in crm.mapping:
        return _calibrate_segments(args, as_of, crm, history)
    with _in_flag_words():
        calibration, choice = calibrate_choosing(crm, as_of, **_calibrate_options(args, history))
    path = write_scenario(calibration.scenario, args.output, force=args.force)
    r = calibration.report
    c, inflow, pipeline, quota = r.counts, r.inflow, r.open_pipeline, r.quota
    lines = [
        f"Wrote {path}: calibrated from {r.source} as of {r.as_of} ({r.horizon_days:g}-day horizon).",
        "Columns: " + ", ".join(f"{role} = {column}" for role, column in r.columns.items()) + ".",
        *_format_rows("Rows", r.rows),
        f"Deals known: {human(c.known, 'count')} ({human(c.won, 'count')} won, {human(c.lost, 'count')} lost, "
        f"{human(c.open, 'count')} open); {human(c.created_in_window, 'count')} created in the last "
        f"{counted(r.window_weeks, 'week')}.",
        *(_format_stages(r) if r.history else _format_one_stage(r)),
        _format_fit("deal value", r.deal_value, "money"),
        f"Inflow: {human(inflow.per_week)} a week (observed {human(inflow.observed_per_week)})"
        + (
            f"; seasonal multipliers by month {', '.join(human(m) for m in r.seasonality.multipliers)}"
            if r.seasonality
            else ""
        )
        + (
            f"; swings by ±{inflow.dispersion:.0%} between periods ({inflow.dispersion_note})"
            if inflow.dispersion
            else ""
        ),
        *(
            [f"Recent history counts more: a deal {counted(r.half_life_weeks, 'week')} old counts half."]
            if r.half_life_weeks
            else []
        ),
        *(
            [f"Deal values: the monthly average won amount moves by about ±{r.deal_value_spread:.0%}."]
            if r.deal_value_spread > 0.02
            else []
        ),
        f"Open pipeline: {counted(pipeline.deals, 'deal')}, about {human(pipeline.expected_wins)} expected to be "
        "won eventually.",
        f"Quota: {_amount(quota.target, quota.unit)} ({quota.basis}).",
    ]
    if choice is not None:
        lines.append(f"Half-life chosen: {choice.note}.")
    lines += [f"warning: {w}" for w in r.warnings]
    answer = {"output": str(path), **r.as_dict()}
    if choice is not None:
        answer["half_life_choice"] = choice.as_dict()
    return answer, "\n".join(lines)


def _calibrate_segments(args, as_of, crm, history) -> tuple[dict, str]:
    """``calibrate --column segment=NAME``: one funnel per segment in one scenario, and each segment's figures."""
    from sim.crm.calibrate import write_scenario
    from sim.crm.segments import calibrate_segments, segment_lines

    with _in_flag_words():
        result = calibrate_segments(crm, as_of, **_calibrate_options(args, history))
    path = write_scenario(result.scenario, args.output, force=args.force)
    r, quota = result.whole.report, result.scenario.quota
    c = r.counts
    lines = [
        f"Wrote {path}: calibrated from {r.source} as of {r.as_of} ({r.horizon_days:g}-day horizon), "
        f"{counted(len(result.parts), 'segment')}.",
        "Columns: " + ", ".join(f"{role} = {column}" for role, column in r.columns.items()) + ".",
        *_format_rows("Rows", r.rows),
        f"Deals known: {human(c.known, 'count')} ({human(c.won, 'count')} won, {human(c.lost, 'count')} lost, "
        f"{human(c.open, 'count')} open); {human(c.created_in_window, 'count')} created in the last "
        f"{counted(r.window_weeks, 'week')}.",
        *segment_lines(result),
        "The scenario's top level is the whole export as one funnel: the defaults a segment without its own "
        "funnel takes.",
        *(
            [f"Recent history counts more: a deal {counted(r.half_life_weeks, 'week')} old counts half."]
            if r.half_life_weeks
            else []
        ),
        f"Quota, the total's: {_amount(quota.target, quota.unit)} ({result.quota_basis}).",
    ]
    if result.choice is not None:
        lines.append(f"Half-life chosen on the whole export, for every segment: {result.choice.note}.")
    lines += [f"warning: {w}" for w in r.warnings]
    lines += [f"warning: segment {part.name}: {w}" for part in result.parts for w in part.warnings]
    answer = {"output": str(path), **result.as_dict()}
    if result.choice is not None:
        answer["half_life_choice"] = result.choice.as_dict()
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
    return f"{counted(inside, 'time')} in {len(rows)}"


def _format_backtest(answer: dict, args, crm, history) -> str:
    """The backtest's report: per origin, then the methods' errors side by side, coverage in words, PIT."""
    from sim.crm.report import RowCounts

    rows = answer["dates"]
    lines = [
        f"Backtest over {counted(args.horizon_days, 'day')} from each of {counted(answer['origins'], 'origin')} "
        f"({counted(args.runs, 'run')}, seed {args.seed}).",
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
            f"{human(deals['p10']):>11}{human(deals['p50']):>7}{human(deals['p90']):>7}"
            f"{human(row['actual']['deals'], 'count'):>8}"
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
            f"{pit['revenue']:>7.2f}{human(actual['deals'], 'count'):>8}{human(row['forecast']['deals']['p50']):>7}"
            f"{human(base['run_rate']['deals']):>10}{human(base['weighted_pipeline']['deals']):>10}{pit['deals']:>7.2f}"
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
        f"({pct(pinball['revenue']['scaled'])} of the mean actual), won deals {human(pinball['deals']['loss'])} "
        f"({pct(pinball['deals']['scaled'])}).",
        "Where the actuals fell in the forecasts (PIT; spread evenly if the forecast is honest):",
        *(
            f"  {label}: KS {human(pit[m]['ks_statistic'])}, p = {human(pit[m]['p_value'])}: {pit[m]['verdict']}."
            for m, label in (("revenue", "revenue"), ("deals", "won deals"))
        ),
    ]
    if "segments" in answer:
        lines += ["", *_format_backtest_segments(answer)]
    return "\n".join(lines)


def _format_backtest_segments(answer: dict) -> list[str]:
    """Each segment's coverage, errors and skill beside the total's (the segments as at the first origin)."""

    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    def signed(x):
        return "n/a" if x is None else f"{x:+.2f}"

    lines = [
        f"By segment ({answer['segment_column']}, grouped as known at the first origin; the total is above):",
        f"{'segment':<22}{'revenue in P10-P90':>20}{'error of P50':>14}{'run-rate':>10}{'skill':>7}"
        f"{'deals in P10-P90':>18}{'error':>8}{'skill':>7}",
    ]
    for group in [*answer["segments"], {**answer, "name": "Total"}]:
        rows = group["dates"]
        lines.append(
            f"{group['name'][:21]:<22}{_held(rows, 'p10_p90', ''):>20}{pct(group['mape_p50']):>14}"
            f"{pct(group['baselines']['run_rate']['mape_p50']):>10}{signed(group['skill']['revenue']):>7}"
            f"{_held(rows, 'p10_p90', '_deals'):>18}{pct(group['mape_p50_deals']):>8}"
            f"{signed(group['skill']['deals']):>7}"
        )
    return lines


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
                window_weeks=args.window_weeks,
                history=history,
                progress=update,
                **_simulation_options(args),
                **_calibration_options(args),
            )
    finally:
        close()
    return answer, _format_backtest(answer, args, crm, history)


# --- plan: many what-ifs at once ---------------------------------------------------------------------


def _add_plan_command(commands) -> None:
    plan = commands.add_parser("plan", help="simulate many what-ifs of a scenario: a grid or named plans")
    plan.add_argument("plan", help="plan TOML file: a base scenario, [vary] or [[plans]], [constraints]")
    plan.add_argument("-o", "--output", help="the table of cells to write: a .parquet or .csv file")
    plan.add_argument("--runs", type=_count(MAX_RUNS), help="replications per cell (default: the plan's, or 2,000)")
    plan.add_argument("--seed", type=_seed, help="root random seed of every cell (default: the plan's, or 0)")
    plan.add_argument(
        "--target", type=_probability, help="P(hit) the cheapest plans must reach (default: the plan's, or 0.8)"
    )
    plan.add_argument("--resume", action="store_true", help="reuse the cells already in the output; add the rest")
    plan.add_argument("--scheduler", metavar="tcp://HOST:8786", help="an existing Dask scheduler to run the cells on")
    plan.add_argument(
        "--workers",
        type=_number(int, lambda v: 0 <= v <= 256, "from 0 to 256"),
        default=CORES,
        help=f"local Dask worker processes (default {CORES}: the cores here); 0: in this process, without Dask",
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object (the cells reaching the target)")
    plan.epilog = (
        "Every cell runs with the same seed (common random numbers) and is what `run` gives the scenario it "
        "describes. Each cell is kept as it finishes, so an interrupted plan continues with --resume."
    )


def _plan_value(value, column: str, unit: str) -> str:
    """A varied field's value in the report: money for money fields (in a quota of ``unit``), three figures
    for other numbers, text as is."""
    if value is None or value != value:  # not given (NaN in a table)
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return shorten(str(value), 24)
    return human(value, "money" if kind_of(column, unit) == "money" else "figure")


def _plan_label(path: str, base: Scenario) -> str:
    """A varied path as the report heads its column: ``segments[1].team.reps`` as ``EMEA team.reps``."""
    found = re.match(r"segments\[(\d+)\]\.", path)
    if found is None or int(found.group(1)) >= len(base.segments):
        return path
    return f"{shorten(base.segments[int(found.group(1))].name, 20)} {path[found.end() :]}"


def _plan(args) -> tuple[dict, str]:
    from sim.plan.execute import cheapest, execute
    from sim.plan.spec import load_plan

    plan = load_plan(args.plan).with_settings(args.runs, args.seed)
    target = plan.target if args.target is None else args.target
    try:
        with _progress(args, len(plan.cells), unit="cell") as update:
            table, simulated = execute(
                plan, args.output, args.resume, workers=args.workers, scheduler=args.scheduler, progress=update
            )
    except KeyboardInterrupt:
        if args.output:
            print(f"the cells done are kept beside {args.output}; add --resume to go on from them", file=sys.stderr)
        raise
    reached, best = cheapest(table, target)
    shown = (["plan"] if plan.named else []) + list(plan.columns)
    figures = ["p_hit", "revenue_p50", "cost", "value_ratio"]
    rows = best[shown + figures + ["reps", "new_reps"]].to_dict("records")
    payload = {
        "plan": plan.name,
        "cells": len(plan.cells),
        "left_out_by_constraints": plan.left_out,
        "simulated": simulated,
        "runs": plan.runs,
        "seed": plan.seed,
        "target": target,
        "reached": reached,
        "output": args.output,
        "best": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows],
    }
    left_out = f" ({counted(plan.left_out, 'cell')} left out by the constraints)" if plan.left_out else ""
    earlier = len(plan.cells) - simulated
    lines = [
        f"{plan.name}: {counted(len(plan.cells), 'cell')}{left_out}, {counted(plan.runs, 'run')} each, seed "
        f"{plan.seed}, common random numbers; {human(simulated, 'count')} simulated now"
        + (f", {human(earlier, 'count')} from the earlier run." if earlier else "."),
    ]
    if args.output:
        lines.append(f"Wrote {args.output} (one row per cell).")
    lines += [
        "",
        f"Cheapest plans with P(hit) >= {target:.0%}:"
        if reached
        else f"No plan reaches {target:.0%}; the best P(hit):",
    ]
    labels = [_plan_label(c, plan.base) for c in shown]
    unit = plan.base.quota.unit
    widths = [
        max([len(label), *(len(_plan_value(r[c], c, unit)) for r in rows)]) + 2
        for c, label in zip(shown, labels, strict=True)
    ]
    header = "".join(f"{label:<{w}}" for label, w in zip(labels, widths, strict=True))
    lines.append(f"  {header}{'P(hit)':>12}{'95% CI':>15}{'revenue P50':>13}{'cost':>10}{'value ratio':>13}")
    close = []
    for row in rows:
        cells = "".join(f"{_plan_value(row[c], c, unit):<{w}}" for c, w in zip(shown, widths, strict=True))
        cost, ratio = row["cost"], row["value_ratio"]
        low, high = wilson_interval(round(row["p_hit"] * plan.runs), plan.runs)
        if low <= target <= high:
            close.append(row)
        lines.append(
            f"  {cells}{_chance(row['p_hit'], plan.runs):>12}{f'{low:.1%}-{high:.1%}':>15}"
            f"{human(row['revenue_p50'], 'money'):>13}"
            f"{human(cost, 'money') if cost == cost and cost is not None else '-':>10}"
            f"{human(ratio) if ratio == ratio and ratio is not None else '-':>13}"
        )
    if close:
        these = "1 of these plans is" if len(close) == 1 else f"{len(close)} of these plans are"
        lines.append(
            f"{these} within the noise of {counted(plan.runs, 'run')} ({target:.0%} is inside the 95% interval): "
            "more --runs tell which side of the target they fall on."
        )
    return payload, "\n".join(lines)


DATA_COMMANDS = {"calibrate": _calibrate, "backtest": _backtest, "plan": _plan}


def _progress_bar(enabled: bool, total: int, unit: str = "run"):
    """A tqdm bar on stderr when it is a terminal (none when piped, or when not ``enabled``).

    Returns the ``progress(done, total)`` callback the library takes and the bar's closing.
    The total may grow as the work goes (a search that asks for another simulation).
    """
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, disable=None, leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


@contextlib.contextmanager
def _progress(args, total: int, unit: str = "run"):
    """The progress callback for a command's work: a bar on a terminal's stderr, none with ``--json``."""
    update, close = _progress_bar(not args.json, total, unit)
    try:
        yield update
    finally:
        close()


def _money(x: float) -> str:
    return human(x, "money")


def _simulation_options(args) -> dict:
    """How every question simulates: runs, seed, workers and engine, as the flags give them."""
    return {"runs": args.runs, "seed": args.seed, "jobs": args.jobs, "engine": args.engine}


def _format_run(summary: dict, team: bool = False) -> str:
    """The run's report; for a team (``team``), the P(hit) line is left to :func:`_format_team`."""
    quota, runs = summary["quota"], summary["runs"]
    lines = [
        f"{summary['scenario']}  ({counted(runs, 'run')}, seed {summary['seed']}, {summary['engine']} engine)",
        f"Quota: {_amount(quota['target'], quota['unit'])}" + (" (the team's)" if team else ""),
    ]
    if not team:
        lines.append(f"P(hit quota): {_chance_with_interval(summary['p_hit'], summary['p_hit_ci'], runs)}")
    lines += ["", f"{'':<10}{'mean':>14}{'sd':>14}{'P10':>14}{'P50':>14}{'P90':>14}"]
    for key, kind in (("revenue", "money"), ("deals", "figure")):
        s = summary[key]
        lines.append(f"{key:<10}" + "".join(f"{human(s[k], kind):>14}" for k in ("mean", "sd", "p10", "p50", "p90")))
    stages = summary.get("stages", [])  # a scenario with segments has each segment's, not the total's
    capacity = bool(stages) and "utilisation" in stages[0]
    extra = f"{'wait days':>12}{'utilisation':>13}" if capacity else ""
    if stages:
        lines += ["", f"{'stage':<24}{'entered':>12}{'converted':>12}{extra}   (mean per run)"]
    for stage in stages:
        line = f"{stage['name']:<24}{human(stage['entered']):>12}{human(stage['converted']):>12}"
        if capacity:
            wait, busy = stage["mean_wait_days"], stage["utilisation"]
            # A stage without a rep limit has no slots to fill: a dash, not 0%.
            line += f"{'-' if wait is None else human(wait):>12}{'-' if busy is None else f'{busy:.1%}':>13}"
        lines.append(line)
    avg = summary["average_math"]
    lines += [
        "",
        f"Average-math forecast (every quantity at its mean; a deal counts if its average journey ends within "
        f"the period): {human(avg['won_deals'])} deals, revenue {_money(avg['revenue'])}: "
        f"{'hits' if avg['hit'] else 'misses'} the quota.",
    ]
    return "\n".join(lines)


def _format_team(team: dict, runs: int) -> str:
    unit = team["unit"]

    def figures(group: dict, label: str) -> list[str]:
        a, v = group["attainment"], group["value_ratio"]
        lines = [
            f"{label:<13}{group['share_at_quota']:>8.1%} at quota;  attainment mean {a['mean']:.0%}, "
            f"P10 {a['p10']:.0%}, P50 {a['p50']:.0%}, P90 {a['p90']:.0%}"
        ]
        if v is not None:
            lines.append(
                f"{'':<13}value ratio mean {human(v['mean'])}, P10 {human(v['p10'])}, P50 {human(v['p50'])}, "
                f"P90 {human(v['p90'])}"
            )
        return lines

    new = f", {team['new_reps']} new ({human(team['ramp_months'])}-month ramp)" if team["new_reps"] else ""
    avg = team["average_rep"]
    lines = [
        "",
        f"Team: {counted(team['reps'], 'rep')}{new}; rep quota {_amount(team['rep_quota'], unit)}, team quota "
        f"{_amount(team['team_quota'], unit)}.",
        f"P(team hits its quota): {_chance_with_interval(team['p_team_hit'], team['p_team_hit_ci'], runs)}",
        *figures(team, "all reps"),
    ]
    for name, group in team.get("by_group", {}).items():
        lines += figures(group, name)
    made = avg["revenue"] if unit == "revenue" else avg["won_deals"]
    lines.append(
        f"The average rep's average-math forecast is {_amount(made, unit)}: "
        f"{'at or above' if avg['hit'] else 'below'} the rep quota."
    )
    return "\n".join(lines)


def _format_segments(summary: dict) -> str:
    """Each segment's odds and spread, the total's, and the segment the total's risk comes from."""
    runs, unit = summary["runs"], summary["quota"]["unit"]
    lines = [
        "",
        f"{'segment':<24}{'P(hit) own quota':>18}{'quota':>12}{'revenue P10':>13}{'P50':>11}{'P90':>11}"
        f"{'won P50':>9}{'share of spread':>17}",
    ]
    for seg in summary["segments"]:
        own = seg["has_quota"]
        chance = _chance(seg["p_hit"], runs) if own else "-"
        quota = _amount(seg["quota"]["target"], seg["quota"]["unit"]) if own else "-"
        r = seg["revenue"]
        lines.append(
            f"{seg['name'][:23]:<24}{chance:>18}{quota:>12}{_money(r['p10']):>13}{_money(r['p50']):>11}"
            f"{_money(r['p90']):>11}{human(seg['deals']['p50']):>9}{seg['spread_share']:>17.0%}"
        )
    r = summary["revenue"]
    lines.append(
        f"{'Total':<24}{_chance(summary['p_hit'], runs):>18}{_amount(summary['quota']['target'], unit):>12}"
        f"{_money(r['p10']):>13}{_money(r['p50']):>11}{_money(r['p90']):>11}{human(summary['deals']['p50']):>9}"
        f"{'100%':>17}"
    )
    risk = max(summary["segments"], key=lambda seg: seg["spread_share"])
    lines += [
        "",
        f"The biggest risk is {risk['name']}: {risk['spread_share']:.0%} of the swing in the total "
        f"{'revenue' if unit == 'revenue' else 'won deals'} from period to period comes from it.",
    ]
    if summary["cost"] is not None:
        lines.append(f"Reps: {human(summary['reps'], 'count')}, costing {_money(summary['cost'])} over the period.")
    return "\n".join(lines)


def _run(args, scenario: Scenario) -> tuple[dict, str]:
    team = scenario.team is not None and not scenario.segments
    # Rep by rep for a team; the usual figures are the team total's, the team's own in `team`.
    run = simulate_team if team else simulate
    with _progress(args, args.runs * funnel_count(scenario)) as update:
        result: SimulationResult = run(scenario, progress=update, **_simulation_options(args))
    summary = result.summary()
    text = _format_run(summary, team)
    if team:
        text += "\n" + _format_team(summary["team"], args.runs)
    if scenario.segments:
        text += "\n" + _format_segments(summary)
    return summary, text


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _solve_segments(args, scenario: Scenario) -> tuple[dict, str]:
    """Each segment's magic number for the total quota, the other segments as they are."""
    with _progress(args, args.runs) as update:
        answers = solve_segment_magic_numbers(scenario, args.target, progress=update, **_simulation_options(args))
    for answer in answers:
        answer["deterministic_weekly_opportunities"] = _finite_or_none(answer["deterministic_weekly_opportunities"])
    payload = {"scenario": scenario.name, "runs": args.runs, "seed": args.seed, "target": args.target}
    payload["segments"] = answers
    width = max(len(a["name"]) for a in answers) + 2
    lines = [
        f"{scenario.name}: the weekly new opportunities each segment needs for P(hit the total quota) to reach "
        f"{args.target:.0%}, the other segments as they are ({counted(args.runs, 'run')}, seed {args.seed}):",
        "",
    ]
    for a in answers:
        rep = " per rep" if a["per_rep"] else ""
        if a["reachable"]:
            found = (
                f"{human(a['weekly_opportunities'])}{rep} a week (today {human(a['current'])}; P(hit) there "
                f"{_chance(a['p_hit_at_solution'], args.runs)})"
            )
        else:
            found = f"no answer: {a['reason']}"
        lines.append(f"  {a['name']:<{width}}{found}")
    return payload, "\n".join(lines)


def _solve(args, scenario: Scenario) -> tuple[dict, str]:
    if scenario.segments:
        return _solve_segments(args, scenario)
    a_week = " per rep a week" if scenario.team is not None else " a week"
    try:
        with _progress(args, args.runs) as update:
            answer = solve_magic_number(scenario, args.target, progress=update, **_simulation_options(args))
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
        f"{human(answer.weekly_opportunities)} new opportunities{a_week} "
        f"(P(hit) there {_chance(answer.p_hit_at_solution, args.runs)}; {counted(args.runs, 'run')}, "
        f"seed {args.seed}).",
        f"Average-math pace: {human(answer.deterministic_weekly_opportunities)}{a_week} "
        "(quota / mean deal value / product of rates, spread over the weeks; it ignores the time deals take and "
        "the open pipeline, which run's average-math forecast counts, and promises no chance).",
        "",
        f"Weekly volume stage by stage at the magic number{' (per rep)' if scenario.team is not None else ''}:",
    ]
    lines += [f"  {row['name']:<24}{human(row['per_week']):>10}" for row in answer.activity_per_stage]
    return payload, "\n".join(lines)


def _quota(args, scenario: Scenario) -> tuple[dict, str]:
    team = None
    with _progress(args, args.runs * funnel_count(scenario)) as update:
        if scenario.team is not None and not scenario.segments:  # the team quota from the team total, and `per_rep`
            team = simulate_team(scenario, progress=update, **_simulation_options(args))
            result = team.total
        else:
            result = simulate(scenario, progress=update, **_simulation_options(args))
    answer = realistic_quota(result, args.confidence)
    payload = {"scenario": scenario.name, "runs": args.runs, "seed": args.seed, **answer}
    unit = answer["unit"]
    a = answer["attainment"]
    lines = [
        f"{scenario.name}: a quota of {_amount(answer['quota'], unit)} is hit in "
        f"{_chance(answer['p_hit_at_quota'], args.runs)} of runs (wanted {args.confidence:.0%}).",
        f"At the current quota of {_amount(answer['current_quota'], unit)}, P(hit) is "
        f"{_chance(answer['p_hit_at_current_quota'], args.runs)}; attainment mean {a['mean']:.0%}, "
        f"P10 {a['p10']:.0%}, P50 {a['p50']:.0%}, P90 {a['p90']:.0%}.",
    ]
    if scenario.segments:
        from sim.questions.quota import realistic_segment_quotas

        parts = payload["segments"] = realistic_segment_quotas(result, args.confidence)
        lines += ["", f"Each segment on its own, the quota it makes {args.confidence:.0%} of the time:"]
        width = max(len(p["name"]) for p in parts) + 2
        for part in parts:
            own = (
                ""
                if part["own_quota"] is None
                else (
                    f" (its quota {_amount(part['own_quota'], part['unit'])}: P(hit) "
                    f"{_chance(part['p_hit_at_own_quota'], args.runs)})"
                )
            )
            lines.append(f"  {part['name']:<{width}}{_amount(part['quota'], part['unit'])}{own}")
        if all(p["unit"] == unit for p in parts):
            summed = sum(p["quota"] for p in parts)
            lines.append(
                f"Those add up to {_amount(summed, unit)}, less than the {_amount(answer['quota'], unit)} the whole "
                "organisation makes as often: segments rarely all fall short in the same period."
            )
    if team is not None:
        from sim.questions.quota import realistic_rep_quota

        per_rep = payload["per_rep"] = realistic_rep_quota(team, args.confidence)
        lines.append(
            f"Per rep: {args.confidence:.0%} of reps make {_amount(per_rep['quota'], unit)}; at the rep quota of "
            f"{_amount(per_rep['rep_quota'], unit)}, {per_rep['share_at_rep_quota']:.1%} of reps make it."
        )
        for name, group in per_rep.get("by_group", {}).items():
            lines.append(
                f"  {name} reps: {args.confidence:.0%} make {_amount(group['quota'], unit)}; "
                f"{group['share_at_rep_quota']:.1%} make the rep quota."
            )
    return payload, "\n".join(lines)


def _sensitivity(args, scenario: Scenario) -> tuple[dict, str]:
    variants = len(levers(scenario, args.step)) + 1  # the scenario and each lever
    with _progress(args, args.runs * funnel_count(scenario) * variants) as update:
        answer = sensitivity(scenario, step=args.step, progress=update, **_simulation_options(args))
    payload = {"scenario": scenario.name, **answer}
    width = max([30, *(len(row["lever"]) + 2 for row in answer["levers"])])
    lines = [
        f"{scenario.name}: each lever improved by {args.step:.0%} (base P(hit) "
        f"{_chance(answer['base']['p_hit'], args.runs)}; {counted(args.runs, 'run')}, common random numbers)",
        "",
        f"{'lever':<{width}}{'from':>12}{'to':>12}{'P(hit) change':>16}{'revenue change':>16}",
    ]
    for row in answer["levers"]:
        kind = "money" if row["kind"] == "deal_value" else "figure"
        lines.append(
            f"{row['lever']:<{width}}{human(row['from'], kind):>12}{human(row['to'], kind):>12}"
            f"{row['p_hit_change'] * 100:>+13.1f} pt{human(row['revenue_change'], 'money', signed=True):>16}"
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

"""A plan file: a base scenario and the what-ifs to simulate from it, expanded into cells.

A plan names a base scenario (a file beside it, or an inline ``[base]`` table) and the
fields to change, either as a grid (``[vary]``: a field path and the values it takes;
every combination is a cell) or as a list of named cells (``[[plans]]``: ``name`` and
``set = {path = value}``). ``[constraints]`` leave out cells before anything is
simulated (too many reps, too many new reps, too costly).

The one idea: a cell *is* a scenario. It is the base scenario's document with some
paths set (``segments[0].team.new_reps = 4``), validated by
:func:`~sim.model.scenario.scenario_from_dict` like any file a person writes, so a cell
is exactly what ``funnel-sim run`` would simulate, and a bad value is reported with
its path in the plan (``vary["team.new_reps"][2]: must be a whole number >= 0, got -1``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, quoted, read_limited, shorten
from sim.model.scenario import (
    MAX_FILE_BYTES,
    Money,
    Scenario,
    ScenarioError,
    problems_from,
    scenario_from_dict,
)
from sim.model.segments import cost_of_reps, funnels
from sim.model.segments import reps as rep_count
from sim.runner import MAX_RUNS
from sim.words import counted

MAX_CELLS = 10_000
"""Most cells a plan may have (after the grid is multiplied out, before constraints)."""
MAX_VALUES = 1_000
"""Most values one field of a grid may take."""
MAX_PLAN_CHARACTERS = 500_000_000
"""Most characters of scenario documents a plan's cells may hold together (cells x the base's size)."""
DEFAULT_RUNS = 2_000
"""Replications per cell when neither the plan nor ``--runs`` says."""
DEFAULT_TARGET = 0.8
"""The P(hit) the cheapest plans must reach when the plan does not say."""
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*)*")
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class PlanError(InputError):
    """A plan that cannot be used; ``problems`` holds one line per problem, each naming its place in the plan."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Constraints(_Model):
    """Limits a cell must respect to be simulated; each is optional, and none is evaluated from text.

    ``max_reps`` and ``max_new_reps`` count reps over the whole scenario (every segment's
    team, or ``[capacity] reps``); ``max_cost`` is the cost of reps for the period
    (:func:`sim.model.segments.cost_of_reps`).
    """

    max_reps: int | None = Field(default=None, ge=0, strict=True)
    max_new_reps: int | None = Field(default=None, ge=0, strict=True)
    max_cost: Money | None = None


class NamedPlan(_Model):
    """One named cell: the base scenario with the ``set`` paths given these values."""

    name: str = Field(min_length=1, max_length=200)
    set_: dict[str, Any] = Field(alias="set", max_length=200)  # empty: the base scenario as it is


class PlanFile(_Model):
    """The plan document as written; :func:`plan_from_dict` checks it and expands its cells."""

    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=5_000)
    base: str | dict[str, Any]
    runs: int = Field(default=DEFAULT_RUNS, ge=1, le=MAX_RUNS, strict=True)  # strict: "5" or 2.5 are refused
    seed: int = Field(default=0, ge=0, strict=True)
    target: float = Field(default=DEFAULT_TARGET, strict=True)
    vary: dict[str, list[Any]] | None = Field(default=None, max_length=50)
    plans: list[NamedPlan] | None = Field(default=None, min_length=1, max_length=MAX_CELLS)
    constraints: Constraints = Constraints()

    @field_validator("target")
    @classmethod
    def _target_inside(cls, value):
        if not 0.0 < value < 1.0:
            raise ValueError(f"must be strictly between 0 and 1, got {value}")
        return value

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.vary is None) == (self.plans is None):
            given = "both" if self.vary is not None else "neither"
            raise ValueError(f"vary: give exactly one of [vary] (a grid) or [[plans]] (named cells), got {given}")
        return self


@dataclass(frozen=True)
class Cell:
    """One scenario of a plan.

    Attributes
    ----------
    index : int
        Its place in the plan (grid order: the last field varies fastest).
    name : str or None
        The named plan's name (None in a grid).
    values : dict
        Each varied path (the plan's ``columns``) and its value in this cell.
    scenario : Scenario
        The validated scenario the cell describes.
    key : str
        A hash of what its numbers depend on: the scenario (its name and description
        aside), the runs and the seed. Cells with equal keys have equal numbers.
    """

    index: int
    name: str | None
    values: dict[str, Any]
    scenario: Scenario
    key: str


@dataclass(frozen=True)
class Plan:
    """A checked plan: its settings and its cells, those the constraints leave out already removed."""

    name: str
    base: Scenario
    runs: int
    seed: int
    target: float
    columns: tuple[str, ...]
    named: bool
    cells: tuple[Cell, ...]
    left_out: int
    constraints: Constraints

    def with_settings(self, runs: int | None = None, seed: int | None = None) -> Plan:
        """The plan with other runs or seed (the command line's ``--runs`` and ``--seed``); cells re-keyed."""
        runs = self.runs if runs is None else runs
        seed = self.seed if seed is None else seed
        cells = tuple(Cell(c.index, c.name, c.values, c.scenario, cell_key(c.scenario, runs, seed)) for c in self.cells)
        return Plan(
            self.name, self.base, runs, seed, self.target, self.columns, self.named, cells, self.left_out,
            self.constraints,
        )  # fmt: skip


# --- field paths ------------------------------------------------------------------------------------


def parse_path(path: str) -> list[str | int]:
    """``"segments[0].team.new_reps"`` as keys and indexes: ``["segments", 0, "team", "new_reps"]``.

    Raises
    ------
    ValueError
        Not a field path (names of letters, digits and ``_``, ``.`` between, ``[i]`` after).
    """
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise ValueError("not a field path (names joined by '.', list items as [i]: segments[0].team.new_reps)")
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def _shown(tokens: list[str | int]) -> str:
    return "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens).lstrip(".")


def set_path(document: dict, path: str, value: Any) -> None:
    """Set ``path`` in a scenario document (in place).

    A missing table on the way is created, except that a segment's missing section
    (``segments[0].team``) starts as a copy of the top-level one it inherits, so
    changing one field of it keeps the rest. A list item must exist.

    Raises
    ------
    ValueError
        The path does not lead anywhere in the document (one short line).
    """
    tokens = parse_path(path)
    node: Any = document
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        where = _shown(tokens[:depth]) or "the scenario"
        if isinstance(token, int):
            if not isinstance(node, list):
                raise ValueError(f"{where} is not a list in the base scenario")
            if token >= len(node):
                raise ValueError(f"the base scenario's {where} has {len(node)} items, no [{token}]")
        elif not isinstance(node, dict):
            raise ValueError(f"{where} is not a table in the base scenario")
        if last:
            node[token] = copy.deepcopy(value)
            return
        if isinstance(token, str) and token not in node:
            inherited = depth == 2 and tokens[0] == "segments" and isinstance(document.get(token), dict)
            if not isinstance(tokens[depth + 1], str):
                raise ValueError(f"the base scenario has no {_shown(tokens[: depth + 1])} list")
            node[token] = copy.deepcopy(document[token]) if inherited else {}
        node = node[token]


def get_path(document: dict, path: str) -> Any:
    """The value at ``path`` in a scenario document (a segment's missing section read from the top level).

    None where the document does not give one (a validated scenario's ``model_dump`` gives
    every field, defaults included).
    """
    tokens = parse_path(path)
    node: Any = document
    for depth, token in enumerate(tokens):
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                return None
        elif not isinstance(node, dict):
            return None
        elif node.get(token) is None:
            if not (depth == 2 and tokens[0] == "segments" and document.get(token) is not None):
                return None
            node = {token: document[token]}  # the top-level section the segment inherits
        node = node[token]
    return node


# --- what a cell costs and holds --------------------------------------------------------------------


def new_reps(scenario: Scenario) -> int:
    """New reps over the whole scenario (every segment's team)."""
    return sum(funnel.team.new_reps for funnel in funnels(scenario) if funnel.team is not None)


def cell_key(scenario: Scenario, runs: int, seed: int) -> str:
    """A hash of what a cell's numbers depend on: the scenario (not its name or description), runs and seed."""
    document = scenario.model_dump(mode="json", exclude={"name", "description"})
    text = json.dumps({"scenario": document, "runs": runs, "seed": seed}, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def within(scenario: Scenario, constraints: Constraints) -> bool:
    """Whether a cell respects the constraints (those it cannot be judged on, say a cost without one, pass)."""
    reps, new, cost = rep_count(scenario), new_reps(scenario), cost_of_reps(scenario)
    return not (
        (constraints.max_reps is not None and reps is not None and reps > constraints.max_reps)
        or (constraints.max_new_reps is not None and new > constraints.max_new_reps)
        or (constraints.max_cost is not None and cost is not None and cost > constraints.max_cost)
    )


# --- reading ------------------------------------------------------------------------------------------


def _plan_problems(error: ValidationError) -> list[str]:
    """Pydantic's problems with the plan's own fields, named as the plan writes them."""
    lines = []
    for line in problems_from(error):
        line = line.removeprefix("scenario: ")
        lines.append(re.sub(r"\.set_\b", ".set", line))
    return lines


def _base_document(base: str | dict, directory: Path) -> tuple[dict, str]:
    """The base scenario's document and how to name it in messages (``base`` or its file)."""
    if isinstance(base, dict):
        return copy.deepcopy(base), "base"
    path = directory / base
    data = read_limited(path, MAX_FILE_BYTES, "a scenario file", PlanError)
    try:
        return tomllib.loads(data.decode("utf-8")), str(path)
    except UnicodeDecodeError:
        raise PlanError([f"{path}: not a UTF-8 text file"]) from None
    except (tomllib.TOMLDecodeError, RecursionError) as problem:
        raise PlanError([f"{path}: malformed TOML: {shorten(str(problem), 200)}"]) from None


def _validated(document: dict) -> tuple[Scenario | None, list[str]]:
    try:
        return scenario_from_dict(document), []
    except ScenarioError as error:
        return None, error.problems


def _split(line: str) -> tuple[str, str]:
    path, _, message = line.partition(": ")
    return path, message


def _under(problem_path: str, path: str) -> bool:
    return problem_path == path or problem_path.startswith((path + ".", path + "["))


def _settings(spec: PlanFile) -> tuple[list[str], list[tuple[str | None, list[tuple[str, int, Any]]]]]:
    """The varied paths, and per cell its name and settings (path, index of the value in the plan, value)."""
    if spec.vary is not None:
        columns = list(spec.vary)
        choices = [[(path, k, v) for k, v in enumerate(values)] for path, values in spec.vary.items()]
        return columns, [(None, list(combo)) for combo in itertools.product(*choices)]
    columns = list(dict.fromkeys(path for named in spec.plans for path in named.set_))
    return columns, [(named.name, [(p, i, v) for p, v in named.set_.items()]) for i, named in enumerate(spec.plans)]


def _where(spec: PlanFile, path: str, index: int) -> str:
    """A setting's place in the plan file: ``vary["path"][k]`` or ``plans[i].set["path"]``."""
    return f'vary["{path}"][{index}]' if spec.vary is not None else f'plans[{index}].set["{path}"]'


def _check_paths(spec: PlanFile) -> list[str]:
    problems = []
    if spec.vary is not None:
        for path, values in spec.vary.items():
            if not 1 <= len(values) <= MAX_VALUES:
                problems.append(f'vary["{shorten(path, 80)}"]: give 1 to {MAX_VALUES:,} values, got {len(values):,}')
        paths = [(f'vary["{shorten(p, 80)}"]', p) for p in spec.vary]
    else:
        paths = [(f'plans[{i}].set["{shorten(p, 80)}"]', p) for i, named in enumerate(spec.plans) for p in named.set_]
        names = [named.name for named in spec.plans]
        repeated = sorted(n for n, count in Counter(names).items() if count > 1)
        if repeated:
            problems.append(f"plans: names must be unique, repeated: {', '.join(quoted(n) for n in repeated[:5])}")
    for where, path in paths:
        try:
            parse_path(path)
        except ValueError as problem:
            problems.append(f"{where}: {problem}")
    return problems


def plan_from_dict(document: dict, directory: str | Path = ".") -> Plan:
    """Check a plan document and expand it into validated cells.

    Parameters
    ----------
    document : dict
        The parsed plan (a TOML document).
    directory : str or Path
        Where a ``base = "file.toml"`` is looked for (the plan file's folder).

    Returns
    -------
    Plan
        Its cells in plan order, those outside the constraints left out.

    Raises
    ------
    PlanError
        One line per problem: a plan field (``runs: ...``), a field path that leads
        nowhere, the base scenario's own problems, or a cell that is not a valid
        scenario, named by its place in the plan and, when only some combinations fail,
        the values of the cell.
    """
    if not isinstance(document, dict):
        raise PlanError([f"plan: must be a table of keys, got {type(document).__name__}"])
    try:
        spec = PlanFile.model_validate(document)
    except ValidationError as error:
        raise PlanError(_plan_problems(error)) from None
    problems = _check_paths(spec)
    if problems:
        raise PlanError(problems)
    base_document, base_name = _base_document(spec.base, Path(directory))
    base, base_problems = _validated(base_document)
    if base is None:
        raise PlanError([f"{base_name}: {line}" if base_name != "base" else f"base.{line}" for line in base_problems])
    # Counted before the grid is multiplied out (it may be astronomically large) and before every cell
    # holds its copy of the base scenario.
    where = "vary" if spec.vary is not None else "plans"
    size = math.prod(len(v) for v in spec.vary.values()) if spec.vary is not None else len(spec.plans)
    if size > MAX_CELLS:
        raise PlanError([f"vary: the grid has {size:,} cells; a plan may have at most {MAX_CELLS:,}"])
    held = size * len(json.dumps(base_document, default=str))
    if held > MAX_PLAN_CHARACTERS:
        raise PlanError(
            [f"{where}: {counted(size, 'cell')} of a base scenario this large would hold about "
             f"{held / 1e6:,.0f} million characters (limit {MAX_PLAN_CHARACTERS / 1e6:,.0f} million); "
             "give fewer cells or a smaller base (fewer listed open deals)"]
        )  # fmt: skip
    columns, settings = _settings(spec)
    cells, failures = [], []
    for index, (name, chosen) in enumerate(settings):
        cell_document = copy.deepcopy(base_document)
        where_failed = None
        for path, k, value in chosen:
            try:
                set_path(cell_document, path, value)
            except ValueError as problem:
                where_failed = f"{_where(spec, path, k if spec.vary is not None else index)}: {problem}"
                break
        if where_failed is not None:
            failures.append((index, chosen, [(where_failed, None)]))
            continue
        scenario, lines = _validated(cell_document)
        if scenario is None:
            failures.append((index, chosen, [(line, _owner(line, chosen)) for line in lines]))
            continue
        effective = scenario.model_dump(mode="json", by_alias=True)  # defaults and inherited sections too
        values = {path: get_path(effective, path) for path in columns}
        cells.append(Cell(index, name, values, scenario, cell_key(scenario, spec.runs, spec.seed)))
    if failures:
        raise PlanError(_failure_lines(spec, settings, failures))
    kept = tuple(cell for cell in cells if within(cell.scenario, spec.constraints))
    if not kept:
        raise PlanError([f"constraints: leave out every cell (all {counted(len(cells), 'cell')}); loosen them"])
    return Plan(
        spec.name or base.name, base, spec.runs, spec.seed, spec.target, tuple(columns), spec.plans is not None,
        kept, len(cells) - len(kept), spec.constraints,
    )  # fmt: skip


def _owner(line: str, chosen: list[tuple[str, int, Any]]) -> tuple[str, int] | None:
    """The setting a scenario problem falls under (its path is the setting's or inside it), if any."""
    problem_path, _ = _split(line)
    for path, k, _value in chosen:
        if _under(problem_path, path):
            return path, k
    return None


def _failure_lines(spec: PlanFile, settings, failures) -> list[str]:
    """Problems of invalid cells: a value that fails wherever it appears once, by its place; others per cell."""
    sizes = {path: len(values) for path, values in (spec.vary or {}).items()}
    cells_with = Counter()  # (path, k, message) -> failing cells that carry it
    for _, _, lines in failures:
        for line, owner in lines:
            if owner is not None:
                cells_with[(*owner, _split(line)[1])] += 1
    total = len(settings)
    out = []
    for index, chosen, lines in failures:
        for line, owner in lines:
            if owner is None:
                if line.startswith(("vary[", "plans[")):  # a path that leads nowhere: already placed
                    out.append(line)
                    continue
                out.append(f"{_cell_name(spec, index, chosen)}: {line}")
                continue
            path, k = owner
            message = _split(line)[1]
            everywhere = spec.vary is None or cells_with[(path, k, message)] == total // sizes[path]
            where = _where(spec, path, k)
            out.append(f"{where}: {message}" if everywhere else f"{where}: {message} (in the cell {_values(chosen)})")
    return list(dict.fromkeys(out))


def _cell_name(spec: PlanFile, index: int, chosen) -> str:
    if spec.plans is not None:
        return f"plans[{index}] ({quoted(spec.plans[index].name)})"
    return f"the cell {_values(chosen)}"


def _values(chosen) -> str:
    return ", ".join(f"{path} = {quoted(value)}" for path, _, value in chosen)


def plan_from_toml(text: str, source: str = "plan", directory: str | Path = ".") -> Plan:
    """Parse and check a plan's TOML text (see :func:`plan_from_dict`)."""
    try:
        document = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise PlanError([f"{source}: malformed TOML: {shorten(str(error), 200)}"]) from None
    return plan_from_dict(document, directory)


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan file; a ``base = "file.toml"`` is read relative to the plan's folder.

    Raises
    ------
    PlanError
        The file cannot be read, is not TOML, or is not a valid plan (:func:`plan_from_dict`).
    """
    data = read_limited(path, MAX_FILE_BYTES, "a plan file", PlanError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError([f"{path}: not a UTF-8 text file"]) from None
    return plan_from_toml(text, source=str(path), directory=Path(path).parent)

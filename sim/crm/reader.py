"""Reading a CRM export: one row per opportunity, into a clean table of deals.

A CRM export (Salesforce, HubSpot, or a hand-made sheet) is turned into a DataFrame with
fixed columns (``id``, ``created``, ``closed``, ``outcome``, ``stage``, ``amount``,
``owner``) that :mod:`sim.crm.fitting` can calibrate a scenario from. Columns are found by
their usual names, case-insensitively and ignoring spaces and punctuation
(``CreatedDate``, ``Create Date`` and ``created_date`` are one name), or named
explicitly per role.

Whole-file problems (missing file, too large, not UTF-8, empty, a required column
missing, a date column mixing formats, nothing usable) raise :class:`CrmError`, whose
lines name the file or column and the problem. Bad rows are skipped, never guessed at,
and listed by file line number (the header is line 1) with the reason, so a user can
find them in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InputError, quoted, read_limited
from sim.model.distributions import MAX_VALUE
from sim.model.scenario import STAGE_NAME_CHARS, listing
from sim.words import counted

MAX_CSV_BYTES = 50_000_000
"""Refuse larger exports: a few hundred thousand deals fit well within this."""
COLUMNS_SHOWN = 15
"""Column names a message lists (a file may have thousands)."""
EARLIEST_DATE = pd.Timestamp("1990-01-01")
"""Dates before this are typos or placeholders (0001-01-01): the row is skipped."""
YEARS_AHEAD = 10
"""Dates more than this many years after today (or after 2100) are skipped likewise (9999-12-31)."""

DEAL_ROLES = ("id", "created", "closed", "outcome", "amount", "owner")
EXPORT_ROLES = (*DEAL_ROLES, "segment")
"""Roles ``--column`` takes: the deal roles, and ``segment`` (a funnel per value; never recognised, only named)."""
REQUIRED_DEAL_ROLES = ("id", "created", "closed", "outcome", "amount")
HISTORY_ROLES = ("id", "stage", "entered")
"""Roles of the optional stage-history file (all required)."""

ROLE_HELP = {
    "id": "a unique id per deal",
    "created": "the date each deal was created",
    "closed": "the close date, blank while open",
    "outcome": "won, lost or the open stage",
    "amount": "the deal value",
    "owner": "the deal owner",
    "segment": "the segment (territory, product, channel...) to calibrate a funnel for each",
    "stage": "the stage entered",
    "entered": "the date the stage was entered",
}

# Names are compared by this key (lower case, letters and digits only), so each alias
# below covers its CamelCase, snake_case and "Title Case" spellings. Within a role the
# first alias present wins.
_DEAL_ALIASES = {
    "id": ("id", "opportunityid", "dealid", "recordid", "oppid"),
    "created": ("createddate", "createdate", "createdat", "createdon", "created", "datecreated", "creationdate"),
    "closed": ("closedate", "closeddate", "closedat", "closedon", "closed", "dateclosed"),
    "outcome": ("stagename", "dealstage", "stage", "outcome", "status"),
    "amount": ("amount", "dealamount", "value", "dealvalue"),
    "owner": ("ownerid", "owner", "dealowner", "ownername", "opportunityowner"),
    "segment": (),  # only when named (--column segment=NAME): splitting by a column must be asked for
}
# A history file has its own row ids (Salesforce OpportunityHistory.Id), so the deal's
# id is looked for first under the names that say "deal".
_HISTORY_ALIASES = {
    "id": ("opportunityid", "dealid", "recordid", "id"),
    "stage": ("stagename", "dealstage", "stage", "tostage", "newstage"),
    "entered": ("entereddate", "enteredat", "enteredon", "entered", "createddate", "createdat", "changedat", "date"),
}

_WON = frozenset({"won", "closedwon"})
_LOST = frozenset({"lost", "closedlost"})

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_MDY = re.compile(
    r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"
    r"(?:[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?$"
)
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_CURRENCY = re.compile(r"^[$€£¥]\s*|\s*[$€£¥]$")


def outcome_of_stage(name: str) -> str:
    """``"won"``, ``"lost"`` or ``"open"`` for a stage name, as :func:`read_deals` reads outcomes.

    ``Closed Won``, ``closedwon``, ``WON`` and the like are won; the same for lost.
    """
    key = re.sub(r"[^0-9a-z]", "", str(name).casefold())
    return "won" if key in _WON else "lost" if key in _LOST else "open"


class CrmError(InputError):
    """A CRM export that cannot be used; ``problems`` holds one line per problem."""


@dataclass
class CrmData:
    """The deals read from a CRM export.

    Attributes
    ----------
    deals : pandas.DataFrame
        One row per usable deal, columns ``id`` (str), ``created`` (datetime64),
        ``closed`` (datetime64, NaT when open), ``outcome`` ("won", "lost" or "open"),
        ``stage`` (the open stage's name, "" for closed deals), ``amount`` (float, NaN
        when blank) and ``owner`` (str, "" when unknown); with a ``segment`` column
        named, ``segment`` too (str, "" when blank).
    mapping : dict
        Role -> the file's column used for it.
    skipped : list of (int, str)
        ``(line_number, reason)`` per skipped row; line 1 is the header.
    rows_read : int
        Data rows in the file (blank lines not counted).
    source : str
        The file's name, for messages.
    """

    deals: pd.DataFrame
    mapping: dict[str, str]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rows_read: int = 0
    source: str = ""

    def report(self) -> dict[str, Any]:
        """Counts of rows read, used and skipped, with skipped rows grouped by reason.

        Returns
        -------
        dict
            ``rows_read``, ``rows_used``, ``skipped`` and ``skipped_by_reason``:
            reason -> ``{"count": n, "lines": [up to 10 line numbers]}``, most common first.
        """
        return skipped_report(self.rows_read, len(self.deals), self.skipped)


def skipped_report(rows_read: int, rows_used: int, skipped: list[tuple[int, str]]) -> dict[str, Any]:
    """The report dictionary of :meth:`CrmData.report` from plain counts."""
    by_reason: dict[str, list[int]] = {}
    for line, reason in sorted(skipped):
        by_reason.setdefault(reason, []).append(line)
    ordered = sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[1][0]))
    return {
        "rows_read": rows_read,
        "rows_used": rows_used,
        "skipped": len(skipped),
        "skipped_by_reason": {reason: {"count": len(lines), "lines": lines[:10]} for reason, lines in ordered},
    }


# --- columns -------------------------------------------------------------------------


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _recognise(header: list[str], aliases: dict[str, tuple[str, ...]], taken: set[str] = frozenset()) -> dict:
    keys: dict[str, str] = {}
    for column in header:
        if column not in taken:
            keys.setdefault(_key(column), column)  # the first of two same-key columns
    mapping: dict[str, str] = {}
    used = set(taken)
    for role, names in aliases.items():
        for alias in names:
            column = keys.get(alias)
            if column is not None and column not in used:
                mapping[role] = column
                used.add(column)
                break
    return mapping


def recognise_columns(header: list[str]) -> dict[str, str]:
    """Find the column for each deal role by its common names.

    Parameters
    ----------
    header : list of str
        The file's column names.

    Returns
    -------
    dict
        Role -> column for each role recognised (roles with no match are left out).
        Names match case-insensitively, ignoring spaces and punctuation: Salesforce
        (``Id, CreatedDate, CloseDate, StageName, Amount, OwnerId``), HubSpot
        (``Record ID, Create Date, Close Date, Deal Stage, Amount, Deal owner``) and
        snake_case (``deal_id, created_at, close_date, stage, value, owner_id``...).
    """
    return _recognise([str(c).strip() for c in header], _DEAL_ALIASES)


def parse_column_options(options: list[str], roles: tuple[str, ...] = EXPORT_ROLES) -> dict[str, str]:
    """Turn ``--column ROLE=NAME`` options into a ``{role: column}`` mapping.

    Parameters
    ----------
    options : list of str
        Each ``ROLE=NAME``; the column name may itself contain ``=`` or spaces.
    roles : tuple of str
        The roles allowed (:data:`EXPORT_ROLES` by default; :data:`HISTORY_ROLES` for history).

    Returns
    -------
    dict

    Raises
    ------
    CrmError
        With one ``--column: ...`` line per bad option.
    """
    mapping: dict[str, str] = {}
    problems = []
    for option in options:
        role, sep, column = option.partition("=")
        role, column = role.strip().lower(), column.strip()
        if not sep or not role:
            problems.append(f"--column: expected ROLE=NAME, got {quoted(option)}")
        elif role not in roles:
            problems.append(f"--column: unknown role {role!r} in {quoted(option)}; roles are {', '.join(roles)}")
        elif not column:
            problems.append(f"--column: no column name after {role}= in {quoted(option)}")
        elif role in mapping and mapping[role] != column:
            problems.append(f"--column: role {role!r} given twice ({mapping[role]!r} and {column!r})")
        else:
            mapping[role] = column
    if problems:
        raise CrmError(problems)
    return mapping


def _resolve_mapping(
    header: list[str],
    columns: dict[str, str] | None,
    aliases: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    name: str,
) -> dict[str, str]:
    """Explicit columns first, then recognition for the remaining roles."""
    problems = []
    explicit: dict[str, str] = {}
    by_key = {}
    for column in header:
        by_key.setdefault(column.casefold(), column)
    for role, wanted in (columns or {}).items():
        if role not in aliases:
            problems.append(f"columns: unknown role {role!r}; roles are {', '.join(aliases)}")
            continue
        wanted = str(wanted).strip()
        found = wanted if wanted in header else by_key.get(wanted.casefold())
        if found is None:
            problems.append(
                f"{name}: column {quoted(wanted)} given for {role} is not in the file; "
                f"columns found: {listing(header, COLUMNS_SHOWN)}"
            )
        else:
            explicit[role] = found
    rest = {role: names for role, names in aliases.items() if role not in explicit}
    mapping = {**_recognise(header, rest, taken=set(explicit.values())), **explicit}
    for role in required:
        if role not in mapping and role not in (columns or {}):
            looked = ", ".join(aliases[role][:4])
            problems.append(
                f"{name}: no column for {role} ({ROLE_HELP[role]}); looked for names like {looked}; "
                f"columns found: {listing(header, COLUMNS_SHOWN) or '(none)'}; "
                f"name it explicitly, e.g. --column {role}=NAME"
            )
    for role, column in mapping.items():
        if header.count(column) > 1:
            problems.append(
                f"{name}: column {column!r} (for {role}) appears {header.count(column)} times in the header"
            )
    if problems:
        raise CrmError(problems)
    return {role: mapping[role] for role in aliases if role in mapping}


# --- the file ------------------------------------------------------------------------


def _read_text(source: Any) -> tuple[str, str]:
    """The decoded text and a name for messages, from a path, bytes or a file-like object."""
    if isinstance(source, str | os.PathLike):
        name = str(Path(source))
        data: bytes | str = read_limited(source, MAX_CSV_BYTES, "a CSV file", CrmError)
    elif isinstance(source, bytes | bytearray | memoryview):
        name, data = "upload", bytes(source)
    elif hasattr(source, "read"):
        label = getattr(source, "name", None)
        name = label if isinstance(label, str) and label else "upload"
        data = source.read(MAX_CSV_BYTES + 1)  # read one byte more to tell "too large"
    else:
        raise TypeError(f"expected a path, bytes or a file-like object, got {type(source).__name__}")
    if len(data) > MAX_CSV_BYTES:
        raise CrmError([f"{name}: file is larger than {MAX_CSV_BYTES:,} bytes"])
    if isinstance(data, bytes):
        try:
            # utf-8-sig drops the byte-order mark Excel writes with "CSV UTF-8".
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise CrmError(
                [f"{name}: not a UTF-8 text file (bad byte at offset {error.start}); export the CSV as UTF-8"]
            ) from None
    else:
        text = data
    if not text.strip():
        raise CrmError([f"{name}: the file is empty"])
    return text, name


def _delimiter(text: str) -> str:
    # Exports from European spreadsheets use ";"; tab-separated files exist too. The
    # header line decides, since column names rarely contain any of the three.
    first = next(line for line in text.splitlines() if line.strip())
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _records(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and ``(line_number, fields)`` per record, skipping blank lines.

    The csv module (not pandas) reads the records so that each one keeps the file line
    it starts on, even when a quoted field spans several lines.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    records = []
    header = None
    previous = 0
    try:
        for fields in reader:
            start, previous = previous + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue  # blank lines and rows of empty cells, as spreadsheets leave them
            if header is None:
                header = [f.strip() for f in fields]
            else:
                records.append((start, fields))
    except csv.Error as error:
        raise CrmError([f"{name}: line {previous + 1}: malformed CSV ({error})"]) from None
    return header or [], records


def _load_table(
    source: Any,
    columns: dict[str, str] | None,
    aliases: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
) -> tuple[str, dict[str, str], pd.DataFrame, list[tuple[int, str]], int]:
    """Read the file into stripped strings per mapped role, plus a ``line`` column."""
    text, name = _read_text(source)
    header, records = _records(text, name)
    mapping = _resolve_mapping(header, columns, aliases, required, name)
    index = {role: header.index(column) for role, column in mapping.items()}
    skipped = []
    good = []
    for line, fields in records:
        if len(fields) > len(header) and not any(f.strip() for f in fields[len(header) :]):
            fields = fields[: len(header)]  # trailing empty cells
        if len(fields) != len(header):
            skipped.append((line, f"wrong number of fields (header has {len(header)})"))
        else:
            good.append((line, fields))
    table = pd.DataFrame(
        {role: [fields[i].strip() for _, fields in good] for role, i in index.items()}
        | {"line": [line for line, _ in good]},
        dtype=object,
    )
    table = table.astype({role: str for role in index} | {"line": np.int64})
    return name, mapping, table, skipped, len(records)


# --- values --------------------------------------------------------------------------


def _parse_dates(values: pd.Series, lines: pd.Series, column: str, name: str) -> pd.Series:
    """Parse one date column in the single format its values use; NaT for blank or bad.

    The format is decided from the whole column: ISO 8601 (``2024-03-05``, optionally
    with a time and an offset, converted to UTC and stored without a zone) or
    ``M/D/YYYY`` (optionally with ``H:MM[:SS] [AM|PM]``). A column that mixes the two, or
    whose slashed dates put the day first, is refused rather than half-misread.
    """
    iso = values.str.match(_ISO)
    mdy = values.str.match(_MDY)
    if iso.any() and mdy.any():
        i, m = iso.idxmax(), mdy.idxmax()
        raise CrmError(
            [
                f"{name}: column {column!r} mixes ISO dates (line {lines[i]}: {quoted(values[i])}) and M/D/YYYY "
                f"dates (line {lines[m]}: {quoted(values[m])}); use one date format per column"
            ]
        )
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if iso.any():
        parsed = pd.to_datetime(values[iso], format="ISO8601", utc=True, errors="coerce")
        out[iso] = parsed.dt.tz_localize(None).astype("datetime64[us]")
    elif mdy.any():
        parts = values[mdy].str.extract(_MDY)
        day_first = pd.to_numeric(parts["month"]) > 12
        if day_first.any():
            i = day_first.idxmax()
            raise CrmError(
                [
                    f"{name}: column {column!r} has day/month/year dates (line {lines[i]}: {quoted(values[i])}); "
                    "only ISO (2024-03-05) and M/D/YYYY dates are read, so convert the column to ISO"
                ]
            )
        numbers = parts[["year", "month", "day", "hour", "minute", "second"]].apply(pd.to_numeric).fillna(0)
        ampm = parts["ampm"].str.lower()
        # pandas carries an hour of 25 or a minute of 60 over into the next day or hour;
        # such a time is a typo, so the row is skipped rather than moved.
        bad_clock = (ampm.notna() & ~numbers["hour"].between(1, 12)) | (numbers["hour"] > 23)
        bad_clock |= (numbers["minute"] > 59) | (numbers["second"] > 59)
        numbers["hour"] = numbers["hour"].where(ampm.isna(), numbers["hour"] % 12 + 12 * (ampm == "pm"))
        parsed = pd.to_datetime(numbers, errors="coerce").astype("datetime64[us]")
        out[mdy] = parsed.where(~bad_clock)
    return out


def _latest_date() -> pd.Timestamp:
    """The last plausible date: :data:`YEARS_AHEAD` years from today, and never after 2100."""
    ahead = pd.Timestamp.today().normalize() + pd.DateOffset(years=YEARS_AHEAD)
    return min(ahead, pd.Timestamp("2100-12-31"))


def _implausible(dates: pd.Series) -> pd.Series:
    """Dates that parse but cannot be real: before :data:`EARLIEST_DATE` or after :func:`_latest_date`."""
    return dates.notna() & ((dates < EARLIEST_DATE) | (dates > _latest_date()))


def _implausible_reason(column: str) -> str:
    return f"implausible date in {column} (before {EARLIEST_DATE:%Y} or after {_latest_date():%Y})"


def _parse_amounts(values: pd.Series) -> pd.Series:
    """Numbers from amount cells: a currency sign and US thousands commas are allowed."""
    cleaned = values.str.replace(_CURRENCY, "", regex=True).str.strip()
    cleaned = cleaned.where(~cleaned.str.match(_THOUSANDS), cleaned.str.replace(",", "", regex=False))
    return pd.to_numeric(cleaned, errors="coerce").astype(float)


class _Reasons:
    """The first reason each row is bad, in the order checks are made."""

    def __init__(self, index: pd.Index):
        self.reason = pd.Series("", index=index, dtype=object)

    def flag(self, mask: pd.Series, reason: str) -> None:
        self.reason[mask & (self.reason == "")] = reason

    @property
    def ok(self) -> pd.Series:
        return self.reason == ""

    def skipped(self, lines: pd.Series) -> list[tuple[int, str]]:
        bad = ~self.ok
        return [(int(line), str(reason)) for line, reason in zip(lines[bad], self.reason[bad], strict=True)]


def _no_usable_rows(name: str, rows_read: int, skipped: list[tuple[int, str]]) -> CrmError:
    if rows_read == 0:
        return CrmError([f"{name}: no data rows below the header"])
    counts = Counter(reason for _, reason in skipped).most_common(3)
    reasons = "; ".join(f"{reason} ({counted(count, 'row')})" for reason, count in counts)
    every = "the only row was" if rows_read == 1 else f"all {counted(rows_read, 'row')} were"
    return CrmError([f"{name}: no usable rows: {every} skipped; most common reasons: {reasons}"])


# --- the readers ---------------------------------------------------------------------


def read_deals(source: Any, columns: dict[str, str] | None = None) -> CrmData:
    """Read a CRM export of opportunities, one row per deal.

    Parameters
    ----------
    source : str, Path, bytes or file-like
        The CSV file (UTF-8; comma, semicolon or tab separated), its bytes (an upload),
        or an open binary or text file.
    columns : dict, optional
        Role -> column name, overriding recognition for those roles (see
        :func:`parse_column_options`). Roles: id, created, closed, outcome, amount,
        owner (optional), segment (optional, only when named).

    Returns
    -------
    CrmData

    Raises
    ------
    CrmError
        For a file that cannot be used as a whole. Bad rows are skipped and listed in
        :attr:`CrmData.skipped` instead: blank id, duplicate id (the first row with an
        id is kept, whether or not it is usable), blank outcome, blank or unparseable
        create date, won/lost without a close date or with an unparseable one, close
        before create, non-numeric or negative amount, won deal without an amount.

    Notes
    -----
    ``won``/``closed won``/``closedwon`` (any case) mean won, the same for lost; any other
    outcome is an open deal in the stage of that name. An open deal's close date is
    ignored (Salesforce fills it with the expected close date).
    """
    name, mapping, table, skipped, rows_read = _load_table(source, columns, _DEAL_ALIASES, REQUIRED_DEAL_ROLES)
    lines = table["line"]
    reasons = _Reasons(table.index)

    ids = table["id"]
    reasons.flag(ids == "", f"blank id ({mapping['id']})")
    reasons.flag(ids.duplicated() & (ids != ""), "duplicate id")

    stage = table["outcome"]
    key = stage.str.casefold().str.replace(r"[^0-9a-z]", "", regex=True)
    outcome = pd.Series(np.where(key.isin(_WON), "won", np.where(key.isin(_LOST), "lost", "open")), index=table.index)
    reasons.flag(stage == "", f"blank outcome ({mapping['outcome']})")

    created = _parse_dates(table["created"], lines, mapping["created"], name)
    reasons.flag(table["created"] == "", f"blank date in {mapping['created']}")
    reasons.flag(created.isna(), f"unparseable date in {mapping['created']}")
    reasons.flag(_implausible(created), _implausible_reason(mapping["created"]))

    is_closed = outcome != "open"
    closed = _parse_dates(table["closed"], lines, mapping["closed"], name)
    reasons.flag(is_closed & (table["closed"] == ""), "won/lost without close date")
    reasons.flag(is_closed & closed.isna(), f"unparseable date in {mapping['closed']}")
    reasons.flag(is_closed & _implausible(closed), _implausible_reason(mapping["closed"]))
    reasons.flag(is_closed & (closed < created), "close date before create date")
    closed = closed.where(is_closed)

    amount = _parse_amounts(table["amount"])
    blank_amount = table["amount"] == ""
    reasons.flag(~blank_amount & ~np.isfinite(amount), f"non-numeric amount in {mapping['amount']}")
    reasons.flag(amount < 0, f"negative amount in {mapping['amount']}")
    reasons.flag(amount > MAX_VALUE, f"amount above {MAX_VALUE:g} (a trillion) in {mapping['amount']}")
    reasons.flag(blank_amount & (outcome == "won"), f"won deal without amount in {mapping['amount']}")

    skipped = sorted(skipped + reasons.skipped(lines))
    ok = reasons.ok
    if not ok.any():
        raise _no_usable_rows(name, rows_read, skipped)
    owner = table["owner"] if "owner" in mapping else pd.Series("", index=table.index)
    deals = pd.DataFrame(
        {
            "id": ids[ok].astype(str),
            "created": created[ok],
            "closed": closed[ok],
            "outcome": outcome[ok].astype(str),
            "stage": stage[ok].where(outcome[ok] == "open", "").astype(str),
            "amount": amount[ok],
            "owner": owner[ok].astype(str),
        }
    ).reset_index(drop=True)
    if "segment" in mapping:
        deals["segment"] = table["segment"][ok].astype(str).to_numpy()
    return CrmData(deals=deals, mapping=mapping, skipped=skipped, rows_read=rows_read, source=name)


def read_stage_history(source: Any, columns: dict[str, str] | None = None, deals: Any = None) -> pd.DataFrame:
    """Read an optional stage-history export: which stage each deal entered, and when.

    Parameters
    ----------
    source : str, Path, bytes or file-like
        The CSV file, as for :func:`read_deals`.
    columns : dict, optional
        Role -> column name for the roles id, stage and entered.
    deals : CrmData, DataFrame with an ``id`` column, or iterable of ids, optional
        The deals read from the main export; history rows for other ids are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (str), ``stage`` (str) and ``entered`` (datetime64), sorted by id
        then date. ``attrs`` holds ``mapping``, ``skipped`` (``(line, reason)`` pairs),
        ``rows_read`` and ``report`` (as :meth:`CrmData.report`), since a DataFrame has no
        other place for them.

    Raises
    ------
    CrmError
        As :func:`read_deals`, for the file as a whole.
    """
    name, mapping, table, skipped, rows_read = _load_table(source, columns, _HISTORY_ALIASES, HISTORY_ROLES)
    lines = table["line"]
    reasons = _Reasons(table.index)
    reasons.flag(table["id"] == "", f"blank id ({mapping['id']})")
    reasons.flag(table["stage"] == "", f"blank stage ({mapping['stage']})")
    reasons.flag(
        table["stage"].str.len() > STAGE_NAME_CHARS,
        f"stage name longer than {STAGE_NAME_CHARS} characters ({mapping['stage']})",
    )
    entered = _parse_dates(table["entered"], lines, mapping["entered"], name)
    reasons.flag(table["entered"] == "", f"blank date in {mapping['entered']}")
    reasons.flag(entered.isna(), f"unparseable date in {mapping['entered']}")
    reasons.flag(_implausible(entered), _implausible_reason(mapping["entered"]))
    if deals is not None:
        if isinstance(deals, CrmData):
            known = set(deals.deals["id"])
        elif isinstance(deals, pd.DataFrame):
            known = set(deals["id"].astype(str))
        else:
            known = {str(i) for i in deals}
        reasons.flag(~table["id"].isin(known), "id not among the deals")
    skipped = sorted(skipped + reasons.skipped(lines))
    ok = reasons.ok
    if not ok.any():
        raise _no_usable_rows(name, rows_read, skipped)
    history = (
        pd.DataFrame(
            {"id": table["id"][ok].astype(str), "stage": table["stage"][ok].astype(str), "entered": entered[ok]}
        )
        .sort_values(["id", "entered"], kind="stable")
        .reset_index(drop=True)
    )
    history.attrs.update(
        mapping=mapping,
        skipped=skipped,
        rows_read=rows_read,
        report=skipped_report(rows_read, len(history), skipped),
    )
    return history

"""Reading CRM exports: recognised headers, dates, bad rows by line, and whole-file errors."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from sim.crm import reader as crm
from sim.crm.reader import (
    CrmData,
    CrmError,
    parse_column_options,
    read_deals,
    read_stage_history,
    recognise_columns,
)

SALESFORCE = """Id,Name,AccountId,CreatedDate,CloseDate,StageName,Amount,OwnerId
006A,Acme renewal,001X,2024-01-05,2024-02-10,Closed Won,12000,005U
006B,Globex pilot,001Y,2024-01-20,2024-03-01,Closed Lost,,005U
006C,Initech,001Z,2024-02-01,2024-06-30,  Proposal/Price Quote ,8000,005V
"""

HUBSPOT = """Record ID,Deal Name,Deal Stage,Create Date,Close Date,Amount,Deal owner
101,Alpha,closedwon,2024-03-05 09:30,2024-03-25 17:00,5000,Ann Lee
102,Beta,closedlost,2024-03-06 10:00,2024-03-07 10:00,,Bo Chen
103,Gamma,appointmentscheduled,2024-03-07 11:00,,,Ann Lee
"""

SNAKE = """deal_id,created_at,closed_at,status,value,owner_id
d1,3/5/2024,3/20/2024,won,100.5,o1
d2,3/6/2024,,Negotiation,,o2
d3,12/31/2023,1/2/2024,LOST,0,o1
"""


def write(tmp_path, text: str | bytes, name: str = "deals.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(error: pytest.ExceptionInfo) -> str:
    return "\n".join(error.value.problems)


# --- recognised exports --------------------------------------------------------------


def test_salesforce_export(tmp_path):
    data = read_deals(write(tmp_path, SALESFORCE))
    assert isinstance(data, CrmData)
    assert data.mapping == {
        "id": "Id",
        "created": "CreatedDate",
        "closed": "CloseDate",
        "outcome": "StageName",
        "amount": "Amount",
        "owner": "OwnerId",
    }
    deals = data.deals
    assert list(deals.columns) == ["id", "created", "closed", "outcome", "stage", "amount", "owner"]
    assert list(deals["id"]) == ["006A", "006B", "006C"]
    assert list(deals["outcome"]) == ["won", "lost", "open"]
    assert list(deals["stage"]) == ["", "", "Proposal/Price Quote"]
    assert deals["created"].iloc[0] == pd.Timestamp("2024-01-05")
    assert deals["closed"].iloc[0] == pd.Timestamp("2024-02-10")
    # An open Salesforce deal's CloseDate is its expected close date: not a close.
    assert pd.isna(deals["closed"].iloc[2])
    assert deals["amount"].iloc[0] == 12000 and np.isnan(deals["amount"].iloc[1])
    assert list(deals["owner"]) == ["005U", "005U", "005V"]
    assert pd.api.types.is_datetime64_dtype(deals["created"]) and pd.api.types.is_datetime64_dtype(deals["closed"])
    assert deals["amount"].dtype == float
    assert data.skipped == [] and data.rows_read == 3


def test_hubspot_export(tmp_path):
    data = read_deals(write(tmp_path, HUBSPOT))
    assert data.mapping == {
        "id": "Record ID",
        "created": "Create Date",
        "closed": "Close Date",
        "outcome": "Deal Stage",
        "amount": "Amount",
        "owner": "Deal owner",
    }
    deals = data.deals
    assert list(deals["outcome"]) == ["won", "lost", "open"]
    assert list(deals["stage"]) == ["", "", "appointmentscheduled"]
    assert deals["created"].iloc[0] == pd.Timestamp("2024-03-05 09:30")
    assert deals["closed"].iloc[0] == pd.Timestamp("2024-03-25 17:00")
    assert list(deals["id"]) == ["101", "102", "103"]  # ids stay text


def test_snake_case_export_with_us_dates(tmp_path):
    data = read_deals(write(tmp_path, SNAKE))
    assert data.mapping == {
        "id": "deal_id",
        "created": "created_at",
        "closed": "closed_at",
        "outcome": "status",
        "amount": "value",
        "owner": "owner_id",
    }
    deals = data.deals
    assert list(deals["outcome"]) == ["won", "open", "lost"]
    assert list(deals["created"]) == [
        pd.Timestamp("2024-03-05"),
        pd.Timestamp("2024-03-06"),
        pd.Timestamp("2023-12-31"),
    ]
    assert deals["closed"].iloc[2] == pd.Timestamp("2024-01-02")
    assert list(deals["amount"].fillna(-1)) == [100.5, -1, 0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["opportunity_id", "create_date", "close_date", "stage_name", "amount", "owner"],
            ["opportunity_id", "create_date", "close_date", "stage_name", "amount", "owner"],
        ),
        (
            ["Record ID", "Create Date", "Close Date", "Deal Stage", "Amount", "Deal Owner"],
            ["Record ID", "Create Date", "Close Date", "Deal Stage", "Amount", "Deal Owner"],
        ),
        (["ID", "CREATEDDATE", "closedate", "Stage", "Value"], ["ID", "CREATEDDATE", "closedate", "Stage", "Value"]),
    ],
)
def test_recognise_columns(header, expected):
    mapping = recognise_columns(header)
    assert [mapping[role] for role in crm.DEAL_ROLES if role in mapping] == expected


def test_recognise_columns_leaves_unknown_roles_out():
    assert recognise_columns(["Name", "Amount"]) == {"amount": "Amount"}


def test_outcome_spellings(tmp_path):
    text = "id,created,closed,outcome,amount\n" + "".join(
        f"{i},2024-01-01,2024-01-02,{outcome},1\n"
        for i, outcome in enumerate(["won", " WON ", "Closed Won", "closedwon", "lost", "Closed  Lost", "CLOSEDLOST"])
    )
    assert list(read_deals(write(tmp_path, text)).deals["outcome"]) == ["won"] * 4 + ["lost"] * 3


# --- explicit columns ----------------------------------------------------------------


def test_explicit_mapping_overrides_recognition(tmp_path):
    text = "Id,Created,Closed,Stage,Amount,Expected Revenue,Rep\n1,2024-01-01,2024-02-01,won,100,90,ann\n"
    data = read_deals(write(tmp_path, text), columns={"amount": "expected revenue", "owner": "Rep"})
    assert data.mapping["amount"] == "Expected Revenue"
    assert data.mapping["owner"] == "Rep"
    assert data.deals["amount"].iloc[0] == 90
    assert data.deals["owner"].iloc[0] == "ann"


def test_explicit_column_is_not_reused_by_recognition(tmp_path):
    # "Amount" is claimed for the id, so no column is left for the amount role.
    text = "Amount,Created,Closed,Stage\n1,2024-01-01,2024-02-01,won\n"
    with pytest.raises(CrmError) as error:
        read_deals(write(tmp_path, text), columns={"id": "Amount"})
    assert "no column for amount" in problems(error)


def test_explicit_mapping_to_a_missing_column(tmp_path):
    with pytest.raises(CrmError) as error:
        read_deals(write(tmp_path, SALESFORCE), columns={"amount": "Revenue", "colour": "Name"})
    text = problems(error)
    assert "column 'Revenue' given for amount is not in the file" in text
    assert "columns found: Id, Name, AccountId" in text
    assert "unknown role 'colour'" in text


def test_parse_column_options():
    assert parse_column_options(["amount=Expected Revenue", "ID = Opp Id", "owner=a=b"]) == {
        "amount": "Expected Revenue",
        "id": "Opp Id",
        "owner": "a=b",
    }
    with pytest.raises(CrmError) as error:
        parse_column_options(["amount", "colour=Red", "created=", "id=A", "id=B"])
    assert error.value.problems == [
        "--column: expected ROLE=NAME, got 'amount'",
        "--column: unknown role 'colour' in 'colour=Red'; roles are id, created, closed, outcome, amount, owner, "
        "segment",
        "--column: no column name after created= in 'created='",
        "--column: role 'id' given twice ('A' and 'B')",
    ]
    assert parse_column_options(["entered=When"], roles=crm.HISTORY_ROLES) == {"entered": "When"}


# --- dates ---------------------------------------------------------------------------


def test_iso_dates_with_times_and_offsets(tmp_path):
    text = (
        "id,created,closed,outcome,amount\n"
        "1,2024-03-05,2024-03-06T10:15:00Z,won,1\n"
        "2,2024-03-05T23:00:00+02:00,2024-03-07 08:00,lost,1\n"
    )
    deals = read_deals(write(tmp_path, text)).deals
    assert deals["closed"].iloc[0] == pd.Timestamp("2024-03-06 10:15")
    assert deals["created"].iloc[1] == pd.Timestamp("2024-03-05 21:00")  # in UTC, without the zone


def test_us_dates_with_clock_times(tmp_path):
    text = (
        "id,created,closed,outcome,amount\n"
        "1,3/5/2024 9:05 AM,12/1/2024 12:30 PM,won,1\n"
        "2,03/05/2024,3/6/2024 11:59 pm,lost,1\n"
    )
    deals = read_deals(write(tmp_path, text)).deals
    assert list(deals["created"]) == [pd.Timestamp("2024-03-05 09:05"), pd.Timestamp("2024-03-05")]
    assert list(deals["closed"]) == [pd.Timestamp("2024-12-01 12:30"), pd.Timestamp("2024-03-06 23:59")]


def test_impossible_clock_times_are_skipped_not_carried_over(tmp_path):
    # pandas would read 25:00 as 01:00 the next day; a typo is not a date to move.
    text = "id,created,closed,outcome,amount\n" + "".join(
        f"{i},{created},3/1/2024,won,1\n"
        for i, created in enumerate(
            ["1/2/2024 23:59:59", "1/2/2024 25:00", "1/2/2024 10:60", "1/2/2024 10:59:60", "1/2/2024 13:00 PM"]
        )
    )
    data = read_deals(write(tmp_path, text))
    assert data.deals["created"].tolist() == [pd.Timestamp("2024-01-02 23:59:59")]
    assert data.skipped == [(line, "unparseable date in created") for line in (3, 4, 5, 6)]


def test_a_column_mixing_date_formats_is_refused(tmp_path):
    text = "id,created,closed,outcome,amount\n1,2024-03-05,,open,1\n2,2024-03-05,,open,1\n3,3/5/2024,,open,1\n"
    with pytest.raises(CrmError) as error:
        read_deals(write(tmp_path, text))
    assert error.value.problems == [
        f"{tmp_path / 'deals.csv'}: column 'created' mixes ISO dates (line 2: '2024-03-05') and M/D/YYYY dates "
        "(line 4: '3/5/2024'); use one date format per column"
    ]


def test_day_first_dates_are_refused_not_misread(tmp_path):
    text = "id,created,closed,outcome,amount\n1,05/03/2024,,open,1\n2,25/03/2024,,open,1\n"
    with pytest.raises(CrmError, match=r"column 'created' has day/month/year dates \(line 3: '25/03/2024'\)"):
        read_deals(write(tmp_path, text))


# --- bad rows ------------------------------------------------------------------------


BAD_ROWS = """id,created,closed,outcome,amount
ok1,2024-01-01,2024-02-01,won,100
,2024-01-01,2024-02-01,won,100
bad-created,2024-13-01,2024-02-01,won,100
blank-created,,2024-02-01,won,100
bad-closed,2024-01-01,soon,won,100
no-close,2024-01-01,,lost,100
backwards,2024-03-01,2024-02-01,won,100
text-amount,2024-01-01,2024-02-01,won,lots
negative,2024-01-01,2024-02-01,lost,-5
won-no-amount,2024-01-01,2024-02-01,won,
ok1,2024-01-01,2024-02-01,won,999
no-outcome,2024-01-01,2024-02-01,,100
short,2024-01-01

ok2,2024-01-01,,Discovery,
ok3,2024-01-01,2024-01-01,lost,
ok4,2024-01-01,2024-05-01,won,"$1,250.00"
"""


def test_every_bad_row_kind_is_skipped_with_its_line(tmp_path):
    data = read_deals(write(tmp_path, BAD_ROWS))
    assert data.skipped == [
        (3, "blank id (id)"),
        (4, "unparseable date in created"),
        (5, "blank date in created"),
        (6, "unparseable date in closed"),
        (7, "won/lost without close date"),
        (8, "close date before create date"),
        (9, "non-numeric amount in amount"),
        (10, "negative amount in amount"),
        (11, "won deal without amount in amount"),
        (12, "duplicate id"),
        (13, "blank outcome (outcome)"),
        (14, "wrong number of fields (header has 5)"),
    ]
    deals = data.deals
    assert list(deals["id"]) == ["ok1", "ok2", "ok3", "ok4"]
    assert deals["amount"].iloc[0] == 100  # the first ok1 is kept
    assert np.isnan(deals["amount"].iloc[1]) and np.isnan(deals["amount"].iloc[2])  # open, lost: blank is fine
    assert deals["amount"].iloc[3] == 1250
    report = data.report()
    assert report["rows_read"] == 16 and report["rows_used"] == 4 and report["skipped"] == 12
    assert report["skipped_by_reason"]["duplicate id"] == {"count": 1, "lines": [12]}


def test_line_numbers_count_multiline_fields_and_blank_lines(tmp_path):
    text = 'id,name,created,closed,outcome,amount\n1,"two\nlines",2024-01-01,,open,\n\n2,x,nope,,open,\n'
    assert read_deals(write(tmp_path, text)).skipped == [(5, "unparseable date in created")]


def test_report_lists_ten_lines_per_reason(tmp_path):
    text = "id,created,closed,outcome,amount\nok,2024-01-01,,open,\n" + "".join(
        f"d{i},2024-01-01,,won,1\n" for i in range(15)
    )
    report = read_deals(write(tmp_path, text)).report()
    entry = report["skipped_by_reason"]["won/lost without close date"]
    assert entry == {"count": 15, "lines": list(range(3, 13))}


# --- whole-file errors ---------------------------------------------------------------


def test_missing_required_column_names_the_role_and_the_columns(tmp_path):
    text = "Id,Name,CloseDate,StageName,Amount\n1,a,2024-01-01,won,1\n"
    with pytest.raises(CrmError) as error:
        read_deals(write(tmp_path, text))
    (line,) = error.value.problems
    assert "no column for created (the date each deal was created)" in line
    assert "columns found: Id, Name, CloseDate, StageName, Amount" in line
    assert "--column created=NAME" in line


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CrmError, match="no such file"):
        read_deals(tmp_path / "nope.csv")
    with pytest.raises(CrmError, match="is a directory"):
        read_deals(tmp_path)


def test_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(crm, "MAX_CSV_BYTES", 100)
    path = write(tmp_path, SALESFORCE)
    with pytest.raises(CrmError, match="larger than 100 bytes"):
        read_deals(path)
    with pytest.raises(CrmError, match="upload: file is larger than 100 bytes"):
        read_deals(SALESFORCE.encode())
    with pytest.raises(CrmError, match="larger than 100 bytes"):
        read_deals(io.BytesIO(SALESFORCE.encode()))


@pytest.mark.parametrize("content", [b"", b"  \n\n \r\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(CrmError, match="the file is empty"):
        read_deals(write(tmp_path, content))


def test_header_only(tmp_path):
    with pytest.raises(CrmError, match="no data rows below the header"):
        read_deals(write(tmp_path, "id,created,closed,outcome,amount\n"))


def test_no_usable_rows_says_how_many_and_why(tmp_path):
    text = "id,created,closed,outcome,amount\n" + "1,x,,open,\n2,y,,open,\n3,2024-01-01,,won,5\n"
    with pytest.raises(CrmError) as error:
        read_deals(write(tmp_path, text))
    assert error.value.problems == [
        f"{tmp_path / 'deals.csv'}: no usable rows: all 3 rows were skipped; most common reasons: "
        "unparseable date in created (2 rows); won/lost without close date (1 row)"
    ]


def test_a_column_named_twice_in_the_header_is_refused():
    with pytest.raises(CrmError) as error:
        read_deals(b"Id,Created,Closed,Stage,Amount,Amount\n1,2024-01-01,,open,1,2\n")
    assert error.value.problems == ["upload: column 'Amount' (for amount) appears 2 times in the header"]


def test_malformed_csv_names_the_line():
    # A quote left open swallows the rest of the file into one field, past the csv limit.
    text = 'id,created,closed,outcome,amount\n1,2024-01-01,,open,\n2,"' + "x" * 200_000 + "\n"
    with pytest.raises(CrmError, match=r"^upload: line 3: malformed CSV \(field larger than field limit"):
        read_deals(text.encode())


def test_not_utf8(tmp_path):
    content = "id,created,closed,outcome,amount\n1,2024-01-01,,Café,\n".encode("latin-1")
    with pytest.raises(CrmError, match="not a UTF-8 text file"):
        read_deals(write(tmp_path, content))


# --- sources and formats -------------------------------------------------------------


def test_bytes_and_file_like_sources():
    expected = read_deals(SNAKE.encode()).deals
    assert expected["id"].tolist() == ["d1", "d2", "d3"]
    pd.testing.assert_frame_equal(read_deals(io.BytesIO(SNAKE.encode())).deals, expected)
    pd.testing.assert_frame_equal(read_deals(io.StringIO(SNAKE)).deals, expected)
    assert read_deals(bytearray(SNAKE.encode())).source == "upload"


def test_byte_order_mark_and_semicolons(tmp_path):
    text = (
        "\ufeffId;CreatedDate;CloseDate;StageName;Amount\n"
        "1;2024-01-01;2024-01-09;Closed Won;12.5\n"
        "2;2024-01-01;2024-01-09;Closed Won;12,5\n"
    )
    data = read_deals(write(tmp_path, text))
    assert data.mapping["id"] == "Id"
    assert data.deals["amount"].tolist() == [12.5]
    assert data.deals["closed"].iloc[0] == pd.Timestamp("2024-01-09")
    # "12,5" is a European decimal, not a US thousands group: refused rather than misread.
    assert data.skipped == [(3, "non-numeric amount in Amount")]


# --- stage history -------------------------------------------------------------------


HISTORY = """Id,OpportunityId,StageName,CreatedDate
h1,006A,Proposal,2024-01-20
h2,006A,Qualification,2024-01-05
h3,006Z,Proposal,2024-01-06
h4,006C,,2024-02-02
h5,006C,Discovery,someday
h6,006C,Discovery,2024-02-01
"""


def test_stage_history(tmp_path):
    deals = read_deals(write(tmp_path, SALESFORCE))
    history = read_stage_history(write(tmp_path, HISTORY, "history.csv"), deals=deals)
    assert list(history.columns) == ["id", "stage", "entered"]
    assert history.attrs["mapping"] == {"id": "OpportunityId", "stage": "StageName", "entered": "CreatedDate"}
    assert history.values.tolist() == [
        ["006A", "Qualification", pd.Timestamp("2024-01-05")],
        ["006A", "Proposal", pd.Timestamp("2024-01-20")],
        ["006C", "Discovery", pd.Timestamp("2024-02-01")],
    ]
    assert history.attrs["skipped"] == [
        (4, "id not among the deals"),
        (5, "blank stage (StageName)"),
        (6, "unparseable date in CreatedDate"),
    ]
    assert history.attrs["report"]["rows_used"] == 3


def test_stage_history_without_deals_and_with_explicit_columns(tmp_path):
    text = "deal,step,when\nA,One,1/2/2024\nB,Two,1/3/2024\n"
    history = read_stage_history(text.encode(), columns={"id": "deal", "stage": "step", "entered": "when"})
    assert history["entered"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    with pytest.raises(CrmError, match="no column for entered"):
        read_stage_history(text.encode(), columns={"id": "deal", "stage": "step"})

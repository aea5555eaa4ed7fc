"""The CRM reader against implausible values and files that are not files.

Dates that cannot be real (before 1990, or years ahead: ``0001-01-01``, ``9999-12-31``)
and amounts that would overflow (above a trillion) are skipped like other bad rows, with
their line numbers; a history's stage name too long for a scenario likewise. A FIFO, a
device or a directory is refused with one line naming it, without waiting or reading on.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from sim.crm.reader import CrmError, read_deals, read_stage_history
from sim.errors import read_limited

HEADER = "Id,CreatedDate,CloseDate,StageName,Amount\n"
GOOD = "1,2024-01-02,2024-02-01,Closed Won,1000\n2,2024-01-03,,Proposal,\n"


def skipped(text: str) -> dict[int, str]:
    return dict(read_deals(text.encode()).skipped)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("9,0001-01-01,2024-02-01,Closed Won,10", "implausible date in CreatedDate (before 1990"),
        ("9,1989-12-31,2024-02-01,Closed Lost,10", "implausible date in CreatedDate"),
        ("9,2024-01-01,9999-12-31,Closed Won,10", "implausible date in CloseDate"),
        ("9,2101-01-01,2101-02-01,Closed Won,10", "implausible date in CreatedDate"),
        ("9,1/2/0001,,Proposal,", "implausible date in CreatedDate"),
        ("9,2024-01-01,2024-02-01,Closed Won,1e308", "amount above 1e+12 (a trillion) in Amount"),
        ("9,2024-01-01,2024-02-01,Closed Won,1000000000001", "amount above 1e+12"),
        ("9,2024-01-01,2024-02-01,Closed Won,inf", "non-numeric amount in Amount"),
    ],
)
def test_implausible_rows_are_skipped_with_their_line(row, reason):
    text = HEADER + GOOD + row + "\n"
    if row.split(",")[1].startswith("1/"):  # one date format per column
        text = text.replace("2024-01-02", "1/2/2024").replace("2024-01-03", "1/3/2024")
    assert skipped(text)[4].startswith(reason)


def test_an_open_deal_keeps_a_far_expected_close_date():
    # Salesforce fills an open deal's close date with the expected one: it is not read.
    deals = read_deals((HEADER + GOOD + "9,2024-01-01,9999-12-31,Proposal,10\n").encode()).deals
    assert "9" in set(deals["id"])


def test_plausible_edges_are_kept():
    text = HEADER + "1,1990-01-01,1990-02-01,Closed Won,1000000000000\n"
    deals = read_deals(text.encode()).deals
    assert deals["created"][0] == pd.Timestamp("1990-01-01") and deals["amount"][0] == 1e12


def test_a_stage_name_too_long_for_a_scenario_is_a_skipped_history_row():
    history = "OpportunityId,StageName,EnteredDate\n1,Qualify,2024-01-02\n1," + "Q" * 81 + ",2024-01-05\n"
    read = read_stage_history(history.encode(), deals=["1"])
    assert read.attrs["skipped"] == [(3, "stage name longer than 80 characters (StageName)")]


def test_files_that_are_not_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opened for reading, a FIFO waits for a writer: it must not be opened
    with pytest.raises(CrmError, match=r"fifo: is a FIFO \(named pipe\), not a CSV file$"):
        read_deals(fifo)
    with pytest.raises(CrmError, match=r"^/dev/zero: is a device, not a CSV file$"):
        read_deals("/dev/zero")
    with pytest.raises(CrmError, match="is a directory, not a CSV file"):
        read_deals(tmp_path)


def test_read_limited_reads_one_byte_past_the_limit_whatever_the_size_says(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"x" * 10)
    assert read_limited(path, 10, "a file") == b"x" * 10
    with pytest.raises(ValueError, match=r"file: file is larger than 9 bytes"):
        read_limited(path, 9, "a file")
    link = tmp_path / "link"
    link.symlink_to(path)  # a link to a regular file is that file
    assert read_limited(link, 10, "a file") == b"x" * 10

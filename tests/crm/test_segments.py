"""Calibration and backtests by segment (issue 15): a world per territory, each with its own truth.

Two territories with different win rates (EMEA 0.35, Americas 0.18) and a tiny one (APAC,
half a deal a week, so fewer than 30 wins in a year) are drawn by :class:`tests.crm_synth.World`
and exported together with a ``Territory`` column; every 97th deal has its territory
blank. Each territory's calibrated rate is checked within ``Z`` binomial standard errors
of its own truth (recency weighting off, so every closed deal counts once and the
binomial SE of the closed count holds), and the tiny one must be pooled into ``other``.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sim.cli import main
from sim.crm.calibrate import write_scenario
from sim.crm.reader import CrmError, read_deals
from sim.crm.segments import MIN_SEGMENT_WINS, OTHER, calibrate_segments, segment_lines
from sim.model.scenario import load_scenario
from tests.conftest import Z
from tests.crm_synth import World, export_frame

AS_OF = "2024-06-01"
WORLDS = {
    "EMEA": (World(per_week=20, p=0.35, start="2023-06-01"), 1),
    "Americas": (World(per_week=15, p=0.18, start="2023-06-01"), 2),
    "APAC": (World(per_week=0.5, p=0.3, start="2023-06-01"), 3),
}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    frames = []
    for name, (world, seed) in WORLDS.items():
        frame = export_frame(world.deals(AS_OF, seed=seed), AS_OF)
        frame["Territory"] = name
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.loc[table.index[::97], "Territory"] = ""
    path = tmp_path_factory.mktemp("segments") / "deals.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def calibrated(export):
    crm = read_deals(export, {"segment": "Territory"})
    return crm, calibrate_segments(crm, AS_OF, half_life_weeks=None)


def test_each_territory_gets_its_own_rate_within_its_standard_error(calibrated):
    _, result = calibrated
    parts = {part.name: part for part in result.parts}
    assert list(parts) == ["EMEA", "Americas", OTHER]  # most deals first, the pool last
    for name in ("EMEA", "Americas"):
        part, truth = parts[name], WORLDS[name][0]
        closed = part.counts["won"] + part.counts["lost"]
        rate = part.scenario.stages[0].conversion.mean()
        assert abs(rate - truth.p) <= Z * math.sqrt(truth.p * (1 - truth.p) / closed), (name, rate, closed)
        assert part.own_funnel and part.values == (name,)
        zombies = part.calibration.report.open_pipeline.zombies  # old open deals, left out as lost
        assert len(part.scenario.open_deals) == part.counts["open"] - zombies > 0
    # The two rates are told apart: 0.35 and 0.18 are many standard errors from each other.
    assert parts["EMEA"].scenario.stages[0].conversion.mean() > parts["Americas"].scenario.stages[0].conversion.mean()


def test_the_thin_territory_and_the_blanks_are_pooled_into_other_and_said_so(calibrated):
    crm, result = calibrated
    other = result.parts[-1]
    assert other.name == OTHER and other.values == ("APAC",)
    assert result.pooling.thin == {"APAC": other.counts["won"] - _blank_wins(crm)}
    assert result.pooling.thin["APAC"] < MIN_SEGMENT_WINS
    blank = (crm.deals["segment"] == "").sum()
    assert result.pooling.blank == blank > 0
    assert other.counts["known"] == (crm.deals["segment"].isin(["APAC", ""])).sum()
    lines = segment_lines(result)
    assert f"1 segment with fewer than {MIN_SEGMENT_WINS} won deals is pooled into other: APAC." in lines
    assert f"{blank} deals with no segment value are in other." in lines
    # Too few wins for a funnel of its own: the whole export's stages, its own inflow and open deals.
    assert not other.own_funnel and other.counts["won"] < MIN_SEGMENT_WINS
    assert other.scenario.stages == result.whole.scenario.stages
    assert 0 < other.scenario.inflow.per_week < 0.1 * result.whole.scenario.inflow.per_week
    assert {d.name for d in other.scenario.open_deals} <= set(
        crm.deals.loc[crm.deals["segment"].isin(["APAC", ""]), "id"]
    )


def _blank_wins(crm) -> int:
    deals = crm.deals
    return int(((deals["segment"] == "") & (deals["outcome"] == "won") & (deals["closed"] <= AS_OF)).sum())


def test_one_scenario_with_the_total_quota_the_sum_of_the_segments_and_it_round_trips(calibrated, tmp_path):
    _, result = calibrated
    scenario = result.scenario
    assert [s.name for s in scenario.segments] == [p.name for p in result.parts]
    assert scenario.open_deals == () and scenario.horizon_days == 91
    paces = sum(s.quota.revenue for s in scenario.segments)
    assert scenario.quota.revenue == pytest.approx(paces, abs=0.01 * len(scenario.segments))
    assert load_scenario(write_scenario(scenario, tmp_path / "s.toml")) == scenario
    # Each segment as its own scenario keeps its own funnel; the segments' open deals are all the export's.
    assert scenario.segment(0).stages[0].conversion == result.parts[0].scenario.stages[0].conversion
    listed = [d.name for s in scenario.segments for d in s.open_deals]
    open_ids = set(result.whole.snapshot.open["id"])
    assert len(listed) == len(set(listed)) and set(listed) <= open_ids and len(listed) > 0.9 * len(open_ids)


def test_a_given_quota_is_the_total_and_segments_then_have_none(calibrated):
    crm, _ = calibrated
    result = calibrate_segments(crm, AS_OF, half_life_weeks=None, quota_revenue=5e6, groups={"EMEA": ("EMEA",)})
    assert result.scenario.quota.revenue == 5e6 and all(s.quota is None for s in result.scenario.segments)
    assert all(part.as_dict()["quota"] is None for part in result.parts)
    # A grouping given is kept: everything else (Americas, APAC, the blanks) is the pool, with wins enough of its own.
    assert [p.name for p in result.parts] == ["EMEA", OTHER] and result.parts[1].own_funnel
    assert set(result.parts[1].values) == {"Americas", "APAC"}


def test_calibrate_command_writes_segments_and_reports_each(export, tmp_path, capsys):
    out = tmp_path / "org.toml"
    args = ["calibrate", str(export), "--column", "segment=Territory", "--as-of", AS_OF, "-o", str(out)]
    assert main([*args, "--half-life-weeks", "none", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["segment_column"] == "Territory" and answer["columns"]["segment"] == "Territory"
    assert [s["name"] for s in answer["segments"]] == ["EMEA", "Americas", OTHER]
    assert answer["pooled"]["thin"].keys() == {"APAC"} and answer["segments"][2]["funnel"] == "whole export"
    assert answer["segments"][0]["report"]["counts"]["won"] == answer["segments"][0]["counts"]["won"]
    assert len(load_scenario(out).segments) == 3
    assert main([*args, "--half-life-weeks", "none", "--force"]) == 0
    text = capsys.readouterr().out
    assert "Segments by Territory (3)" in text and "is pooled into other: APAC." in text
    assert "  EMEA: " in text and "win rate 3" in text


def test_a_segment_column_not_in_the_file_is_one_line(export, tmp_path, capsys):
    with pytest.raises(CrmError, match="column 'Region' given for segment is not in the file"):
        read_deals(export, {"segment": "Region"})
    args = ["calibrate", str(export), "--column", "segment=Region", "--as-of", AS_OF, "-o", str(tmp_path / "o.toml")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Region" in err[0] and "Territory" in err[0]


def test_without_a_segment_column_a_file_reads_as_before(export):
    crm = read_deals(export)
    assert "segment" not in crm.mapping and "segment" not in crm.deals


def test_backtest_reports_each_segment_and_the_total(export, capsys):
    args = ["backtest", str(export), "--column", "segment=Territory", "--as-of", "2024-01-15", "--as-of", "2024-02-15"]
    args += ["--horizon-days", "60", "--runs", "200", "--half-life-weeks", "none"]
    assert main([*args, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["segment_column"] == "Territory"
    segments = answer["segments"]
    assert [s["name"] for s in segments] == ["EMEA", "Americas", OTHER]
    for k, row in enumerate(answer["dates"]):
        # The segments partition the deals: their actuals add up to the total's.
        assert sum(s["dates"][k]["actual"]["deals"] for s in segments) == row["actual"]["deals"]
        assert sum(s["dates"][k]["actual"]["revenue"] for s in segments) == pytest.approx(row["actual"]["revenue"])
        assert row["forecast"]["revenue"]["p50"] >= max(s["dates"][k]["forecast"]["revenue"]["p50"] for s in segments)
    for s in segments:
        assert 0 <= s["coverage"] <= 1 and "skill" in s and s["pit"]["revenue"]["values"]
    # The text report: a line per segment and the total's, coverage in words.
    assert main(args) == 0
    text = capsys.readouterr().out
    table = text[text.index("By segment (Territory") :].splitlines()
    assert [line.split()[0] for line in table[2:]] == ["EMEA", "Americas", OTHER, "Total"]
    assert all("times in 2" in line or "time in 2" in line for line in table[2:])

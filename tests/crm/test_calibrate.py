"""Calibration from synthetic CRM exports whose truth is known (tests/crm_synth.py).

Recovered parameters are checked within ``Z`` standard errors, each SE from a closed
form for the counts it rests on: Poisson for the inflow, binomial for the win rate, and
the lognormal MLE of a mean (Var(mu) = s^2/n, Var(s) = s^2/(2n), delta method) for
durations and amounts, with n the complete observations (open deals add information,
so this SE is if anything too wide).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.crm.calibrate import (
    OPEN_STAGE,
    CalibrationError,
    calibrate,
    naive_duration_fit,
    snapshot,
    stage_episodes,
    stage_order,
    write_scenario,
)
from sim.crm.reader import read_deals, read_stage_history
from sim.crm.report import StageCounts
from sim.crm.rounding import rounded_number
from sim.model.funnel import aged_conversion
from sim.model.scenario import load_scenario
from tests.conftest import Z, within
from tests.crm_synth import StageWorld, World, engine_deals, export_csv, history_csv, lognormal_params
from tests.crm_worlds import YOUNG


def lognormal_mean_se(mean: float, sd: float, n: int) -> float:
    """SE of the lognormal MLE of the mean from n complete observations."""
    _, sigma = lognormal_params(mean, sd)
    return mean * sigma * math.sqrt((1 + sigma**2 / 2) / n)


@pytest.fixture(scope="module")
def world_export():
    world = World(per_week=20, start="2023-06-01")  # one year: too short for seasonality
    return world, read_deals(export_csv(world.deals("2024-06-01", seed=3), "2024-06-01").encode())


def test_calibration_recovers_the_truth(world_export):
    world, crm = world_export
    cal = calibrate(crm, "2024-06-01")
    scenario, report = cal.scenario, cal.report
    stage = scenario.stages[0]
    assert stage.name == OPEN_STAGE and len(scenario.stages) == 1
    within(scenario.inflow.per_week, world.per_week, math.sqrt(world.per_week * 13) / 13)
    assert scenario.inflow.multipliers is None and report.seasonality is None
    closed = report.counts.won + report.counts.lost
    within(stage.conversion.mean(), world.p, math.sqrt(world.p * (1 - world.p) / closed))
    assert report.won_duration.family == "lognormal"
    within(
        stage.duration.mean(), world.won_mean, lognormal_mean_se(world.won_mean, world.won_sd, cal.snapshot.won.size)
    )
    within(
        stage.lost_duration.mean(),
        world.lost_mean,
        lognormal_mean_se(world.lost_mean, world.lost_sd, cal.snapshot.lost.size),
    )
    within(
        scenario.deal_value.mean(),
        world.value_mean,
        lognormal_mean_se(world.value_mean, world.value_sd, cal.snapshot.won_amounts.size),
    )
    # Every open deal is listed with its age, amount and CRM id.
    assert len(scenario.open_deals) == report.counts.open > 0
    assert all(d.stage == OPEN_STAGE and d.amount is not None and d.name for d in scenario.open_deals)
    for fit in (report.won_duration, report.lost_duration, report.deal_value):
        assert fit.family and fit.parameters and fit.aic is not None and 0 <= fit.ks_distance <= 1
    assert report.rate.converged


def test_an_engine_made_export_calibrates_back_to_its_scenario():
    # The truth is a scenario; the SimPy engine plays a year of it out deal by deal
    # (sim.history), and calibration on what the CRM shows at the end must recover it.
    world = World(per_week=20, start="2023-06-01")
    as_of = "2024-06-01"
    span = (pd.Timestamp(as_of) - pd.Timestamp(world.start)) / pd.Timedelta(days=1)
    deals, _ = engine_deals(world.scenario(horizon_days=span), world.start, seed=21)
    cal = calibrate(read_deals(export_csv(deals, as_of).encode()), as_of)
    stage, counts = cal.scenario.stages[0], cal.report.counts
    within(cal.scenario.inflow.per_week, world.per_week, math.sqrt(world.per_week * 13) / 13)
    closed = counts.won + counts.lost
    within(stage.conversion.mean(), world.p, math.sqrt(world.p * (1 - world.p) / closed))
    within(stage.duration.mean(), world.won_mean, lognormal_mean_se(world.won_mean, world.won_sd, counts.won))
    within(stage.lost_duration.mean(), world.lost_mean, lognormal_mean_se(world.lost_mean, world.lost_sd, counts.lost))
    within(
        cal.scenario.deal_value.mean(),
        world.value_mean,
        lognormal_mean_se(world.value_mean, world.value_sd, cal.snapshot.won_amounts.size),
    )
    assert counts.open == len(cal.scenario.open_deals) == int((deals["close"].isna() | (deals["close"] > as_of)).sum())


def test_censoring_removes_the_bias_of_closed_deals_only():
    # A young pipeline: deals only started 150 days ago and take two months, give or take.
    world = World(per_week=80, won_mean=60, won_sd=50, lost_mean=45, lost_sd=40, start="2024-01-01")
    as_of = "2024-05-30"
    crm = read_deals(export_csv(world.deals(as_of, seed=4), as_of).encode())
    cal = calibrate(crm, as_of)
    naive = naive_duration_fit(cal.snapshot)
    n_won = cal.snapshot.won.size
    naive_se = lognormal_mean_se(naive.model.mean(), naive.model.std(), n_won)
    naive_gap = (world.won_mean - naive.model.mean()) / naive_se
    assert naive_gap > 2 * Z, f"closed deals alone should look much shorter ({naive_gap:.1f} SE)"
    # The EM fit also uses the open deals; its SE from the complete ones alone is generous.
    within(
        cal.scenario.stages[0].duration.mean(), world.won_mean, lognormal_mean_se(world.won_mean, world.won_sd, n_won)
    )
    # The rate's SE is the Beta's sd: its concentration is the observed information in closed-deal units.
    rate = cal.scenario.stages[0].conversion
    within(rate.mean(), world.p, float(rate.scipy().std()))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("origin", [0, 1])
def test_one_month_of_closes_leaves_the_rate_as_unsure_as_it_is(seed, origin):
    # Six months of deals with six-month cycles: only the quickest, a month's worth, have
    # closed. A slow win and a slow loss explain an old open deal alike, so the rate is
    # barely pinned down until the durations are: its band must hold the truth. (With the
    # durations taken as known, seed 1 claimed 0.58 with an sd of 0.06 at the first origin.)
    # No recency weighting: the fit's own information, not the discount, is under test.
    as_of = YOUNG.origins()[origin]
    cal = calibrate(YOUNG.export(seed), as_of, horizon_days=91, half_life_weeks=None)
    rate = cal.scenario.stages[0].conversion
    within(rate.mean(), YOUNG.p, float(rate.scipy().std()))


@pytest.mark.parametrize("uncertainty", ["history", "sampling"])
def test_zombies_come_out_unlikely_to_win(world_export, uncertainty):
    world, _ = world_export
    text = export_csv(world.deals("2024-06-01", seed=3), "2024-06-01", zombies=5, zombie_age_days=700)
    today = {"half_life_weeks": None, "durations": "parametric"} if uncertainty == "sampling" else {}
    cal = calibrate(read_deals(text.encode()), "2024-06-01", uncertainty=uncertainty, **today)
    stage = cal.scenario.stages[0]
    zombies = [d for d in cal.scenario.open_deals if d.name.startswith("zombie")]
    assert cal.report.open_pipeline.zombies == 5
    assert any("zombie" in w for w in cal.report.warnings)
    fresh = aged_conversion(stage, stage.conversion.mean(), 0.0)
    assert float(fresh) == pytest.approx(stage.conversion.mean())
    if uncertainty == "history":
        # Found never to close: left out of the pipeline, counted as lost.
        assert not zombies and any("left out of the forecast" in w for w in cal.report.warnings)
        assert cal.stage_outcomes[0].never_closed > 0
        return
    assert len(zombies) == 5 and all(d.age_days == pytest.approx(700) for d in zombies)
    # The zombies, counted as censored lost deals, fatten the lost tail a little, so their
    # chance is small rather than nil: under 1%, against about 30% for a fresh deal.
    assert np.all(aged_conversion(stage, stage.conversion.mean(), [d.age_days for d in zombies]) < 0.01)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"uncertainty": "sampling"},
        {"half_life_weeks": 13},
        {"durations": "nonparametric", "half_life_weeks": 26},
    ],
)
def test_a_later_export_calibrates_as_the_export_of_that_day_did(options):
    # The file of 2024-12-31 knows how the deals open on 2024-06-01 ended, and has deals
    # created since; calibrated as of 2024-06-01 it must give the very scenario the
    # export made on 2024-06-01 gives (which showed those deals open, with expected close
    # dates in the future).
    deals = World(per_week=20, start="2023-06-01").deals("2024-12-31", seed=3)
    later = read_deals(export_csv(deals, "2024-12-31").encode())
    then = read_deals(export_csv(deals, "2024-06-01").encode())
    from_later, from_then = calibrate(later, "2024-06-01", **options), calibrate(then, "2024-06-01", **options)
    assert from_later.report.counts.created_after_as_of > 0
    assert (
        len(later.deals) > len(then.deals)
        and (later.deals["outcome"] != "open").sum() > (then.deals["outcome"] != "open").sum()
    )
    assert from_later.scenario == from_then.scenario
    assert from_later.report.inflow.dispersion == from_then.report.inflow.dispersion


def test_only_what_was_known_on_the_date_is_used():
    deals = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "created": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-02-01", "2024-03-01"]),
            "closed": pd.to_datetime(["2024-01-21", "2024-02-20", pd.NaT, "2024-03-05"]),
            "outcome": ["won", "lost", "open", "won"],
            "stage": ["", "", "Demo", ""],
            "amount": [100.0, 50.0, np.nan, 70.0],
            "owner": "",
        }
    )
    snap = snapshot(deals, pd.Timestamp("2024-02-10"))
    assert snap.won.tolist() == [20.0] and snap.lost.size == 0
    assert snap.open["id"].tolist() == ["b", "c"]  # b closed later: open on the date
    assert snap.open["age_days"].tolist() == [31.0, 9.0]
    assert snap.unknown == 1


def test_a_few_ancient_open_deals_do_not_make_seasons(world_export):
    # One year of a flat world, plus deals left open for 1,000 days: the calendar spans
    # almost three years, but the empty months are no quiet season.
    world, _ = world_export
    text = export_csv(world.deals("2024-06-01", seed=3), "2024-06-01", zombies=3, zombie_age_days=1_000)
    cal = calibrate(read_deals(text.encode()), "2024-06-01")
    assert cal.report.seasonality is None and cal.scenario.inflow.multipliers is None
    within(cal.scenario.inflow.per_week, world.per_week, math.sqrt(world.per_week * 13) / 13)


def test_thin_data_is_warned_about():
    # Ten weeks of three deals a week: a handful of outcomes for every fit.
    world = World(per_week=3, start="2024-01-01")
    cal = calibrate(read_deals(export_csv(world.deals("2024-03-11", seed=5), "2024-03-11").encode()), "2024-03-11")
    counts, warnings = cal.report.counts, "\n".join(cal.report.warnings)
    closed = counts.won + counts.lost
    assert 0 < counts.won < 30 and closed < 30
    assert f"only {closed} won or lost deals (fewer than 30): the win rate is uncertain" in warnings
    assert f"won duration: only {counts.won} complete durations (fewer than 30)" in warnings
    assert f"deal value: only {counts.won} complete won amounts (fewer than 30)" in warnings
    if counts.lost:
        assert f"lost duration: only {counts.lost} complete durations (fewer than 30)" in warnings
    # A year and a half of the same world is enough: none of this is said then.
    longer = read_deals(export_csv(world.deals("2025-06-01", seed=5), "2025-06-01").encode())
    assert not any("fewer than 30" in w for w in calibrate(longer, "2025-06-01").report.warnings)


def test_seasonal_inflow_has_one_multiplier_per_month_and_round_trips(tmp_path):
    monthly = (0.6, 0.7, 1.0, 1.2, 1.2, 1.1, 0.8, 0.7, 1.1, 1.3, 1.4, 0.9)
    world = World(per_week=15, start="2021-01-01", monthly=monthly)
    deals = world.deals("2024-03-01", seed=6)
    crm = read_deals(export_csv(deals, "2024-03-01").encode())
    cal = calibrate(crm, "2024-03-01", horizon_days=91)
    multipliers = cal.scenario.inflow.multipliers
    assert multipliers is not None and len(multipliers) == cal.scenario.n_months == 3
    # March to May are busier than the December to February window: the forecast says so.
    assert min(multipliers) > cal.report.inflow.window_factor
    # The expected arrivals over the horizon against the truth's. The estimate is the
    # window's count times the ratio of the history's rates in the horizon's months to
    # those in the window's (the yearly mean cancels), so its relative variance is about
    # 1/N for each of the three Poisson counts (the window and the history's Dec-Feb
    # overlap, which only narrows it).
    days = pd.date_range("2024-03-01", periods=91, freq="D")
    truth = world.per_week / 7 * sum(monthly[d.month - 1] for d in days)
    history = deals["created"][(deals["created"] >= "2021-03-01") & (deals["created"] < "2024-03-01")].dt.month
    n_window = cal.report.counts.created_in_window
    n_horizon_months, n_window_months = history.isin([3, 4, 5]).sum(), history.isin([12, 1, 2]).sum()
    relative_se = math.sqrt(1 / n_window + 1 / n_horizon_months + 1 / n_window_months)
    within(cal.report.inflow.expected_over_horizon, truth, truth * relative_se)
    path = write_scenario(cal.scenario, tmp_path / "s.toml")
    assert load_scenario(path) == cal.scenario


def test_write_refuses_to_overwrite_without_force(tmp_path, world_export):
    _, crm = world_export
    scenario = calibrate(crm, "2024-06-01").scenario
    path = tmp_path / "out.toml"
    path.write_text("keep me")
    with pytest.raises(CalibrationError, match="already exists"):
        write_scenario(scenario, path)
    assert path.read_text() == "keep me"
    write_scenario(scenario, path, force=True)
    assert load_scenario(path) == scenario
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    ("as_of", "message"), [("2020-01-01", "no deal was created by then"), ("2023-06-05", "no deal had been won")]
)
def test_nothing_to_calibrate_from(world_export, as_of, message):
    _, crm = world_export
    with pytest.raises(CalibrationError, match=message):
        calibrate(crm, as_of)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_weeks": 0}, "window_weeks: must be a number > 0, got 0"),
        ({"horizon_days": 0}, "horizon_days: must be a number of days from 1 to 3660, got 0"),
        ({"quota_revenue": 1e6, "quota_deals": 3}, "quota_revenue: give at most one of quota_revenue and quota_deals"),
        ({"uncertainty": "vibes"}, "uncertainty: must be one of history, sampling, got 'vibes'"),
        ({"half_life_weeks": 0}, "half_life_weeks: must be a number of weeks above 0"),
        ({"half_life_weeks": "auto"}, "half_life_weeks: must be a number of weeks above 0"),
        ({"durations": "spline"}, "durations: must be one of auto, parametric, nonparametric"),
    ],
)
def test_bad_options_are_named(world_export, options, message):
    _, crm = world_export
    with pytest.raises(CalibrationError) as error:
        calibrate(crm, "2024-06-01", **options)
    assert any(line.startswith(message) for line in error.value.problems), error.value.problems


# --- the command line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_file(tmp_path_factory, world_export):
    world, _ = world_export
    path = tmp_path_factory.mktemp("crm") / "deals.csv"
    export_csv(world.deals("2024-06-01", seed=3), "2024-06-01", path=path)
    return path


def test_cli_calibrate_writes_a_loadable_scenario_and_reports(tmp_path, export_file, capsys):
    out = tmp_path / "out.toml"
    code = main(["calibrate", str(export_file), "--as-of", "2024-06-01", "-o", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("rows", "counts", "rate", "won_duration", "lost_duration", "deal_value", "inflow", "warnings"):
        assert key in report
    assert set(report["counts"]) >= {"won", "lost", "open", "created_in_window"}
    assert load_scenario(out).stages[0].name == OPEN_STAGE


def test_cli_calibrate_quota_options(tmp_path, export_file, capsys):
    out = tmp_path / "out.toml"
    assert main(["calibrate", str(export_file), "--as-of", "2024-06-01", "-o", str(out), "--quota-deals", "40"]) == 0
    assert load_scenario(out).quota.deals == 40
    assert "Wrote" in capsys.readouterr().out


def test_cli_refuses_to_overwrite_and_force_overwrites(tmp_path, export_file, capsys):
    out = tmp_path / "out.toml"
    out.write_text("precious")
    args = ["calibrate", str(export_file), "--as-of", "2024-06-01", "-o", str(out)]
    assert main(args) == 2
    assert "out.toml already exists" in capsys.readouterr().err
    assert out.read_text() == "precious"
    assert main([*args, "--force"]) == 0
    load_scenario(out)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--as-of", "2024-13-01"], "--as-of: not a date"),
        (["--as-of", "yesterday"], "--as-of: not a date"),
        (["--as-of", "2024-06-01", "--column", "price=Amount"], "--column: unknown role 'price'"),
        (["--as-of", "2024-06-01", "--column", "amount=Price"], "column 'Price' given for amount is not in the file"),
        (["--as-of", "2019-01-01"], "--as-of 2019-01-01: no deal was created by then"),  # as_of, in flag words
    ],
)
def test_cli_bad_input_exits_2_with_a_named_problem(tmp_path, export_file, capsys, extra, message):
    code = main(["calibrate", str(export_file), *extra, "-o", str(tmp_path / "o.toml")])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "o.toml").exists()


def test_cli_missing_file_and_no_usable_rows(tmp_path, capsys):
    out = str(tmp_path / "o.toml")
    assert main(["calibrate", str(tmp_path / "nope.csv"), "--as-of", "2024-01-01", "-o", out]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("Id,CreatedDate,CloseDate,StageName,Amount\n1,not a date,,Open,5\n2,,,Open,5\n")
    assert main(["calibrate", str(bad), "--as-of", "2024-01-01", "-o", out]) == 2
    assert "no usable rows" in capsys.readouterr().err


def test_cli_column_option_names_a_column_recognition_misses(tmp_path, export_file, capsys):
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(export_file.read_text().replace("CreatedDate", "Opened On", 1))
    args = ["calibrate", str(renamed), "--as-of", "2024-06-01", "-o", str(tmp_path / "o.toml"), "--json"]
    assert main(args) == 2
    assert "no column for created" in capsys.readouterr().err
    assert main([*args, "--column", "created=Opened On", "--column", "owner=OwnerId"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["columns"] == {
        "id": "Id",
        "created": "Opened On",
        "closed": "CloseDate",
        "outcome": "StageName",
        "amount": "Amount",
        "owner": "OwnerId",
    }
    written, expected = load_scenario(tmp_path / "o.toml"), calibrate(read_deals(export_file), "2024-06-01").scenario
    assert written == expected.model_copy(update={"name": written.name, "description": written.description})


def test_cli_reports_skipped_rows_with_their_line_numbers(tmp_path, export_file, capsys):
    lines = export_file.read_text().splitlines()
    bad = [
        "X1,2024-01-05T00:00:00,2024-02-01T00:00:00,Closed Won,-5,005A",
        "X2,soon,,Prospecting,10,005A",
        lines[1],  # a duplicate of the first deal
        "X3,2024-03-01T00:00:00,2024-02-01T00:00:00,Closed Lost,10,005A",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([*lines, *bad]) + "\n")
    n = len(lines)  # the header is line 1, so the first bad row is line n + 1
    args = ["calibrate", str(path), "--as-of", "2024-06-01", "-o", str(tmp_path / "o.toml")]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows["rows_read"] == n - 1 + 4 and rows["rows_used"] == n - 1 and rows["skipped"] == 4
    assert rows["skipped_by_reason"] == {
        "negative amount in Amount": {"count": 1, "lines": [n + 1]},
        "unparseable date in CreatedDate": {"count": 1, "lines": [n + 2]},
        "duplicate id": {"count": 1, "lines": [n + 3]},
        "close date before create date": {"count": 1, "lines": [n + 4]},
    }
    assert main([*args, "--force"]) == 0
    text = capsys.readouterr().out
    assert f"Rows: {n + 3:,} read, {n - 1:,} used, 4 skipped" in text
    assert f"  duplicate id: 1 row (line {n + 3})" in text


def test_cli_whole_file_problems_exit_2_without_a_traceback(tmp_path, export_file, capsys, monkeypatch):
    out = tmp_path / "o.toml"

    def refused(content: bytes | None, message: str, path=None) -> None:
        if path is None:
            path = tmp_path / "in.csv"
            path.write_bytes(content)
        assert main(["calibrate", str(path), "--as-of", "2024-06-01", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not out.exists()

    refused(b"Id,Name,CloseDate,StageName,Amount\n1,a,2024-01-01,Closed Won,1\n", "no column for created")
    refused(b"Id,CreatedDate,CloseDate,StageName,Amount\n", "no data rows below the header")
    refused(b"", "the file is empty")
    refused("Id,CreatedDate,CloseDate,StageName,Amount\n1,2024-01-01,,Café,\n".encode("latin-1"), "not a UTF-8")
    refused(b"Id,CreatedDate,CloseDate,StageName,Amount\n1,someday,,Open,\n", "no usable rows")
    monkeypatch.setattr("sim.crm.reader.MAX_CSV_BYTES", 1_000)
    refused(None, "file is larger than 1,000 bytes", path=export_file)


def test_cli_refuses_an_output_it_cannot_write_before_reading(tmp_path, capsys):
    # The export does not exist: the output is checked first, so that is not what is said.
    missing = str(tmp_path / "nope.csv")
    assert main(["calibrate", missing, "--as-of", "2024-06-01", "-o", str(tmp_path), "--force"]) == 2
    assert "is a directory, not a file" in capsys.readouterr().err
    assert main(["calibrate", missing, "--as-of", "2024-06-01", "-o", str(tmp_path / "no" / "o.toml")]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        ["--horizon-days", "0"],
        ["--window-weeks", "-1"],
        ["--quota-deals", "x"],
        ["--quota-revenue", "1000", "--quota-deals", "2"],
    ],
)
def test_cli_bad_numbers_are_usage_errors(tmp_path, export_file, capsys, extra):
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", str(export_file), "--as-of", "2024-06-01", "-o", str(tmp_path / "o.toml"), *extra])
    assert exit_.value.code == 2


# --- several stages, from a stage history -----------------------------------------------

AS_OF = "2024-06-01"


@pytest.fixture(scope="module")
def stage_world(tmp_path_factory):
    """A three-stage world, its export and stage history as files, and both read back."""
    world = StageWorld()
    deals, history = world.deals(AS_OF, seed=11)
    folder = tmp_path_factory.mktemp("stages")
    export_csv(deals, AS_OF, path=folder / "deals.csv")
    history_csv(deals, history, AS_OF, path=folder / "stages.csv")
    crm = read_deals(folder / "deals.csv")
    read = read_stage_history(folder / "stages.csv", deals=crm)
    return world, deals, history, crm, read, folder


def assert_stage_recovered(stage, counts: StageCounts, truth) -> None:
    """A calibrated stage's rate and mean times against the truth, within Z standard errors."""
    closed = counts.converted + counts.lost
    within(stage.conversion.mean(), truth.p, math.sqrt(truth.p * (1 - truth.p) / closed))
    within(stage.duration.mean(), truth.won_mean, lognormal_mean_se(truth.won_mean, truth.won_sd, counts.converted))
    within(stage.lost_duration.mean(), truth.lost_mean, lognormal_mean_se(truth.lost_mean, truth.lost_sd, counts.lost))


def test_stage_history_recovers_each_stage(stage_world):
    world, _, _, crm, history, _ = stage_world
    cal = calibrate(crm, AS_OF, history=history)
    assert [s.name for s in cal.scenario.stages] == [t.name for t in world.stages]  # "Closed Won" is no stage
    assert cal.report.rate is None and len(cal.report.stages) == 3
    for stage, report, episodes, truth in zip(
        cal.scenario.stages, cal.report.stages, cal.stages, world.stages, strict=True
    ):
        counts = report.counts
        assert counts.converted + counts.lost > 100 and counts.skipped == 0
        assert_stage_recovered(stage, counts, truth)
        assert episodes.converted.size == counts.converted
    # Deals enter the first stage on creation: the inflow is the creation rate.
    within(cal.scenario.inflow.per_week, world.per_week, math.sqrt(world.per_week * 13) / 13)
    # Each stage passes on to the next the deals it converted.
    entered = [r.counts.entered for r in cal.report.stages]
    converted = [r.counts.converted for r in cal.report.stages]
    assert entered[1:] == converted[:-1] and converted[-1] == cal.report.counts.won


def test_an_engine_made_stage_history_calibrates_back_to_each_stage(tmp_path):
    world = StageWorld()
    span = (pd.Timestamp(AS_OF) - pd.Timestamp(world.start)) / pd.Timedelta(days=1)
    deals, history = engine_deals(world.scenario(horizon_days=span), world.start, seed=12)
    export_csv(deals, AS_OF, path=tmp_path / "deals.csv")
    history_csv(deals, history, AS_OF, path=tmp_path / "stages.csv")
    crm = read_deals(tmp_path / "deals.csv")
    cal = calibrate(crm, AS_OF, history=read_stage_history(tmp_path / "stages.csv", deals=crm))
    assert [s.name for s in cal.scenario.stages] == [t.name for t in world.stages]
    for stage, report, truth in zip(cal.scenario.stages, cal.report.stages, world.stages, strict=True):
        assert_stage_recovered(stage, report.counts, truth)


def test_stage_history_lists_open_deals_in_their_stage_with_its_age(stage_world):
    _, deals, history, crm, read, _ = stage_world
    as_of = pd.Timestamp(AS_OF)
    cal = calibrate(crm, AS_OF, history=read)
    open_ids = set(deals.loc[(deals["created"] <= as_of) & (deals["close"] > as_of), "id"])
    now = history[(history["entered"] <= as_of) & history["id"].isin(open_ids)].sort_values("entered")
    current = now.groupby("id").last()
    expected = {i: (row.stage, (as_of - row.entered) / pd.Timedelta(days=1)) for i, row in current.iterrows()}
    listed = {d.name: (d.stage, d.age_days) for d in cal.scenario.open_deals}
    assert set(listed) == set(expected) and len(listed) > 30
    for name, (stage, age) in expected.items():
        assert listed[name][0] == stage
        assert listed[name][1] == pytest.approx(age, abs=0.05 + 1e-3)  # ages are written to a tenth of a day
    assert {d.stage for d in cal.scenario.open_deals} == {s.name for s in cal.scenario.stages}
    amounts = deals.set_index("id")["amount"]
    assert all(d.amount == pytest.approx(amounts[d.name]) for d in cal.scenario.open_deals)


def test_stage_episodes_skips_late_rows_and_deals_without_history():
    day = pd.Timestamp("2024-01-01")
    deals = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "created": [day] * 5,
            "closed": [day + pd.Timedelta(days=30), day + pd.Timedelta(days=8), pd.NaT, pd.NaT, pd.NaT],
            "outcome": ["won", "lost", "open", "open", "open"],
            "stage": "",
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            "owner": "",
        }
    )
    rows = [
        ("a", "One", 0),
        ("a", "Three", 10),  # a skips Two
        ("a", "Closed Won", 30),
        ("b", "One", 0),
        ("b", "Two", 5),
        ("b", "Three", 20),  # after b was lost on day 8: not known to have happened
        ("c", "One", 0),
        ("c", "Two", 4),
        ("c", "One", 6),  # moved back: its first entry counts
        ("c", "Two", 9),
        ("e", "Two", 50),  # after the as-of date
    ]
    history = pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "entered": [day + pd.Timedelta(days=r[2]) for r in rows],
        }
    )
    episodes, counts = stage_episodes(deals, history, day + pd.Timedelta(days=40))
    one, two, three = episodes
    assert [e.name for e in episodes] == ["One", "Two", "Three"]
    assert sorted(one.converted.tolist()) == [4.0, 5.0, 10.0] and one.lost.size == 0
    assert one.open["id"].tolist() == ["d", "e"]  # no known history: in the first stage since creation
    assert one.open["age_days"].tolist() == [40.0, 40.0]
    assert two.lost.tolist() == [3.0] and two.converted.size == 0 and two.skipped == 1
    assert two.open["id"].tolist() == ["c"] and two.open["age_days"].tolist() == [36.0]
    assert three.converted.tolist() == [20.0] and three.open.empty
    assert counts["rows_after_close"] == 1 and counts["deals_without_history"] == 2


def test_stage_order_is_by_median_rank():
    day = pd.Timestamp("2024-01-01")
    paths = [["A", "B", "C"]] * 5 + [["A", "C"], ["B", "A", "C"]]
    history = pd.DataFrame(
        [(str(i), s, day + pd.Timedelta(days=k)) for i, path in enumerate(paths) for k, s in enumerate(path)],
        columns=["id", "stage", "entered"],
    )
    assert stage_order(history) == ["A", "B", "C"]


def test_cli_history_writes_stages_that_load_back_equal(stage_world, tmp_path, capsys):
    _, _, _, crm, history, folder = stage_world
    out = tmp_path / "funnel.toml"
    args = ["calibrate", str(folder / "deals.csv"), "--history", str(folder / "stages.csv"), "--as-of", AS_OF]
    assert main([*args, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["stages"]] == ["Discovery", "Proposal", "Negotiation"]
    loaded = load_scenario(out)
    assert len(loaded.stages) == 3
    assert loaded == calibrate(crm, AS_OF, history=history).scenario
    assert main([*args, "-o", str(tmp_path / "text.toml")]) == 0
    text = capsys.readouterr().out
    assert "Stages in the order deals enter them (3)" in text and "Negotiation:" in text


def test_cli_bad_history_file(stage_world, tmp_path, capsys):
    _, _, _, _, _, folder = stage_world
    deals_csv = str(folder / "deals.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("OpportunityId,CreatedDate\n1,2024-01-01\n")
    out = str(tmp_path / "o.toml")
    assert main(["calibrate", deals_csv, "--history", str(bad), "--as-of", AS_OF, "-o", out]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "stage" in err and "Traceback" not in err
    # Rows for deals not in the export are skipped and reported with their lines.
    text = (folder / "stages.csv").read_text().splitlines()
    extra = tmp_path / "extra.csv"
    extra.write_text("\n".join([*text, "x1,nobody,Discovery,2024-01-02T00:00:00"]) + "\n")
    code = main(["calibrate", deals_csv, "--history", str(extra), "--as-of", AS_OF, "-o", out, "--json"])
    assert code == 0
    skipped = json.loads(capsys.readouterr().out)["history"]["skipped_by_reason"]
    assert skipped == {"id not among the deals": {"count": 1, "lines": [len(text) + 1]}}


def test_a_stage_nobody_left_is_a_named_problem(stage_world):
    _, _, _, crm, history, _ = stage_world
    late = pd.DataFrame({"id": [crm.deals["id"].iloc[-1]], "stage": ["Legal review"], "entered": [pd.Timestamp(AS_OF)]})
    with pytest.raises(CalibrationError, match="^history: stage 'Legal review': no deal had moved on"):
        calibrate(crm, AS_OF, history=pd.concat([history, late], ignore_index=True))


def test_months_whose_average_deal_moves_give_the_scenario_a_value_dispersion():
    # Each close month's amounts share a level (sd 0.3 in logs): the history's spread of
    # the monthly mean reaches the scenario; today's method leaves it out.
    deals = World(per_week=20, start="2023-01-01").deals("2024-06-01", seed=5)
    rng = np.random.default_rng(5)
    months = deals["close"].dt.to_period("M")
    level = dict(zip(sorted(months.unique()), np.exp(rng.normal(0, 0.3, months.nunique())), strict=True))
    deals["amount"] = (deals["amount"] * months.map(level).to_numpy()).round(2)
    crm = read_deals(export_csv(deals, "2024-06-01").encode())
    history = calibrate(crm, "2024-06-01")
    assert history.scenario.deal_value_dispersion == rounded_number(history.report.deal_value_spread, "other")
    assert history.report.deal_value_spread > 0.15
    today = calibrate(crm, "2024-06-01", uncertainty="sampling", half_life_weeks=None, durations="parametric")
    assert today.scenario.deal_value_dispersion == 0


def test_an_export_that_ends_long_before_the_date_is_a_named_problem():
    # No deal created for two years before the date: nothing to measure the inflow from.
    deals = World(per_week=20, start="2021-01-01").deals("2022-06-30", seed=1)
    crm = read_deals(export_csv(deals, "2022-06-30").encode())
    with pytest.raises(CalibrationError, match=r"as_of 2024-06-30: no deal was created in the 4 weeks before it"):
        calibrate(crm, "2024-06-30")


def _decimals(x: float) -> int:
    """Decimals of ``x`` as TOML writes it (repr)."""
    text = repr(x)
    return 0 if "e" in text or "." not in text else len(text.split(".")[1].rstrip("0"))


def test_calibrated_toml_reads_like_a_person_wrote_it(tmp_path, world_export):
    """Issue 16: money to cents, rates to 4 decimals, days to 0.1, and the file reads back to the same scenario."""
    _, crm = world_export
    cal = calibrate(crm, "2024-06-01")
    path = write_scenario(cal.scenario, tmp_path / "s.toml")
    assert load_scenario(path) == cal.scenario
    s, stage = cal.scenario, cal.scenario.stages[0]
    assert _decimals(s.quota.revenue) <= 2 and _decimals(s.deal_value.mean_) <= 2
    assert _decimals(stage.conversion.mean_) <= 4
    assert stage.conversion.mean() == pytest.approx(cal.report.rate.mean, abs=5e-5)
    assert _decimals(stage.duration.mean_) <= 1 and _decimals(s.horizon_days) <= 1
    assert all(_decimals(d.age_days) <= 1 and _decimals(d.amount) <= 2 for d in s.open_deals)
    assert len(f"{s.inflow.per_week:g}".replace(".", "").lstrip("0")) <= 4
    # No number in the file carries float noise (the widest is 4 significant figures of a dispersion: 0.01698).
    numbers = [line for line in path.read_text().splitlines() if not line.startswith(("name", "description"))]
    assert [line for line in numbers if re.search(r"\d\.\d{6}", line)] == []


@pytest.mark.parametrize(
    ("x", "kind", "expected"),
    [
        (1184168.5299999998, "money", 1184168.53),
        (0.004, "money", 0.004),  # a cent would become nothing: kept
        (0.226097815100015, "rate", 0.2261),
        (0.99999, "rate", 0.99999),  # would become 1, which a Beta mean may not be
        (0.00002, "rate", 0.00002),  # would become 0
        (41.46702653535147, "days", 41.5),
        (0.02, "days", 0.02),
        (380.94669607227553, "other", 380.9),
        (0.020340180257985483, "other", 0.02034),
        (26.0, "other", 26.0),
    ],
)
def test_numbers_round_by_what_they_measure_but_never_to_an_invalid_value(x, kind, expected):
    assert rounded_number(x, kind) == expected


def test_a_rate_that_would_round_to_one_keeps_its_precision_in_the_scenario(world_export):
    from sim.crm.rounding import tidy_scenario
    from sim.model.scenario import BetaRate, Quota

    _, crm = world_export
    scenario = calibrate(crm, "2024-06-01").scenario
    stage = scenario.stages[0].model_copy(update={"conversion": BetaRate(mean=0.999996, concentration=12.345678)})
    tidy = tidy_scenario(scenario.model_copy(update={"stages": (stage,), "quota": Quota(revenue=0.0149)}))
    assert tidy.stages[0].conversion.mean() == 0.999996 and tidy.stages[0].conversion.concentration == 12.35
    assert tidy.quota.revenue == 0.01

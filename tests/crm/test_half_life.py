"""The half-life chosen by backtesting the history before the date: honest, and sensible where it matters.

A world whose win rate halves at a known date (``World`` of tests/crm_synth.py before
and after) is the case recency weighting is for: a forecast that weighs the old deals
as much as the new ones over-forecasts, so the choice must be a finite half-life. The
choice reads nothing after its date: an export made on that date and a later one give
the same choice, scores included.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.cli import main
from sim.crm.backtest import backtest
from sim.crm.half_life import MIN_INNER_ORIGINS, calibrate_choosing, choose_half_life
from sim.crm.reader import read_deals
from tests.conftest import Z
from tests.crm_synth import World, export_csv

AS_OF = "2023-10-01"


def halved_world_deals(seed: int) -> pd.DataFrame:
    """Deals won 40% of the time until 2023-01-01 and 20% after."""
    before = World(per_week=25, p=0.4, start="2022-01-01").deals("2023-01-01", seed=seed)
    after = World(per_week=25, p=0.2, start="2023-01-01").deals("2024-06-01", seed=seed + 1)
    after["id"] = "n" + after["id"]
    return pd.concat([before, after], ignore_index=True)


@pytest.fixture(scope="module")
def halved():
    deals = halved_world_deals(31)
    crm = read_deals(export_csv(deals, "2024-06-01").encode())
    return deals, crm, choose_half_life(crm, pd.Timestamp(AS_OF), 91)


def test_a_win_rate_that_fell_is_followed_by_the_chosen_calibration(halved):
    # The rate halved nine months before the date: whichever half-life scored best, the
    # calibration it picks forecasts the new rate, not the history's mix of both.
    deals, crm, choice = halved
    assert len(choice.origins) >= MIN_INNER_ORIGINS
    chosen = "none" if choice.half_life_weeks is None else f"{choice.half_life_weeks:g}"
    assert choice.scores[chosen] == min(choice.scores.values())
    calibration, _ = calibrate_choosing(crm, AS_OF, half_life_weeks="auto", horizon_days=91)
    rate = calibration.scenario.stages[0].conversion
    sd = (rate.mean() * (1 - rate.mean()) / (rate.concentration + 1)) ** 0.5
    closed = deals[deals["close"] <= pd.Timestamp(AS_OF)]
    assert abs(rate.mean() - 0.2) < Z * sd
    assert abs(rate.mean() - 0.2) < abs(rate.mean() - closed["won"].mean()) / 4


def test_the_choice_reads_nothing_after_its_date(halved):
    deals, later, choice = halved
    then = read_deals(export_csv(deals, AS_OF).encode())
    assert len(later.deals) > len(then.deals)
    assert choose_half_life(then, pd.Timestamp(AS_OF), 91) == choice


def test_too_little_history_means_no_weighting(halved):
    _, crm, _ = halved
    choice = choose_half_life(crm, pd.Timestamp("2022-06-01"), 91)
    assert choice.half_life_weeks is None and "too little history" in choice.note


def test_backtest_uses_and_reports_each_origins_choice(halved):
    _, crm, choice = halved
    answer = backtest(crm, [AS_OF], 91, runs=300, half_life_weeks="auto")
    assert answer["dates"][0]["half_life"] == choice.as_dict()
    fixed = backtest(crm, [AS_OF], 91, runs=300, half_life_weeks=choice.half_life_weeks)
    assert fixed["dates"][0]["forecast"] == answer["dates"][0]["forecast"]


def test_cli_half_life_options(tmp_path, halved, capsys):
    deals, _, _ = halved
    path = tmp_path / "deals.csv"
    export_csv(deals, "2024-06-01", path=path)
    out = tmp_path / "s.toml"
    code = main(["calibrate", str(path), "--as-of", AS_OF, "-o", str(out), "--half-life-weeks", "13", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["half_life_weeks"] == 13 and report["uncertainty"] == "history"
    for bad in (["--half-life-weeks", "0"], ["--uncertainty", "vibes"], ["--durations", "spline"]):
        with pytest.raises(SystemExit) as exit_:
            main(["calibrate", str(path), "--as-of", AS_OF, "-o", str(out), "--force", *bad])
        assert exit_.value.code == 2 and bad[0] in capsys.readouterr().err

"""Running a plan in this process: every cell is `run` on its scenario, common random numbers, resume, outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.model.scenario import scenario_to_toml
from sim.plan.execute import OutputError, cheapest, execute, read_table
from sim.plan.spec import plan_from_dict
from sim.runner import simulate
from tests.plan.helpers import grid, write_plan

RUNS = 300


@pytest.fixture(scope="module")
def plan():
    return plan_from_dict(grid({"team.reps": [2, 3, 4], "quota.revenue": [100_000, 150_000]}, runs=RUNS))


@pytest.fixture(scope="module")
def table(plan):
    return execute(plan, workers=0)[0]


def test_a_cell_is_simulate_on_its_scenario_with_the_plans_seed_bit_for_bit(plan, table):
    for cell, row in zip(plan.cells, table.to_dict("records"), strict=True):
        summary = simulate(cell.scenario, runs=RUNS, seed=plan.seed).summary()
        assert row["p_hit"] == summary["p_hit"]
        assert [row[f"revenue_p{q}"] for q in (10, 50, 90)] == [summary["revenue"][f"p{q}"] for q in (10, 50, 90)]
        assert row["won_deals_p50"] == summary["deals"]["p50"]
        assert row["team.reps"] == cell.scenario.team.reps and row["cell"] == cell.key


def test_a_cell_is_what_the_run_command_gives_the_scenario_it_describes(plan, table, tmp_path, capsys):
    cell = plan.cells[3]
    path = tmp_path / "cell.toml"
    path.write_text(scenario_to_toml(cell.scenario), encoding="utf-8")
    assert main(["run", str(path), "--runs", str(RUNS), "--seed", str(plan.seed), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    row = table.iloc[3]
    assert (row["p_hit"], row["revenue_p50"], row["won_deals_p50"]) == (
        summary["p_hit"],
        summary["revenue"]["p50"],
        summary["deals"]["p50"],
    )


def test_common_random_numbers_a_rep_more_only_adds_revenue(table):
    # Rep r's numbers depend only on the seed and r (no open deals to split), so with one seed for
    # every cell a fourth rep adds its revenue to the same three reps: every percentile rises.
    for quota, cells in table.groupby("quota.revenue"):
        cells = cells.sort_values("team.reps")
        for column in ("revenue_p10", "revenue_p50", "revenue_p90", "p_hit"):
            assert np.all(np.diff(cells[column].to_numpy()) >= 0), (quota, column)
        assert cells["revenue_p50"].is_monotonic_increasing


def test_the_table_has_costs_and_value_ratios(table):
    assert list(table.columns) == [
        "team.reps", "quota.revenue", "p_hit", "revenue_p10", "revenue_p50", "revenue_p90", "won_deals_p50",
        "reps", "new_reps", "cost", "value_ratio", "runs", "seed", "cell",
    ]  # fmt: skip
    assert np.allclose(table["cost"], table["reps"] * 100_000 * 70 / 365.25, rtol=1e-12)
    assert np.allclose(table["value_ratio"], table["revenue_p50"] / table["cost"], rtol=1e-12)
    assert (table["runs"] == RUNS).all() and (table["seed"] == 3).all()


def test_cheapest_is_a_pure_function_of_the_table():
    table = pd.DataFrame({"p_hit": [0.9, 0.85, 0.5, 0.95], "cost": [300.0, 200.0, 100.0, 200.0], "reps": [3, 2, 1, 2]})
    reached, best = cheapest(table, 0.8)
    assert reached and best.index.tolist() == [3, 1, 0]  # cost, then P(hit) at equal cost and reps
    reached, best = cheapest(table, 0.99, most=2)
    assert not reached and best.index.tolist() == [3, 0]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_interrupted_plan_resumes_and_recomputes_nothing_done(plan, table, tmp_path, suffix):
    output = tmp_path / f"results{suffix}"
    seen = []

    def stop_after_two(done, total):
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(plan, output, workers=0, progress=stop_after_two)
    assert not output.exists() and len(list((tmp_path / f"results{suffix}.cells").glob("*.json"))) == 2
    with pytest.raises(OutputError, match="holds the cells of an interrupted plan; add --resume"):
        execute(plan, output, workers=0)
    resumed, simulated = execute(plan, output, resume=True, workers=0)
    assert simulated == len(plan.cells) - 2
    pd.testing.assert_frame_equal(resumed, table)
    pd.testing.assert_frame_equal(read_table(output), table)
    assert not (tmp_path / f"results{suffix}.cells").exists()
    # Done: resuming again reads the cells from the table and simulates none.
    again, simulated = execute(plan, output, resume=True, workers=0)
    assert simulated == 0
    pd.testing.assert_frame_equal(again, table)
    with pytest.raises(OutputError, match="exists; add --resume"):
        execute(plan, output, workers=0)


def test_resuming_a_changed_plan_simulates_only_the_new_cells(tmp_path):
    output = tmp_path / "results.csv"
    small = plan_from_dict(grid({"team.reps": [2, 3]}, runs=RUNS))
    bigger = plan_from_dict(grid({"team.reps": [2, 3, 4]}, runs=RUNS))
    execute(small, output, workers=0)
    table, simulated = execute(bigger, output, resume=True, workers=0)
    assert simulated == 1
    pd.testing.assert_frame_equal(table, execute(bigger, workers=0)[0])
    _, simulated = execute(bigger.with_settings(runs=RUNS + 1), output, resume=True, workers=0)
    assert simulated == 3  # other runs: other numbers, nothing reused


def test_the_command_writes_the_table_and_names_the_cheapest_plans(tmp_path, capsys):
    path = write_plan(tmp_path, grid({"team.reps": [2, 3, 4]}, runs=RUNS, target=0.5))
    output = tmp_path / "out.csv"
    assert main(["plan", str(path), "-o", str(output), "--workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "3 cells, 300 runs each, seed 3" in text and "Cheapest plans with P(hit) >= 50%:" in text
    assert len(read_table(output)) == 3
    assert main(["plan", str(path), "-o", str(output), "--workers", "0"]) == 2
    assert "out.csv exists; add --resume" in capsys.readouterr().err
    assert main(["plan", str(path), "-o", str(output), "--workers", "0", "--resume", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["simulated"] == 0 and payload["reached"] is True and payload["cells"] == 3
    assert payload["best"][0]["team.reps"] == read_table(output).query("p_hit >= 0.5")["team.reps"].min()
    out_of_reach = write_plan(tmp_path, grid({"team.reps": [2, 3], "quota.revenue": [1e7]}) | {"seed": 4}, "far.toml")
    assert main(["plan", str(out_of_reach), "--workers", "0", "--target", "0.99", "--runs", "50"]) == 0
    text = capsys.readouterr().out
    assert "2 cells, 50 runs each, seed 4" in text
    assert "$10M" in text  # a varied quota is money, as the scenario's own fields are (sim.model.measures)
    assert "No plan reaches 99%; the best P(hit):" in text and "below 5.82%" in text  # none of 50 runs hit
    assert main(["plan", str(path), "-o", str(tmp_path / "out.xlsx"), "--workers", "0"]) == 2
    assert "give a .parquet or .csv file" in capsys.readouterr().err
    (tmp_path / "folder.csv").mkdir()
    assert main(["plan", str(path), "-o", str(tmp_path / "folder.csv"), "--workers", "0", "--resume"]) == 2
    assert (
        capsys.readouterr().err == f"error: output: {tmp_path / 'folder.csv'} is not a regular file; give a file name\n"
    )


def test_a_plan_over_segments_has_each_segments_figures_and_keeps_the_others_numbers():
    base = grid({})["base"]
    base["quota"] = {"revenue": 300_000}
    base["segments"] = [{"name": "EMEA", "quota": {"revenue": 150_000}}, {"name": "US"}]
    plan = plan_from_dict(
        {"base": base, "runs": RUNS, "seed": 5, "vary": {"segments[0].team.reps": [2, 3], "segments[1].team.reps": [3]}}
    )
    assert plan.cells[0].values == {"segments[0].team.reps": 2, "segments[1].team.reps": 3}
    assert plan.cells[0].scenario.segments[0].team.reps == 2  # the top-level team, copied and changed
    table = execute(plan, workers=0)[0]
    summary = simulate(plan.cells[1].scenario, runs=RUNS, seed=5).summary()
    row = table.iloc[1]
    assert row["p_hit"] == summary["p_hit"] and row["p_hit[EMEA]"] == summary["segments"][0]["p_hit"]
    assert "p_hit[US]" not in table.columns  # US has no quota of its own
    assert row["revenue_p50[US]"] == summary["segments"][1]["revenue"]["p50"]
    # Segment i has its own seed: a rep more in EMEA leaves the US numbers as they were.
    assert table["revenue_p50[US]"].nunique() == 1 and table["revenue_p50[EMEA]"].is_monotonic_increasing
    assert table["reps"].tolist() == [5, 6] and table["cost"].iloc[1] == pytest.approx(
        6 * 100_000 * 70 / 365.25, rel=1e-12
    )


def test_ctrl_c_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    from sim.plan import execute as execute_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute_module, "run_cells", interrupted)
    path = write_plan(tmp_path, grid({"team.reps": [2, 3]}, runs=RUNS))
    assert main(["plan", str(path), "-o", str(tmp_path / "out.csv"), "--workers", "0"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"the cells done are kept beside {tmp_path / 'out.csv'}; add --resume to go on from them",
        "interrupted",
    ]


def test_cells_that_differ_only_in_quota_share_one_simulation(plan, table, monkeypatch):
    from sim.plan import execute as execute_module

    simulated = []
    real_run = execute_module.run

    def counting(request, *args, **kwargs):
        simulated.append(request)
        return real_run(request, *args, **kwargs)

    monkeypatch.setattr(execute_module, "run", counting)
    again, cells = execute(plan, workers=0)
    assert cells == 6 and len(simulated) == 3  # three team sizes, each judged against two quotas
    pd.testing.assert_frame_equal(again, table)  # and each cell is still simulate() bit for bit (above)

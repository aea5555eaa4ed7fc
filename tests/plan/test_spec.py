"""Plan files: field paths, cells that are validated scenarios, errors named by their place in the plan, costs."""

from __future__ import annotations

import pytest

from sim.cli import main
from sim.model.scenario import DAYS_PER_MONTH, scenario_from_dict
from sim.model.segments import cost_of_reps
from sim.model.team import DAYS_PER_YEAR
from sim.plan.spec import PlanError, load_plan, parse_path, plan_from_dict, set_path
from tests.plan.helpers import grid, team_base, write_plan


def problems(plan: dict, directory=".") -> list[str]:
    with pytest.raises(PlanError) as error:
        plan_from_dict(plan, directory)
    return error.value.problems


def test_a_path_is_keys_and_indexes():
    assert parse_path("segments[0].team.new_reps") == ["segments", 0, "team", "new_reps"]
    assert parse_path("stages[1].duration.mean") == ["stages", 1, "duration", "mean"]
    for bad in ("", "team..reps", "team.", "[0]", "team[x]", "quota revenue", 'a["b"]'):
        with pytest.raises(ValueError, match="not a field path"):
            parse_path(bad)


def test_set_path_changes_one_field_and_copies_an_inherited_section():
    doc = {"team": {"reps": 3, "new_reps": 0}, "segments": [{"name": "EMEA"}, {"name": "US", "team": {"reps": 9}}]}
    set_path(doc, "segments[0].team.new_reps", 2)
    set_path(doc, "segments[1].team.new_reps", 1)
    set_path(doc, "stages", [1])
    assert doc["segments"][0]["team"] == {"reps": 3, "new_reps": 2}  # the top-level team it inherits, changed
    assert doc["segments"][1]["team"] == {"reps": 9, "new_reps": 1}
    assert doc["team"] == {"reps": 3, "new_reps": 0}
    with pytest.raises(ValueError, match=r"segments has 2 items, no \[2\]"):
        set_path(doc, "segments[2].team.reps", 1)


def test_a_grid_is_every_combination_each_a_validated_scenario():
    plan = plan_from_dict(grid({"team.reps": [2, 3, 4], "quota.revenue": [100_000, 200_000]}))
    assert len(plan.cells) == 6 and plan.columns == ("team.reps", "quota.revenue")
    assert [c.values for c in plan.cells[:3]] == [
        {"team.reps": 2, "quota.revenue": 100_000},
        {"team.reps": 2, "quota.revenue": 200_000},
        {"team.reps": 3, "quota.revenue": 100_000},
    ]
    for cell in plan.cells:
        expected = team_base()
        expected["team"]["reps"] = cell.values["team.reps"]
        expected["quota"]["revenue"] = cell.values["quota.revenue"]
        assert cell.scenario == scenario_from_dict(expected)
    assert len({c.key for c in plan.cells}) == 6


def test_the_key_ignores_the_name_but_not_runs_seed_or_quota():
    plan = plan_from_dict(grid({"name": ["a", "b"], "quota.revenue": [1e5, 2e5]}))
    keys = [c.key for c in plan.cells]
    assert keys[0] == keys[2] and keys[1] == keys[3] and keys[0] != keys[1]
    other = plan.with_settings(runs=201)
    assert all(a.key != b.key for a, b in zip(plan.cells, other.cells, strict=True))
    assert plan.with_settings(seed=3).cells == plan.cells


def test_named_plans_show_every_path_with_the_effective_value_where_not_set():
    plan = plan_from_dict(
        {
            "base": team_base(),
            "plans": [{"name": "as is", "set": {"team.reps": 3}}, {"name": "hire", "set": {"team.new_reps": 1}}],
        }
    )
    assert plan.named and [c.name for c in plan.cells] == ["as is", "hire"]
    assert plan.cells[1].values == {"team.reps": 3, "team.new_reps": 1}
    assert plan.cells[0].values == {"team.reps": 3, "team.new_reps": 0}  # the default, where the base is silent


def test_constraints_leave_cells_out_before_any_simulation():
    plan = plan_from_dict(
        grid({"team.reps": [2, 3, 4], "team.new_reps": [0, 1, 2]}, constraints={"max_new_reps": 1, "max_reps": 3})
    )
    assert [(c.values["team.reps"], c.values["team.new_reps"]) for c in plan.cells] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert plan.left_out == 5
    assert problems(grid({"team.reps": [4]}, constraints={"max_cost": 1})) == [
        "constraints: leave out every cell (all 1 cell); loosen them"
    ]


def test_max_cost_counts_new_reps_from_their_hire_month():
    # 8 reps at $100k a year for 70 days, 2 of them new: hired at day 0 they cost the whole horizon.
    whole = 8 * 100_000 * 70 / DAYS_PER_YEAR
    later = (6 * 70 + 2 * (70 - DAYS_PER_MONTH)) * 100_000 / DAYS_PER_YEAR
    plan = grid({"team.hire_month": [0, 1]}, constraints={"max_cost": (whole + later) / 2})
    plan["base"]["team"].update(reps=8, new_reps=2)
    plan = plan_from_dict(plan)
    assert [c.values["team.hire_month"] for c in plan.cells] == [1] and plan.left_out == 1
    assert cost_of_reps(plan.cells[0].scenario) == pytest.approx(later, rel=1e-12)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (grid({"team.new_reps": [0, 1, -1]}), ['vary["team.new_reps"][2]: must be a whole number >= 0, got -1']),
        (grid({"team.nwe_reps": [1]}), ['vary["team.nwe_reps"][0]: unknown key (check the spelling)']),
        (
            grid({"team..reps": [1]}),
            [
                "vary[\"team..reps\"]: not a field path (names joined by '.', list items as [i]: "
                "segments[0].team.new_reps)"
            ],
        ),  # fmt: skip
        (
            grid({"stages[5].conversion": [0.5]}),
            ['vary["stages[5].conversion"][0]: the base scenario\'s stages has 2 items, no [5]'],
        ),
        (grid({"quota.revenue": []}), ['vary["quota.revenue"]: give 1 to 1,000 values, got 0']),
        (
            grid(
                {"stages[0].open": list(range(100)), "team.reps": list(range(1, 101))}
                | {f"x{i}": [1, 2] for i in range(40)}
            ),
            ["vary: the grid has 10,995,116,277,760,000 cells; a plan may have at most 10,000"],
        ),
        (
            {**grid({"team.reps": [1]}), "runs": 0, "varry": 1},
            ["runs: Input should be greater than or equal to 1, got 0", "varry: unknown key (check the spelling)"],
        ),  # fmt: skip
        ({"base": team_base()}, ["vary: give exactly one of [vary] (a grid) or [[plans]] (named cells), got neither"]),
        ({**grid({"team.reps": [1]}), "target": 1.5}, ["target: must be strictly between 0 and 1, got 1.5"]),
        (
            {"base": team_base(), "plans": [{"name": "a", "set": {"team.reps": 0}}, {"name": "a", "set": {"x": 1}}]},
            ["plans: names must be unique, repeated: 'a'"],
        ),
        (
            {"base": team_base(), "plans": [{"name": "a", "set": {"seed": 1}}, {"name": "b", "set": {"team.reps": 0}}]},
            [
                'plans[0].set["seed"]: unknown key (check the spelling)',
                'plans[1].set["team.reps"]: must be a whole number >= 1, got 0',
            ],
        ),  # fmt: skip
        (
            {
                **grid({"team.reps": [2]}),
                "base": {**team_base(), "stages": [{"name": "S", "conversion": 1.5, "duration": 3}]},
            },
            ["base.stages[0].conversion: must be between 0 and 1, got 1.5"],
        ),  # fmt: skip
    ],
)
def test_bad_plans_get_field_path_lines(plan, expected):
    assert problems(plan) == expected


def test_a_combination_that_fails_only_with_others_names_the_cell():
    plan = grid({"team.reps": [1, 3], "team.new_reps": [0, 2]})
    assert problems(plan) == [
        'vary["team.new_reps"][1]: must be <= team.reps (1), got 2 (in the cell team.reps = 1, team.new_reps = 2)'
    ]


def test_the_base_file_is_read_beside_the_plan(tmp_path):
    write_plan(tmp_path, team_base(), "org.toml")
    path = write_plan(tmp_path / "..", {"base": f"{tmp_path.name}/org.toml", "vary": {"team.reps": [2]}}, "p.toml")
    assert load_plan(path).base == scenario_from_dict(team_base())
    missing = write_plan(tmp_path, {"base": "nope.toml", "vary": {"team.reps": [2]}})
    with pytest.raises(PlanError, match=r"nope.toml: no such file"):
        load_plan(missing)


def test_the_command_refuses_a_bad_plan_with_one_line_each(tmp_path, capsys):
    path = write_plan(tmp_path, grid({"team.new_reps": [0, -1]}, runs=-5))
    assert main(["plan", str(path), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: runs: Input should be greater than or equal to 1, got -5"]
    path = write_plan(tmp_path, grid({"team.new_reps": [0, -1]}))
    assert main(["plan", str(path), "--workers", "0"]) == 2
    assert capsys.readouterr().err == 'error: vary["team.new_reps"][1]: must be a whole number >= 0, got -1\n'
    (tmp_path / "bad.toml").write_text("base = [", encoding="utf-8")
    assert main(["plan", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'bad.toml'}: malformed TOML") and "Traceback" not in err


def test_a_plan_too_large_to_hold_is_refused_before_its_cells_are_made():
    plan = grid({"quota.revenue": list(range(1, 1001)), "team.reps": list(range(1, 11))})
    deal = {"stage": "Discovery", "age_days": 1.0, "amount": 1000.0, "name": "a deal"}
    plan["base"]["open_deals"] = [deal] * 10_000
    (line,) = problems(plan)
    assert line.startswith("vary: 10,000 cells of a base scenario this large would hold about ")
    assert line.endswith(
        "million characters (limit 500 million); give fewer cells or a smaller base (fewer listed open deals)"
    )


def test_a_plan_or_base_that_is_not_a_regular_file_is_one_line(tmp_path, capsys):
    assert main(["plan", str(tmp_path), "--workers", "0"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: is a directory, not a plan file\n"
    (tmp_path / "base.toml").mkdir()
    path = write_plan(tmp_path, {"base": "base.toml", "vary": {"team.reps": [2]}})
    assert main(["plan", str(path), "--workers", "0"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'base.toml'}: is a directory, not a scenario file\n"

"""Bad input gets a clear answer: the field path and the problem, never a traceback."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import ScenarioError, load_scenario, simulate
from sim.cli import main
from sim.scenario import scenario_from_dict, scenario_to_toml
from tests.conftest import BASE_DOCUMENT, document


def problems(doc) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(doc)
    return caught.value.problems


def stage_change(index: int, **changes) -> dict:
    doc = document()
    doc["stages"][index].update(changes)
    return doc


CASES = [
    ("rate above 1", stage_change(1, conversion=1.3), "stages[1].conversion: must be between 0 and 1, got 1.3"),
    ("negative rate", stage_change(0, conversion=-0.1), "stages[0].conversion: must be between 0 and 1, got -0.1"),
    ("typo'd key", stage_change(0, convresion=0.3), "stages[0].convresion: unknown key (check the spelling)"),
    ("typo'd top key", document(horizon_dyas=5), "horizon_dyas: unknown key"),
    (
        "negative sd",
        stage_change(0, duration={"dist": "lognormal", "mean": 7, "sd": -4}),
        "stages[0].duration.sd: must be a finite number > 0, got -4.0",
    ),
    ("negative fixed duration", stage_change(1, duration=-3), "stages[1].duration.value: must be a finite number >= 0"),
    (
        "negative mean",
        stage_change(0, duration={"dist": "exponential", "mean": -1}),
        "stages[0].duration.mean: must be a finite number > 0",
    ),
    (
        "unknown family",
        stage_change(0, duration={"dist": "weibull", "mean": 3}),
        "stages[0].duration: unknown distribution 'weibull'",
    ),
    (
        "beta mean outside",
        stage_change(0, conversion={"mean": 1.5, "concentration": 10}),
        "stages[0].conversion.mean: must be strictly between 0 and 1, got 1.5",
    ),
    ("missing section", {k: v for k, v in BASE_DOCUMENT.items() if k != "quota"}, "quota: missing (required)"),
    ("missing inflow", {k: v for k, v in BASE_DOCUMENT.items() if k != "inflow"}, "inflow: missing (required)"),
    (
        "both quotas",
        document(quota={"revenue": 10, "deals": 2}),
        "quota: give exactly one of revenue or deals, got both",
    ),
    ("neither quota", document(quota={}), "quota: give exactly one of revenue or deals, got neither"),
    ("negative quota", document(quota={"deals": -2}), "quota.deals: must be a number > 0, got -2"),
    ("duplicate stage names", stage_change(1, name="Discovery"), "stages: names must be unique, repeated: Discovery"),
    ("both horizons", document(horizon_weeks=4), "horizon_days: give exactly one of horizon_days or horizon_weeks"),
    ("absurd size", document(inflow={"per_week": 1e9}), "inflow.per_week: about"),
    ("negative inflow", document(inflow={"per_week": -1}), "inflow.per_week: must be a finite number >= 0"),
    ("unknown process", document(inflow={"per_week": 1, "process": "batch"}), "inflow.process:"),
    ("no stages", document(stages=[]), "stages:"),
    ("negative open", stage_change(0, open=-2), "stages[0].open:"),
    (
        "uniform order",
        stage_change(0, duration={"dist": "uniform", "low": 5, "high": 2}),
        "stages[0].duration: high must be greater than low",
    ),
]


@pytest.mark.parametrize(("label", "doc", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_problem_names_its_field(label, doc, expected):
    lines = problems(doc)
    assert any(line.startswith(expected) for line in lines), lines


def test_several_problems_are_all_reported():
    doc = stage_change(0, conversion=2.0, duration={"dist": "gamma", "mean": 3, "sd": -1})
    doc["quota"] = {"revenue": 1, "deals": 1}
    lines = problems(doc)
    assert any(line.startswith("stages[0].conversion:") for line in lines)
    assert any(line.startswith("stages[0].duration.sd:") for line in lines)
    assert any(line.startswith("quota:") for line in lines)


def test_files(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[quota\nrevenue = 3\n")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


@pytest.mark.parametrize(("label", "doc", "expected"), CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_cli_exit_code_and_message(label, doc, expected, tmp_path, capsys):
    path = tmp_path / "scenario.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(doc))
    code = main(["run", str(path), "--runs", "10"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {expected}" in err
    assert "Traceback" not in err


def test_cli_bad_file_and_options(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text("= nonsense")
    assert main(["run", str(tmp_path / "bad.toml")]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    for options in (["--runs", "0"], ["--runs", "many"], ["--seed", "-1"], ["--jobs", "0"], ["--engine", "x"]):
        with pytest.raises(SystemExit) as exited:
            main(["run", "scenarios/reference_quarter.toml", *options])
        assert exited.value.code == 2


def test_simulate_refuses_bad_arguments(scenario):
    for kwargs in ({"runs": 0}, {"runs": 10**9}, {"seed": -1}, {"jobs": 0}, {"engine": "fast"}):
        with pytest.raises(ValueError):
            simulate(scenario, **kwargs)


# --- property test: generated documents, valid and invalid -------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(min_value=-10, max_value=10**7),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
)
distributions = st.one_of(
    st.floats(min_value=0, max_value=60),
    st.fixed_dictionaries({"dist": st.just("lognormal"), "mean": st.floats(0.1, 30), "sd": st.floats(0.1, 20)}),
    st.fixed_dictionaries({"dist": st.just("gamma"), "mean": st.floats(0.1, 30), "sd": st.floats(0.1, 20)}),
    st.fixed_dictionaries({"dist": st.just("exponential"), "mean": st.floats(0.1, 30)}),
    st.fixed_dictionaries({"dist": st.just("uniform"), "low": st.floats(0, 5), "high": st.floats(5.01, 30)}),
    st.fixed_dictionaries(
        {"dist": st.just("triangular"), "low": st.just(1.0), "mode": st.floats(1, 4), "high": st.floats(4.01, 9)}
    ),
    st.fixed_dictionaries({"dist": st.just("empirical"), "values": st.lists(st.floats(0, 50), min_size=1, max_size=5)}),
)
rates = st.one_of(
    st.floats(0, 1),
    st.fixed_dictionaries({"mean": st.floats(0.01, 0.99), "concentration": st.floats(0.5, 200)}),
)
stages = st.lists(
    st.fixed_dictionaries(
        {"conversion": rates, "duration": distributions},
        optional={"open": st.integers(0, 15)},
    ),
    min_size=1,
    max_size=4,
)
valid_documents = st.builds(
    lambda stage_list, per_week, horizon, quota, value: {
        "name": "generated",
        "horizon_days": horizon,
        "quota": quota,
        "inflow": {"per_week": per_week},
        "deal_value": value,
        "stages": [{"name": f"S{i}", **s} for i, s in enumerate(stage_list)],
    },
    stages,
    st.floats(0, 40),
    st.floats(1, 120),
    st.one_of(
        st.fixed_dictionaries({"revenue": st.floats(1, 1e6)}), st.fixed_dictionaries({"deals": st.integers(1, 50)})
    ),
    distributions,
)


@st.composite
def mutated_documents(draw):
    """A valid document with one field replaced, removed or added."""
    doc = copy.deepcopy(draw(valid_documents))
    section = draw(st.sampled_from(["top", "quota", "inflow", "stage", "duration"]))
    target = {
        "top": doc,
        "quota": doc["quota"],
        "inflow": doc["inflow"],
        "stage": doc["stages"][0],
        "duration": doc["stages"][0]["duration"] if isinstance(doc["stages"][0]["duration"], dict) else doc,
    }[section]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "add" or not target:
        target[draw(st.sampled_from(["extra", "rate", "mean", "open", "per_week"]))] = draw(numbers)
    else:
        key = draw(st.sampled_from(sorted(target)))
        if action == "remove":
            del target[key]
        else:
            target[key] = draw(numbers)
    return doc


def _run_or_refuse(doc) -> None:
    try:
        scenario = scenario_from_dict(doc)
    except ScenarioError as error:
        assert error.problems and all(": " in line for line in error.problems)
        return
    assert scenario_from_dict(copy.deepcopy(doc)) == scenario
    for engine in ("vectorized", "simpy"):
        result = simulate(scenario, runs=3, seed=0, engine=engine)
        o = result.outcomes
        assert (o.won_deals >= 0).all() and (o.revenue >= 0).all()
        assert (o.won_deals <= o.entered[:, -1]).all()
        assert (o.converted <= o.entered).all()


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents)
def test_generated_valid_documents_run(doc):
    _run_or_refuse(doc)


@settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(mutated_documents())
def test_generated_documents_run_or_are_refused(doc):
    _run_or_refuse(doc)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(valid_documents)
def test_valid_documents_round_trip_through_toml(doc):
    try:
        scenario = scenario_from_dict(doc)
    except ScenarioError:
        return
    from sim.scenario import scenario_from_toml

    assert scenario_from_toml(scenario_to_toml(scenario)) == scenario

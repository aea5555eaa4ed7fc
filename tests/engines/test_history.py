"""A replication deal by deal (sim.history) is the same replication the SimPy engine counts.

For each scenario and seed, the deal history's wins, revenue, weekly revenue and stage
counts must equal those of :func:`sim.engines.simpy_engine.run_replications` exactly: the history is
built from the same draws, so any difference is a bug, not noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import load_scenario
from sim.crm.synthetic import deal_history
from sim.engines.outcomes import weekly_cumulative
from sim.engines.simpy_engine import run_replications
from sim.engines.streams import root_children
from tests.conftest import SCENARIOS_DIR, make_scenario
from tests.engines.test_stage_behaviour import ALL_KEYS

SCENARIOS = {
    "reference quarter (open pipeline, Beta rates)": load_scenario(SCENARIOS_DIR / "reference_quarter.toml"),
    "follow-ups, no-shows and stalls": ALL_KEYS.model_copy(update={"open_deals": ()}),
    "fixed inflow": make_scenario(inflow={"per_week": 9, "process": "fixed"}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_history_is_the_engines_replication(name):
    scenario = SCENARIOS[name]
    seeds = root_children(5, 0, 6)
    counted = run_replications(scenario, seeds)
    for i, seed in enumerate(seeds):
        history = deal_history(scenario, seed)
        won = history[history["outcome"] == "won"]
        assert len(won) == counted.won_deals[i]
        assert won["amount"].sum() == pytest.approx(counted.revenue[i], rel=1e-12)
        weekly = weekly_cumulative(
            np.zeros(len(won), dtype=np.int64), won["closed"].to_numpy(), won["amount"].to_numpy(), 1, scenario.n_weeks
        )[0]
        np.testing.assert_allclose(weekly, counted.weekly_revenue[i], rtol=1e-12)
        entries = history[[f"entered[{s}]" for s in scenario.stage_names]].notna().to_numpy()
        np.testing.assert_array_equal(entries.sum(axis=0), counted.entered[i])
        # Converting out of a stage is entering the next from it (not starting there, as open deals do).
        moved_on = [*(entries[:, :-1] & entries[:, 1:]).sum(axis=0), len(won)]
        np.testing.assert_array_equal(moved_on, counted.converted[i])


def test_every_deal_is_written_down_consistently():
    scenario = SCENARIOS["reference quarter (open pipeline, Beta rates)"]
    history = deal_history(scenario, root_children(1, 0, 1)[0])
    horizon = scenario.horizon
    assert set(history["outcome"]) == {"won", "lost", "open"}
    closed = history["outcome"] != "open"
    assert history.loc[closed, "closed"].between(0, horizon).all() and history.loc[~closed, "closed"].isna().all()
    entries = history[[f"entered[{s}]" for s in scenario.stage_names]].to_numpy()
    # Stages are entered in order, one after another, each no earlier than the one before, by the horizon.
    both = ~np.isnan(entries[:, :-1]) & ~np.isnan(entries[:, 1:])
    assert (np.diff(entries, axis=1)[both] >= 0).all() and (entries[~np.isnan(entries)] <= horizon).all()
    gap = np.isnan(entries[:, 1:-1]) & ~np.isnan(entries[:, :-2]) & ~np.isnan(entries[:, 2:])
    assert not gap.any()
    # A closed deal closes after it entered its last stage; an open one is still in it.
    last = np.nanmax(entries, axis=1)
    assert (history.loc[closed, "closed"].to_numpy() >= last[closed.to_numpy()]).all()
    assert (history["amount"] > 0).all()
    # The 38 open deals are listed first, in their stages, created at day 0.
    assert (history["created"].iloc[:38] == 0).all() and (history["created"].iloc[38:] > 0).all()


@pytest.mark.parametrize(
    "changes",
    [
        {"capacity": {"reps": 1}, "stages": [{"name": "A", "conversion": 0.5, "duration": 3, "per_rep": 2}]},
        {"team": {"reps": 2, "rep_quota": 5, "rate_concentration": 10}},
    ],
    ids=["capacity", "team"],
)
def test_only_the_basic_model_is_written_down(changes):
    with pytest.raises(ValueError, match="only for the basic model"):
        deal_history(make_scenario(**changes), root_children(0, 0, 1)[0])

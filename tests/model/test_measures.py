"""What a scenario's number measures, read from its path: the one reading behind rounding, plan reports and Compare."""

from __future__ import annotations

import pytest

from sim.model.measures import kind_of


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("quota.revenue", "money"),
        ("segments[3].quota.revenue", "money"),
        ("deal_value", "money"),  # a fixed value, written as a bare number
        ("deal_value.mean", "money"),
        ("segments[0].deal_value.values", "money"),  # a resampled value's list
        ("open_deals[2].amount", "money"),
        ("team.cost_per_year", "money"),
        ("team.rep_quota", "money"),
        ("deal_value_dispersion", "other"),
        ("quota.deals", "other"),
        ("inflow.per_week", "other"),
        ("team.reps", "other"),
        ("stages[0].conversion", "rate"),
        ("stages[1].conversion.mean", "rate"),
        ("stages[1].conversion.concentration", "other"),
        ("stages[2].no_show", "rate"),
        ("stages[2].duration.sd", "days"),
        ("segments[1].stages[0].lost_duration.mean", "days"),
        ("open_deals[0].age_days", "days"),
        ("horizon_days", "days"),
    ],
)
def test_a_dotted_path_and_its_keys_read_alike(path, kind):
    keys = tuple(part.split("[")[0] for part in path.split("."))
    assert kind_of(path) == kind_of(keys) == kind


def test_a_rep_quota_is_money_only_when_the_quota_is():
    assert kind_of("team.rep_quota", unit="revenue") == "money"
    assert kind_of("team.rep_quota", unit="deals") == "other"
    assert kind_of("quota.revenue", unit="deals") == "money"  # the field itself is money whatever the unit

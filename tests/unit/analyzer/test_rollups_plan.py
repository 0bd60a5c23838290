"""Rollup plans: metrics of one stream and window share a slot; the digest names the slot set."""

from __future__ import annotations

import pytest

from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.rollups.plan import MAX_SLOTS, RollupPlan, Slot
from splitlab_analyzer.rollups.repository import (
    Binder,
    backlog_sql,
    first_exposures_sql,
    store_sql,
    unit_slots_sql,
)

REVENUE = MetricDef("revenue", "outcome", "purchase", "sum")
ORDERS = MetricDef("orders", "outcome", "purchase", "count")
CONVERTED = MetricDef("converted", "outcome", "purchase", "any", pre_period_days=0)
REVENUE_1D = MetricDef("revenue_1d", "outcome", "purchase", "sum", attribution_window_seconds=86400)
LATENCY = MetricDef("latency", "prediction_latency", None, "mean", pre_period_days=7)


def test_metrics_of_one_stream_and_window_share_a_slot() -> None:
    plan = RollupPlan.for_metrics([REVENUE, ORDERS, CONVERTED, REVENUE_1D, LATENCY])
    assert plan.slots == (
        Slot("outcome", "purchase", "post", 86400.0),
        Slot("outcome", "purchase", "post", None),
        Slot("outcome", "purchase", "pre", 14 * 86400.0),
        Slot("prediction_latency", "", "post", None),
        Slot("prediction_latency", "", "pre", 7 * 86400.0),
    )
    assert plan.outcome_types == ["purchase"]
    assert plan.uses_predictions


def test_the_digest_ignores_metric_order_and_aggregation_but_not_windows() -> None:
    a = RollupPlan.for_metrics([REVENUE, LATENCY])
    b = RollupPlan.for_metrics([LATENCY, ORDERS])  # a count reads the same slots as a sum
    assert a.digest == b.digest
    assert RollupPlan.from_json(a.to_json()) == a
    longer = MetricDef("revenue", "outcome", "purchase", "sum", pre_period_days=28)
    assert RollupPlan.for_metrics([longer, LATENCY]).digest != a.digest


def test_ratio_metrics_are_planned_through_their_parts_and_slots_are_bounded() -> None:
    with pytest.raises(ValueError, match=r"^bases"):
        RollupPlan.for_metrics([MetricDef("rpc", numerator="revenue", denominator="orders")])
    many = [MetricDef(f"m{i}", "outcome", f"type{i}", "sum") for i in range(MAX_SLOTS)]
    assert not RollupPlan.for_metrics(many).storable  # a post and a pre slot each
    assert not RollupPlan.for_metrics([]).storable


def test_slot_sql_binds_values_and_styles() -> None:
    plan = RollupPlan.for_metrics([MetricDef("x", "outcome", "it's", "sum"), LATENCY])
    named = Binder("named")
    sql = unit_slots_sql(plan, named, named("key", "exp"))
    assert "it's" not in sql
    assert ":ots0" in sql
    assert named.params["ots0"] == ["it's"]
    pyformat = Binder("pyformat")
    sql = store_sql(plan, pyformat, pyformat("key", "exp"), units="experiment_units u JOIN b")
    assert "%(key0)s" in sql
    assert "FROM outcomes UNION ALL" in sql
    assert "ON CONFLICT (experiment_key, unit_id) DO UPDATE" in sql


def test_ingestion_sql_keeps_the_earliest_exposure_and_notes_units() -> None:
    upsert = first_exposures_sql("stage_exposures")
    assert "ORDER BY experiment_key, unit_id, occurred_at, event_id" in upsert
    assert "WHERE (excluded.first_at, excluded.first_event_id) <" in upsert
    assert backlog_sql("stage_outcomes").endswith("FROM stage_outcomes")

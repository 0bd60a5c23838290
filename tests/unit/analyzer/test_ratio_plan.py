"""The results query's plan for ratio CUPED, ``event_mean`` and in-experiment covariates."""

from __future__ import annotations

import pytest

from splitlab.core.errors import ArgumentError
from splitlab_analyzer.definitions import MetricDef, check_definition
from splitlab_analyzer.results.repository.query import ResultsQuery

REVENUE = MetricDef("revenue", "outcome", "purchase", "sum")
CLICKS = MetricDef("clicks", "outcome", "click", "count")
NO_PRE = MetricDef("visits", "outcome", "visit", "count", pre_period_days=0)


def _query(*metrics: MetricDef) -> ResultsQuery:
    definitions = {m.name: m for m in (REVENUE, CLICKS, NO_PRE, *metrics)}
    return ResultsQuery("exp", ["control", "treatment"], list(metrics), definitions)


def test_a_ratio_takes_both_parts_pre_period_values_and_its_features() -> None:
    rpc = MetricDef(
        "rpc", numerator="revenue", denominator="clicks", covariates=("spend",),
        in_experiment_covariates=("device",),
    )  # fmt: skip
    query = _query(rpc)
    plan = query.planned[0]
    assert plan.columns == ("y0", "y1", "y0_pre", "y1_pre", "f0", "g0")
    assert [c.name for c in plan.covariates] == ["revenue_pre", "clicks_pre", "spend", "device"]
    assert [c.in_experiment for c in plan.covariates] == [False, False, False, True]
    assert plan.parts == ("revenue", "clicks")
    sql = query.aggregate_sql()
    assert "regr_sxy(y0_pre, y1_pre)" in sql
    assert "AND f.observed_at >= u.first_at" in sql
    assert "AND f.observed_at < u.first_at" in sql


def test_a_ratio_without_a_pre_period_on_both_parts_has_no_pre_covariates() -> None:
    plan = _query(MetricDef("rpv", numerator="revenue", denominator="visits")).planned[0]
    assert plan.columns == ("y0", "y1")


def test_event_mean_is_the_ratio_of_sums_and_event_counts() -> None:
    latency = MetricDef("latency", "prediction_latency", None, "event_mean")
    query = _query(latency)
    plan = query.planned[0]
    assert plan.columns == ("y0", "y0_n", "y0_pre", "y0_pre_n")
    assert plan.parts == ("sum(latency)", "events(latency)")
    sql = query.aggregate_sql()
    assert "nullif(u.n0, 0)::float8 AS y0_n" in sql
    assert "(CASE WHEN u.n0 > 0 THEN u.s0 END)::float8 AS y0" in sql
    assert "regr_count(y0, y0_n)" in sql


def test_definitions() -> None:
    check_definition(MetricDef("rpc", numerator="revenue", denominator="clicks",
                               covariates=("spend",)))  # fmt: skip
    check_definition(MetricDef("latency", "prediction_latency", None, "event_mean"))
    with pytest.raises(ArgumentError, match="also pre-exposure covariates") as err:
        check_definition(
            MetricDef(
                "revenue",
                "outcome",
                "purchase",
                "sum",
                covariates=("device",),
                in_experiment_covariates=("device",),
            )
        )
    assert err.value.argument == "in_experiment_covariates"
    with pytest.raises(ArgumentError, match="unique"):
        check_definition(
            MetricDef(
                "revenue",
                "outcome",
                "purchase",
                "sum",
                in_experiment_covariates=("device", "device"),
            )
        )


def test_create_and_patch_carry_in_experiment_covariates() -> None:
    from splitlab_analyzer.schemas import MetricCreate, MetricRead, MetricUpdate

    created = MetricCreate.model_validate(
        {"name": "revenue", "source": "outcome", "outcome_type": "purchase",
         "aggregation": "sum", "in_experiment_covariates": ["device_speed"]}
    ).to_def()  # fmt: skip
    assert created.in_experiment_covariates == ("device_speed",)
    assert MetricRead.of(created).in_experiment_covariates == ["device_speed"]
    patched = MetricUpdate.model_validate({"in_experiment_covariates": []}).apply(created)
    assert patched.in_experiment_covariates == ()
    with pytest.raises(ValueError, match="in_experiment_covariates: cannot be null"):
        MetricUpdate.model_validate({"in_experiment_covariates": None}).apply(created)
    with pytest.raises(ValueError, match="also pre-exposure covariates"):
        MetricUpdate.model_validate({"covariates": ["device_speed"]}).apply(created)

"""``MetricUpdate``: a PATCH of a metric definition changes the fields sent, keeps the rest and
the name, and keeps the rules across fields (pure, no database)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.schemas import MetricUpdate

REVENUE = MetricDef(
    name="revenue", source="outcome", outcome_type="purchase", aggregation="sum",
    guardrail_margin=0.05, covariates=("spend_30d",),
)  # fmt: skip


def test_only_the_sent_fields_change() -> None:
    patch = MetricUpdate.model_validate({"attribution_window_seconds": 86400, "covariates": []})
    updated = patch.apply(REVENUE)
    assert updated.attribution_window_seconds == 86400
    assert updated.covariates == ()
    assert (updated.name, updated.aggregation, updated.guardrail_margin) == ("revenue", "sum", 0.05)


def test_null_clears_a_nullable_field_only() -> None:
    assert (
        MetricUpdate.model_validate({"guardrail_margin": None}).apply(REVENUE).guardrail_margin
        is None
    )
    with pytest.raises(ValueError, match="direction: cannot be null"):
        MetricUpdate.model_validate({"direction": None}).apply(REVENUE)


def test_rules_across_fields_name_the_field() -> None:
    with pytest.raises(ValueError, match="outcome_type"):
        MetricUpdate.model_validate({"source": "prediction_latency"}).apply(REVENUE)
    to_ratio = MetricUpdate.model_validate(
        {"numerator": "a", "denominator": "b", "source": None, "aggregation": None,
         "outcome_type": None, "covariates": []}
    )  # fmt: skip
    assert to_ratio.apply(REVENUE).is_ratio


def test_the_name_never_changes() -> None:
    with pytest.raises(ValidationError, match="define a new metric and deprecate this one"):
        MetricUpdate.model_validate({"name": "revenue_net"})

"""HTTP schemas of the analyzer: one family per resource.

Metric definitions: ``MetricCreate`` (POST /metrics), ``MetricUpdate`` (PATCH
/metric-definitions/{name}), ``MetricDeprecate``, ``MetricRead``, ``MetricList``. Unit
features: ``FeatureLoad`` (POST /unit-features) and ``FeatureLoadResult``. CUPAC:
``TrainingQueued``. Results are ``splitlab.analyze``'s JSON shape (documented in
``splitlab.core.analysis.results`` and docs/analyzer.md), returned as plain JSON.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from splitlab.contracts.names import METRIC_PATTERN
from splitlab.contracts.times import UtcDatetime
from splitlab.contracts.values import BoundedValue
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.metric_tests import BOOTSTRAP_TESTS, MetricTest
from splitlab_analyzer.definitions import (
    Aggregation,
    Direction,
    MetricDef,
    Source,
    check_definition,
)

MetricName = Annotated[str, Field(pattern=METRIC_PATTERN, examples=["conversion"])]
FeatureName = Annotated[str, Field(min_length=1, max_length=128, examples=["spend_30d"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricCreate(_Strict):
    name: MetricName
    description: str = Field(default="", max_length=2000)
    source: Source | None = Field(
        default=None, description="Where values come from; omit for a ratio metric."
    )
    outcome_type: str | None = Field(
        default=None, min_length=1, max_length=200, description="Required for source=outcome."
    )
    aggregation: Aggregation | None = Field(
        default=None, description="Per unit: sum, count, any (0/1) or mean of its events."
    )
    numerator: MetricName | None = None
    denominator: MetricName | None = None
    direction: Direction = "higher_is_better"
    guardrail_margin: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Default non-inferiority margin (relative) when used as a guardrail.",
    )
    attribution_window_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Count events this long after "
        "the unit's first exposure; unset: every event after it.",
    )
    pre_period_days: float = Field(
        default=14.0,
        ge=0,
        le=3650,
        allow_inf_nan=False,
        description="Pre-exposure window of the automatic CUPED covariate; 0 turns it off.",
    )
    covariates: list[FeatureName] = Field(
        default_factory=list,
        max_length=20,
        description="unit_features names to adjust with (latest value before the first exposure).",
    )
    in_experiment_covariates: list[FeatureName] = Field(
        default_factory=list,
        max_length=20,
        description="CUNOPAC: unit_features the treatment cannot move, observed at or after the "
        "first exposure (latest value); each is tested for balance between arms and refused, "
        "with the evidence in the results, when the treatment moved it.",
    )
    test: MetricTest = Field(
        default="welch",
        description="The metric's test: welch, z or chi2 (0/1 metrics: aggregation any), "
        "mann_whitney, bootstrap_bca or bootstrap_percentile (of a quantile).",
    )
    quantile: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="The quantile a bootstrap test compares; unset: the median.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MetricCreate:
        check_definition(self.to_def())
        return self

    def to_def(self) -> MetricDef:
        return MetricDef(
            name=self.name,
            source=self.source,
            outcome_type=self.outcome_type,
            aggregation=self.aggregation,
            numerator=self.numerator,
            denominator=self.denominator,
            direction=self.direction,
            guardrail_margin=self.guardrail_margin,
            attribution_window_seconds=self.attribution_window_seconds,
            pre_period_days=self.pre_period_days,
            covariates=tuple(self.covariates),
            description=self.description,
            test=self.test,
            quantile=self.quantile,
            in_experiment_covariates=tuple(self.in_experiment_covariates),
        )


NOT_NULL_ON_UPDATE = (
    "description",
    "direction",
    "pre_period_days",
    "covariates",
    "in_experiment_covariates",
    "test",
)
"""Fields a metric PATCH may change but not clear: the schema offers no ``null`` for them."""


def _no_null_where_required(schema: dict[str, Any]) -> None:
    """The update's JSON schema says what ``apply`` enforces: ``null`` only where it clears."""
    for name in NOT_NULL_ON_UPDATE:
        field = schema.get("properties", {}).get(name, {})
        options = field.get("anyOf")
        if not isinstance(options, list):
            continue
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del field["anyOf"]
            field.update(kept[0])
        else:
            field["anyOf"] = kept
        field.pop("default", None)


class MetricUpdate(_Strict):
    """A PATCH: only the fields sent change (``null`` clears a nullable one); the name stays."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_where_required)

    description: str | None = Field(default=None, max_length=2000)
    source: Source | None = None
    outcome_type: str | None = Field(default=None, min_length=1, max_length=200)
    aggregation: Aggregation | None = None
    numerator: MetricName | None = None
    denominator: MetricName | None = None
    direction: Direction | None = None
    guardrail_margin: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    attribution_window_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    pre_period_days: float | None = Field(default=None, ge=0, le=3650, allow_inf_nan=False)
    covariates: list[FeatureName] | None = Field(default=None, max_length=20)
    test: MetricTest | None = None
    quantile: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    in_experiment_covariates: list[FeatureName] | None = Field(default=None, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _name_is_the_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data:
            raise ValueError("name cannot be updated: define a new metric and deprecate this one")
        return data

    def apply(self, current: MetricDef) -> MetricDef:
        """``current`` with the sent fields changed; :class:`~splitlab.core.errors.ArgumentError`
        naming the field when the result breaks a rule across fields."""
        changes: dict[str, Any] = self.model_dump(include=self.model_fields_set)
        for required in NOT_NULL_ON_UPDATE:
            if required in changes and changes[required] is None:
                raise ArgumentError(required, f"{required}: cannot be null")
        for listed in ("covariates", "in_experiment_covariates"):
            if listed in changes:
                changes[listed] = tuple(changes[listed])
        if changes.get("test") not in (None, *BOOTSTRAP_TESTS) and "quantile" not in changes:
            changes["quantile"] = None  # a quantile belongs to a bootstrap test
        updated = dataclasses.replace(current, **changes)
        check_definition(updated)
        return updated


class MetricDeprecate(_Strict):
    reason: str = Field(
        min_length=1, max_length=2000, examples=["replaced by revenue_net (refunds excluded)"]
    )


class MetricRead(BaseModel):
    name: str
    description: str
    kind: str
    source: str | None
    outcome_type: str | None
    aggregation: str | None
    numerator: str | None
    denominator: str | None
    direction: str
    guardrail_margin: float | None
    attribution_window_seconds: float | None
    pre_period_days: float
    covariates: list[str]
    in_experiment_covariates: list[str]
    deprecated: bool = Field(
        description="Deprecated: still computed for experiments that use it; refused as a "
        "part of a new ratio metric."
    )
    deprecated_at: datetime | None
    deprecation_reason: str
    test: str = Field(default="welch", description="The metric's test.")
    quantile: float | None = Field(
        default=None, description="The quantile of a bootstrap test (None: the median)."
    )

    @classmethod
    def of(cls, m: MetricDef) -> MetricRead:
        return cls(
            name=m.name,
            description=m.description,
            kind="ratio" if m.is_ratio else "plain",
            source=m.source,
            outcome_type=m.outcome_type,
            aggregation=m.aggregation,
            numerator=m.numerator,
            denominator=m.denominator,
            direction=m.direction,
            guardrail_margin=m.guardrail_margin,
            attribution_window_seconds=m.attribution_window_seconds,
            pre_period_days=m.pre_period_days,
            covariates=list(m.covariates),
            in_experiment_covariates=list(m.in_experiment_covariates),
            deprecated=m.deprecated_at is not None,
            deprecated_at=m.deprecated_at,
            deprecation_reason=m.deprecation_reason,
            test=m.test,
            quantile=m.quantile,
        )


class MetricList(BaseModel):
    metrics: list[MetricRead]


class FeatureValue(_Strict):
    unit_id: str = Field(min_length=1, max_length=256)
    name: FeatureName
    value: BoundedValue = Field(strict=True)
    observed_at: UtcDatetime


class FeatureLoad(_Strict):
    features: list[FeatureValue] = Field(min_length=1, max_length=20_000)


class FeatureLoadResult(BaseModel):
    loaded: int


class TrainingQueued(BaseModel):
    """``POST /experiments/{key}/cupac``: the trainer's task that will train the models."""

    experiment_key: str
    task_id: str


class ActionList(BaseModel):
    actions: list[dict[str, Any]]


class SnapshotMetricRead(BaseModel):
    """One metric and treatment in a results snapshot (``GET /results``' names)."""

    metric: str
    variant: str
    method: str
    variance_reduction: float | None
    n_control: int
    n_treatment: int
    mean_control: float | None
    mean_treatment: float | None
    effect: float | None
    ci_lower: float | None = Field(description="Fixed-horizon confidence interval.")
    ci_upper: float | None
    p_value: float | None
    cs_lower: float | None = Field(description="Always-valid confidence sequence.")
    cs_upper: float | None
    always_valid_p_value: float | None


class SnapshotRead(BaseModel):
    taken_at: datetime
    reason: str = Field(description="refresh (the scheduled pass) or stop.")
    computed_at: datetime
    units: dict[str, int]
    srm_p_value: float | None
    decisions: dict[str, dict[str, Any]] = Field(description="Per treatment: action, reasons.")
    metrics: list[SnapshotMetricRead]


class ResultsHistory(BaseModel):
    experiment_key: str
    snapshots: list[SnapshotRead] = Field(description="Oldest first.")

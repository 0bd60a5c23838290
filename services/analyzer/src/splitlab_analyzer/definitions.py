"""Metric definitions as plain data (what the results query needs), apart from their storage.

A *plain* metric turns a unit's events after its first exposure into one number: events come
from a ``source`` (``outcome`` of an ``outcome_type``, ``prediction_latency`` or
``prediction_error``) and are aggregated per unit by ``sum``, ``count``, ``any`` (0/1) or
``mean`` (no events: no value, the unit is dropped for that metric), or ``event_mean``: the
mean over every event of the arm (per request, per prediction), which is the ratio of the
units' sums and event counts analysed by the delta method over units (units without events
are dropped). ``mean`` weighs each unit equally, ``event_mean`` each event. A *ratio* metric
divides two plain metrics, summed over units (the delta method handles the ratio).

Covariates: ``covariates`` are ``unit_features`` observed before the first exposure;
``in_experiment_covariates`` (CUNOPAC) are ``unit_features`` observed at or after it that the
treatment cannot move, tested for balance between arms before use. Ratio metrics take both, and
the pre-period values of their numerator and denominator when both parts have a pre-period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.metric_tests import BOOTSTRAP_TESTS, PROPORTION_TESTS, MetricTest

Source = Literal["outcome", "prediction_latency", "prediction_error"]
Aggregation = Literal["sum", "count", "any", "mean", "event_mean"]
Direction = Literal["higher_is_better", "lower_is_better"]

SOURCES: tuple[str, ...] = ("outcome", "prediction_latency", "prediction_error")
AGGREGATIONS: tuple[str, ...] = ("sum", "count", "any", "mean", "event_mean")
DIRECTIONS: tuple[str, ...] = ("higher_is_better", "lower_is_better")


@dataclass(frozen=True)
class MetricDef:
    name: str
    source: Source | None = None
    outcome_type: str | None = None
    aggregation: Aggregation | None = None
    numerator: str | None = None
    denominator: str | None = None
    direction: Direction = "higher_is_better"
    guardrail_margin: float | None = None
    attribution_window_seconds: float | None = None
    pre_period_days: float = 14.0
    covariates: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    deprecated_at: datetime | None = None
    """When the metric was deprecated (None: in use); results still compute it."""
    deprecation_reason: str = ""
    test: MetricTest = "welch"
    """The metric's test (:data:`splitlab.core.stats.metric_tests.TESTS`)."""
    quantile: float | None = None
    """The quantile a bootstrap test compares (None: the median)."""
    in_experiment_covariates: tuple[str, ...] = field(default_factory=tuple)
    """``unit_features`` observed during the experiment (CUNOPAC): balance-checked, then used."""

    @property
    def is_ratio(self) -> bool:
        return self.numerator is not None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower_is_better"

    @property
    def pre_covariate(self) -> str:
        """Column name of the metric's own pre-exposure value (the CUPED covariate)."""
        return f"{self.name}_pre"


def check_test(metric: MetricDef) -> None:
    """The test fits the metric: a ratio has the delta method (``welch``) only, ``z`` and
    ``chi2`` need a 0/1 metric (aggregation ``any``), a quantile belongs to a bootstrap test."""
    if metric.aggregation == "event_mean" and metric.test != "welch":
        raise ArgumentError(
            "test",
            f"test: {metric.test!r} does not apply to aggregation 'event_mean' (a ratio of the "
            "units' sums and event counts, tested by the delta method); use 'welch' (the default)",
        )
    if metric.is_ratio and metric.test != "welch":
        raise ArgumentError(
            "test",
            f"test: {metric.test!r} does not apply to a ratio metric (the delta method tests "
            "it); use 'welch' (the default)",
        )
    if metric.test in PROPORTION_TESTS and not metric.is_ratio and metric.aggregation != "any":
        raise ArgumentError(
            "test",
            f"test: {metric.test!r} needs a 0/1 metric (aggregation 'any') and the aggregation "
            f"is {metric.aggregation!r}; use 'welch', 'mann_whitney', 'bootstrap_bca' or "
            "'bootstrap_percentile'",
        )
    if metric.quantile is not None:
        if not 0.0 < metric.quantile < 1.0:
            raise ArgumentError(
                "quantile", f"quantile: must lie in (0, 1), e.g. 0.5; got {metric.quantile}"
            )
        if metric.test not in BOOTSTRAP_TESTS:
            raise ArgumentError(
                "quantile",
                f"quantile: applies to a bootstrap test only and test is {metric.test!r}; set "
                "test to 'bootstrap_bca' or 'bootstrap_percentile', or drop the quantile",
            )


def check_definition(metric: MetricDef) -> None:
    """Rules across fields; ``ValueError`` names the field."""
    check_test(metric)
    if metric.is_ratio:
        if metric.denominator is None:
            raise ArgumentError(
                "denominator", "denominator: a ratio metric needs both numerator and denominator"
            )
        if metric.source is not None or metric.aggregation is not None:
            raise ArgumentError(
                "source", "source: a ratio metric takes numerator/denominator, not a source"
            )
        if metric.numerator == metric.name or metric.denominator == metric.name:
            raise ArgumentError("numerator", "numerator: a ratio metric cannot refer to itself")
        _check_covariates(metric)
        return
    if metric.denominator is not None:
        raise ArgumentError(
            "numerator", "numerator: a ratio metric needs both numerator and denominator"
        )
    if metric.source is None:
        raise ArgumentError(
            "source", f"source: one of {list(SOURCES)} (or numerator/denominator for a ratio)"
        )
    if metric.aggregation is None:
        raise ArgumentError("aggregation", f"aggregation: one of {list(AGGREGATIONS)}")
    if (metric.source == "outcome") != (metric.outcome_type is not None):
        raise ArgumentError(
            "outcome_type", "outcome_type: required when source is 'outcome', and only then"
        )
    if metric.pre_covariate in metric.covariates:
        raise ArgumentError(
            "covariates", f"covariates: {metric.pre_covariate!r} is the automatic pre-period column"
        )
    _check_covariates(metric)


def _check_covariates(metric: MetricDef) -> None:
    if len(set(metric.covariates)) != len(metric.covariates):
        raise ArgumentError("covariates", "covariates: names must be unique")
    during = metric.in_experiment_covariates
    if len(set(during)) != len(during):
        raise ArgumentError(
            "in_experiment_covariates", "in_experiment_covariates: names must be unique"
        )
    both = sorted(set(during) & set(metric.covariates))
    if both:
        raise ArgumentError(
            "in_experiment_covariates",
            f"in_experiment_covariates: {both} are also pre-exposure covariates; a feature is "
            "one or the other (observed before the exposure or after it)",
        )

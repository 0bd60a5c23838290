"""A metric definition's test (pure, no database): the rules that keep it fitting the metric,
the OpenAPI document's closed set, the per-unit read's SQL and rows, and the results' tests
when an ``any`` metric has no units yet."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import SecretStr, ValidationError

from splitlab.core.analysis.analyze import MetricStatistics, analyze_horizons
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.metric_tests import TESTS
from splitlab.core.stats.sufficient import Moments
from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app
from splitlab_analyzer.definitions import MetricDef, check_definition
from splitlab_analyzer.results.metric_tests import with_metric_tests
from splitlab_analyzer.results.repository.query import ResultsQuery
from splitlab_analyzer.results.statistics import ExperimentStatistics
from splitlab_analyzer.results.unit_values import unit_values
from splitlab_analyzer.schemas import MetricCreate, MetricUpdate

REVENUE = MetricDef(name="revenue", source="outcome", outcome_type="purchase", aggregation="sum")
CONVERTED = MetricDef(
    name="converted", source="outcome", outcome_type="purchase", aggregation="any"
)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"aggregation": "sum", "test": "chi2"}, "test"),
        ({"aggregation": "mean", "test": "z"}, "test"),
        ({"aggregation": "event_mean", "test": "mann_whitney"}, "test"),
        ({"aggregation": "sum", "test": "welch", "quantile": 0.9}, "quantile"),
        ({"aggregation": "sum", "test": "bootstrap_bca", "quantile": 1.0}, "quantile"),
    ],
)
def test_a_test_that_does_not_fit_names_the_field(changes: dict[str, object], field: str) -> None:
    body = {"name": "m", "source": "outcome", "outcome_type": "purchase", **changes}
    with pytest.raises(ValidationError, match=field):
        MetricCreate.model_validate(body)
    with pytest.raises(ArgumentError) as info:
        check_definition(MetricDef(**{**body, "source": "outcome"}))  # type: ignore[arg-type]
    assert info.value.argument == field


def test_fitting_tests_are_stored_and_a_patch_is_checked() -> None:
    made = MetricCreate.model_validate(
        {"name": "c", "source": "outcome", "outcome_type": "purchase", "aggregation": "any",
         "test": "chi2"}
    ).to_def()  # fmt: skip
    assert made.test == "chi2"
    boot = MetricUpdate.model_validate({"test": "bootstrap_bca", "quantile": 0.9}).apply(REVENUE)
    assert (boot.test, boot.quantile) == ("bootstrap_bca", 0.9)
    away = MetricUpdate.model_validate({"test": "mann_whitney"}).apply(boot)
    assert (away.test, away.quantile) == ("mann_whitney", None)
    with pytest.raises(ArgumentError, match="test: 'z' needs a 0/1 metric"):
        MetricUpdate.model_validate({"test": "z"}).apply(REVENUE)
    with pytest.raises(ValueError, match="test: cannot be null"):
        MetricUpdate.model_validate({"test": None}).apply(REVENUE)
    ratio = MetricDef(name="r", numerator="a", denominator="b", test="mann_whitney")
    with pytest.raises(ArgumentError, match="delta method"):
        check_definition(ratio)


def test_the_openapi_document_lists_the_tests() -> None:
    document = create_app(Settings(admin_api_key=SecretStr("k" * 24))).openapi()
    schemas = document["components"]["schemas"]
    assert schemas["MetricCreate"]["properties"]["test"]["enum"] == list(TESTS)
    assert schemas["MetricTestBody"]["properties"]["test"]["enum"] == list(TESTS)
    assert "cohens_d" in schemas["ComparisonBody"]["properties"]


def test_only_metrics_with_a_per_unit_test_are_read_unit_by_unit() -> None:
    mw = MetricDef(name="mw", source="outcome", outcome_type="purchase", aggregation="sum",
                   test="mann_whitney")  # fmt: skip
    query = ResultsQuery("exp", ["control", "t1"], [REVENUE, mw, CONVERTED], {})
    assert query.per_unit_metrics == ["mw"]
    sql = query.values_sql()
    assert "SELECT variant, y1 AS v0 FROM pu" in sql
    assert sql.endswith('ORDER BY unit_id COLLATE "C"')
    plain = ResultsQuery("exp", ["control", "t1"], [REVENUE], {})
    assert plain.per_unit_metrics == []


def test_unit_values_keep_the_row_order_and_drop_missing_values() -> None:
    rows = [("control", 1.0, None), ("t1", 2.0, 5.0), ("control", 3.0, 7.0), ("t1", None, 1.0)]
    values = unit_values(rows, ["control", "t1"], ["a", "b"])
    assert values["a"]["control"].tolist() == [1.0, 3.0]
    assert values["a"]["t1"].tolist() == [2.0]
    assert values["b"]["control"].tolist() == [7.0]
    assert values["b"]["t1"].tolist() == [5.0, 1.0]
    assert unit_values([], ["control"], ["a"])["a"]["control"].size == 0


def test_an_any_metric_without_units_is_tested_by_welch_until_it_has_values() -> None:
    chi2 = MetricDef(name="converted", source="outcome", outcome_type="purchase",
                     aggregation="any", test="chi2")  # fmt: skip
    rng = np.random.default_rng(0)
    moments = {v: Moments.from_arrays(rng.normal(size=(50, 1))) for v in ("control", "t1")}
    stats = ExperimentStatistics(
        metrics=[MetricStatistics("converted", "mean", moments, ("converted",))],
        counts={"control": 50, "t1": 50},
    )
    horizons = analyze_horizons(stats.metrics, stats.counts, method="none")
    tested = with_metric_tests(horizons, stats, [chi2])
    assert tested.fixed.metrics["converted"].test == "welch"
    binary = {v: Moments.from_arrays((rng.random((50, 1)) < 0.3).astype(float)) for v in moments}
    stats = ExperimentStatistics(
        metrics=[MetricStatistics("converted", "proportion", binary, ("converted",))],
        counts={"control": 50, "t1": 50},
    )
    tested = with_metric_tests(analyze_horizons(stats.metrics, stats.counts), stats, [chi2])
    for horizon in (tested.fixed, tested.sequential):
        comparison = horizon.metrics["converted"].comparisons["t1"]
        assert comparison.test is not None
        assert comparison.test.test == "chi2"
    assert tested.sequential.metrics["converted"].comparisons["t1"].test == (
        tested.fixed.metrics["converted"].comparisons["t1"].test
    )

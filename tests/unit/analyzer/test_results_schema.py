"""The results body is a typed response schema: in the OpenAPI document, and it keeps a real
body unchanged (the schema adds documentation, never a key)."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from splitlab.core.stats.adjustment import METHODS
from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app
from splitlab_analyzer.results.schemas import ResultsBody


def openapi() -> dict[str, Any]:
    settings = Settings(admin_api_key=SecretStr("k" * 24))
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def test_the_results_routes_return_the_results_schema_family() -> None:
    document = openapi()
    schemas = document["components"]["schemas"]
    for name in ("ResultsBody", "MetricBody", "ComparisonBody", "GuardrailBody", "SampleBody"):
        assert name in schemas, name
    for path, verb in (
        ("/experiments/{key}/results", "get"),
        ("/experiments/{key}/refresh", "post"),
    ):
        ok = document["paths"][path][verb]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] == {"$ref": "#/components/schemas/ResultsBody"}, path
    body = schemas["ResultsBody"]["properties"]
    assert {"metrics", "srm", "decisions", "sample", "monitoring", "guardrails", "flags"} <= set(
        body
    )
    comparison = schemas["ComparisonBody"]["properties"]
    assert {"effect", "ci_lower", "ci_upper", "p_value", "rel_effect"} <= set(comparison)


def test_method_alternative_and_correction_are_closed_sets_in_the_document() -> None:
    document = openapi()
    parameters = document["paths"]["/experiments/{key}/results"]["get"]["parameters"]
    method = next(p for p in parameters if p["name"] == "method")
    assert method["schema"]["enum"] == list(METHODS)
    schemas = document["components"]["schemas"]
    metric = schemas["MetricBody"]["properties"]
    assert metric["correction"]["enum"] == ["holm", "bonferroni", "benjamini-hochberg", "none"]
    assert schemas["ResultsBody"]["properties"]["alternative"]["enum"] == [
        "two-sided",
        "greater",
        "less",
    ]


def test_a_results_body_goes_through_the_schema_unchanged() -> None:
    """What the route does with ``response_model_exclude_unset``: keys that are absent stay
    absent, extra keys stay, numbers stay."""
    comparison = {
        "n_control": 10, "n_treatment": 12, "mean_control": 1.0, "mean_treatment": 1.5,
        "effect": 0.5, "se": 0.2, "ci_lower": 0.1, "ci_upper": None, "rel_effect": 0.5,
        "rel_ci_lower": 0.1, "rel_ci_upper": 0.9, "p_value": 0.01, "df": 20.0,
        "variance_reduction": 0.0, "status": "ok", "p_value_adjusted": 0.01,
        "chance_to_beat_control": 0.99, "expected_loss": 0.0, "mann_whitney_p_value": 0.02,
    }  # fmt: skip
    metric = {
        "kind": "mean", "method": "none", "requested_method": "auto", "reason": "r",
        "detail": "", "variance_reduction": 0.0, "correction": "holm", "dropped_rows": 0,
        "imputed_covariates": 0, "lower_is_better": False, "comparisons": {"t": comparison},
        "candidates": {"none": {"variance_reduction": 0.0, "detail": "", "effect": {"t": 0.5},
                                "se": {"t": 0.2}}},
        "cupac": None,
    }  # fmt: skip
    body = {
        "control": "c", "variants": ["c", "t"], "alpha": 0.05, "alternative": "two-sided",
        "sequential": False, "rows": {"total": 22, "missing_variant": 0},
        "srm": {"p_value": 0.6, "statistic": 0.2, "observed": {"c": 10, "t": 12},
                "expected_weights": {"c": 0.5, "t": 0.5}, "status": "ok", "threshold": 0.001},
        "metrics": {"m": metric}, "decisions": {"t": {"action": "ship", "reasons": ["x"]}},
        "experiment": {"key": "e", "status": "running", "primary": "m", "auto_stop": False,
                       "alpha": 0.05, "mde": None},
        "sample": {"units": {"c": 10, "t": 12}, "total_units": 22, "planned_sample_size": None,
                   "first_exposure_at": "2026-01-01T00:00:00+00:00",
                   "last_exposure_at": "2026-01-02T00:00:00+00:00",
                   "power_so_far": {"t": None}, "power_at_planned": {"t": None},
                   "units_per_day": 11.0, "days_to_planned": None},
        "shadows": {}, "methods": {"requested": "auto", "used": {"m": "none"}, "not_applied": {}},
        "excluded_values": {"limit": 1e12, "outcomes": 0, "unit_features": 0},
        "fallback": {"variants": {}, "threshold": 0.5, "mostly_fell_back": []},
        "monitoring": {"m": {"t": {"always_valid_p_value": 0.2, "cs_lower": -1.0,
                                   "cs_upper": 2.0}}},
        "guardrails": [], "flags": {"srm": False, "guardrail_violated": [],
                                    "treatment_fallback": [], "excluded_values": 0},
        "cupac_models": {}, "computed_at": "2026-01-02T00:00:00+00:00",
        "timings": {"sql_s": 0.01, "total_s": 0.02, "per_unit": "events"},
    }  # fmt: skip
    typed = ResultsBody.model_validate(body)
    assert typed.model_dump(mode="json", exclude_unset=True) == body

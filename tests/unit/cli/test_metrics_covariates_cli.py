"""``splitlab metrics create|update|show`` with in-experiment covariates (CUNOPAC)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from splitlab.cli import build_app
from tests.support.fake_services import FakeServices

STORED: dict[str, Any] = {
    "name": "revenue", "description": "", "kind": "plain", "source": "outcome",
    "outcome_type": "purchase", "aggregation": "sum", "numerator": None, "denominator": None,
    "direction": "higher_is_better", "guardrail_margin": None, "attribution_window_seconds": None,
    "pre_period_days": 14.0, "covariates": ["spend_30d"],
    "in_experiment_covariates": ["device_speed"], "deprecated": False, "deprecated_at": None,
    "deprecation_reason": "",
}  # fmt: skip


def test_create_and_update_send_in_experiment_covariates(services: FakeServices) -> None:
    services.on("analyzer", "POST", "/metrics", STORED, status=201)
    result = CliRunner().invoke(
        build_app(),
        ["metrics", "create", "revenue", "--source", "outcome", "--outcome-type", "purchase",
         "--aggregation", "sum", "--covariate", "spend_30d",
         "--in-experiment-covariate", "device_speed"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert services.last_body()["in_experiment_covariates"] == ["device_speed"]
    assert services.last_body()["covariates"] == ["spend_30d"]

    services.on("analyzer", "PATCH", "/metric-definitions/revenue", STORED)
    result = CliRunner().invoke(
        build_app(),
        ["metrics", "update", "revenue", "--in-experiment-covariate", "device_speed"],
    )
    assert result.exit_code == 0, result.output
    assert services.last_body() == {"in_experiment_covariates": ["device_speed"]}
    assert "in-experiment covariates" in result.stdout
    assert "device_speed" in result.stdout

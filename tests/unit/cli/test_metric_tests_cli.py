"""``splitlab metrics create|update --test --quantile`` send the metric's test and ``metrics
show`` prints it, against a faked analyzer."""

from __future__ import annotations

from typer.testing import CliRunner

from splitlab.cli import build_app
from tests.support.fake_services import FakeServices
from tests.unit.cli.test_owner_commands import METRIC

runner = CliRunner()


def test_create_and_update_send_the_test_and_show_prints_it(services: FakeServices) -> None:
    stored = {**METRIC, "test": "bootstrap_bca", "quantile": 0.9}
    services.on("analyzer", "POST", "/metrics", stored, status=201)
    services.on("analyzer", "GET", "/metric-definitions/revenue", stored)
    services.on("analyzer", "PATCH", "/metric-definitions/revenue", {**stored, "test": "welch"})
    created = runner.invoke(
        build_app(),
        ["metrics", "create", "revenue", "--source", "outcome", "--outcome-type", "purchase",
         "--aggregation", "sum", "--test", "bootstrap_bca", "--quantile", "0.9"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    sent = services.last_body()
    assert (sent["test"], sent["quantile"]) == ("bootstrap_bca", 0.9)

    shown = runner.invoke(build_app(), ["metrics", "show", "revenue"])
    assert shown.exit_code == 0, shown.output
    assert "test: bootstrap_bca (quantile 0.9)" in shown.stdout

    changed = runner.invoke(build_app(), ["metrics", "update", "revenue", "--test", "welch"])
    assert changed.exit_code == 0, changed.output
    assert services.last_body() == {"test": "welch"}
    assert "test: welch" in changed.stdout


def test_a_definition_without_a_test_shows_welch(services: FakeServices) -> None:
    services.on("analyzer", "GET", "/metric-definitions/revenue", METRIC)
    shown = runner.invoke(build_app(), ["metrics", "show", "revenue"])
    assert "test: welch" in shown.stdout


def test_the_analyzers_refusal_is_shown_with_its_field(services: FakeServices) -> None:
    message = "test: 'chi2' needs a 0/1 metric (aggregation 'any')"
    error = {"error": {"code": "invalid_input", "field": "test", "message": message}}
    services.on("analyzer", "POST", "/metrics", error, status=422)
    refused = runner.invoke(
        build_app(),
        ["metrics", "create", "revenue", "--source", "outcome", "--outcome-type", "purchase",
         "--aggregation", "sum", "--test", "chi2"],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "needs a 0/1 metric" in refused.output


def test_a_float_option_that_is_nan_or_inf_is_a_usage_error(services: FakeServices) -> None:
    """`metrics create ... --quantile nan` ended in a traceback ("Out of range float values are
    not JSON compliant"): JSON cannot carry it. Now exit 2 naming the option, nothing sent."""
    services.on("analyzer", "POST", "/metrics", METRIC, status=201)
    services.on("analyzer", "PATCH", "/metric-definitions/revenue", METRIC)
    base = ["metrics", "create", "revenue", "--source", "outcome", "--outcome-type", "purchase",
            "--aggregation", "sum"]  # fmt: skip
    for extra in (["--test", "bootstrap_bca", "--quantile", "nan"],
                  ["--guardrail-margin", "inf"], ["--pre-period-days", "-inf"]):  # fmt: skip
        result = runner.invoke(build_app(), [*base, *extra])
        assert result.exit_code == 2, result.output
        assert f"error: {extra[-2]} must be a finite number" in result.stderr
        assert "Traceback" not in result.output
    updated = runner.invoke(build_app(), ["metrics", "update", "revenue", "--quantile", "nan"])
    assert updated.exit_code == 2, updated.output
    assert "--quantile must be a finite number" in updated.stderr
    assert services.seen == []

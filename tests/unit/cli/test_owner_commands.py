"""The commands experiment owners asked for (issue 13, item 15), against faked services:
``experiments update|audit``, ``analyzer-actions``, ``metrics show|update|deprecate``,
``models show``; full-width tables when piped; an example in every ``--help``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.cli.experiments import CommandError, update_body
from splitlab.cli.models import split_ref
from tests.support.fake_services import FakeServices

runner = CliRunner()
LONG_KEY = "checkout-ranker-with-a-rather-long-experiment-key-v3-2026"
EXPERIMENT: dict[str, Any] = {
    "key": LONG_KEY,
    "name": "Checkout ranker v3, the one with the gradient-boosted reranking stage",
    "hypothesis": "",
    "owner": "search",
    "status": "running",
    "version": 3,
    "bucket_version": 0,
    "coverage": 0.2,
    "metrics": {"primary": "conversion"},
    "allowed_actions": ["pause", "stop"],
    "targeting": None,
    "updated_at": "2026-11-23T10:00:00+00:00",
    "variants": [
        {"key": "control", "weight": 0.5, "model": "ranker:2", "description": ""},
        {"key": "treatment", "weight": 0.5, "model": "ranker:3", "description": ""},
    ],
}
METRIC: dict[str, Any] = {
    "name": "revenue", "description": "", "kind": "plain", "source": "outcome",
    "outcome_type": "purchase", "aggregation": "sum", "numerator": None, "denominator": None,
    "direction": "higher_is_better", "guardrail_margin": None,
    "attribution_window_seconds": None, "pre_period_days": 14.0, "covariates": [],
    "deprecated": False, "deprecated_at": None, "deprecation_reason": "",
}  # fmt: skip


def invoke(*args: str) -> Any:
    return runner.invoke(build_app(), list(args))


def test_update_ramps_weights_and_coverage_keeping_the_other_fields(
    services: FakeServices,
) -> None:
    services.on("assignment", "GET", f"/experiments/{LONG_KEY}", EXPERIMENT)
    services.on("assignment", "PATCH", f"/experiments/{LONG_KEY}", EXPERIMENT)
    result = invoke(
        "experiments", "update", LONG_KEY, "--weight", "control=0.8", "--weight",
        "treatment=0.2", "--coverage", "0.5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = services.last_body()
    assert sent["coverage"] == 0.5
    assert sent["variants"] == [
        {"key": "control", "weight": 0.8, "model": "ranker:2", "description": ""},
        {"key": "treatment", "weight": 0.2, "model": "ranker:3", "description": ""},
    ]
    assert services.seen[-1].headers["authorization"] == "Bearer cli-key"


def test_update_from_a_yaml_patch_with_flags_on_top(services: FakeServices, tmp_path: Path) -> None:
    services.on("assignment", "PATCH", f"/experiments/{LONG_KEY}", EXPERIMENT)
    patch = tmp_path / "ramp.yaml"
    patch.write_text("coverage: 0.3\nmde: 0.01\nbucket_version: 1\n")
    result = invoke("experiments", "update", LONG_KEY, "--file", str(patch), "--coverage", "0.4")
    assert result.exit_code == 0, result.output
    assert services.last_body() == {"coverage": 0.4, "mde": 0.01, "bucket_version": 1}
    assert [r.method for r in services.seen] == ["PATCH"], "no read needed without --weight"


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"treatmnt": 0.2}, "no variant 'treatmnt'"), ({}, "nothing to change")],
)
def test_update_refuses_unknown_variants_and_empty_changes(
    weights: dict[str, float], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        update_body(EXPERIMENT, {}, weights, None)


def test_update_names_a_malformed_weight(services: FakeServices) -> None:
    result = invoke("experiments", "update", LONG_KEY, "--weight", "control:0.8")
    assert result.exit_code == 1
    assert "--weight expects VARIANT=WEIGHT" in result.stderr
    assert services.seen == []


def test_update_shows_the_registry_refusal(services: FakeServices) -> None:
    refusal = {"error": {"message": "variants: weights must sum to 1, got 1.1"}}
    services.on("assignment", "GET", f"/experiments/{LONG_KEY}", EXPERIMENT)
    services.on("assignment", "PATCH", f"/experiments/{LONG_KEY}", refusal, status=422)
    result = invoke("experiments", "update", LONG_KEY, "--weight", "control=0.6")
    assert result.exit_code == 1
    assert "422: variants: weights must sum to 1, got 1.1" in result.stderr


def test_audit_lists_who_changed_what(services: FakeServices) -> None:
    entry = {
        "experiment_key": LONG_KEY, "action": "update", "actor": "cli:alice",
        "at": "2026-11-23T10:00:00+00:00", "before": {}, "after": {},
        "changes": [{"field": "variants", "kind": "reweights",
                     "detail": "control 0.5 -> 0.8, treatment 0.5 -> 0.2"}],
    }  # fmt: skip
    services.on("assignment", "GET", f"/experiments/{LONG_KEY}/audit", {"entries": [entry]})
    result = invoke("experiments", "audit", LONG_KEY, "--limit", "5")
    assert result.exit_code == 0, result.output
    assert services.seen[-1].url.params["limit"] == "5"
    assert "cli:alice" in result.stdout
    assert "variants (reweights): control 0.5 -> 0.8, treatment 0.5 -> 0.2" in result.stdout
    as_json = invoke("experiments", "audit", LONG_KEY, "--format", "json")
    assert json.loads(as_json.stdout) == [entry]


def test_analyzer_actions_show_flags_and_pauses(services: FakeServices) -> None:
    action = {
        "experiment_key": "exp", "action": "pause", "reason": "guardrail_violated",
        "evidence": {"guardrails": [{"metric": "latency", "harm": 0.31}]},
        "outcome": "paused", "at": "2026-11-23T10:00:00+00:00",
    }  # fmt: skip
    services.on("analyzer", "GET", "/experiments/exp/analyzer-actions", {"actions": [action]})
    services.on("analyzer", "GET", "/experiments/quiet/analyzer-actions", {"actions": []})
    result = invoke("analyzer-actions", "exp")
    assert result.exit_code == 0, result.output
    assert "guardrail_violated" in result.stdout
    assert '"harm": 0.31' in result.stdout
    assert "took no action on quiet" in invoke("analyzer-actions", "quiet").stdout
    assert json.loads(invoke("analyzer-actions", "exp", "--format", "json").stdout) == [action]


def test_metrics_show_update_and_deprecate(services: FakeServices) -> None:
    updated = {**METRIC, "guardrail_margin": 0.02, "attribution_window_seconds": 86400.0}
    deprecated = {
        **updated, "deprecated": True, "deprecated_at": "2026-12-05T08:00:00+00:00",
        "deprecation_reason": "use revenue_net",
    }  # fmt: skip
    services.on("analyzer", "GET", "/metric-definitions/revenue", METRIC)
    services.on("analyzer", "PATCH", "/metric-definitions/revenue", updated)
    services.on("analyzer", "POST", "/metric-definitions/revenue/deprecate", deprecated)

    shown = invoke("metrics", "show", "revenue")
    assert shown.exit_code == 0, shown.output
    assert "source: outcome:purchase" in shown.stdout
    assert "status: active" in shown.stdout

    changed = invoke(
        "metrics", "update", "revenue", "--guardrail-margin", "0.02", "--window-seconds", "86400"
    )
    assert changed.exit_code == 0, changed.output
    assert services.last_body() == {"guardrail_margin": 0.02, "attribution_window_seconds": 86400}
    assert "guardrail margin: 0.02" in changed.stdout

    covariates = invoke("metrics", "update", "revenue", "--covariate", "spend_30d")
    assert covariates.exit_code == 0, covariates.output
    assert services.last_body() == {"covariates": ["spend_30d"]}

    gone = invoke("metrics", "deprecate", "revenue", "--reason", "use revenue_net")
    assert gone.exit_code == 0, gone.output
    assert services.last_body() == {"reason": "use revenue_net"}
    assert "deprecated since 2026-12-05T08:00:00: use revenue_net" in gone.stdout
    assert all(r.headers["authorization"] == "Bearer cli-key" for r in services.seen)


def test_metrics_update_without_options_changes_nothing(services: FakeServices) -> None:
    result = invoke("metrics", "update", "revenue")
    assert result.exit_code == 1
    assert "nothing to change" in result.stderr
    assert services.seen == []


def test_models_show_by_ref(services: FakeServices) -> None:
    model = {
        "name": "ranker", "version": "3", "ref": "ranker:3", "flavor": "sklearn",
        "artifact": "ranker-3.skops", "sha256": "ab" * 32, "url": None, "timeout_ms": 200,
        "input_schema": [{"name": "price", "type": "float"}], "metadata": {"auc": 0.81},
        "created_at": "2026-11-23T10:00:00+00:00", "loaded": True,
    }  # fmt: skip
    services.on("router", "GET", "/models/ranker/3", model)
    for args in (["ranker:3"], ["ranker", "3"]):
        result = invoke("models", "show", *args)
        assert result.exit_code == 0, result.output
        assert f"sha256: {'ab' * 32}" in result.stdout
        assert "price" in result.stdout
    assert split_ref("ranker:3", None) == ("ranker", "3")
    missing = invoke("models", "show", "ranker:9")
    assert missing.exit_code == 1
    assert "404" in missing.stderr
    with pytest.raises(CommandError, match="NAME:VERSION"):
        split_ref("ranker", None)


def test_piped_tables_keep_full_values(services: FakeServices) -> None:
    services.on("assignment", "GET", "/experiments", {"experiments": [EXPERIMENT]})
    result = invoke("experiments", "list")
    assert result.exit_code == 0, result.output
    assert LONG_KEY in result.stdout
    assert EXPERIMENT["name"] in result.stdout
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) > 80


def _commands(command: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (a group has ``commands``), itself included."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, (*path, name)))
    return found


def test_every_help_text_carries_an_example() -> None:
    paths = _commands(typer.main.get_command(build_app()), ())
    assert ("experiments", "update") in paths
    assert ("analyzer-actions",) in paths
    missing = []
    for path in paths:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        if "Example: splitlab " not in " ".join(result.stdout.split()).replace("│", ""):
            missing.append(" ".join(path) or "splitlab")
    assert missing == []

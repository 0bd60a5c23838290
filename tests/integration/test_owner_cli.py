"""The owner commands against the real services (in-process apps over the real Postgres,
Redis and Kafka): the CLI's HTTP calls go to the apps' ASGI interfaces, so what is tested is
the command, the route, the repository and the database together."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app as create_analyzer
from splitlab_analyzer.repository import ActionRepository
from splitlab_assignment.app import create_app as create_assignment
from splitlab_router.app import create_app as create_router

ADMIN_KEY = "owner-cli-admin-key-0123456789"
runner = CliRunner()


@pytest.fixture
def services(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, TestClient]]:
    """The assignment service, router and analyzer, each reached by the CLI at its own host."""
    configured = settings.model_copy(
        update={"admin_api_key": SecretStr(ADMIN_KEY), "analyzer_refresh_interval_seconds": 0.0}
    )
    with ExitStack() as stack:
        apps = {
            "assignment": stack.enter_context(TestClient(create_assignment(configured))),
            "router": stack.enter_context(TestClient(create_router(configured))),
            "analyzer": stack.enter_context(TestClient(create_analyzer(configured))),
        }
        by_host = {f"{name}.test": client for name, client in apps.items()}

        def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
            target = httpx.URL(url)
            client = by_host[target.host]
            path = target.raw_path.decode()
            kwargs.pop("timeout", None)  # in-process: the TestClient has no use for it
            return client.request(method, path, **kwargs)

        monkeypatch.setattr(httpx, "request", request)
        monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", ADMIN_KEY)
        for name in apps:
            monkeypatch.setenv(f"SPLITLAB_{name.upper()}_URL", f"http://{name}.test")
        yield apps


def cli(*args: str) -> Any:
    result = runner.invoke(build_app(), list(args))
    assert result.exit_code == 0, (args, result.output)
    return result


def test_update_ramps_and_the_audit_log_shows_it(
    services: dict[str, TestClient], tmp_path: Any
) -> None:
    key = f"owner-{uuid.uuid4().hex[:8]}"
    spec = {
        "key": key, "name": "Owner CLI", "variants": [
            {"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "coverage": 0.2, "metrics": {"primary": "conversion"},
    }  # fmt: skip
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(spec))
    cli("experiments", "create", str(path))
    cli("experiments", "start", key)
    cli("experiments", "update", key, "--coverage", "0.5")
    cli("experiments", "update", key, "--weight", "control=0.8", "--weight", "treatment=0.2")

    shown = json.loads(cli("experiments", "show", key, "--format", "json").stdout)
    assert shown["coverage"] == 0.5
    assert {v["key"]: v["weight"] for v in shown["variants"]} == {
        "control": 0.8,
        "treatment": 0.2,
    }
    audit = json.loads(cli("experiments", "audit", key, "--format", "json").stdout)
    assert [e["action"] for e in audit][:2] == ["update", "update"]
    assert {c["field"] for c in audit[0]["changes"]} == {
        "variants[0].weight",
        "variants[1].weight",
    }
    assert {c["field"] for c in audit[1]["changes"]} == {"coverage"}
    table = cli("experiments", "audit", key).stdout
    assert "coverage" in table
    assert "start" in table

    refused = runner.invoke(
        build_app(),
        ["experiments", "update", key, "--weight", "control=0.9"],
    )
    assert refused.exit_code == 1
    assert "422" in refused.stderr


def test_metrics_show_update_deprecate(services: dict[str, TestClient]) -> None:
    name = f"rev_{uuid.uuid4().hex[:8]}"
    cli("metrics", "create", name, "--source", "outcome", "--outcome-type", "purchase",
        "--aggregation", "sum")  # fmt: skip
    updated = json.loads(
        cli("metrics", "update", name, "--guardrail-margin", "0.02", "--window-seconds",
            "86400", "--format", "json").stdout
    )  # fmt: skip
    assert (updated["guardrail_margin"], updated["attribution_window_seconds"]) == (0.02, 86400)
    assert updated["aggregation"] == "sum", "fields not sent stay"
    bad = runner.invoke(
        build_app(),
        ["metrics", "update", name, "--aggregation", "median"],
    )
    assert bad.exit_code == 1
    assert "422" in bad.stderr

    cli("metrics", "deprecate", name, "--reason", "use revenue_net")
    shown = cli("metrics", "show", name).stdout
    assert "deprecated since" in shown
    assert "use revenue_net" in shown
    listed = cli("metrics", "list").stdout
    assert name in listed
    assert "deprecated" in listed

    ratio = services["analyzer"].post(
        "/metrics",
        json={"name": f"{name}_per_x", "numerator": name, "denominator": name},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert ratio.status_code == 422
    assert "deprecated" in ratio.json()["error"]["message"]


def test_analyzer_actions_read_what_the_analyzer_recorded(
    services: dict[str, TestClient], settings: Settings
) -> None:
    from sqlalchemy import create_engine

    key = f"acted-{uuid.uuid4().hex[:8]}"
    engine = create_engine(settings.database_url)
    ActionRepository(sessionmaker(engine)).record(
        key, "pause", "guardrail_violated", {"guardrails": [{"metric": "latency"}]}, "paused"
    )
    engine.dispose()
    table = cli("analyzer-actions", key).stdout
    assert "guardrail_violated" in table
    assert "paused" in table
    assert json.loads(cli("analyzer-actions", key, "--format", "json").stdout)[0]["action"] == (
        "pause"
    )


def test_models_show(services: dict[str, TestClient], tmp_path: Any) -> None:
    name = f"remote{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "version": "1", "flavor": "http",
            "url": "http://models.internal/v1/models/ranker:predict",
            "input_schema": [{"name": "price", "type": "float"}],
            "metadata": {"owner": "search-team"}}  # fmt: skip
    path = tmp_path / "model.json"
    path.write_text(json.dumps(spec))
    cli("models", "register", str(path))
    shown = cli("models", "show", f"{name}:1").stdout
    assert "http://models.internal/v1/models/ranker:predict" in shown
    assert "search-team" in shown
    assert "price" in shown


def test_metrics_create_with_a_test_and_show_it(services: dict[str, TestClient]) -> None:
    name = f"rev_{uuid.uuid4().hex[:8]}"
    cli("metrics", "create", name, "--source", "outcome", "--outcome-type", "purchase",
        "--aggregation", "sum", "--test", "bootstrap_percentile", "--quantile", "0.9")  # fmt: skip
    assert "test: bootstrap_percentile (quantile 0.9)" in cli("metrics", "show", name).stdout
    refused = runner.invoke(build_app(), ["metrics", "update", name, "--test", "chi2"])
    assert refused.exit_code == 1
    assert "422" in refused.stderr
    assert "needs a 0/1 metric" in refused.stderr
    changed = json.loads(
        cli("metrics", "update", name, "--test", "mann_whitney", "--format", "json").stdout
    )
    assert (changed["test"], changed["quantile"]) == ("mann_whitney", None)

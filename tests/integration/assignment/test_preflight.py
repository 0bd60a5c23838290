"""Pre-flight checks against a real analyzer and router (in-process apps on the real stack):
create reports what an experiment names but nobody defines; start refuses it (422 listing each,
503 naming a service that cannot be asked) unless forced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app as create_analyzer
from splitlab_assignment.app import create_app as create_assignment
from splitlab_router.app import create_app as create_router
from tests.integration.assignment.conftest import ADMIN_KEY, experiment_body
from tests.support.kafka_broker import free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


class DiscardingPublisher:
    def publish(self, event: Any) -> None:
        return None


@pytest.fixture
def checked(service_settings: Settings) -> Settings:
    return service_settings.model_copy(
        update={
            "preflight_checks": True,
            "analyzer_refresh_interval_seconds": 0.0,
            "analyzer_rollup_catch_up_seconds": 0.0,
            "analyzer_guardrail_interval_seconds": 0.0,
        }
    )


@pytest.fixture
def analyzer(checked: Settings) -> Iterator[TestClient]:
    with TestClient(create_analyzer(checked)) as client:
        yield client


@pytest.fixture
def router(checked: Settings) -> Iterator[TestClient]:
    app = create_router(checked, publisher_factory=lambda _: DiscardingPublisher())  # type: ignore[arg-type,return-value]
    with TestClient(app) as client:
        yield client


def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"conv": f"conv_{tag}", "lat": f"lat_{tag}", "a": f"pf-a-{tag}", "b": f"pf-b-{tag}"}


def body_naming(n: dict[str, str], key: str) -> dict[str, Any]:
    return experiment_body(
        key,
        variants=[
            {"key": "control", "weight": 0.5, "model": f"{n['a']}:1"},
            {"key": "treatment", "weight": 0.5, "model": f"{n['b']}:1"},
        ],
        metrics={"primary": n["conv"], "guardrails": [{"metric": n["lat"], "margin": 0.05}]},
    )


def test_start_refuses_what_is_missing_naming_each_until_defined_or_forced(
    checked: Settings, analyzer: TestClient, router: TestClient
) -> None:
    n, key = names(), f"pf-{uuid.uuid4().hex[:8]}"
    app = create_assignment(
        checked,
        publisher_factory=lambda _: DiscardingPublisher(),  # type: ignore[arg-type,return-value]
        analyzer_http=analyzer,
        router_http=router,
    )
    with TestClient(app) as client:
        created = client.post("/experiments", json=body_naming(n, key), headers=ADMIN)
        assert created.status_code == 201, created.text
        report = created.json()["preflight"]
        assert report["ok"] is False
        assert [m["field"] for m in report["missing"]] == [
            "metrics.primary",
            "metrics.guardrails[0].metric",
            "variants[0].model",
            "variants[1].model",
        ]

        refused = client.post(f"/experiments/{key}/start", headers=ADMIN)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["field"] == "metrics.primary"
        assert [(m["field"], m["name"]) for m in error["missing"]] == [
            ("metrics.primary", n["conv"]),
            ("metrics.guardrails[0].metric", n["lat"]),
            ("variants[0].model", f"{n['a']}:1"),
            ("variants[1].model", f"{n['b']}:1"),
        ]
        for name in (n["conv"], n["lat"], f"{n['a']}:1", f"{n['b']}:1"):
            assert repr(name) in error["message"]
        assert "force=true" in error["message"]
        assert client.get(f"/experiments/{key}").json()["status"] == "draft"

        metric = {"source": "outcome", "outcome_type": "conversion", "aggregation": "any"}
        for name in (n["conv"], n["lat"]):
            defined = analyzer.post("/metrics", json={"name": name, **metric}, headers=ADMIN)
            assert defined.status_code == 201, defined.text
        model = {"version": "1", "flavor": "http", "url": "http://127.0.0.1:9/predict",
                 "input_schema": [{"name": "x1"}]}  # fmt: skip
        assert router.post("/models", json={"name": n["a"], **model}, headers=ADMIN).is_success

        still = client.post(f"/experiments/{key}/start", headers=ADMIN)
        assert still.status_code == 422
        assert [m["field"] for m in still.json()["error"]["missing"]] == ["variants[1].model"]
        forced = client.post(f"/experiments/{key}/start", params={"force": "true"}, headers=ADMIN)
        assert forced.status_code == 200, forced.text
        assert forced.json()["status"] == "running"
        assert forced.json()["preflight"]["forced"] is True

        client.post(f"/experiments/{key}/pause", headers=ADMIN)
        assert router.post("/models", json={"name": n["b"], **model}, headers=ADMIN).is_success
        resumed = client.post(f"/experiments/{key}/start", headers=ADMIN)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["preflight"] == {
            "ok": True, "missing": [], "unreachable": [], "forced": False
        }  # fmt: skip


def test_a_router_that_cannot_be_asked_refuses_start_with_503_naming_it(
    checked: Settings, analyzer: TestClient
) -> None:
    n, key = names(), f"pf-{uuid.uuid4().hex[:8]}"
    nobody = httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)
    app = create_assignment(
        checked,
        publisher_factory=lambda _: DiscardingPublisher(),  # type: ignore[arg-type,return-value]
        analyzer_http=analyzer,
        router_http=nobody,
    )
    body = body_naming(n, key)
    body["metrics"] = {"primary": n["conv"]}
    with TestClient(app) as client:
        defined = analyzer.post(
            "/metrics",
            json={"name": n["conv"], "source": "outcome", "outcome_type": "c",
                  "aggregation": "any"},
            headers=ADMIN,
        )  # fmt: skip
        assert defined.status_code == 201
        created = client.post("/experiments", json=body, headers=ADMIN)
        assert created.json()["preflight"]["unreachable"][0]["service"] == "router"
        refused = client.post(f"/experiments/{key}/start", headers=ADMIN)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["field"] == "router"
        assert "could not ask the router" in refused.json()["error"]["message"]
        forced = client.post(f"/experiments/{key}/start?force=true", headers=ADMIN)
        assert forced.status_code == 200
    nobody.close()

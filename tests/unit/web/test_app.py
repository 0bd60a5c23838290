"""The behaviour every SplitLab service gets from ``create_service_app``, without any server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence

import psycopg2
import psycopg2.extensions
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from splitlab.core.errors import ArgumentError
from splitlab.platform.errors import NotFoundError
from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings
from splitlab.web.app import create_service_app

state = {"cache_up": True}

DATABASE_FAILURES = {
    "refused-connection": OperationalError(
        "SELECT 1", {}, psycopg2.OperationalError('connection to server at "127.0.0.1", port '
                                                  "5432 failed: Connection refused")
    ),
    "lost-connection": InterfaceError(
        "SELECT 1", {}, psycopg2.InterfaceError("connection already closed")
    ),
    "deadlock": OperationalError(
        "UPDATE t", {}, psycopg2.extensions.TransactionRollbackError("deadlock detected")
    ),
    "bad-statement": ProgrammingError(
        "SELEC 1", {}, psycopg2.ProgrammingError('syntax error at or near "SELEC"')
    ),
}  # fmt: skip


def cache_ping() -> None:
    if not state["cache_up"]:
        raise ConnectionError("cache refused the connection")


class Order(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    wrap: str = Field(default="none", pattern="^(none|paper|box)$")

    @model_validator(mode="after")
    def _limit(self) -> Order:
        if self.sku == "rare" and self.quantity > 1:
            raise ArgumentError("quantity", "quantity: at most 1 of a rare item")
        return self


def build(max_body_bytes: int = 1024, body_limits: dict[str, int] | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield [DependencyCheck("cache", cache_ping), DependencyCheck("clock", lambda: None)]

    router = APIRouter()

    @router.post("/orders/{order_id}")
    async def create(order_id: str, order: Order) -> dict[str, object]:
        if order_id == "missing":
            raise NotFoundError("order 'missing' does not exist", field="order_id")
        if order_id in DATABASE_FAILURES:
            raise DATABASE_FAILURES[order_id]
        return {"order_id": order_id, "quantity": order.quantity}

    settings = Settings(
        max_body_bytes=max_body_bytes,
        log_format="text",
        health_interval_seconds=3600,
        _env_file=None,  # type: ignore[call-arg]
    )
    return create_service_app(
        service="demo",
        settings=settings,
        lifespan=lifespan,
        description="d",
        routers=[router],
        body_limits=body_limits,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    state["cache_up"] = True
    with TestClient(build()) as client:
        yield client


def test_readyz_names_the_dependency_that_is_down(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    state["cache_up"] = False
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["cache"]
    assert "refused" in body["dependencies"]["cache"]["error"]
    assert body["dependencies"]["clock"]["up"] is True


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    hostile = client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 50})
    assert hostile.headers["x-request-id"] != "a b\tc" * 50


def test_body_larger_than_the_limit_is_refused_with_413(client: TestClient) -> None:
    response = client.post("/orders/1", content=b"x" * 2000)
    assert response.status_code == 413
    assert "1024" in response.json()["error"]["message"]


def test_chunked_body_larger_than_the_limit_is_refused_with_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 200

    response = client.post("/orders/1", content=chunks())
    assert response.status_code == 413


def test_a_path_prefix_can_have_a_limit_of_its_own() -> None:
    """The console's uploads take files larger than API bodies; other paths keep the limit."""
    with TestClient(build(body_limits={"/orders/big": 4096})) as client:
        body = b'{"sku": "' + b"a" * 2000 + b'", "quantity": 1}'
        big = client.post("/orders/big", content=body, headers={"Content-Type": "application/json"})
        assert big.status_code == 200
        assert client.post("/orders/1", content=body).status_code == 413
        too_big = client.post("/orders/big", content=b"z" * 5000)
        assert too_big.status_code == 413
        assert "4096" in too_big.json()["error"]["message"]


def test_chunked_body_within_the_limit_is_served(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"sku": "a", '
        yield b'"quantity": 2}'

    response = client.post(
        "/orders/7", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"order_id": "7", "quantity": 2}


def test_validation_error_names_the_field(client: TestClient) -> None:
    response = client.post("/orders/1", json={"sku": "a", "quantity": 0})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "quantity"
    assert "quantity" in error["message"]
    assert "greater than 0" in error["message"]


def test_domain_errors_carry_their_status(client: TestClient) -> None:
    response = client.post("/orders/missing", json={"sku": "a", "quantity": 1})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "order 'missing' does not exist",
        "field": "order_id",
    }


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    for order_id in ("1", "2", "3"):
        client.post(f"/orders/{order_id}", json={"sku": "a", "quantity": 1})
    client.get("/no/such/path")
    metrics = client.get("/metrics").text
    line = (
        'splitlab_http_requests_total{method="POST",route="/orders/{order_id}",'
        'service="demo",status="200"}'
    )
    assert any(m.startswith(line) and float(m.split()[-1]) >= 3 for m in metrics.splitlines())
    assert 'route="unmatched",service="demo",status="404"' in metrics
    assert 'route="/orders/1"' not in metrics


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/orders/{order_id}" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("failure", ["refused-connection", "lost-connection"])
def test_a_call_needing_an_unreachable_postgres_is_a_503_naming_it(
    client: TestClient, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post(f"/orders/{failure}", json={"sku": "a", "quantity": 1})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert error["message"].startswith("Postgres is unavailable")
    outage = [r for r in caplog.records if r.getMessage() == "Postgres unavailable"]
    assert outage
    assert outage[0].exc_info is None  # one line, no traceback


@pytest.mark.parametrize("failure", ["deadlock", "bad-statement"])
def test_a_statement_postgres_refused_stays_a_500_with_the_error_shape(
    client: TestClient, failure: str
) -> None:
    response = client.post(f"/orders/{failure}", json={"sku": "a", "quantity": 1})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_a_body_that_is_not_json_says_where_it_breaks(client: TestClient) -> None:
    response = client.post(
        "/orders/1", content=b'{"sku": "a",, }', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "body"
    assert error["message"].startswith("body: not valid JSON at character 12 (")


def test_a_body_sent_without_the_json_content_type_is_told_the_fix(client: TestClient) -> None:
    response = client.post(
        "/orders/1", content=b'{"sku": "a", "quantity": 1}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "sent as text/plain: send JSON with Content-Type: application/json" in message


def test_an_empty_or_undecodable_body_names_the_body_and_the_fix(client: TestClient) -> None:
    empty = client.post("/orders/1", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 422
    assert empty.json()["error"] == {
        "code": "invalid_input",
        "message": "body: missing; send a JSON object",
        "field": "body",
    }
    latin1 = client.post(
        "/orders/1", content='{"sku": "é"}'.encode("latin-1"),
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert latin1.status_code == 400
    error = latin1.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "body")
    assert "not UTF-8" in error["message"]


def test_an_enumeration_pattern_lists_the_values_not_the_regex(client: TestClient) -> None:
    response = client.post("/orders/1", json={"sku": "a", "quantity": 1, "wrap": "bag"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "wrap: should be one of none, paper, box"


def test_a_model_check_naming_a_field_points_at_that_field(client: TestClient) -> None:
    """The field comes from the check's ``ArgumentError``, not from its message's text."""
    response = client.post("/orders/1", json={"sku": "rare", "quantity": 2})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["field"], error["message"]) == ("quantity", "quantity: at most 1 of a rare item")

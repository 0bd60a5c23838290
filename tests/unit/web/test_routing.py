"""``LeanRoute``: the hot-endpoint route class answers like a plain FastAPI route (body, errors,
checks, OpenAPI) without solving dependencies per request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, SecretStr

from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings
from splitlab.web.app import create_service_app
from splitlab.web.auth import require_caller
from splitlab.web.routing import LeanRoute


class Order(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


def build(assign_key: str | None = None, lean: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield []

    router = APIRouter(
        dependencies=[Depends(require_caller)], route_class=LeanRoute if lean else APIRoute
    )

    @router.post("/orders", response_model=Order)
    async def create(order: Order, request: Request) -> Response:
        return Response(
            order.model_copy(
                update={"sku": request.app.state.prefix + order.sku}
            ).model_dump_json(),
            media_type="application/json",
        )

    settings = Settings(
        assign_api_key=SecretStr(assign_key) if assign_key else None,
        log_format="text",
        health_interval_seconds=3600,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_service_app(
        service="test", settings=settings, lifespan=lifespan, description="t", routers=[router]
    )
    app.state.prefix = "sku-"
    return app


def test_a_valid_body_reaches_the_endpoint_with_collaborators_from_app_state() -> None:
    with TestClient(build()) as client:
        response = client.post("/orders", json={"sku": "a", "quantity": 2})
    assert response.status_code == 200
    assert response.json() == {"sku": "sku-a", "quantity": 2}


@pytest.mark.parametrize(
    "content",
    [
        b'{"sku": "a", "quantity": 0}',
        b'{"quantity": 1}',
        b'{"sku": "a", "quantity": ',
        b"",
    ],
)
def test_invalid_bodies_get_exactly_fastapis_422(content: bytes) -> None:
    headers = {"content-type": "application/json"}
    answers = []
    for lean in (True, False):
        with TestClient(build(lean=lean)) as client:
            response = client.post("/orders", content=content, headers=headers)
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422


def test_a_non_json_content_type_is_fastapis_answer() -> None:
    answers = []
    for lean in (True, False):
        with TestClient(build(lean=lean)) as client:
            response = client.post(
                "/orders", content=b"sku=a", headers={"content-type": "text/plain"}
            )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]


def test_the_routes_checks_still_run() -> None:
    with TestClient(build(assign_key="secret")) as client:
        body = {"sku": "a", "quantity": 1}
        assert client.post("/orders", json=body).status_code == 401
        wrong = client.post("/orders", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        right = client.post("/orders", json=body, headers={"Authorization": "Bearer secret"})
        assert right.status_code == 200


def test_the_openapi_schema_is_a_plain_routes() -> None:
    assert build(lean=True).openapi()["paths"] == build(lean=False).openapi()["paths"]


def test_unsupported_endpoints_fail_at_start_up() -> None:
    router = APIRouter(route_class=LeanRoute)

    async def needs(request: Request) -> str:
        return "x"

    with pytest.raises(TypeError, match="LeanRoute"):

        @router.post("/orders/{order_id}")
        async def create(order_id: str, order: Order) -> Response:
            return Response()

    with pytest.raises(TypeError, match="dependency"):

        @router.post("/orders")
        async def create_with(order: Order, value: str = Depends(needs)) -> Response:
            return Response()

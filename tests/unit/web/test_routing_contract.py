"""What the hot lane (``splitlab.web.routing``) assumes of FastAPI and Starlette, held by tests.

The lane reads only public names: an endpoint's signature and type hints, ``APIRoute.path``,
``.methods``, ``.endpoint`` and ``.dependencies``, ``APIRouter.routes`` and ``.dependencies``
(the app's ``router.dependencies``), ``params.Depends.dependency``, ``params.Header.alias`` and
``.convert_underscores``, ``Starlette.exception_handlers``; so do the shell's body limits, 405
answers and OpenAPI security (``splitlab.web.openapi.api_routes``, ``declared_calls``). If an
upgrade renames one, or changes what it holds (say, a router's dependencies no longer copied
onto its routes), a test here fails, and a lean route answering differently from the same
route through FastAPI fails the byte-for-byte comparison below.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, SecretStr
from starlette.exceptions import HTTPException

from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings
from splitlab.web.app import ServiceApp, create_service_app
from splitlab.web.auth import require_caller
from splitlab.web.openapi import api_routes
from splitlab.web.routing import (
    LANE_SCOPE_KEY,
    LeanEndpoint,
    LeanRoute,
    declared_calls,
    lean_routes,
)
from splitlab.web.storable import check_parameters


class Order(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


def record_path(request: Request) -> None:
    """Which path ran the route's checks: the lane (True) or FastAPI (False)."""
    request.app.state.paths.append(request.scope.get(LANE_SCOPE_KEY, False))


def build(*, lean: bool, assign_key: str | None = "secret") -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield []

    router = APIRouter(
        prefix="/shop",
        dependencies=[Depends(record_path), Depends(require_caller)],
        route_class=LeanRoute if lean else APIRoute,
    )

    @router.post("/orders", response_model=Order, status_code=201)
    async def create(order: Order, request: Request) -> Response:
        return Response(
            order.model_copy(update={"sku": f"{order.sku}-{order.quantity}"}).model_dump_json(),
            status_code=201,
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
    app.state.paths = []
    return app


VARYING = {"date", "x-request-id"}

CASES = {
    "valid": (b'{"sku": "a", "quantity": 2}', "Bearer secret"),
    "invalid": (b'{"sku": "a", "quantity": 0}', "Bearer secret"),
    "malformed": (b'{"sku": "a", "quantity": ', "Bearer secret"),
    "no key": (b'{"sku": "a", "quantity": 2}', None),
    "wrong key": (b'{"sku": "a", "quantity": 2}', "Bearer nope"),
    "invalid, no key": (b'{"quantity": 1}', None),
}
LANE_ANSWERS = {"valid": True, "no key": True, "wrong key": True}
"""Cases the lane answers itself (a valid body); the others go to FastAPI, which does not run
the checks at all for a body that is not JSON."""


@pytest.mark.parametrize("case", list(CASES))
def test_a_lean_route_answers_byte_for_byte_like_the_same_route_through_fastapi(
    case: str,
) -> None:
    content, authorization = CASES[case]
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    answers: list[tuple[int, bytes, list[tuple[str, str]]]] = []
    paths: list[list[bool]] = []
    for lean in (True, False):
        app = build(lean=lean)
        with TestClient(app) as client:
            response = client.post("/shop/orders", content=content, headers=headers)
        kept = sorted((k, v) for k, v in response.headers.items() if k not in VARYING)
        answers.append((response.status_code, response.content, kept))
        paths.append(app.state.paths)
    assert answers[0] == answers[1]
    assert answers[0][0] in {201, 401, 403, 422}
    # The lean app answered through the lane where it should (the comparison is not vacuous).
    expected = [] if case == "malformed" else [LANE_ANSWERS.get(case, False)]
    assert paths[0] == expected
    assert paths[1] == [False] * len(expected)


def test_the_routes_and_dependencies_the_lane_reads_are_public_and_hold_what_it_expects() -> None:
    def a_check(request: Request) -> None:
        return None

    router = APIRouter(prefix="/p", dependencies=[Depends(a_check)], route_class=LeanRoute)

    @router.post("/orders", dependencies=[Depends(require_caller)])
    async def create(order: Order, request: Request) -> Response:
        return Response()

    (route,) = router.routes
    assert isinstance(route, LeanRoute)
    assert route.path == "/p/orders"  # the router's prefix is in the declared route
    assert route.methods == {"POST"}
    assert route.endpoint is create
    # The router's dependencies are copied onto the route, before its own.
    assert all(isinstance(d, params.Depends) for d in route.dependencies)
    assert [d.dependency for d in route.dependencies] == [a_check, require_caller]
    assert lean_routes([router]) == [route]

    app = FastAPI(dependencies=[Depends(check_parameters)])
    assert [d.dependency for d in app.router.dependencies] == [check_parameters]
    assert isinstance(app.exception_handlers, dict)

    lean = LeanEndpoint.from_route(route, app.router.dependencies)
    assert [c.call for c in lean.checks] == [check_parameters, a_check, require_caller]
    assert lean.body_name == "order"
    assert lean.request_name == "request"
    caller = lean.checks[2]
    assert caller.request_name == "request"
    assert caller.headers == (("authorization", "authorization", None),)


def test_header_declarations_keep_the_fields_the_lane_reads() -> None:
    declared = Header(alias="X-Key", convert_underscores=False)
    assert isinstance(declared, params.Header)
    assert declared.alias == "X-Key"
    assert declared.convert_underscores is False
    assert Header().alias is None
    assert Header().convert_underscores is True

    def check(
        request: Request,
        x_tenant: Annotated[str | None, Header()] = None,
        key: Annotated[str | None, Header(alias="X-Key")] = None,
    ) -> None:
        return None

    router = APIRouter(dependencies=[Depends(check)], route_class=LeanRoute)

    @router.post("/o")
    async def create(order: Order) -> Response:
        return Response()

    lean = LeanEndpoint.from_route(router.routes[0])  # type: ignore[arg-type]
    assert lean.checks[0].headers == (("x_tenant", "x-tenant", None), ("key", "x-key", None))


def test_exception_handlers_are_keyed_as_the_lane_looks_them_up() -> None:
    app = build(lean=True)
    handlers: dict[Any, Any] = app.exception_handlers
    assert isinstance(app, ServiceApp)
    assert HTTPException in handlers or any(isinstance(k, int) for k in handlers)
    assert RequestValidationError in handlers
    for handler in handlers.values():
        assert callable(handler)
        assert len(inspect.signature(handler).parameters) == 2


def required(authorization: Annotated[str, Header()]) -> None:
    return None


def nested(value: Annotated[None, Depends(required)]) -> None:
    return None


def test_a_required_header_or_a_nested_dependency_fails_at_start_up() -> None:
    for check in (required, nested):
        router = APIRouter(dependencies=[Depends(check)], route_class=LeanRoute)
        with pytest.raises(TypeError, match="a dependency may take only a Request"):

            @router.post("/o")
            async def create(order: Order) -> Response:
                return Response()


def test_the_declared_routes_are_every_operation_of_the_openapi_document() -> None:
    """``api_routes`` (body limits, 405 answers, security schemes) reads the routers as declared;
    FastAPI's document is built from what it really serves: the two must list the same."""
    from splitlab_assignment.app import create_app

    app = create_app(
        Settings(
            admin_api_key=SecretStr("a" * 24),
            assign_api_key=SecretStr("c" * 24),
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    assert isinstance(app, ServiceApp)
    declared = {
        (route.path, method.lower())
        for route in api_routes(app.routes, app.included_routers)
        if route.include_in_schema
        for method in route.methods or ()
    }
    document = app.openapi()
    served = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert declared == served
    # The security read from declared dependencies: the actor parameter (admin_actor) of a
    # change, the router's caller check of /assign.
    assert document["paths"]["/experiments"]["post"]["security"] == [{"adminKey": []}]
    assert document["paths"]["/assign"]["post"]["security"] == [
        {"callerKey": []},
        {"adminKey": []},
    ]


def test_declared_calls_follow_parameters_and_nested_dependencies() -> None:
    def inner(request: Request) -> None:
        return None

    router = APIRouter(dependencies=[Depends(require_caller)])

    @router.post("/o")
    async def create(order: Order, who: Annotated[None, Depends(nested)]) -> Response:
        return Response()

    (route,) = router.routes
    assert isinstance(route, APIRoute)
    calls = list(declared_calls(route, [Depends(inner)]))
    assert calls == [inner, require_caller, nested, required]

"""The hot lane: ``/assign`` and ``/predict`` answered without FastAPI's per-request machinery.

A route declared with ``route_class=LeanRoute`` is an ordinary FastAPI route (OpenAPI schema,
422 answers and error format all FastAPI's), plus a prebuilt ``LeanEndpoint``. ``HotLane``, an
ASGI layer that ``create_service_app`` puts right inside the request middleware, answers the
common case of those routes itself: an exact method and path match, a JSON body that validates
(``TypeAdapter.validate_json`` on the raw bytes), the route's checks (``require_caller``) as
plain calls, the endpoint, its ``Response``. That skips Starlette's middleware stack, the
router's linear route matching, dependency solving and two ``AsyncExitStack``s per request:
about half of what a bare FastAPI endpoint costs, measured on ``/assign`` (docs/assignment.md).

Everything else goes through FastAPI unchanged: any other route, a non-JSON content type, a
body that does not validate (FastAPI's stack gets the same body again and answers its own 422).
A ``SplitLabError`` or ``HTTPException`` raised in the lane is rendered by the app's own
exception handlers, so the error format is the same on both paths.

What a lean endpoint may declare: one body parameter (a pydantic model), a ``Request``
parameter, and app, router or route dependencies whose own parameters are a ``Request`` and
optional string headers. It must return a ``Response``. Anything else fails at start-up, not
per request. Collaborators come from the app's typed state (``splitlab.web.state``).

Only public FastAPI and Starlette names: the lane reads an endpoint with ``inspect.signature``
and ``typing.get_type_hints`` (a pydantic model is the body, a ``Request`` the request, an
``Annotated[..., Header()]`` a header), and its checks from the ``dependencies`` declared on
the app (``app.router.dependencies``) and on the route (``APIRoute.dependencies``, which the
router's own dependencies are added to when a route is declared). It finds lean routes on the
routers ``create_service_app`` includes (without a prefix or include-level dependencies, so a
route's ``path`` is the path it serves), not by walking ``app.routes``: since FastAPI 0.137 an
included router is an opaque private ``_IncludedRouter`` there. ``tests/unit/web/
test_routing_contract.py`` fails if an upgrade changes any of these assumptions.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, params
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitlab.web.middleware import replay_receive

__all__ = ["HotLane", "LeanEndpoint", "LeanRoute", "declared_calls", "lean_routes"]

_JSON = b"application/json"
LANE_SCOPE_KEY = "splitlab.lean"
"""Set to True in the scope of a request the lane answered itself (FastAPI's path leaves it
unset): tests tell the two paths apart by it."""

ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def _parameters(call: Callable[..., Any]) -> Iterator[tuple[str, inspect.Parameter, Any]]:
    """(name, parameter, resolved annotation with its ``Annotated`` metadata) of ``call``."""
    hints = typing.get_type_hints(call, include_extras=True)
    for name, parameter in inspect.signature(call).parameters.items():
        yield name, parameter, hints.get(name, parameter.annotation)


def _metadata(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint)[1:] if typing.get_origin(hint) is typing.Annotated else ()


def _is_request(hint: Any) -> bool:
    return inspect.isclass(hint) and issubclass(hint, Request)


def _is_dependency(parameter: inspect.Parameter, hint: Any) -> bool:
    return isinstance(parameter.default, params.Depends) or any(
        isinstance(item, params.Depends) for item in _metadata(hint)
    )


def declared_calls(
    route: APIRoute, app_dependencies: Sequence[params.Depends] = ()
) -> Iterator[Callable[..., Any]]:
    """Every dependency callable ``route`` runs, read from what is declared: the app's and the
    route's ``dependencies`` and the endpoint's ``Depends`` parameters, each with its own."""
    for depends in [*app_dependencies, *route.dependencies]:
        if depends.dependency is not None:
            yield depends.dependency
            yield from _parameter_calls(depends.dependency)
    yield from _parameter_calls(route.endpoint)


def _parameter_calls(call: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    for _, parameter, hint in _parameters(call):
        declared = [item for item in _metadata(hint) if isinstance(item, params.Depends)]
        if isinstance(parameter.default, params.Depends):
            declared.append(parameter.default)
        for depends in declared:
            if depends.dependency is not None:
                yield depends.dependency
                yield from _parameter_calls(depends.dependency)


def _header_of(parameter: inspect.Parameter, hint: Any) -> tuple[params.Header, Any] | None:
    """The parameter's ``Header`` declaration and default, if it is a header."""
    for item in _metadata(hint):
        if isinstance(item, params.Header):
            return item, parameter.default
    if isinstance(parameter.default, params.Header):
        return parameter.default, parameter.default.default
    return None


@dataclass(frozen=True, slots=True)
class _Check:
    """A dependency with no sub-dependencies: called with the request and header values."""

    call: Callable[..., Any]
    request_name: str | None
    headers: tuple[tuple[str, str, Any], ...]  # (parameter, header name, default)
    is_async: bool

    @classmethod
    def from_callable(cls, call: Callable[..., Any], route: str) -> _Check:
        request_name = None
        headers = []
        for name, parameter, hint in _parameters(call):
            if _is_request(hint):
                request_name = name
                continue
            header = _header_of(parameter, hint)
            if header is None or header[1] is inspect.Parameter.empty:
                raise TypeError(
                    f"LeanRoute {route}: a dependency may take only a Request and optional "
                    f"headers ({getattr(call, '__name__', call)!r} takes {name!r})"
                )
            declared, default = header
            alias = declared.alias
            if alias is None:
                alias = name.replace("_", "-") if declared.convert_underscores else name
            headers.append((name, alias.lower(), default))
        return cls(
            call=call,
            request_name=request_name,
            headers=tuple(headers),
            is_async=inspect.iscoroutinefunction(call),
        )

    async def run(self, request: Request) -> None:
        kwargs: dict[str, Any] = {}
        if self.request_name is not None:
            kwargs[self.request_name] = request
        for name, header, default in self.headers:
            kwargs[name] = request.headers.get(header, default)
        if self.is_async:
            await self.call(**kwargs)
        else:
            self.call(**kwargs)


@dataclass(frozen=True, slots=True)
class LeanEndpoint:
    """What the hot lane runs for one route: built once, at start-up."""

    route: str
    adapter: TypeAdapter[Any]
    body_name: str
    request_name: str | None
    checks: tuple[_Check, ...]
    call: Callable[..., Awaitable[Response]]

    @classmethod
    def from_route(
        cls, route: APIRoute, app_dependencies: Sequence[params.Depends] = ()
    ) -> LeanEndpoint:
        """The lane's view of ``route``; its checks are ``app_dependencies`` (the app's own,
        which run first, as in FastAPI) and the route's declared ``dependencies``."""
        name = f"{sorted(route.methods or ())} {route.path}"
        endpoint = route.endpoint
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"LeanRoute {name}: needs an async endpoint with one body parameter")
        bodies: list[tuple[str, type[BaseModel]]] = []
        request_name = None
        for parameter_name, parameter, hint in _parameters(endpoint):
            if _is_dependency(parameter, hint):
                raise TypeError(
                    f"LeanRoute {name}: endpoint parameter {parameter_name!r} is a "
                    "dependency; read collaborators from the app's state"
                )
            if _is_request(hint):
                request_name = parameter_name
            elif inspect.isclass(hint) and issubclass(hint, BaseModel):
                bodies.append((parameter_name, hint))
            else:
                raise TypeError(
                    f"LeanRoute {name}: only a body and a Request are supported "
                    f"({parameter_name!r} is neither)"
                )
        if len(bodies) != 1:
            raise TypeError(f"LeanRoute {name}: needs an async endpoint with one body parameter")
        checks = [
            _Check.from_callable(_dependency_of(depends, name), name)
            for depends in [*app_dependencies, *route.dependencies]
        ]
        ((body_name, model),) = bodies
        return cls(
            route=name,
            adapter=TypeAdapter(model),
            body_name=body_name,
            request_name=request_name,
            checks=tuple(checks),
            call=endpoint,
        )

    async def respond(self, request: Request, raw: bytes) -> Response | None:
        """The endpoint's answer, or None when ``raw`` does not validate (FastAPI answers)."""
        try:
            body = self.adapter.validate_json(raw)
        except ValidationError:
            return None
        for check in self.checks:
            await check.run(request)
        kwargs: dict[str, Any] = {self.body_name: body}
        if self.request_name is not None:
            kwargs[self.request_name] = request
        response = await self.call(**kwargs)
        if not isinstance(response, Response):
            raise TypeError(f"LeanRoute {self.route}: the endpoint must return a Response")
        return response


def _dependency_of(depends: params.Depends, route: str) -> Callable[..., Any]:
    if depends.dependency is None:
        raise TypeError(f"LeanRoute {route}: a dependency needs its callable")
    return depends.dependency


class LeanRoute(APIRoute):
    """A FastAPI route that ``HotLane`` may answer directly (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Fails here, at declaration, for an endpoint the lane cannot run.
        LeanEndpoint.from_route(self)


def lean_routes(routers: Iterable[APIRouter]) -> list[LeanRoute]:
    """The lean routes declared on ``routers`` (their paths carry the routers' prefixes)."""
    return [route for router in routers for route in router.routes if isinstance(route, LeanRoute)]


class HotLane:
    """ASGI: lean routes by exact method and path; every other request to ``fallback``.

    ``routes`` must be included in the app as declared (no include prefix or dependencies);
    ``dependencies`` are the app's own (``app.router.dependencies``), ``handlers`` its
    exception handlers."""

    def __init__(
        self,
        fallback: ASGIApp,
        *,
        routes: Sequence[LeanRoute],
        dependencies: Sequence[params.Depends],
        handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.fallback = fallback
        self.routes: dict[tuple[str, str], tuple[LeanRoute, LeanEndpoint]] = {}
        for route in routes:
            lean = LeanEndpoint.from_route(route, dependencies)
            for method in route.methods or ():
                self.routes[(method, route.path)] = (route, lean)
        self.handlers: dict[Any, ExceptionHandler] = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and self.routes:
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            found = self.routes.get((scope["method"], path))
        if found is None or not _is_json(scope):
            await self.fallback(scope, receive, send)
            return
        messages = await _read_body(receive)
        replay = replay_receive(messages, receive)
        # What Starlette's router would have put in the scope (the request middleware labels
        # its metrics with ``scope["route"].path``).
        route, lean = found
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        scope[LANE_SCOPE_KEY] = True
        request = Request(scope, replay)
        raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            response = await lean.respond(request, raw)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        if response is None:  # FastAPI's own answer (a 422) from the same body
            del scope[LANE_SCOPE_KEY]
            await self.fallback(scope, replay_receive(messages, receive), send)
            return
        await response(scope, replay, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self.handlers:
            return self.handlers[exc.status_code]
        return next((self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.startswith(_JSON))
    return False


async def _read_body(receive: Receive) -> list[Message]:
    """Every message up to the end of the body (the request middleware bounds its size)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages

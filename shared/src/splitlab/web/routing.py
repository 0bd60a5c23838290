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
parameter, and route or router dependencies whose own parameters are a ``Request`` and
optional string headers. It must return a ``Response``. Anything else fails at start-up, not
per request. Collaborators come from ``request.app.state`` in the endpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitlab.web.middleware import replay_receive

__all__ = ["HotLane", "LeanEndpoint", "LeanRoute"]

_JSON = b"application/json"

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Check:
    """A dependency with no sub-dependencies: called with the request and header values."""

    call: Callable[..., Any]
    request_name: str | None
    headers: tuple[tuple[str, str, Any], ...]  # (parameter, header name, default)
    is_async: bool

    @classmethod
    def from_dependant(cls, dependant: Dependant, route: str) -> _Check:
        unsupported = (
            dependant.dependencies
            or dependant.body_params
            or dependant.query_params
            or dependant.path_params
            or dependant.cookie_params
        )
        if dependant.call is None or unsupported:
            raise TypeError(
                f"LeanRoute {route}: a dependency may take only a Request and headers "
                f"({getattr(dependant.call, '__name__', dependant.call)!r} takes more)"
            )
        headers = []
        for field in dependant.header_params:
            alias = field.alias
            if getattr(field.field_info, "convert_underscores", True) and alias == field.name:
                alias = alias.replace("_", "-")
            headers.append((field.name, alias.lower(), field.default))
        return cls(
            call=dependant.call,
            request_name=dependant.request_param_name,
            headers=tuple(headers),
            is_async=inspect.iscoroutinefunction(dependant.call),
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
    def from_dependant(cls, dependant: Dependant, route: str) -> LeanEndpoint:
        if len(dependant.body_params) != 1 or not inspect.iscoroutinefunction(dependant.call):
            raise TypeError(f"LeanRoute {route}: needs an async endpoint with one body parameter")
        if dependant.query_params or dependant.path_params or dependant.header_params:
            raise TypeError(f"LeanRoute {route}: only a body and a Request are supported")
        body_field = dependant.body_params[0]
        annotation = body_field.field_info.annotation
        if annotation is None:
            raise TypeError(f"LeanRoute {route}: the body parameter needs a type")
        checks = []
        for sub in dependant.dependencies:
            if sub.call is not None and sub.name is not None:
                raise TypeError(
                    f"LeanRoute {route}: endpoint parameter {sub.name!r} is a "
                    "dependency; read collaborators from request.app.state"
                )
            checks.append(_Check.from_dependant(sub, route))
        assert dependant.call is not None
        return cls(
            route=route,
            adapter=TypeAdapter(annotation),
            body_name=body_field.name,
            request_name=dependant.request_param_name,
            checks=tuple(checks),
            call=dependant.call,
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


class LeanRoute(APIRoute):
    """A FastAPI route that ``HotLane`` may answer directly (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Fails here, at declaration, for an endpoint the lane cannot run.
        LeanEndpoint.from_dependant(self.dependant, f"{sorted(self.methods or ())} {self.path}")


class HotLane:
    """ASGI: lean routes by exact method and path; every other request to ``fallback``."""

    def __init__(self, app: FastAPI, fallback: ASGIApp) -> None:
        self.app = app
        self.fallback = fallback
        self.routes: dict[tuple[str, str], tuple[Any, LeanEndpoint]] = {}
        for route, path, methods, dependant in _lean_routes(app.routes):
            # Built from the effective dependant: it holds the include-level dependencies too.
            lean = LeanEndpoint.from_dependant(dependant, f"{sorted(methods)} {path}")
            for method in methods:
                self.routes[(method, path)] = (route, lean)
        self.handlers: Mapping[Any, ExceptionHandler] = dict(app.exception_handlers)

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
        request = Request(scope, replay)
        raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            response = await lean.respond(request, raw)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        if response is None:  # FastAPI's own answer (a 422) from the same body
            await self.fallback(scope, replay_receive(messages, receive), send)
            return
        await response(scope, replay, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self.handlers:
            return self.handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None


def _lean_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[Any, str, set[str], Dependant]]:
    """Every lean route as (the route as FastAPI dispatches it, full path, methods, dependant).

    An included router (FastAPI >= 0.160) keeps its routes and dispatches through "effective
    contexts" that carry the include's prefix and dependencies; they are what to match."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                if isinstance(context.original_route, LeanRoute) and context.dependant:
                    yield context, context.path, set(context.methods), context.dependant
        elif isinstance(route, LeanRoute):
            yield route, route.path, set(route.methods or ()), route.dependant


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

"""``LeanRoute``: a FastAPI route class for the hot endpoints (``/assign``, ``/predict``).

FastAPI solves an endpoint's dependency graph on every request (about a third of a small
endpoint's cost, measured on ``/assign``). A lean route takes the common case out of it: a JSON
body that validates goes through a prebuilt ``TypeAdapter.validate_json`` on the raw bytes, the
route's checks (``require_caller``: request and header parameters only) run as plain calls, and
the endpoint gets the parsed body and the ``Request``. Everything else (a non-JSON content type,
a body that does not validate) goes through FastAPI's own handler, so 422 answers, the error
format and the OpenAPI schema (built from the same signature) stay exactly FastAPI's.

What an endpoint may declare: one body parameter (a pydantic model), a ``Request`` parameter,
and route or router dependencies whose own parameters are a ``Request`` and optional string
headers. It must return a ``Response``. Anything else fails at start-up, not per request.
Collaborators come from ``request.app.state`` in the endpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

__all__ = ["LeanRoute"]

_JSON = "application/json"


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


class LeanRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        dependant = self.dependant
        route = f"{sorted(self.methods or ())} {self.path}"
        if len(dependant.body_params) != 1 or not inspect.iscoroutinefunction(dependant.call):
            raise TypeError(f"LeanRoute {route}: needs an async endpoint with one body parameter")
        body_field = dependant.body_params[0]
        body_name = body_field.name
        annotation = body_field.field_info.annotation
        if annotation is None:
            raise TypeError(f"LeanRoute {route}: the body parameter needs a type")
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        request_name = dependant.request_param_name
        checks = []
        for sub in dependant.dependencies:
            if sub.call is not None and sub.name is not None:
                raise TypeError(
                    f"LeanRoute {route}: endpoint parameter {sub.name!r} is a "
                    "dependency; read collaborators from request.app.state"
                )
            checks.append(_Check.from_dependant(sub, route))
        if dependant.query_params or dependant.path_params or dependant.header_params:
            raise TypeError(f"LeanRoute {route}: only a body and a Request are supported")
        endpoint: Callable[..., Awaitable[Response]] = dependant.call

        async def handler(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if not content_type.startswith(_JSON):
                return await standard(request)
            raw = await request.body()
            try:
                body = adapter.validate_json(raw)
            except ValidationError:
                return await standard(request)  # FastAPI's own 422 (or the checks' 401/403)
            for check in checks:
                await check.run(request)
            kwargs: dict[str, Any] = {body_name: body}
            if request_name is not None:
                kwargs[request_name] = request
            response = await endpoint(**kwargs)
            if not isinstance(response, Response):
                raise TypeError(f"LeanRoute {route}: the endpoint must return a Response")
            return response

        return handler

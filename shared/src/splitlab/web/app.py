"""The factory every SplitLab HTTP service is built with.

A service supplies its name, its settings and a lifespan that builds its clients (through
``splitlab.platform.connections``) and returns its readiness checks. The factory adds what all
services share: JSON logs with request ids, the body-size limit, HTTP metrics, the hot lane for lean
routes (``splitlab.web.routing``), ``/healthz``, ``/readyz``, ``/metrics``, one error format, the
refusal of text no service can store (``splitlab.web.storable``), an OpenAPI document that
declares the shell's answers and the security schemes (``splitlab.web.openapi``), ``/docs`` and
``/redoc`` served with their assets from the service itself (no CDN), and a background loop that
keeps the ``splitlab_dependency_up`` gauges fresh for the alert rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp

from splitlab import __version__
from splitlab.platform.health import CheckOutcome, DependencyCheck, run_checks
from splitlab.platform.settings import Settings
from splitlab.platform.telemetry.logs import configure_logging
from splitlab.web.error_handlers import install_error_handlers
from splitlab.web.middleware import RequestMiddleware
from splitlab.web.openapi import api_routes, complete_openapi
from splitlab.web.routing import HotLane
from splitlab.web.storable import check_parameters
from splitlab.web.telemetry import DEPENDENCY_UP

logger = logging.getLogger(__name__)

DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's files are served from (the ``fastapi-offline`` package's)."""

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Sequence[DependencyCheck]]]
"""Builds the service's clients on ``app.state``, yields its readiness checks, closes them."""


def create_service_app(
    *,
    service: str,
    settings: Settings,
    lifespan: ServiceLifespan,
    description: str,
    routers: Sequence[APIRouter] = (),
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """``body_limits``: body-size limits of their own for exact paths whose limit depends on
    the settings (model uploads), instead of ``SPLITLAB_MAX_BODY_BYTES``; a route can also
    declare a fixed one (``max_body_size=``)."""
    configure_logging(service, settings.log_level, settings.log_format)

    @contextlib.asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app) as checks:
            app.state.health_checks = list(checks)
            # Everything built so far lives as long as the process: out of the collector's
            # sight, a full collection no longer walks it (pauses of tens of ms on the request
            # path otherwise; the technique Instagram described for its Django fleet).
            gc.collect()
            gc.freeze()
            refresher = asyncio.create_task(_refresh_dependency_gauges(app))
            logger.info("started", extra={"version": __version__})
            try:
                yield
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                logger.info("stopping")

    app = ServiceApp(
        title=f"SplitLab {service}",
        description=description,
        version=__version__,
        lifespan=app_lifespan,
        # SplitLab exports Prometheus metrics and JSON logs; FastAPI's native OpenTelemetry
        # looks up the global providers on every request (~18 us) even when none is set.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Served by ``_docs_router`` with local assets: FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(check_parameters)],
    )
    app.state.service = service
    app.state.settings = settings
    app.state.body_limits = dict(body_limits or {})
    app.state.health_checks = []
    install_error_handlers(app)
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")))
    app.include_router(_docs_router(app.title))
    app.include_router(_operations_router())
    for router in routers:
        app.include_router(router)
    return app


class ServiceApp(FastAPI):
    """FastAPI with SplitLab's outer layers: ``RequestMiddleware`` (request id, body limit,
    metrics, access log) around ``HotLane`` (lean routes answered directly) around FastAPI's
    own stack. Built on the first request, when every route is known."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        # A route may take larger bodies than the setting (``max_body_size=``, exact paths).
        limits = {
            path: route.max_body_size
            for path, _, _, route in api_routes(self.routes)
            if getattr(route, "max_body_size", None) and "{" not in path
        }
        return RequestMiddleware(
            HotLane(self, super().build_middleware_stack()),
            service=self.state.service,
            max_body_bytes=settings.max_body_bytes,
            access_log=settings.access_log,
            body_limits={**limits, **self.state.body_limits},
        )

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = complete_openapi(
                super().openapi(), self.routes, self.state.settings
            )
        return self.openapi_schema


async def check_dependencies(app: FastAPI) -> list[CheckOutcome]:
    settings: Settings = app.state.settings
    outcomes = await run_checks(app.state.health_checks, settings.health_timeout_seconds)
    for outcome in outcomes:
        DEPENDENCY_UP.labels(app.state.service, outcome.name).set(1 if outcome.up else 0)
    return outcomes


async def _refresh_dependency_gauges(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    while True:
        try:
            outcomes = await check_dependencies(app)
            for outcome in outcomes:
                if not outcome.up:
                    logger.warning(
                        "dependency down",
                        extra={"dependency": outcome.name, "reason": outcome.error},
                    )
        except Exception:
            logger.exception("dependency check loop failed")
        await asyncio.sleep(settings.health_interval_seconds)


def _docs_router(title: str) -> APIRouter:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), every asset from ``DOCS_ASSETS``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )

    @router.get("/docs/oauth2-redirect")
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    return router


class DependencyState(BaseModel):
    up: bool
    latency_ms: float
    error: str | None


class Readiness(BaseModel):
    status: str
    service: str
    down: list[str]
    dependencies: dict[str, DependencyState]


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz(request: Request) -> dict[str, str]:
        return {"status": "ok", "service": request.app.state.service}

    @router.get(
        "/readyz",
        summary="Every dependency answers",
        response_model=Readiness,
        responses={
            503: {
                "model": Readiness,
                "description": "At least one dependency is down; `down` names it.",
            }
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        outcomes = await check_dependencies(request.app)
        down = [o.name for o in outcomes if not o.up]
        body: dict[str, Any] = {
            "status": "unavailable" if down else "ready",
            "service": request.app.state.service,
            "down": down,
            "dependencies": {
                o.name: {"up": o.up, "latency_ms": round(o.latency_ms, 2), "error": o.error}
                for o in outcomes
            },
        }
        return JSONResponse(body, status_code=503 if down else 200)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router

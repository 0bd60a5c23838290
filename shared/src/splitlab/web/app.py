"""The factory every SplitLab HTTP service is built with.

A service supplies its name, its settings and a lifespan that builds its clients (through
``splitlab.clients``) and returns its readiness checks. The factory adds what all services share:
JSON logs with request ids, the body-size limit, HTTP metrics, the hot lane for lean routes
(``splitlab.web.routing``), ``/healthz``, ``/readyz``, ``/metrics``, one error format, and a
background loop that keeps the ``splitlab_dependency_up`` gauges fresh for the alert rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from splitlab import __version__
from splitlab.health import CheckOutcome, DependencyCheck, run_checks
from splitlab.observability import configure_logging
from splitlab.settings import Settings
from splitlab.web.errors import install_error_handlers
from splitlab.web.metrics import DEPENDENCY_UP
from splitlab.web.middleware import RequestMiddleware
from splitlab.web.routing import HotLane

logger = logging.getLogger(__name__)

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
    """``body_limits``: body-size limits of their own for path prefixes (see
    ``RequestMiddleware``); every other path has ``settings.max_body_bytes``."""
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
    )
    app.state.service = service
    app.state.settings = settings
    app.state.health_checks = []
    app.state.body_limits = dict(body_limits or {})
    install_error_handlers(app)
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
        return RequestMiddleware(
            HotLane(self, super().build_middleware_stack()),
            service=self.state.service,
            max_body_bytes=settings.max_body_bytes,
            access_log=settings.access_log,
            body_limits=self.state.body_limits,
        )


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


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz(request: Request) -> dict[str, str]:
        return {"status": "ok", "service": request.app.state.service}

    @router.get(
        "/readyz",
        summary="Every dependency answers",
        responses={503: {"description": "At least one dependency is down; `down` names it."}},
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

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router

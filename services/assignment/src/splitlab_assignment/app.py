"""The assignment service's FastAPI application.

Run: ``uvicorn splitlab_assignment.app:create_app --factory``.

The lifespan builds every collaborator once: the engine and sessions (registry), the assignment
runtime shared with the router (``splitlab.assigning.runtime``: the experiment cache, the sticky
store on its own asyncio Redis client, the exposure publisher, the global holdout), and the
loop that refreshes the cache (loaded at startup, refreshed periodically so replicas converge).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
from fastapi import FastAPI

from splitlab.assigning.runtime import EventSink, open_assignment_runtime, refreshing
from splitlab.assigning.telemetry import CACHE_REFRESH_FAILURES
from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings, load_settings
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab.web.state import install_state
from splitlab_assignment.api import assign, experiments
from splitlab_assignment.deps import AssignmentState
from splitlab_assignment.service.assign import AssignEndpoints
from splitlab_assignment.service.experiments import ExperimentRegistry
from splitlab_assignment.service.preflight import PreflightChecker

DESCRIPTION = (
    "Experiment registry and deterministic, sticky assignment of units to variants (/assign)."
)


def create_app(
    settings: Settings | None = None,
    *,
    publisher_factory: Callable[[Settings], EventSink] | None = None,
    analyzer_http: httpx.Client | None = None,
    router_http: httpx.Client | None = None,
) -> FastAPI:
    """``analyzer_http``/``router_http``: the pre-flight check's HTTP clients (tests pass
    in-process apps' clients); by default built from the settings' URLs."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with (
            open_core_resources(settings) as core,
            open_assignment_runtime(
                settings, service="assignment", publisher_factory=publisher_factory
            ) as runtime,
        ):
            assert core.sessions is not None
            preflight = (
                PreflightChecker.from_settings(settings, analyzer_http, router_http)
                if settings.preflight_checks
                else None
            )
            registry = ExperimentRegistry(core.sessions, runtime.cache, preflight=preflight)
            install_state(
                app,
                AssignmentState(
                    core=core,
                    cache=runtime.cache,
                    registry=registry,
                    assigner=AssignEndpoints(runtime.assignment_service()),
                ),
            )
            try:
                async with refreshing(
                    registry.refresh_cache,
                    every=settings.experiment_cache_refresh_seconds,
                    failures=CACHE_REFRESH_FAILURES,
                    failure="experiment cache refresh failed; keeping the cached experiments",
                ):
                    yield core.checks
            finally:
                if preflight is not None:
                    preflight.close()

    return create_service_app(
        service="assignment",
        settings=settings,
        lifespan=lifespan,
        description=DESCRIPTION,
        routers=[assign.router, experiments.router],  # the hot routes are matched first
    )

"""The assignment service's FastAPI application.

Run: ``uvicorn splitlab_assignment.app:create_app --factory``.

The lifespan builds every collaborator once: the engine and sessions (registry), an asyncio Redis
client with short timeouts (sticky store), the event publisher (exposures), the experiment cache
(loaded at startup, refreshed periodically so replicas converge), and the global holdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
from fastapi import FastAPI

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.sticky import StickyStore
from splitlab.assigning.telemetry import CACHE_REFRESH_FAILURES
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.connections import create_async_redis
from splitlab.platform.health import DependencyCheck
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings, load_settings
from splitlab.platform.storage.errors import log_background_failure
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab_assignment.api import assign, experiments
from splitlab_assignment.assigner import AssignEndpoints, ExposurePublisher
from splitlab_assignment.preflight import PreflightChecker
from splitlab_assignment.registry import ExperimentRegistry

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Experiment registry and deterministic, sticky assignment of units to variants (/assign)."
)


def holdout_from(settings: Settings) -> HoldoutConfig | None:
    if settings.holdout_share <= 0:
        return None
    return HoldoutConfig(share=settings.holdout_share, seed=settings.holdout_seed)


def create_app(
    settings: Settings | None = None,
    *,
    publisher_factory: Callable[[Settings], ExposurePublisher] | None = None,
    analyzer_http: httpx.Client | None = None,
    router_http: httpx.Client | None = None,
) -> FastAPI:
    """``analyzer_http``/``router_http``: the pre-flight check's HTTP clients (tests pass
    in-process apps' clients); by default built from the settings' URLs."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with open_core_resources(settings) as core:
            assert core.sessions is not None
            cache = ExperimentCache()
            preflight = (
                PreflightChecker.from_settings(settings, analyzer_http, router_http)
                if settings.preflight_checks
                else None
            )
            registry = ExperimentRegistry(core.sessions, cache, preflight=preflight)
            await _refresh(registry)
            sticky_redis = create_async_redis(settings)
            publisher: ExposurePublisher
            event_publisher: EventPublisher | None = None
            if publisher_factory is not None:
                publisher = publisher_factory(settings)
            else:
                event_publisher = EventPublisher(settings, service="assignment")
                event_publisher.start()
                publisher = event_publisher
            app.state.core = core
            app.state.cache = cache
            app.state.registry = registry
            sticky = StickyStore(
                sticky_redis,
                ttl_seconds=settings.sticky_ttl_seconds,
                breaker_seconds=settings.sticky_breaker_seconds,
            )
            app.state.assigner = AssignEndpoints(cache, sticky, publisher, holdout_from(settings))
            refresher = asyncio.create_task(
                _refresh_periodically(registry, settings.experiment_cache_refresh_seconds)
            )
            try:
                yield core.checks
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                if event_publisher is not None:
                    await asyncio.to_thread(event_publisher.close, 10.0)
                await sticky.settled()  # records remembered by the last answers
                await sticky_redis.aclose()
                if preflight is not None:
                    preflight.close()

    return create_service_app(
        service="assignment",
        settings=settings,
        lifespan=lifespan,
        description=DESCRIPTION,
        routers=[assign.router, experiments.router],  # the hot routes are matched first
    )


async def _refresh(registry: ExperimentRegistry) -> None:
    try:
        await asyncio.to_thread(registry.refresh_cache)
    except Exception as exc:
        CACHE_REFRESH_FAILURES.inc()
        log_background_failure(
            logger, "experiment cache refresh failed; keeping the cached experiments", exc
        )


async def _refresh_periodically(registry: ExperimentRegistry, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await _refresh(registry)

"""The router service's FastAPI application.

Run: ``uvicorn splitlab_router.app:create_app --factory``.

The lifespan builds every collaborator once: the engine and sessions (model registry and
experiments), an asyncio Redis client with short timeouts (sticky store), the event publisher
(exposures, predictions, outcomes; a no-op when ``SPLITLAB_ROUTER_EVENT_LOGGING=false``), the
thread pool that runs scikit-learn predictions, one connection pool per remote model server
(created on first use, closed at shutdown), the experiment cache and the model catalog
(loaded at startup, refreshed periodically: hot reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.loading import refresh_cache
from splitlab.assigning.service import AssignmentService
from splitlab.assigning.sticky import StickyStore
from splitlab.contracts.events import Event
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.connections import create_async_redis, create_model_server_pool
from splitlab.platform.health import DependencyCheck
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings, load_settings
from splitlab.platform.storage.errors import log_background_failure
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab_router.api import models, predict
from splitlab_router.metrics import REGISTRY_REFRESH_FAILURES
from splitlab_router.outcomes import OutcomeService
from splitlab_router.predictor import PredictionService
from splitlab_router.registry import ModelCatalog, ModelRegistry
from splitlab_router.served import ServedRequests
from splitlab_router.serving import ModelServers

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Routes prediction requests to the unit's model variant "
    "(/predict) and takes outcomes (/outcomes)."
)


class DiscardingPublisher:
    """Event logging switched off (``SPLITLAB_ROUTER_EVENT_LOGGING=false``): drops events."""

    def publish(self, event: Event) -> None:
        return None


def holdout_from(settings: Settings) -> HoldoutConfig | None:
    if settings.holdout_share <= 0:
        return None
    return HoldoutConfig(share=settings.holdout_share, seed=settings.holdout_seed)


def create_app(
    settings: Settings | None = None,
    *,
    publisher_factory: Callable[[Settings], DiscardingPublisher | EventPublisher] | None = None,
) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with open_core_resources(settings) as core:
            assert core.sessions is not None
            sessions = core.sessions
            executor = ThreadPoolExecutor(
                max_workers=settings.router_predict_threads, thread_name_prefix="predict"
            )
            servers = ModelServers(lambda **options: create_model_server_pool(settings, **options))
            settings.model_store_dir.mkdir(parents=True, exist_ok=True)
            catalog = ModelCatalog(
                settings.model_store_dir, executor, servers, settings.router_model_timeout_ms
            )
            cache = ExperimentCache()
            await _refresh(sessions, cache, catalog)
            sticky_redis = create_async_redis(settings)
            event_publisher: EventPublisher | None = None
            publisher: DiscardingPublisher | EventPublisher
            if publisher_factory is not None:
                publisher = publisher_factory(settings)
            elif settings.router_event_logging:
                event_publisher = EventPublisher(settings, service="router")
                event_publisher.start()
                publisher = event_publisher
            else:
                publisher = DiscardingPublisher()
            sticky = StickyStore(
                sticky_redis,
                ttl_seconds=settings.sticky_ttl_seconds,
                breaker_seconds=settings.sticky_breaker_seconds,
            )
            assigner = AssignmentService(cache, sticky, publisher, holdout_from(settings))
            served = ServedRequests(settings.router_served_requests)
            predictor = PredictionService(
                assigner,
                catalog,
                publisher,
                max_pending_shadows=settings.router_max_pending_shadows,
                served=served,
            )
            app.state.core = core
            app.state.cache = cache
            app.state.catalog = catalog
            app.state.publisher = publisher
            app.state.predictor = predictor
            app.state.outcomes = OutcomeService(
                publisher,
                max_batch=settings.router_max_outcomes,
                served=served,
                labelled_types=settings.router_outcome_type_labels,
                window=timedelta(days=settings.router_occurred_at_window_days),
            )
            app.state.models = ModelRegistry(sessions, catalog, settings.router_model_timeout_ms)
            refresher = asyncio.create_task(
                _refresh_periodically(
                    sessions,
                    cache,
                    catalog,
                    min(
                        settings.experiment_cache_refresh_seconds,
                        settings.router_model_refresh_seconds,
                    ),
                )
            )
            try:
                yield core.checks
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                await predictor.drain_shadows(5.0)
                if event_publisher is not None:
                    await asyncio.to_thread(event_publisher.close, 10.0)
                await sticky.settled()  # records remembered by the last answers
                await sticky_redis.aclose()
                await servers.aclose()
                executor.shutdown(wait=False, cancel_futures=True)

    return create_service_app(
        service="router",
        settings=settings,
        lifespan=lifespan,
        description=DESCRIPTION,
        routers=[predict.router, predict.outcomes_router, models.router],
        body_limits={"/models": models.upload_body_limit(settings)},
    )


async def _refresh(
    sessions: sessionmaker[Session], cache: ExperimentCache, catalog: ModelCatalog
) -> None:
    try:
        await asyncio.to_thread(refresh_cache, sessions, cache)
        await asyncio.to_thread(catalog.refresh, sessions)
    except Exception as exc:
        REGISTRY_REFRESH_FAILURES.inc()
        log_background_failure(
            logger,
            "experiment or model refresh failed; keeping the cached experiments and loaded models",
            exc,
        )


async def _refresh_periodically(
    sessions: sessionmaker[Session],
    cache: ExperimentCache,
    catalog: ModelCatalog,
    seconds: float,
) -> None:
    while True:
        await asyncio.sleep(seconds)
        await _refresh(sessions, cache, catalog)

"""The router service's FastAPI application.

Run: ``uvicorn splitlab_router.app:create_app --factory``.

The lifespan builds every collaborator once: the engine and sessions (model registry and
experiments); the assignment runtime shared with the assignment service
(``splitlab.assigning.runtime``: the experiment cache, the sticky store on its own asyncio
Redis client, the event publisher for exposures, predictions and outcomes, a no-op when
``SPLITLAB_ROUTER_EVENT_LOGGING=false``, and the global holdout); the thread pool that runs
scikit-learn predictions; one connection pool per remote model server (created on first use,
closed at shutdown); the model catalog. The experiment cache and the catalog are loaded at
startup and refreshed periodically (hot reload).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.loading import refresh_cache
from splitlab.assigning.runtime import EventSink, open_assignment_runtime, refreshing
from splitlab.platform.connections import create_model_server_pool
from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings, load_settings
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab.web.state import install_state
from splitlab_router.api import models, predict
from splitlab_router.deps import RouterState
from splitlab_router.service.models import ModelCatalog, ModelRegistry
from splitlab_router.service.outcomes import OutcomeService
from splitlab_router.service.predict import PredictionService
from splitlab_router.service.served import ServedRequests
from splitlab_router.service.serving import ModelServers
from splitlab_router.telemetry import REGISTRY_REFRESH_FAILURES

DESCRIPTION = (
    "Routes prediction requests to the unit's model variant "
    "(/predict) and takes outcomes (/outcomes)."
)


def create_app(
    settings: Settings | None = None,
    *,
    publisher_factory: Callable[[Settings], EventSink] | None = None,
) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with (
            open_core_resources(settings) as core,
            open_assignment_runtime(
                settings,
                service="router",
                publisher_factory=publisher_factory,
                publish_events=settings.router_event_logging,
            ) as runtime,
        ):
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
            served = ServedRequests(settings.router_served_requests)
            predictor = PredictionService(
                runtime.assignment_service(),
                catalog,
                runtime.publisher,
                max_pending_shadows=settings.router_max_pending_shadows,
                served=served,
            )
            install_state(
                app,
                RouterState(
                    settings=settings,
                    core=core,
                    cache=runtime.cache,
                    catalog=catalog,
                    publisher=runtime.publisher,
                    predictor=predictor,
                    outcomes=OutcomeService(
                        runtime.publisher,
                        max_batch=settings.router_max_outcomes,
                        served=served,
                        labelled_types=settings.router_outcome_type_labels,
                        window=timedelta(days=settings.router_occurred_at_window_days),
                    ),
                    models=ModelRegistry(sessions, catalog, settings.router_model_timeout_ms),
                ),
            )
            try:
                async with refreshing(
                    lambda: _refresh(sessions, runtime.cache, catalog),
                    every=min(
                        settings.experiment_cache_refresh_seconds,
                        settings.router_model_refresh_seconds,
                    ),
                    failures=REGISTRY_REFRESH_FAILURES,
                    failure=(
                        "experiment or model refresh failed; keeping the cached experiments "
                        "and loaded models"
                    ),
                ):
                    yield core.checks
            finally:
                await predictor.drain_shadows(5.0)
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


def _refresh(
    sessions: sessionmaker[Session], cache: ExperimentCache, catalog: ModelCatalog
) -> None:
    refresh_cache(sessions, cache)
    catalog.refresh(sessions)

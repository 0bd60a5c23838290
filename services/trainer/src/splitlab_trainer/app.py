"""The trainer's HTTP API: the model catalogue (``GET /models``, ``GET /models/{id}``),
``POST /train``, entities; health, readiness (broker, Postgres, a live worker) and metrics
(the catalogue's, see :mod:`splitlab_trainer.telemetry`).

Run: ``uvicorn splitlab_trainer.app:create_app --factory``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI
from prometheus_client.registry import REGISTRY

from splitlab.platform.connections import create_redis
from splitlab.platform.health import DependencyCheck, redis_check
from splitlab.platform.settings import Settings, load_settings
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab_trainer.api import models
from splitlab_trainer.celery_app import create_celery
from splitlab_trainer.resources import build_resources
from splitlab_trainer.service import TrainerService
from splitlab_trainer.telemetry import CatalogueCollector

DESCRIPTION = "CUPAC training, scheduled refreshes on Celery workers, and the model catalogue."


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        celery = create_celery(settings)
        broker = create_redis(settings, url=settings.celery_broker_url)

        def workers_alive() -> None:
            replies = celery.control.ping(timeout=min(1.0, settings.health_timeout_seconds))
            if not replies:
                raise ConnectionError("no Celery worker answered ping; start one with make up")

        async with open_core_resources(settings, use_redis=False, kafka=False) as core:
            assert core.engine is not None
            app.state.core = core
            app.state.celery = celery
            res = build_resources(settings, core.engine)
            app.state.trainer_service = TrainerService(
                res.catalogue, res.entities, res.planner, celery, settings
            )
            collector = CatalogueCollector(core.engine)
            REGISTRY.register(collector)
            try:
                yield [
                    *core.checks,
                    redis_check(broker, name="celery_broker"),
                    DependencyCheck("celery_workers", workers_alive),
                ]
            finally:
                REGISTRY.unregister(collector)
                broker.close()

    return create_service_app(
        service="trainer",
        settings=settings,
        lifespan=lifespan,
        description=DESCRIPTION,
        routers=[models.router],
    )

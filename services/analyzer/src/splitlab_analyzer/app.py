"""The analyzer service's FastAPI application.

Run: ``uvicorn splitlab_analyzer.app:create_app --factory``. Ingestion runs as its own process
(``splitlab-analyzer-consumer``, see :mod:`splitlab_analyzer.consumer`).

The lifespan builds the engine, Redis (results cache), the repositories, the results service,
the assignment-service client and the periodic refresh of running experiments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.connections import create_celery_client
from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings, load_settings
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources
from splitlab.web.state import install_state
from splitlab_analyzer import telemetry
from splitlab_analyzer.api import features, holdout, metrics, results
from splitlab_analyzer.api.synthetic_control import router as synthetic_control_router
from splitlab_analyzer.assignment_client import AssignmentClient
from splitlab_analyzer.console import routes as console
from splitlab_analyzer.console.access import session_options, session_secret
from splitlab_analyzer.console.pages import ConsolePages
from splitlab_analyzer.console.uploads import UploadStore
from splitlab_analyzer.deps import AnalyzerState
from splitlab_analyzer.repository import (
    ActionRepository,
    CupacRepository,
    ExperimentRepository,
    FeatureRepository,
    MetricRepository,
)
from splitlab_analyzer.results.cache import ResultsCache
from splitlab_analyzer.results.holdout import HoldoutService
from splitlab_analyzer.results.repository import HistoryRepository
from splitlab_analyzer.results.repository.holdout import HoldoutRepository
from splitlab_analyzer.results.service import ResultsService
from splitlab_analyzer.rollups.store import RollupStore
from splitlab_analyzer.service.automation import Automation
from splitlab_analyzer.service.training import TrainingRequests

logger = logging.getLogger(__name__)
UPLOAD_PURGE_SECONDS = 3600.0
"""The longest wait between purges of expired uploads."""

DESCRIPTION = (
    "Turns the event stream into results: variance-reduced "
    "tests, SRM, guardrails, Prometheus gauges."
)


def create_app(
    settings: Settings | None = None, *, assignment_http: httpx.Client | None = None
) -> FastAPI:
    """``assignment_http`` is the HTTP client to the assignment service (tests: in-process)."""
    settings = settings or load_settings()
    uploads = UploadStore(
        settings.upload_dir,
        settings.console_upload_max_bytes,
        settings.console_upload_retention_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with open_core_resources(settings) as core:
            assert core.engine is not None
            assert core.sessions is not None
            metric_repository = MetricRepository(core.sessions)
            cupac = CupacRepository(core.engine)
            service = ResultsService(
                core.engine,
                ExperimentRepository(core.sessions),
                metric_repository,
                cupac,
                fallback_share_threshold=settings.analyzer_fallback_share_threshold,
            )
            history = HistoryRepository(core.sessions)
            actions = ActionRepository(core.sessions)
            own_key = settings.analyzer_api_key or settings.admin_api_key
            assignment = AssignmentClient(
                settings.assignment_url,
                own_key.get_secret_value() if own_key else None,
                client=assignment_http,
            )
            automation = Automation(
                service,
                ResultsCache(core.redis, settings.analyzer_results_ttl_seconds),
                actions,
                assignment,
                history,
            )
            celery = create_celery_client(settings)
            holdout_service = HoldoutService(
                HoldoutRepository(core.engine),
                metric_repository,
                HoldoutConfig(share=settings.holdout_share, seed=settings.holdout_seed),
            )
            install_state(
                app,
                AnalyzerState(
                    settings=settings,
                    core=core,
                    metrics=metric_repository,
                    features=FeatureRepository(core.engine),
                    actions=actions,
                    history=history,
                    automation=automation,
                    training_requests=TrainingRequests(service, celery, settings),
                    holdout=holdout_service,
                    console_pages=ConsolePages(
                        assignment, automation, history, holdout_service, metric_repository
                    ),
                    upload_store=uploads,
                    celery=celery,
                ),
            )
            jobs: dict[str, tuple[float, Callable[[], object]]] = {
                "periodic refresh": (
                    settings.analyzer_refresh_interval_seconds,
                    lambda: _refresh(automation),
                ),
                "results snapshot": (
                    settings.analyzer_history_interval_seconds,
                    automation.snapshot_pass,
                ),
                "guardrail pass": (
                    settings.analyzer_guardrail_interval_seconds,
                    automation.check_guardrails,
                ),
                "upload purge": (
                    min(settings.console_upload_retention_seconds, UPLOAD_PURGE_SECONDS),
                    uploads.purge,
                ),
                "rollup catch-up": (
                    settings.analyzer_rollup_catch_up_seconds,
                    lambda: _catch_up(service.rollups),
                ),
            }
            telemetry.alert_min_units(settings.analyzer_alert_min_units)
            started = time.time()
            passes = {
                "full": settings.analyzer_refresh_interval_seconds,
                "guardrails": settings.analyzer_guardrail_interval_seconds,
            }
            for pass_, seconds in passes.items():
                if seconds > 0:  # a pass that never completes shows as stalled
                    telemetry.pass_started(pass_, seconds, started)
            background = [
                asyncio.create_task(_periodically(seconds, what, work))
                for what, (seconds, work) in jobs.items()
                if seconds > 0
            ]
            try:
                yield core.checks
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                assignment.close()

    app = create_service_app(
        service="analyzer",
        settings=settings,
        lifespan=lifespan,
        description=DESCRIPTION,
        routers=[
            metrics.router,
            features.router,
            results.router,
            holdout.router,
            synthetic_control_router,
            console.router,
        ],
        # The multipart envelope around the file is a few hundred bytes; 64 KiB covers it.
        body_limits={"/ui/uploads": settings.console_upload_max_bytes + 64 * 1024},
    )
    secret = session_secret(settings)
    if secret is not None:  # else the console's login page says how to turn it on
        app.add_middleware(SessionMiddleware, **session_options(settings, secret))
    return app


async def _periodically(seconds: float, what: str, work: Callable[[], object]) -> None:
    """Run ``work`` in a worker thread every ``seconds`` until cancelled; a failure is logged
    and the next round goes ahead."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(work)
        except Exception:
            logger.exception("%s failed", what)


def _refresh(automation: Automation) -> None:
    count = automation.refresh_running()
    logger.info("periodic refresh", extra={"experiments": count})


def _catch_up(rollups: RollupStore) -> None:
    caught = rollups.catch_up()
    if caught.failed:
        logger.warning("rollup catch-up failed for some experiments",
                       extra={"experiments": list(caught.failed)})  # fmt: skip
    if caught.units:
        logger.info(
            "rollups caught up",
            extra={"units": caught.units, "seconds": round(caught.seconds, 3)},
        )

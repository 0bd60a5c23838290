"""The router service's FastAPI application.

Run: ``uvicorn splitlab_router.app:create_app --factory``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI

from splitlab.health import DependencyCheck
from splitlab.settings import Settings, load_settings
from splitlab.web.app import create_service_app
from splitlab.web.resources import open_core_resources

DESCRIPTION = (
    "Routes prediction requests to the unit's model variant "
    "(/predict) and takes outcomes (/outcomes)."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        async with open_core_resources(settings) as core:
            app.state.core = core
            yield core.checks

    return create_service_app(
        service="router", settings=settings, lifespan=lifespan, description=DESCRIPTION
    )

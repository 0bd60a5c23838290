"""FastAPI dependencies of the router: its typed state and the ``Annotated`` aliases routes
declare (bearer-key checks are shared: ``splitlab.web.auth``).

The lifespan stores one ``RouterState`` (``splitlab.web.state.install_state``); routes read it
through ``state(request)`` (the lean ``/predict`` route calls it directly) or the aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.runtime import EventSink
from splitlab.platform.settings import Settings
from splitlab.web.auth import require_admin, require_caller, require_reader
from splitlab.web.resources import CoreResources
from splitlab.web.state import state_of
from splitlab_router.service.models import ModelCatalog, ModelRegistry
from splitlab_router.service.outcomes import OutcomeService
from splitlab_router.service.predict import PredictionService


@dataclass(frozen=True, slots=True)
class RouterState:
    """What the lifespan builds for the routes."""

    settings: Settings
    core: CoreResources
    cache: ExperimentCache
    catalog: ModelCatalog
    publisher: EventSink
    predictor: PredictionService
    outcomes: OutcomeService
    models: ModelRegistry


def state(request: Request) -> RouterState:
    return state_of(request, RouterState)


async def get_outcomes(request: Request) -> OutcomeService:
    return state(request).outcomes


def get_models(request: Request) -> ModelRegistry:
    return state(request).models


Outcomes = Annotated[OutcomeService, Depends(get_outcomes)]
Models = Annotated[ModelRegistry, Depends(get_models)]
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
Caller = Depends(require_caller)

"""FastAPI dependencies of the router, as ``Annotated`` aliases (bearer-key checks are shared:
``splitlab.web.auth``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from splitlab.web.auth import require_admin, require_caller, require_reader
from splitlab_router.outcomes import OutcomeService
from splitlab_router.predictor import PredictionService
from splitlab_router.registry import ModelRegistry


def get_predictor(request: Request) -> PredictionService:
    """Called by the lean ``/predict`` route directly (no ``Depends``)."""
    predictor: PredictionService = request.app.state.predictor
    return predictor


async def get_outcomes(request: Request) -> OutcomeService:
    outcomes: OutcomeService = request.app.state.outcomes
    return outcomes


def get_models(request: Request) -> ModelRegistry:
    models: ModelRegistry = request.app.state.models
    return models


Outcomes = Annotated[OutcomeService, Depends(get_outcomes)]
Models = Annotated[ModelRegistry, Depends(get_models)]
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
Caller = Depends(require_caller)

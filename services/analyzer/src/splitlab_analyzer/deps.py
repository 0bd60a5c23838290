"""FastAPI dependencies of the analyzer: its typed state and the ``Annotated`` aliases routes
declare.

The lifespan stores one ``AnalyzerState`` (``splitlab.web.state.install_state``); routes and
the console read it through ``state(request)`` or the aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request

from splitlab.platform.settings import Settings
from splitlab.web.auth import require_admin, require_compute, require_reader
from splitlab.web.resources import CoreResources
from splitlab.web.state import state_of
from splitlab_analyzer.console.pages import ConsolePages
from splitlab_analyzer.console.uploads import UploadStore
from splitlab_analyzer.repository import ActionRepository, FeatureRepository, MetricRepository
from splitlab_analyzer.results.holdout import HoldoutService
from splitlab_analyzer.results.repository import HistoryRepository
from splitlab_analyzer.service.automation import Automation
from splitlab_analyzer.service.training import TrainingRequests


@dataclass(frozen=True, slots=True)
class AnalyzerState:
    """What the lifespan builds for the routes and the console."""

    settings: Settings
    core: CoreResources
    metrics: MetricRepository
    features: FeatureRepository
    actions: ActionRepository
    history: HistoryRepository
    holdout: HoldoutService
    automation: Automation
    training_requests: TrainingRequests
    console_pages: ConsolePages
    upload_store: UploadStore
    celery: Celery


def state(request: Request) -> AnalyzerState:
    return state_of(request, AnalyzerState)


def get_metrics(request: Request) -> MetricRepository:
    return state(request).metrics


def get_features(request: Request) -> FeatureRepository:
    return state(request).features


def get_actions(request: Request) -> ActionRepository:
    return state(request).actions


def get_automation(request: Request) -> Automation:
    return state(request).automation


def get_training_requests(request: Request) -> TrainingRequests:
    return state(request).training_requests


def get_history(request: Request) -> HistoryRepository:
    return state(request).history


def get_holdout(request: Request) -> HoldoutService:
    return state(request).holdout


Metrics = Annotated[MetricRepository, Depends(get_metrics)]
Features = Annotated[FeatureRepository, Depends(get_features)]
Actions = Annotated[ActionRepository, Depends(get_actions)]
AutomationDep = Annotated[Automation, Depends(get_automation)]
Trainings = Annotated[TrainingRequests, Depends(get_training_requests)]
History = Annotated[HistoryRepository, Depends(get_history)]
Holdout = Annotated[HoldoutService, Depends(get_holdout)]
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
Compute = Depends(require_compute)

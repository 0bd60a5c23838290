"""FastAPI dependencies of the analyzer, as ``Annotated`` aliases over ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from splitlab.web.auth import require_admin, require_compute, require_reader
from splitlab_analyzer.automation import Automation
from splitlab_analyzer.repositories import ActionRepository, FeatureRepository, MetricRepository
from splitlab_analyzer.results.repository import HistoryRepository
from splitlab_analyzer.training_requests import TrainingRequests

T = TypeVar("T")


def from_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency returning ``app.state.<name>``, checked to be a ``kind`` (set at startup)."""

    def get(request: Request) -> T:
        value = getattr(request.app.state, name)
        assert isinstance(value, kind), f"app.state.{name} is not a {kind.__name__}"
        return value

    return get


Metrics = Annotated[MetricRepository, Depends(from_state("metric_repository", MetricRepository))]
Features = Annotated[
    FeatureRepository, Depends(from_state("feature_repository", FeatureRepository))
]
Actions = Annotated[ActionRepository, Depends(from_state("action_repository", ActionRepository))]
AutomationDep = Annotated[Automation, Depends(from_state("automation", Automation))]
Trainings = Annotated[TrainingRequests, Depends(from_state("training_requests", TrainingRequests))]
History = Annotated[HistoryRepository, Depends(from_state("history", HistoryRepository))]
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
Compute = Depends(require_compute)

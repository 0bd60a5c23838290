"""FastAPI dependencies of the analyzer, as ``Annotated`` aliases over ``app.state``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from splitlab.settings import Settings
from splitlab.web.errors import ForbiddenError, UnauthorizedError
from splitlab_analyzer.automation import Automation
from splitlab_analyzer.cupac_fill import CupacFiller
from splitlab_analyzer.repositories import ActionRepository, FeatureRepository, MetricRepository


def _state(request: Request, name: str) -> object:
    return getattr(request.app.state, name)


def get_metrics(request: Request) -> MetricRepository:
    value = _state(request, "metric_repository")
    assert isinstance(value, MetricRepository)
    return value


def get_features(request: Request) -> FeatureRepository:
    value = _state(request, "feature_repository")
    assert isinstance(value, FeatureRepository)
    return value


def get_actions(request: Request) -> ActionRepository:
    value = _state(request, "action_repository")
    assert isinstance(value, ActionRepository)
    return value


def get_automation(request: Request) -> Automation:
    value = _state(request, "automation")
    assert isinstance(value, Automation)
    return value


def get_cupac(request: Request) -> CupacFiller:
    value = _state(request, "cupac_filler")
    assert isinstance(value, CupacFiller)
    return value


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    settings: Settings = request.app.state.settings
    if settings.admin_api_key is None:
        raise UnauthorizedError(
            "admin endpoints are disabled: no admin key is configured; set SPLITLAB_ADMIN_API_KEY "
            "and send it as 'Authorization: Bearer <key>'"
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(
            "missing admin key: send 'Authorization: Bearer <SPLITLAB_ADMIN_API_KEY>'"
        )
    expected = settings.admin_api_key.get_secret_value().encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise ForbiddenError("the admin key is not valid")


Metrics = Annotated[MetricRepository, Depends(get_metrics)]
Features = Annotated[FeatureRepository, Depends(get_features)]
Actions = Annotated[ActionRepository, Depends(get_actions)]
AutomationDep = Annotated[Automation, Depends(get_automation)]
Cupac = Annotated[CupacFiller, Depends(get_cupac)]
AdminOnly = Depends(require_admin)

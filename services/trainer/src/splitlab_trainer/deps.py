"""FastAPI dependencies of the trainer: its typed state and the ``Annotated`` aliases routes
declare.

The lifespan stores one ``TrainerState`` (``splitlab.web.state.install_state``); routes read it
through ``state(request)`` or the aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request

from splitlab.web.auth import require_admin
from splitlab.web.resources import CoreResources
from splitlab.web.state import state_of
from splitlab_trainer.service import TrainerService


@dataclass(frozen=True, slots=True)
class TrainerState:
    """What the lifespan builds for the routes."""

    core: CoreResources
    celery: Celery
    service: TrainerService


def state(request: Request) -> TrainerState:
    return state_of(request, TrainerState)


def get_service(request: Request) -> TrainerService:
    return state(request).service


Service = Annotated[TrainerService, Depends(get_service)]
AdminOnly = Depends(require_admin)

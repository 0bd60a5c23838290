"""FastAPI dependencies of the trainer, as ``Annotated`` aliases over ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from splitlab.web.auth import require_admin
from splitlab_trainer.service import TrainerService


def _service(request: Request) -> TrainerService:
    value = request.app.state.trainer_service
    assert isinstance(value, TrainerService), "app.state.trainer_service is not set"
    return value


Service = Annotated[TrainerService, Depends(_service)]
AdminOnly = Depends(require_admin)

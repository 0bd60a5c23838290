"""Names of the trainer's Celery tasks: the contract between the trainer, which defines them,
and the services that send them by name through the broker (services never import each
other). ``send_training`` is how a service asks for a training."""

from __future__ import annotations

from typing import Any

from splitlab.platform.settings import Settings

TRAIN_TASK = "splitlab.trainer.train_cupac"
"""``train_cupac(experiment_key, metric=None, model_ids=None)``: fit an experiment's CUPAC
models (every metric with covariates when ``metric`` is None) and switch its predictions."""
SCHEDULE_TASK = "splitlab.trainer.schedule"
"""Beat's task: enqueue the trainings that are due."""
PROBE_TASK = "splitlab.trainer.probe"

__all__ = ["PROBE_TASK", "SCHEDULE_TASK", "TRAIN_TASK", "send_training"]


def send_training(celery: Any, settings: Settings, experiment_key: str, metric: str | None) -> str:
    """Enqueue a training on the trainer's queue; the task id."""
    result = celery.send_task(
        TRAIN_TASK,
        kwargs={"experiment_key": experiment_key, "metric": metric},
        queue=settings.trainer_queue,
    )
    return str(result.id)

"""Trainer tasks (thin: they translate Celery calls into :class:`~splitlab_trainer.training.
Trainer` and :class:`~splitlab_trainer.planner.Planner` calls).

- ``splitlab.trainer.train_cupac(experiment_key, metric=None, model_ids=None)``: fit and
  publish; without ``model_ids`` (the analyzer's request) it first queues one training per
  metric with covariates, remembered under the task id so a re-delivered task resumes the same
  rows instead of queueing new ones.
- ``splitlab.trainer.schedule()``: beat's look for due trainings.
- ``splitlab.trainer.probe(token)``: a round trip through the task pipeline for ``/readyz``.

A training past the soft time limit, or one that raises, fails with the reason in the catalogue
and is not retried;
a worker killed mid-training leaves its rows running and the task is delivered again
(``task_reject_on_worker_lost``), which runs them again.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from splitlab.platform.training import PROBE_TASK, SCHEDULE_TASK, TRAIN_TASK
from splitlab_trainer.resources import resources_for


@shared_task(name=PROBE_TASK)
def probe(token: str) -> dict[str, Any]:
    """Echo ``token`` with the worker's identity: proves a real worker executed the task."""
    return {"token": token, "hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name=TRAIN_TASK, bind=True)
def train_cupac(
    self: Task,
    experiment_key: str,
    metric: str | None = None,
    model_ids: list[int] | None = None,
) -> dict[str, Any]:
    res = resources_for(self.app)
    if model_ids is None:
        model_ids = res.planner.rows_of_task(str(self.request.id), experiment_key, metric)
    try:
        return res.trainings.run_many(model_ids)
    except SoftTimeLimitExceeded:
        limit = res.settings.trainer_soft_time_limit_seconds
        res.catalogue.fail(
            model_ids,
            f"time limit: the training ran past SPLITLAB_TRAINER_SOFT_TIME_LIMIT_SECONDS "
            f"({limit:g} s) and was stopped; raise the limit or lower the time budget",
        )
        raise
    except Exception as exc:
        # Anything else (a lost database connection, a bug): failed with the reason, so the
        # catalogue never shows a running training that no worker runs.
        res.catalogue.fail(model_ids, f"error: {type(exc).__name__}: {exc}"[:2000])
        raise


@shared_task(name=SCHEDULE_TASK, bind=True)
def schedule(self: Task) -> dict[str, Any]:
    res = resources_for(self.app)
    return res.planner.enqueue_due(lambda kwargs: train_cupac.apply_async(kwargs=kwargs).id)

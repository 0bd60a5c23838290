"""The trainer's Celery application, configured for long ML tasks.

``create_celery(settings)`` builds it; the worker and beat processes import
``splitlab_trainer.worker``, their entry point, which calls it once. Settings follow the field
notes: late acks with rejection on worker loss (a killed worker's task is redelivered), prefetch
of one, a Redis visibility timeout longer than the longest task (a task whose whole worker
vanished comes back after it), soft and hard time limits, and one task per child process
(model memory is released, and the child's peak memory is the training's). Beat sends
``splitlab.trainer.schedule`` every ``SPLITLAB_TRAINER_SCHEDULE_SECONDS``.
"""

from __future__ import annotations

from celery import Celery

from splitlab.platform.settings import Settings
from splitlab.platform.training import SCHEDULE_TASK


def create_celery(settings: Settings) -> Celery:
    app = Celery(
        "splitlab_trainer",
        broker=settings.celery_broker_url,
        backend=settings.celery_result_backend,
        include=["splitlab_trainer.tasks", "splitlab_trainer.console_tasks"],
    )
    visibility = int(settings.trainer_visibility_timeout_seconds)
    app.conf.update(
        task_default_queue=settings.trainer_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        task_soft_time_limit=settings.trainer_soft_time_limit_seconds,
        task_time_limit=settings.trainer_time_limit_seconds,
        broker_transport_options={"visibility_timeout": visibility},
        result_backend_transport_options={"visibility_timeout": visibility},
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_track_started=True,
        beat_schedule={
            "cupac-schedule": {
                "task": SCHEDULE_TASK,
                "schedule": settings.trainer_schedule_seconds,
                "options": {"expires": settings.trainer_schedule_seconds},
            }
        },
    )
    app.splitlab_settings = settings
    return app

"""The trainer's Celery application, configured for long ML tasks.

``create_celery(settings)`` builds it; the worker process imports ``splitlab_trainer.worker``,
its entry point, which calls it once. Settings follow the field notes: late acks with rejection
on worker loss (a killed worker's task is redelivered), prefetch of one, a Redis visibility
timeout longer than the longest task, time limits, and recycled children to release model memory.
"""

from __future__ import annotations

from celery import Celery

from splitlab.settings import Settings

# The longest task SplitLab runs (CUPAC on 1M units) takes minutes, not hours.
TASK_SOFT_TIME_LIMIT_S = 30 * 60
TASK_TIME_LIMIT_S = 35 * 60
VISIBILITY_TIMEOUT_S = 2 * 60 * 60


def create_celery(settings: Settings) -> Celery:
    app = Celery(
        "splitlab_trainer",
        broker=settings.celery_broker_url,
        backend=settings.celery_result_backend,
        include=["splitlab_trainer.tasks", "splitlab_trainer.console_tasks"],
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=20,
        task_soft_time_limit=TASK_SOFT_TIME_LIMIT_S,
        task_time_limit=TASK_TIME_LIMIT_S,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_track_started=True,
    )
    return app

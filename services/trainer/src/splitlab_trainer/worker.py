"""Entry point of the Celery worker and beat processes:

    celery -A splitlab_trainer.worker worker -P prefork -c 1
    celery -A splitlab_trainer.worker beat

This module is the process's main: it reads the settings and builds the app once, here.
"""

from __future__ import annotations

from splitlab.platform.settings import load_settings
from splitlab.platform.telemetry.logs import configure_logging
from splitlab_trainer.celery_app import create_celery

settings = load_settings()
configure_logging("trainer-worker", settings.log_level, settings.log_format)
app = create_celery(settings)

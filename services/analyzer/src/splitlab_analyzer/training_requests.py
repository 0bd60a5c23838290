"""Asking the trainer for a CUPAC training: the analyzer sends ``train_cupac`` by name through
Celery's broker (``splitlab.platform.training``); it fits nothing itself and imports no trainer
code."""

from __future__ import annotations

from typing import Any

from splitlab.platform.settings import Settings
from splitlab.platform.training import send_training
from splitlab_analyzer.results.service import ResultsService


class TrainingRequests:
    def __init__(self, results: ResultsService, celery: Any, settings: Settings) -> None:
        self.results = results
        self.celery = celery
        self.settings = settings

    def enqueue(self, key: str, metric: str | None = None) -> str:
        """The task id of a training of the experiment's metrics (404 for an unknown key)."""
        self.results.experiment(key)
        return send_training(self.celery, self.settings, key, metric)

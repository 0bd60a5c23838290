"""Queueing trainings: what beat finds due, what a caller asks for (``POST /train``, the
analyzer's ``POST /experiments/{key}/cupac``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from splitlab.platform.errors import InvalidInputError, NotFoundError
from splitlab.platform.settings import Settings
from splitlab_trainer.definitions import MetricSpec
from splitlab_trainer.repository import (
    CatalogueRepository,
    EntityRepository,
    EntitySpec,
    ExperimentReader,
    ExperimentRef,
)
from splitlab_trainer.scheduling import KINDS, History, due_kinds
from splitlab_trainer.training import MIN_UNITS, entity_for, model_features

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], str]
"""Sends ``train_cupac`` with these keyword arguments; the task id."""


class Planner:
    def __init__(
        self,
        catalogue: CatalogueRepository,
        experiments: ExperimentReader,
        entities: EntityRepository,
        settings: Settings,
    ) -> None:
        self.catalogue = catalogue
        self.experiments = experiments
        self.entities = entities
        self.settings = settings

    def trainable_metrics(
        self, experiment: ExperimentRef, entity: EntitySpec
    ) -> dict[str, MetricSpec]:
        """The experiment's plain metrics that have covariates (pre-period or features)."""
        found = self.experiments.metrics(experiment.metric_names)
        return {
            name: spec
            for name, spec in found.items()
            if spec.pre_period_days > 0 or model_features(spec, entity)
        }

    def request(self, experiment_key: str, metric: str | None, task_id: str = "") -> list[int]:
        """Queue one training (both kinds) per metric, or of ``metric``; the model ids."""
        experiment = self.experiments.get(experiment_key)
        if experiment is None:
            raise NotFoundError(
                f"no experiment with key {experiment_key!r}", field="experiment_key"
            )
        entity = entity_for(experiment_key, self.entities, self.settings)
        metrics = self.trainable_metrics(experiment, entity)
        if metric is not None:
            if metric not in metrics:
                raise InvalidInputError(
                    f"metric {metric!r} is not a plain metric of {experiment_key!r} with "
                    f"covariates; trainable: {sorted(metrics)}",
                    field="metric",
                )
            metrics = {metric: metrics[metric]}
        if not metrics:
            raise InvalidInputError(
                f"experiment {experiment_key!r} has no plain metric with covariates (a "
                "pre-period or features); nothing to train",
                field="experiment_key",
            )
        every = {kind: entity.every(kind) for kind in KINDS}
        ids: list[int] = []
        for name in metrics:
            ids += self.catalogue.enqueue(entity.name, experiment_key, name, KINDS, every)
        if task_id:
            self.catalogue.set_task(ids, task_id)
        return ids

    def rows_of_task(self, task_id: str, experiment_key: str, metric: str | None) -> list[int]:
        """The rows a task queued on its first delivery, else new ones (first delivery)."""
        existing = self.catalogue.task_rows(task_id)
        if existing:
            return existing
        try:
            return self.request(experiment_key, metric, task_id)
        except (NotFoundError, InvalidInputError) as exc:
            logger.warning("training request refused: %s", exc.message)
            return []

    def fail_abandoned(self, now: datetime) -> int:
        """Trainings queued or running longer than a worker could hold them (hard time limit
        plus the visibility timeout) lost their task; mark them failed so the pair trains
        again."""
        limit = (
            self.settings.trainer_time_limit_seconds
            + self.settings.trainer_visibility_timeout_seconds
        )
        return self.catalogue.fail_queued_before(
            now - timedelta(seconds=limit),
            f"abandoned: no worker finished it within {limit:g} s of queueing",
            now,
        )

    def enqueue_due(self, send: Send, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        abandoned = self.fail_abandoned(now)
        experiments = self.experiments.trainable()
        units = self.experiments.unit_counts([e.key for e in experiments])
        active = self.catalogue.active()
        history = self.catalogue.histories()
        queued: list[dict[str, Any]] = []
        for experiment in experiments:
            count = units.get(experiment.key, 0)
            if count < MIN_UNITS:
                continue
            entity = entity_for(experiment.key, self.entities, self.settings)
            every = {kind: entity.every(kind) for kind in KINDS}
            for metric in self.trainable_metrics(experiment, entity):
                if (experiment.key, metric) in active:
                    continue
                past = {
                    kind: history.get((experiment.key, metric, kind), History(None, None))
                    for kind in KINDS
                }
                kinds = due_kinds(now, experiment.status, experiment.stopped_at, count, every, past)
                if not kinds:
                    continue
                ids = self.catalogue.enqueue(entity.name, experiment.key, metric, kinds, every)
                kwargs = {"experiment_key": experiment.key, "metric": metric, "model_ids": ids}
                task_id = send(kwargs)
                self.catalogue.set_task(ids, task_id)
                queued.append({"experiment_key": experiment.key, "metric": metric, "kinds": kinds})
        return {"queued": queued, "abandoned": abandoned}

"""What the trainer's API does: read the catalogue, queue trainings, keep entities."""

from __future__ import annotations

from typing import Any

from splitlab.platform.errors import NotFoundError
from splitlab.platform.settings import Settings
from splitlab.platform.training import TRAIN_TASK
from splitlab_trainer.planner import Planner
from splitlab_trainer.repository import CatalogueRepository, EntityRepository
from splitlab_trainer.schemas import (
    EntityList,
    EntityPut,
    EntityRead,
    ModelList,
    ModelRead,
    TrainAccepted,
    TrainRequest,
)


class TrainerService:
    def __init__(
        self,
        catalogue: CatalogueRepository,
        entities: EntityRepository,
        planner: Planner,
        celery: Any,
        settings: Settings,
    ) -> None:
        self.catalogue = catalogue
        self.entities = entities
        self.planner = planner
        self.celery = celery
        self.settings = settings

    def models(self, **filters: Any) -> ModelList:
        return ModelList(models=[ModelRead.of(r) for r in self.catalogue.search(**filters)])

    def model(self, model_id: int) -> ModelRead:
        row = self.catalogue.get(model_id)
        if row is None:
            raise NotFoundError(
                f"no model with id {model_id}; list them with GET /models", field="id"
            )
        return ModelRead.of(row)

    def train(self, body: TrainRequest) -> TrainAccepted:
        """Queue the rows first (the catalogue shows them queued at once), then the task."""
        ids = self.planner.request(body.experiment_key, body.metric)
        result = self.celery.send_task(
            TRAIN_TASK,
            kwargs={"experiment_key": body.experiment_key, "metric": body.metric, "model_ids": ids},
            queue=self.settings.trainer_queue,
        )
        self.catalogue.set_task(ids, str(result.id))
        return TrainAccepted(task_id=str(result.id), model_ids=ids)

    def entity_list(self) -> EntityList:
        return EntityList(entities=[EntityRead.of(r) for r in self.entities.all()])

    def entity(self, name: str) -> EntityRead:
        row = self.entities.get(name)
        if row is None:
            raise NotFoundError(
                f"no entity named {name!r}; create it with PUT /entities/{name}", field="name"
            )
        return EntityRead.of(row)

    def put_entity(self, name: str, body: EntityPut) -> EntityRead:
        return EntityRead.of(self.entities.put(name, body.model_dump()))

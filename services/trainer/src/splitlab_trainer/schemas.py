"""HTTP schemas of the trainer. Models (the catalogue): ``ModelRead``, ``ModelList``.
Trainings: ``TrainRequest`` (POST /train), ``TrainAccepted``. Entities: ``EntityPut``
(PUT /entities/{name}), ``EntityRead``, ``EntityList``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from splitlab.contracts.names import KEY_PATTERN, METRIC_PATTERN
from splitlab.platform.storage.models import TrainedModel, TrainingEntity

ExperimentKey = Annotated[str, Field(pattern=KEY_PATTERN, examples=["ranker-v3"])]
MetricName = Annotated[str, Field(pattern=METRIC_PATTERN, examples=["revenue"])]
Kind = Literal["in_experiment", "pre_experiment"]
Status = Literal["queued", "running", "done", "failed"]
Family = Literal["linear", "gradient_boosting"]


def _all_families() -> list[Family]:
    return ["linear", "gradient_boosting"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRead(BaseModel):
    """One catalogue row: a training of one model kind for an experiment's metric; ``id`` is
    the model version the analyzer names."""

    id: int
    entity: str
    experiment_key: str
    metric: str
    kind: Kind
    status: Status
    progress: float = Field(description="Percent done while running (100 when finished).")
    error: str | None
    task_id: str | None
    attempts: int = Field(description="Times a worker started it (more than 1: redelivered).")
    family: str | None = Field(description="The model family chosen: linear or gradient_boosting.")
    params: dict[str, Any]
    features: list[str]
    rows: int | None = Field(description="Units the model was fitted on.")
    r2: float | None = Field(
        description="Out-of-fold R^2 (in-experiment) or R^2 on the experiment's units "
        "(pre-experiment)."
    )
    r2_candidates: dict[str, Any]
    notes: list[str]
    duration_seconds: float | None
    peak_memory_bytes: int | None
    schedule_seconds: float
    cutoff_at: datetime | None
    predicted_units: int | None
    experiment_units: int | None
    in_use: bool = Field(description="True for the version whose predictions the analyzer uses.")
    queued_at: datetime
    started_at: datetime | None
    trained_at: datetime | None

    @classmethod
    def of(cls, row: TrainedModel) -> ModelRead:
        return cls.model_validate(
            {name: getattr(row, name) for name in cls.model_fields}, from_attributes=False
        )


class ModelList(BaseModel):
    models: list[ModelRead]


class TrainRequest(_Strict):
    experiment_key: ExperimentKey
    metric: MetricName | None = Field(
        default=None, description="One metric; omitted: every metric with covariates."
    )


class TrainAccepted(BaseModel):
    task_id: str
    model_ids: list[int]


class EntityPut(_Strict):
    description: str = Field(default="", max_length=2000)
    experiments: list[ExperimentKey] = Field(
        default_factory=list, description="Experiment keys that belong to this entity."
    )
    features: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, description="unit_features names every metric's model also uses."
    )
    families: list[Family] = Field(default_factory=_all_families, min_length=1)
    in_experiment_every_seconds: float = Field(default=900.0, ge=1)
    pre_experiment_every_seconds: float = Field(default=900.0, ge=1)
    history_days: float = Field(default=7.0, gt=0)


class EntityRead(EntityPut):
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: TrainingEntity) -> EntityRead:
        return cls.model_validate({name: getattr(row, name) for name in cls.model_fields})


class EntityList(BaseModel):
    entities: list[EntityRead]

"""HTTP schemas of the router: one family per resource.

Models: ``ModelCreate`` (POST /models), ``ModelRead``, ``ModelList``. Predictions:
``PredictRequest`` / ``PredictResponse``. Outcomes: ``OutcomeIn`` (one) or ``OutcomeBatch``
(``{outcomes: [...]}``), answered by ``OutcomesAccepted``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from splitlab.contracts.names import KEY_PATTERN
from splitlab.contracts.times import UtcDatetime
from splitlab.contracts.values import BoundedValue
from splitlab.core.errors import ArgumentError

ModelName = Annotated[str, Field(pattern=KEY_PATTERN, examples=["ranker"])]
ModelVersion = Annotated[str, Field(pattern=KEY_PATTERN, examples=["3"])]
UnitId = Annotated[str, Field(min_length=1, max_length=256, examples=["user-42"])]
FeatureType = Literal["float", "int", "bool", "str"]
Flavor = Literal["sklearn", "http"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    type: FeatureType = "float"


class ModelCreate(_Strict):
    name: ModelName
    version: ModelVersion
    flavor: Flavor
    artifact: str | None = Field(
        default=None,
        max_length=1024,
        description="sklearn: a .skops or .joblib file, relative to the model store folder; "
        "with an uploaded file, its name (default: the uploaded file's name).",
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="http: the model server's prediction URL.",
    )
    timeout_ms: int | None = Field(
        default=None, ge=1, le=60_000, description="Time limit of one call (default: setting)."
    )
    input_schema: list[FeatureSpec] = Field(min_length=1, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Uploads: the file's sha256 as the sender computed it; a file that "
        "differs is refused (422).",
    )

    @model_validator(mode="after")
    def _flavor_fields(self) -> ModelCreate:
        if self.flavor == "sklearn" and not self.artifact:
            raise ArgumentError(
                "artifact", "artifact: a sklearn model needs its file in the model store"
            )
        if self.flavor == "http" and not self.url:
            raise ArgumentError("url", "url: an http model needs its server's URL")
        names = [f.name for f in self.input_schema]
        if len(set(names)) != len(names):
            raise ArgumentError("input_schema", "input_schema: feature names must be unique")
        return self


class ModelRead(BaseModel):
    name: str
    version: str
    ref: str = Field(description="What an experiment variant's `model` names: `name:version`.")
    flavor: Flavor
    artifact: str | None
    sha256: str | None
    url: str | None
    timeout_ms: int
    input_schema: list[FeatureSpec]
    metadata: dict[str, Any]
    created_at: datetime
    loaded: bool = Field(description="This replica holds the model ready to serve.")


class ModelList(BaseModel):
    models: list[ModelRead]


class PredictRequest(_Strict):
    unit_id: UnitId
    experiment_key: str = Field(min_length=1, max_length=128)
    features: dict[str, Any]
    attributes: dict[str, Any] | None = None


class PredictResponse(BaseModel):
    request_id: str
    prediction: Any
    probabilities: dict[str, float] | None = None
    variant: str
    model_name: str
    model_version: str
    fallback: bool
    in_experiment: bool
    degraded: bool = False
    """True while the sticky store (Redis) is unavailable: the variant came from hashing alone
    and the unit's record was neither read nor stored (as ``degraded`` in ``/assign``)."""


class OutcomeIn(_Strict):
    unit_id: UnitId
    outcome_type: str = Field(min_length=1, max_length=200, examples=["conversion"])
    value: BoundedValue = Field(
        strict=True, description='A JSON number (true or "1.5" are refused, as in /predict).'
    )
    request_id: str | None = Field(default=None, max_length=200)
    event_id: uuid.UUID | None = Field(
        default=None, description="Idempotency key; sending the same id twice records once."
    )
    occurred_at: UtcDatetime | None = Field(
        default=None,
        description="When the outcome happened (RFC 3339 with an offset; default: now). Within "
        "SPLITLAB_ROUTER_OCCURRED_AT_WINDOW_DAYS of now (365 by default).",
    )


class OutcomeBatch(_Strict):
    outcomes: list[OutcomeIn] = Field(min_length=1)


class OutcomesAccepted(BaseModel):
    accepted: int
    event_ids: list[uuid.UUID]

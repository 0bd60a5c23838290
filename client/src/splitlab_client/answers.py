"""What the client answers: typed records of SplitLab's JSON (or of a fallback)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONTROL = "control"
"""The variant a fallback answers."""


@dataclass(frozen=True, slots=True)
class AssignAnswer:
    """The variant of one unit in one experiment (``/assign``)."""

    experiment_key: str
    variant: str
    in_experiment: bool
    """False when the unit is outside the experiment (coverage, targeting, not running, or a
    fallback): it gets ``variant`` (control) but is not counted."""
    reason: str
    """Why this variant: ``hashed``, ``sticky``, ``not_running``, ... or ``fallback``."""
    fallback: bool = False
    """True when SplitLab did not answer: ``variant`` is control, ``error`` says why."""
    error: str | None = None
    sticky: bool = False
    """The variant is held by the unit's sticky record in Redis."""
    bucket_version: int | None = None
    """The experiment's bucket version the answer was computed with; None on a fallback."""
    degraded: bool = False
    """Redis was not consulted (unreachable): the answer comes from hashing alone."""


@dataclass(frozen=True, slots=True)
class BatchAssignAnswer:
    """A unit's variants in every running experiment it is in (``/assign/batch``)."""

    unit_id: str
    assignments: dict[str, AssignAnswer]
    """By experiment key; experiments the unit is not in are absent (unless asked for)."""
    degraded: bool = False
    """Redis was not consulted (unreachable): every answer comes from hashing alone."""
    fallback: bool = False
    """True when SplitLab did not answer: ``assignments`` is empty, ``error`` says why."""
    error: str | None = None

    def variant(self, experiment_key: str) -> str:
        """The unit's variant in ``experiment_key``; control when it is not in it."""
        answer = self.assignments.get(experiment_key)
        return answer.variant if answer is not None else CONTROL


@dataclass(frozen=True, slots=True)
class PredictAnswer:
    """A prediction of the unit's variant's model (``/predict``)."""

    experiment_key: str
    variant: str
    prediction: Any
    probabilities: dict[str, float] | None
    model_name: str | None
    model_version: str | None
    request_id: str | None
    """Attach it to outcomes; None on a client-side fallback (SplitLab did not answer)."""
    fallback: bool
    """True when control answered: the variant's model failed (router) or SplitLab did not
    answer (client, ``prediction`` is the caller's default)."""
    error: str | None = None
    in_experiment: bool = False
    """False when the unit is outside the experiment (it got control's model, not counted)."""
    degraded: bool = False
    """The router's sticky store (Redis) was unavailable: the variant came from hashing alone."""


@dataclass(frozen=True, slots=True)
class Outcome:
    unit_id: str
    outcome_type: str
    value: float
    request_id: str | None = None
    occurred_at: datetime | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "unit_id": self.unit_id,
            "outcome_type": self.outcome_type,
            "value": self.value,
            "event_id": str(self.event_id),
        }
        if self.request_id is not None:
            body["request_id"] = self.request_id
        if self.occurred_at is not None:
            body["occurred_at"] = self.occurred_at.isoformat()
        return body


@dataclass(frozen=True, slots=True)
class OutcomeReceipt:
    event_ids: list[uuid.UUID]
    delivered: bool
    error: str | None = None

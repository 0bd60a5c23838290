"""HTTP schemas of the assignment service: one family per resource.

Experiments: ``ExperimentCreate`` (POST), ``ExperimentUpdate`` (PATCH, every field optional),
``ExperimentRead`` (every answer), ``AuditEntryRead``. Assignment: ``AssignRequest`` /
``AssignResponse`` and ``BatchAssignRequest`` / ``BatchAssignResponse``.

Field-level rules (types, ranges, name syntax) live here; rules across fields (weights summing to
1, duplicate variant keys, targeting syntax, what a started experiment may change) live in the
pure core (``splitlab.core.assignment.decision``, ``splitlab.core.assignment.lifecycle``) and reach
the client as the same 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from splitlab.contracts.names import KEY_PATTERN, METRIC_PATTERN
from splitlab.core.assignment.decision import Reason
from splitlab.core.assignment.lifecycle import Action, ChangeKind, Status

ExperimentKey = Annotated[str, Field(pattern=KEY_PATTERN, examples=["ranker-v3"])]
MetricName = Annotated[str, Field(pattern=METRIC_PATTERN, examples=["conversion"])]
UnitId = Annotated[str, Field(min_length=1, max_length=256, examples=["user-42"])]
Attributes = dict[str, Any]

MAX_SEGMENT_ATTRIBUTES = 20
"""At most this many ``segment_attributes`` per experiment (each one more key in every
exposure the experiment publishes)."""


def _valid_segment_attributes(names: list[str]) -> list[str]:
    """Top-level attribute names, none twice: what an exposure records beside targeting's."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        where = f"segment_attributes[{i}]"
        if "\x00" in name:
            raise ValueError(f"{where}: an attribute name cannot contain NUL; remove it")
        if name.startswith("$"):
            raise ValueError(
                f"{where}: {name!r} starts with '$' (an operator, not an attribute); "
                "name the request attribute without it"
            )
        if "." in name:
            raise ValueError(
                f"{where}: {name!r} names a nested field; name the top-level attribute "
                f"({name.split('.', 1)[0]!r}): an exposure records it whole"
            )
        if name in seen:
            raise ValueError(f"{where}: {name!r} is listed twice; name each attribute once")
        seen.add(name)
    return names


SegmentAttributes = Annotated[
    list[
        Annotated[
            str,
            # The pattern documents the rule; the validator below enforces it with a message
            # naming the fix (pydantic's own would only say "should match pattern").
            Field(
                min_length=1, max_length=128, json_schema_extra={"pattern": r"^[^$.\x00][^.\x00]*$"}
            ),
        ]
    ],
    Field(
        max_length=MAX_SEGMENT_ATTRIBUTES,
        json_schema_extra={"uniqueItems": True},
        description="Request attributes every exposure records when the request carries them, "
        "beside those the targeting reads and the hash attribute: what results can be "
        "segmented by. Top-level names (no '$' prefix, no '.'), at most "
        f"{MAX_SEGMENT_ATTRIBUTES}, none twice. A change applies to exposures from then on.",
        examples=[["country", "platform"]],
    ),
    AfterValidator(_valid_segment_attributes),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSpec(_Strict):
    key: ExperimentKey
    weight: float = Field(ge=0, le=1, allow_inf_nan=False)
    model: str | None = Field(
        default=None, max_length=256, description="Model reference for the router, if any."
    )
    description: str = Field(default="", max_length=2000)


class NamespaceSpec(_Strict):
    """Mutual exclusion: experiments with disjoint ``[start, end)`` slices of one id share no
    unit."""

    id: str = Field(min_length=1, max_length=128)
    start: float = Field(ge=0, le=1, allow_inf_nan=False)
    end: float = Field(ge=0, le=1, allow_inf_nan=False)


class GuardrailSpec(_Strict):
    metric: MetricName
    margin: float = Field(
        ge=0, allow_inf_nan=False, description="Non-inferiority margin (relative)."
    )


class MetricsSpec(_Strict):
    primary: MetricName
    secondary: list[MetricName] = Field(default_factory=list)
    guardrails: list[GuardrailSpec] = Field(default_factory=list)


class _ExperimentFields(_Strict):
    """Fields shared by create and update; the update makes every one optional."""

    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=5000)
    owner: str = Field(default="", max_length=200)
    variants: list[VariantSpec] = Field(json_schema_extra={"minItems": 2})
    coverage: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    hash_seed: str | None = Field(default=None, max_length=256)
    hash_version: int = Field(default=2, ge=1, le=2)
    hash_attribute: str = Field(default="id", min_length=1, max_length=128)
    namespace: NamespaceSpec | None = None
    targeting: dict[str, Any] | None = None
    segment_attributes: SegmentAttributes = Field(default_factory=list)
    metrics: MetricsSpec
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    mde: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    planned_sample_size: int | None = Field(default=None, ge=2)
    auto_stop: bool = False
    bucket_version: int = Field(default=0, ge=0)
    min_bucket_version: int = Field(default=0, ge=0)


class ExperimentCreate(_ExperimentFields):
    key: ExperimentKey


_UPDATE_FORBIDDEN = {
    "key": "an experiment's key never changes; create a new experiment instead",
    "status": "status changes through POST /experiments/{key}/start|pause|stop|archive",
}


NULLABLE_FIELDS = frozenset({"hash_seed", "namespace", "targeting", "mde", "planned_sample_size"})
"""The fields a PATCH may clear with ``null``; for the others ``null`` is refused (422)."""


def _null_only_where_allowed(schema: dict[str, Any]) -> None:
    """The update's JSON schema: ``null`` only for ``NULLABLE_FIELDS`` (absent means unchanged,
    which the model's ``None`` default stands for)."""
    for name, field in schema.get("properties", {}).items():
        options = field.get("anyOf")
        if name in NULLABLE_FIELDS or not isinstance(options, list):
            continue
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del field["anyOf"]
            field.update(kept[0])
        else:
            field["anyOf"] = kept
        field.pop("default", None)


class ExperimentUpdate(_Strict):
    """A PATCH: only the fields present change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_where_allowed)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    hypothesis: str | None = Field(default=None, max_length=5000)
    owner: str | None = Field(default=None, max_length=200)
    variants: list[VariantSpec] | None = Field(default=None, json_schema_extra={"minItems": 2})
    coverage: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    hash_seed: str | None = Field(default=None, max_length=256)
    hash_version: int | None = Field(default=None, ge=1, le=2)
    hash_attribute: str | None = Field(default=None, min_length=1, max_length=128)
    namespace: NamespaceSpec | None = None
    targeting: dict[str, Any] | None = None
    segment_attributes: SegmentAttributes | None = None
    metrics: MetricsSpec | None = None
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    power: float | None = Field(default=None, gt=0, lt=1)
    mde: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    planned_sample_size: int | None = Field(default=None, ge=2)
    auto_stop: bool | None = None
    bucket_version: int | None = Field(default=None, ge=0)
    min_bucket_version: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _explain_forbidden(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, why in _UPDATE_FORBIDDEN.items():
                if name in data:
                    raise ValueError(f"{name} cannot be updated: {why}")
        return data

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (``null`` included: it clears nullable fields)."""
        return self.model_dump(include=self.model_fields_set)


class MissingRead(BaseModel):
    field: str = Field(description="Where the experiment names it, e.g. `variants[1].model`.")
    name: str
    message: str


class UnreachableRead(BaseModel):
    service: str
    reason: str


class PreflightRead(BaseModel):
    """What the pre-flight check found: metrics the analyzer does not define, models the
    router has not registered, and which of the two could not be asked."""

    ok: bool
    missing: list[MissingRead]
    unreachable: list[UnreachableRead]
    forced: bool = Field(
        default=False, description="Started anyway with `force=true` despite the problems."
    )


class ExperimentRead(BaseModel):
    key: str
    name: str
    hypothesis: str
    owner: str
    status: Status
    variants: list[VariantSpec]
    coverage: float
    hash_seed: str | None
    hash_version: int
    hash_attribute: str
    namespace: NamespaceSpec | None
    targeting: dict[str, Any] | None
    segment_attributes: list[str] = Field(
        default_factory=list,
        description="Request attributes every exposure records beside the targeting ones.",
    )
    metrics: MetricsSpec
    alpha: float
    power: float
    mde: float | None
    planned_sample_size: int | None
    auto_stop: bool
    bucket_version: int
    min_bucket_version: int
    version: int = Field(description="Grows by one with every change.")
    allocation_epoch: int = Field(
        description="Changes since the start that units' sticky records must absorb (weights, "
        "narrowing, bucket versions; not coverage ramp-ups). While 0, hashing alone gives every "
        "unit its recorded variant and /assign answers without reading Redis."
    )
    allocation_period: int = Field(
        default=0,
        description="The current allocation period: 0 from the start, one more with every "
        "change of a bucketing setting after it (weights, coverage, namespace, targeting, bucket "
        "versions). Exposures carry it; the analyzer checks SRM and estimates effects per split.",
    )
    allowed_actions: list[Action]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    archived_at: datetime | None
    preflight: PreflightRead | None = Field(
        default=None,
        description="Answers to create and start: the pre-flight check's findings (null "
        "elsewhere, or with SPLITLAB_PREFLIGHT_CHECKS=false).",
    )


class ExperimentList(BaseModel):
    experiments: list[ExperimentRead]


class FieldChangeRead(BaseModel):
    field: str
    kind: ChangeKind
    detail: str


class AuditEntryRead(BaseModel):
    experiment_key: str
    action: str
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any]
    changes: list[FieldChangeRead]


class AuditLog(BaseModel):
    entries: list[AuditEntryRead]


class AssignRequest(_Strict):
    unit_id: UnitId
    experiment_key: str = Field(min_length=1, max_length=128)
    attributes: Attributes | None = None


class Assignment(BaseModel):
    experiment_key: str
    variant: str
    in_experiment: bool
    reason: Reason
    sticky: bool = Field(description="The variant is held by a sticky record in Redis.")
    bucket_version: int


class AssignResponse(Assignment):
    degraded: bool = Field(
        description="Redis was not consulted (unreachable): the answer comes from hashing alone."
    )


class BatchAssignRequest(_Strict):
    unit_id: UnitId
    attributes: Attributes | None = None
    experiment_keys: list[ExperimentKey] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Only these experiments (each must exist; 404 names the first that does "
        "not); absent: every running experiment.",
    )
    include_excluded: bool = Field(
        default=False,
        description="Also list running experiments the unit is not in, with the reason.",
    )


class BatchAssignResponse(BaseModel):
    unit_id: str
    assignments: list[Assignment]
    degraded: bool

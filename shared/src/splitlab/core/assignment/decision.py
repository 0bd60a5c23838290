"""The assignment decision: which variant a unit gets in an experiment, and why.

Pure: ``assign`` takes plain frozen data (an ``ExperimentDefinition``, the unit's sticky record
read by the caller, the global ``HoldoutConfig``) and returns an ``AssignmentDecision``; the
assignment service and the router both call it, after converting their pydantic schemas.

Build an ``ExperimentDefinition`` once per experiment version and reuse it: construction
validates, compiles targeting and precomputes bucket ranges, the seed's hash state and every
possible decision, so ``assign`` only hashes and compares.

Decision order (see ``docs/assignment.md``):
1. not running (draft, paused, stopped, archived) -> control, ``not_running``;
2. in the global holdout -> control, ``holdout``;
3. no value for the hash attribute -> control, ``not_targeted``;
4. a sticky record below ``min_bucket_version`` -> control, ``bucket_version_excluded``;
5. a sticky record of the current bucket version naming a current variant -> that variant,
   ``sticky`` (namespace, targeting, coverage and weights are not consulted again);
6. outside the namespace slice -> control, ``namespace_excluded``;
7. targeting fails -> control, ``not_targeted``;
8. the hash falls in no range -> control, ``coverage_excluded``;
9. otherwise the hashed variant, ``hashed``, and the caller stores a sticky record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from splitlab.core.assignment.bucketing import (
    HASH_VERSIONS,
    bucket_ranges,
    fnv1a32,
    in_namespace,
)
from splitlab.core.assignment.lifecycle import Status
from splitlab.core.assignment.targeting import CompiledCondition, ConditionError, compile_condition

__all__ = [
    "DEFAULT_HOLDOUT_SEED",
    "WEIGHT_TOLERANCE",
    "AssignmentDecision",
    "ExperimentDefinition",
    "ExperimentDefinitionError",
    "HoldoutConfig",
    "Namespace",
    "Reason",
    "StickyRecord",
    "Variant",
    "assign",
    "assign_all",
    "in_holdout",
]

WEIGHT_TOLERANCE = 1e-6
"""How far from 1 the variant weights may sum (float rounding, e.g. ten weights of 0.1)."""
DEFAULT_HOLDOUT_SEED = "splitlab-global-holdout"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Reason(StrEnum):
    """Why a unit got its variant. The first six leave the unit out of the experiment."""

    NOT_RUNNING = "not_running"
    HOLDOUT = "holdout"
    NOT_TARGETED = "not_targeted"
    BUCKET_VERSION_EXCLUDED = "bucket_version_excluded"
    NAMESPACE_EXCLUDED = "namespace_excluded"
    COVERAGE_EXCLUDED = "coverage_excluded"
    STICKY = "sticky"
    HASHED = "hashed"


class ExperimentDefinitionError(ValueError):
    """An invalid experiment definition; ``field`` names the setting (the API's 422 location)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Variant:
    key: str
    weight: float


@dataclass(frozen=True, slots=True)
class Namespace:
    """A slice ``[start, end)`` of a namespace; experiments with disjoint slices share no unit."""

    id: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ExperimentDefinitionError("namespace.id", "must be a non-empty string")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not _finite_number(value) or not 0 <= value <= 1:
                raise ExperimentDefinitionError(
                    f"namespace.{name}", f"must be a number in [0, 1], got {value!r}"
                )
        if self.start >= self.end:
            raise ExperimentDefinitionError(
                "namespace.end",
                f"must be greater than start ({self.start}), got {self.end}; an empty slice "
                "admits no unit",
            )

    def as_tuple(self) -> tuple[str, float, float]:
        return (self.id, self.start, self.end)


@dataclass(frozen=True, slots=True)
class StickyRecord:
    """What the caller stored for (unit, experiment): the variant and the bucket version."""

    variant_key: str
    bucket_version: int


@dataclass(frozen=True, slots=True)
class HoldoutConfig:
    """A share of all units kept out of every experiment, as a measured group of their own.

    A unit is held out when ``bucket_hash(seed, unit_id, 2) < share``; the seed is the holdout's
    own, so holdout membership is independent of every experiment's buckets.
    """

    share: float = 0.0
    seed: str = DEFAULT_HOLDOUT_SEED
    _seed_state: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _finite_number(self.share) or not 0 <= self.share <= 1:
            raise ValueError(f"holdout share must be a number in [0, 1], got {self.share!r}")
        if not isinstance(self.seed, str) or not self.seed:
            raise ValueError("holdout seed must be a non-empty string; omit it for the default")
        object.__setattr__(self, "_seed_state", fnv1a32(self.seed))


def in_holdout(unit_id: str, holdout: HoldoutConfig) -> bool:
    """Whether ``unit_id`` belongs to the global holdout group (``bucket_hash`` v2 < share)."""
    if holdout.share <= 0:
        return False
    n = (fnv1a32(str(fnv1a32(unit_id, holdout._seed_state))) % 10000) / 10000
    return n < holdout.share


@dataclass(frozen=True, slots=True)
class AssignmentDecision:
    experiment_key: str
    variant_index: int
    """The variant's position; 0 (control) whenever the unit is not in the experiment."""
    variant_key: str
    in_experiment: bool
    reason: Reason
    bucket_version: int
    save_sticky: bool
    """Whether the caller should store ``sticky_record`` (only for fresh hashed assignments)."""

    @property
    def sticky_record(self) -> StickyRecord:
        return StickyRecord(self.variant_key, self.bucket_version)


def _decision_table(
    key: str, variant_keys: tuple[str, ...], bucket_version: int
) -> tuple[
    dict[Reason, AssignmentDecision], tuple[AssignmentDecision, ...], tuple[AssignmentDecision, ...]
]:
    excluded: dict[Reason, AssignmentDecision] = {
        reason: AssignmentDecision(key, 0, variant_keys[0], False, reason, bucket_version, False)
        for reason in Reason
        if reason not in (Reason.STICKY, Reason.HASHED)
    }
    sticky = tuple(
        AssignmentDecision(key, i, k, True, Reason.STICKY, bucket_version, False)
        for i, k in enumerate(variant_keys)
    )
    hashed = tuple(
        AssignmentDecision(key, i, k, True, Reason.HASHED, bucket_version, True)
        for i, k in enumerate(variant_keys)
    )
    return excluded, sticky, hashed


@dataclass(frozen=True, kw_only=True, slots=True)
class ExperimentDefinition:
    """One version of an experiment's assignment settings, validated and precomputed.

    ``ExperimentDefinitionError`` (a ``ValueError``) names the offending field. Weights must sum
    to 1 and coverage lie in [0, 1]: unlike ``bucket_ranges``, which mirrors GrowthBook's silent
    fallbacks, a definition refuses what it would otherwise quietly change.
    """

    key: str
    variants: Sequence[Variant]
    status: Status = Status.DRAFT
    coverage: float = 1.0
    hash_seed: str | None = None
    """Defaults to the key (GrowthBook's ``seed || key``)."""
    hash_attribute: str = "id"
    """``"id"`` buckets on the unit id; any other name on that request attribute."""
    hash_version: int = 2
    namespace: Namespace | None = None
    targeting: Mapping[str, Any] | None = None
    """A condition document (see ``splitlab.core.assignment.targeting``); None or ``{}`` targets
    everyone."""
    bucket_version: int = 0
    min_bucket_version: int = 0

    _ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)
    _seed_state: int = field(init=False, repr=False, compare=False)
    _condition: CompiledCondition | None = field(init=False, repr=False, compare=False)
    _namespace: tuple[str, float, float] | None = field(init=False, repr=False, compare=False)
    _index_by_key: dict[str, int] = field(init=False, repr=False, compare=False)
    _excluded: dict[Reason, AssignmentDecision] = field(init=False, repr=False, compare=False)
    _sticky: tuple[AssignmentDecision, ...] = field(init=False, repr=False, compare=False)
    _hashed: tuple[AssignmentDecision, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.key, str) or not self.key:
            raise ExperimentDefinitionError("key", "must be a non-empty string")
        variants = tuple(self.variants)
        set_(self, "variants", variants)
        self._validate_variants(variants)
        try:
            set_(self, "status", Status(self.status))
        except ValueError:
            raise ExperimentDefinitionError(
                "status", f"must be one of {', '.join(Status)}, got {self.status!r}"
            ) from None
        if not _finite_number(self.coverage) or not 0 <= self.coverage <= 1:
            raise ExperimentDefinitionError(
                "coverage", f"must be a number in [0, 1], got {self.coverage!r}"
            )
        if self.hash_seed is not None and not isinstance(self.hash_seed, str):
            raise ExperimentDefinitionError("hash_seed", "must be a string, or omitted for the key")
        if not isinstance(self.hash_attribute, str) or not self.hash_attribute:
            raise ExperimentDefinitionError(
                "hash_attribute", 'must be a non-empty attribute name; "id" is the unit id'
            )
        if self.hash_version not in HASH_VERSIONS or isinstance(self.hash_version, bool):
            raise ExperimentDefinitionError(
                "hash_version", f"must be 1 or 2 (2 is unbiased), got {self.hash_version!r}"
            )
        if self.namespace is not None and not isinstance(self.namespace, Namespace):
            raise ExperimentDefinitionError("namespace", "must be a Namespace or None")
        for name in ("bucket_version", "min_bucket_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ExperimentDefinitionError(name, f"must be an integer >= 0, got {value!r}")
        if self.min_bucket_version > self.bucket_version:
            raise ExperimentDefinitionError(
                "min_bucket_version",
                f"must not exceed bucket_version ({self.bucket_version}), got "
                f"{self.min_bucket_version}",
            )
        condition: CompiledCondition | None = None
        if self.targeting:
            try:
                condition = compile_condition(self.targeting)
            except ConditionError as exc:
                where = f"targeting.{exc.path}" if exc.path else "targeting"
                raise ExperimentDefinitionError(where, str(exc)) from exc
        elif self.targeting is not None and not isinstance(self.targeting, Mapping):
            raise ExperimentDefinitionError("targeting", "must be a condition object or None")

        keys = tuple(v.key for v in variants)
        set_(
            self,
            "_ranges",
            tuple(bucket_ranges(len(variants), self.coverage, [v.weight for v in variants])),
        )
        set_(self, "_seed_state", fnv1a32(self.seed))
        set_(self, "_condition", condition)
        set_(self, "_namespace", None if self.namespace is None else self.namespace.as_tuple())
        set_(self, "_index_by_key", {k: i for i, k in enumerate(keys)})
        excluded, sticky, hashed = _decision_table(self.key, keys, self.bucket_version)
        set_(self, "_excluded", excluded)
        set_(self, "_sticky", sticky)
        set_(self, "_hashed", hashed)

    @staticmethod
    def _validate_variants(variants: tuple[Variant, ...]) -> None:
        if len(variants) < 2:
            raise ExperimentDefinitionError(
                "variants", f"need at least 2 (a control and a treatment), got {len(variants)}"
            )
        seen: set[str] = set()
        total = 0.0
        for i, variant in enumerate(variants):
            if not isinstance(variant, Variant):
                raise ExperimentDefinitionError(f"variants[{i}]", "must be a Variant")
            if not isinstance(variant.key, str) or not variant.key:
                raise ExperimentDefinitionError(f"variants[{i}].key", "must be a non-empty string")
            if variant.key in seen:
                raise ExperimentDefinitionError(
                    f"variants[{i}].key", f"duplicate variant key {variant.key!r}; keys are unique"
                )
            seen.add(variant.key)
            if not _finite_number(variant.weight) or variant.weight < 0:
                raise ExperimentDefinitionError(
                    f"variants[{i}].weight", f"must be a number >= 0, got {variant.weight!r}"
                )
            total += variant.weight
        if abs(total - 1) > WEIGHT_TOLERANCE:
            raise ExperimentDefinitionError(
                "variants", f"weights must sum to 1, got {total!r}; rescale them"
            )

    @property
    def seed(self) -> str:
        """The hash seed in effect: ``hash_seed``, or the key when it is unset or empty."""
        return self.hash_seed or self.key

    @property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The precomputed bucket ranges, one per variant."""
        return self._ranges

    def hash_value(self, unit_id: str, attributes: Mapping[str, Any] | None = None) -> str | None:
        """The string this experiment buckets on: the unit id, or the hash attribute's value.

        None when the attribute is missing, empty, or neither a string nor an integer; such a
        unit is not targeted. Callers key sticky records by it when ``hash_attribute != "id"``.
        """
        if self.hash_attribute == "id":
            return unit_id or None
        value = (attributes or _EMPTY).get(self.hash_attribute)
        if isinstance(value, str):
            return value or None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None

    def bucket(self, hash_value: str) -> float:
        """The unit's position in [0, 1) for this experiment (``bucket_hash`` with its seed)."""
        if self.hash_version == 2:
            return (fnv1a32(str(fnv1a32(hash_value, self._seed_state))) % 10000) / 10000
        return (fnv1a32(hash_value + self.seed) % 1000) / 1000


def assign(
    experiment: ExperimentDefinition,
    unit_id: str,
    attributes: Mapping[str, Any] | None = None,
    sticky: StickyRecord | None = None,
    holdout: HoldoutConfig | None = None,
) -> AssignmentDecision:
    """Decide ``unit_id``'s variant in ``experiment``; see the module docstring for the order.

    ``sticky`` is the record the caller stored for this unit and experiment (None if none or if
    the store is unreachable); ``holdout`` the global holdout (None: no holdout). When the
    decision has ``save_sticky``, the caller stores ``decision.sticky_record``.
    """
    if experiment.status is not Status.RUNNING:
        return experiment._excluded[Reason.NOT_RUNNING]
    if holdout is not None and in_holdout(unit_id, holdout):
        return experiment._excluded[Reason.HOLDOUT]
    return _assign_eligible(experiment, unit_id, attributes, sticky)


def assign_all(
    experiments: Iterable[ExperimentDefinition],
    unit_id: str,
    attributes: Mapping[str, Any] | None = None,
    sticky: Mapping[str, StickyRecord] | None = None,
    holdout: HoldoutConfig | None = None,
) -> list[AssignmentDecision]:
    """``assign`` for one unit across ``experiments`` (``/assign/batch``), in their order.

    ``sticky`` maps experiment keys to the unit's records (one store round trip for all of
    them); the holdout is hashed once for the unit rather than once per experiment.
    """
    records = _EMPTY if sticky is None else sticky
    held_out = holdout is not None and in_holdout(unit_id, holdout)
    decisions = []
    for experiment in experiments:
        if experiment.status is not Status.RUNNING:
            decisions.append(experiment._excluded[Reason.NOT_RUNNING])
        elif held_out:
            decisions.append(experiment._excluded[Reason.HOLDOUT])
        else:
            decisions.append(
                _assign_eligible(experiment, unit_id, attributes, records.get(experiment.key))
            )
    return decisions


def _assign_eligible(
    experiment: ExperimentDefinition,
    unit_id: str,
    attributes: Mapping[str, Any] | None,
    sticky: StickyRecord | None,
) -> AssignmentDecision:
    """Steps 3-9 of the decision, for a running experiment and a unit outside the holdout."""
    attrs = _EMPTY if attributes is None else attributes
    value = experiment.hash_value(unit_id, attrs)
    if value is None:
        return experiment._excluded[Reason.NOT_TARGETED]
    if sticky is not None:
        if sticky.bucket_version < experiment.min_bucket_version:
            return experiment._excluded[Reason.BUCKET_VERSION_EXCLUDED]
        if sticky.bucket_version == experiment.bucket_version:
            index = experiment._index_by_key.get(sticky.variant_key)
            if index is not None:
                return experiment._sticky[index]
    namespace = experiment._namespace
    if namespace is not None and not in_namespace(value, namespace):
        return experiment._excluded[Reason.NAMESPACE_EXCLUDED]
    condition = experiment._condition
    if condition is not None and not condition(attrs):
        return experiment._excluded[Reason.NOT_TARGETED]
    n = experiment.bucket(value)
    for index, (start, end) in enumerate(experiment._ranges):
        if start <= n < end:
            return experiment._hashed[index]
    return experiment._excluded[Reason.COVERAGE_EXCLUDED]

"""The experiment lifecycle and the rules for changing a started experiment.

Lifecycle: ``draft -> running <-> paused``, ``draft|running|paused -> stopped -> archived``:
only a stopped experiment may be archived (a draft that never ran is stopped first, so archiving
is always the second, deliberate step after ending an experiment). Actions are the admin API's
verbs: ``start`` (also resumes a paused experiment), ``pause``, ``stop``, ``archive``.

Changes: ``classify_change`` compares two versions of an experiment's bucketing settings and says,
field by field, what the change does to units already assigned; ``check_change`` rejects what a
started experiment may not do. The principle: no unit may be moved from one variant to another
without an explicit bucket-version bump in the same change. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from splitlab.core.assignment.decision import ExperimentDefinition, Namespace

__all__ = [
    "Action",
    "ChangeAssessment",
    "ChangeError",
    "ChangeKind",
    "FieldChange",
    "LifecycleError",
    "Status",
    "allowed_actions",
    "check_change",
    "classify_change",
    "has_started",
    "transition",
]


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ARCHIVED = "archived"


class Action(StrEnum):
    START = "start"
    PAUSE = "pause"
    STOP = "stop"
    ARCHIVE = "archive"


_TRANSITIONS: dict[Status, dict[Action, Status]] = {
    Status.DRAFT: {Action.START: Status.RUNNING, Action.STOP: Status.STOPPED},
    Status.RUNNING: {Action.PAUSE: Status.PAUSED, Action.STOP: Status.STOPPED},
    Status.PAUSED: {Action.START: Status.RUNNING, Action.STOP: Status.STOPPED},
    Status.STOPPED: {Action.ARCHIVE: Status.ARCHIVED},
    Status.ARCHIVED: {},
}


class LifecycleError(ValueError):
    """An action the experiment's current status does not allow (the API answers 409)."""

    def __init__(self, status: Status, action: Action) -> None:
        self.status = status
        self.action = action
        self.allowed = allowed_actions(status)
        allowed = ", ".join(self.allowed) if self.allowed else "none (archived is final)"
        why = ""
        if action is Action.ARCHIVE and status is not Status.ARCHIVED:
            why = "archive needs a stopped experiment: stop it first; "
        super().__init__(
            f"cannot {action} an experiment that is {status}; {why}allowed actions from "
            f"{status}: {allowed}"
        )


def _status(value: Status | str, argument: str = "status") -> Status:
    try:
        return Status(value)
    except ValueError:
        raise ValueError(f"{argument} must be one of {', '.join(Status)}, got {value!r}") from None


def _action(value: Action | str) -> Action:
    try:
        return Action(value)
    except ValueError:
        raise ValueError(f"action must be one of {', '.join(Action)}, got {value!r}") from None


def allowed_actions(status: Status | str) -> tuple[Action, ...]:
    """The actions allowed from ``status``, in lifecycle order."""
    return tuple(_TRANSITIONS[_status(status)])


def transition(status: Status | str, action: Action | str) -> Status:
    """The status after ``action``; ``LifecycleError`` if ``status`` does not allow it."""
    current, verb = _status(status), _action(action)
    target = _TRANSITIONS[current].get(verb)
    if target is None:
        raise LifecycleError(current, verb)
    return target


def has_started(status: Status | str) -> bool:
    """Whether units may have been assigned: every status but draft."""
    return _status(status) is not Status.DRAFT


# --- change rules -------------------------------------------------------------------------------


class ChangeKind(StrEnum):
    """What a change does to units already assigned, from harmless to reshuffling."""

    KEEPS = "keeps"
    """No assigned unit leaves or moves, with or without sticky records (ramping coverage up)."""
    NARROWS = "narrows"
    """Some units may leave the experiment (to control, not counted); none moves to another
    variant. Sticky records keep assigned units in anyway."""
    RELIES_ON_STICKINESS = "relies_on_stickiness"
    """Assigned units stay only because sticky records hold them (weight changes); hashing alone
    would move some between variants."""
    RESHUFFLES = "reshuffles"
    """Units would move between variants: allowed on a started experiment only with a bucket
    version bump in the same change."""


_SEVERITY = {kind: rank for rank, kind in enumerate(ChangeKind)}


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    """The changed setting, as the API names it (``coverage``, ``variants[1].weight``)."""
    kind: ChangeKind
    detail: str


@dataclass(frozen=True, slots=True)
class ChangeAssessment:
    changes: tuple[FieldChange, ...]
    bucket_version_bumped: bool

    @property
    def kind(self) -> ChangeKind | None:
        """The most disruptive kind among the changes; None when no bucketing setting changed."""
        if not self.changes:
            return None
        return max((c.kind for c in self.changes), key=_SEVERITY.__getitem__)

    @property
    def reshuffling(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.RESHUFFLES)

    @property
    def moves_recorded_units(self) -> bool:
        """Some unit's sticky record may now differ from what hashing gives it: a bucket-version
        bump, or any change but a harmless one (``KEEPS``: a coverage ramp-up). Until the first
        such change after the start, hashing alone answers what every record says."""
        return self.bucket_version_bumped or any(
            c.kind is not ChangeKind.KEEPS for c in self.changes
        )


class ChangeError(ValueError):
    """A change a started experiment may not take; ``field`` names the setting (the API's 422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _namespace_contains(outer: Namespace, inner: Namespace) -> bool:
    return outer.id == inner.id and outer.start <= inner.start and inner.end <= outer.end


def _classify_variants(old: ExperimentDefinition, new: ExperimentDefinition) -> list[FieldChange]:
    old_keys = [v.key for v in old.variants]
    new_keys = [v.key for v in new.variants]
    if old_keys == new_keys:
        return [
            FieldChange(
                f"variants[{i}].weight",
                ChangeKind.RELIES_ON_STICKINESS,
                f"weight of {o.key!r} changes from {o.weight} to {n.weight}: assigned units keep "
                "their variant through their sticky records; new units follow the new weights",
            )
            for i, (o, n) in enumerate(zip(old.variants, new.variants, strict=True))
            if o.weight != n.weight
        ]
    removed = [k for k in old_keys if k not in new_keys]
    added = [k for k in new_keys if k not in old_keys]
    if removed:
        detail = f"removes variant(s) {removed}: their units would be re-bucketed"
    elif added:
        detail = (
            f"adds variant(s) {added}: bucket ranges shift, and an arm that only receives late "
            "arrivals is not comparable with the others"
        )
    else:
        detail = (
            f"reorders variants {old_keys} -> {new_keys}: ranges follow order, units would move"
        )
    return [FieldChange("variants", ChangeKind.RESHUFFLES, detail)]


def classify_change(old: ExperimentDefinition, new: ExperimentDefinition) -> ChangeAssessment:
    """Field by field, what going from ``old`` to ``new`` bucketing settings does to units.

    Only bucketing settings count (variants and weights, coverage, seed, hash attribute, hash
    version, namespace, targeting, min bucket version); names, metrics and model references move
    no unit and are the caller's business.
    """
    changes = _classify_variants(old, new)
    if new.coverage > old.coverage:
        changes.append(
            FieldChange(
                "coverage",
                ChangeKind.KEEPS,
                f"ramps coverage up from {old.coverage} to {new.coverage}: ranges only grow, "
                "no included unit moves",
            )
        )
    elif new.coverage < old.coverage:
        changes.append(
            FieldChange(
                "coverage",
                ChangeKind.NARROWS,
                f"lowers coverage from {old.coverage} to {new.coverage}: ranges only shrink, so "
                "units can leave the experiment (unless sticky) but never change variant",
            )
        )
    if old.seed != new.seed:
        changes.append(
            FieldChange(
                "hash_seed",
                ChangeKind.RESHUFFLES,
                f"changes the hash seed from {old.seed!r} to {new.seed!r}: every unit is re-hashed",
            )
        )
    if old.hash_attribute != new.hash_attribute:
        changes.append(
            FieldChange(
                "hash_attribute",
                ChangeKind.RESHUFFLES,
                f"buckets on {new.hash_attribute!r} instead of {old.hash_attribute!r}: every unit "
                "is re-hashed",
            )
        )
    if old.hash_version != new.hash_version:
        changes.append(
            FieldChange(
                "hash_version",
                ChangeKind.RESHUFFLES,
                f"changes the hash version from {old.hash_version} to {new.hash_version}: every "
                "unit is re-hashed",
            )
        )
    if old.namespace != new.namespace:
        if new.namespace is None or (
            old.namespace is not None and _namespace_contains(new.namespace, old.namespace)
        ):
            kind, detail = ChangeKind.KEEPS, "widens the namespace slice: units only join"
        else:
            kind, detail = (
                ChangeKind.NARROWS,
                "changes the namespace: units outside the new slice leave (unless sticky); the "
                "namespace hash is independent of the variant hash, so none changes variant",
            )
        changes.append(FieldChange("namespace", kind, detail))
    if old.targeting != new.targeting:
        changes.append(
            FieldChange(
                "targeting",
                ChangeKind.NARROWS,
                "changes targeting: units that no longer match leave (unless sticky); targeting "
                "only gates entry, so none changes variant",
            )
        )
    if new.min_bucket_version > old.min_bucket_version:
        changes.append(
            FieldChange(
                "min_bucket_version",
                ChangeKind.NARROWS,
                f"raises min_bucket_version to {new.min_bucket_version}: units with sticky records "
                "from older bucket versions are excluded",
            )
        )
    return ChangeAssessment(tuple(changes), new.bucket_version > old.bucket_version)


def check_change(old: ExperimentDefinition, new: ExperimentDefinition) -> ChangeAssessment:
    """``classify_change``, raising ``ChangeError`` for what ``old.status`` does not allow.

    - ``key`` and ``status`` never change through an update (status changes are actions);
    - ``bucket_version`` and ``min_bucket_version`` never decrease (units excluded or re-bucketed
      by a bump would come back);
    - a draft may change anything; a stopped or archived experiment no bucketing setting;
    - a running or paused experiment may take a reshuffling change only together with a bucket
      version bump.
    """
    if new.key != old.key:
        raise ChangeError("key", f"an experiment's key never changes (was {old.key!r})")
    if new.status != old.status:
        raise ChangeError(
            "status",
            f"status changes through actions ({', '.join(allowed_actions(old.status)) or 'none'} "
            f"from {old.status}), not through an update",
        )
    if new.bucket_version < old.bucket_version:
        raise ChangeError(
            "bucket_version",
            f"cannot decrease from {old.bucket_version} to {new.bucket_version}; bucket versions "
            "only go up",
        )
    if new.min_bucket_version < old.min_bucket_version:
        raise ChangeError(
            "min_bucket_version",
            f"cannot decrease from {old.min_bucket_version} to {new.min_bucket_version}: units "
            "excluded by it would come back re-bucketed",
        )
    assessment = classify_change(old, new)
    status = old.status
    if status is Status.DRAFT:
        return assessment
    if status in (Status.STOPPED, Status.ARCHIVED):
        if assessment.changes or assessment.bucket_version_bumped:
            field = assessment.changes[0].field if assessment.changes else "bucket_version"
            raise ChangeError(
                field, f"the experiment is {status}; its bucketing settings are frozen"
            )
        return assessment
    if assessment.reshuffling and not assessment.bucket_version_bumped:
        first = assessment.reshuffling[0]
        raise ChangeError(
            first.field,
            f"{first.detail}. The experiment is {status}, so this change must bump "
            f"bucket_version in the same update (to {old.bucket_version + 1} or more); set "
            "min_bucket_version to the new version as well to exclude units assigned before it "
            "instead of re-bucketing them",
        )
    return assessment

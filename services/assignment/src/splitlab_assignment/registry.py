"""The experiment registry: create, read, list, update and act on experiments, with the audit
log and the cache kept in step.

Lifecycle and change rules come from ``splitlab.core.assignment.lifecycle`` (pure); this module
loads and stores through ``ExperimentRepository``, records who did what (before/after states and the
field-by-field change assessment) in the same transaction, and refreshes this replica's cache after
each commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.definitions import to_definition
from splitlab.assigning.loading import experiment_state, refresh_cache
from splitlab.core.assignment.lifecycle import (
    Action,
    ChangeError,
    LifecycleError,
    Status,
    allowed_actions,
    check_change,
    transition,
)
from splitlab.platform.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab.platform.storage.models import AllocationPeriod, Experiment, ExperimentAuditEntry
from splitlab_assignment.preflight import (
    PreflightChecker,
    PreflightRefusedError,
    PreflightReport,
    PreflightUnavailableError,
    report_body,
)
from splitlab_assignment.repository import ExperimentRepository
from splitlab_assignment.schemas import (
    NULLABLE_FIELDS,
    AuditEntryRead,
    AuditLog,
    ExperimentCreate,
    ExperimentList,
    ExperimentRead,
    ExperimentUpdate,
    PreflightRead,
)

logger = logging.getLogger(__name__)

_ACTION_TIMESTAMP = {
    Action.START: "started_at",
    Action.STOP: "stopped_at",
    Action.ARCHIVE: "archived_at",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_read(
    state: dict[str, Any], report: PreflightReport | None = None, forced: bool = False
) -> ExperimentRead:
    preflight = None
    if report is not None:
        preflight = PreflightRead.model_validate(
            {"ok": report.ok, **report_body(report), "forced": forced and not report.ok}
        )
    return ExperimentRead.model_validate(
        {
            **state,
            "allowed_actions": list(allowed_actions(state["status"])),
            "preflight": preflight,
        }
    )


class ExperimentRegistry:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cache: ExperimentCache,
        clock: Callable[[], datetime] = utc_now,
        preflight: PreflightChecker | None = None,
    ) -> None:
        """``preflight``: checks an experiment's metrics and models at create and start
        (None: no checks, ``SPLITLAB_PREFLIGHT_CHECKS=false``)."""
        self._sessions = sessions
        self._cache = cache
        self._clock = clock
        self._preflight = preflight

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> ExperimentRead:
        with self._sessions() as session:
            return to_read(experiment_state(self._require(ExperimentRepository(session), key)))

    def list_all(self, status: Status | None = None) -> ExperimentList:
        with self._sessions() as session:
            rows = ExperimentRepository(session).list(None if status is None else [status])
            return ExperimentList(experiments=[to_read(experiment_state(r)) for r in rows])

    def audit(self, key: str, limit: int = 100) -> AuditLog:
        with self._sessions() as session:
            repo = ExperimentRepository(session)
            self._require(repo, key)
            return AuditLog(
                entries=[
                    AuditEntryRead.model_validate(entry, from_attributes=True)
                    for entry in repo.audit(key, limit)
                ]
            )

    # ------------------------------------------------------------------ writes
    def create(self, data: ExperimentCreate, actor: str) -> ExperimentRead:
        """Store a draft; the pre-flight report rides along (a draft may precede its metrics
        and models: only ``start`` refuses)."""
        spec = data.model_dump(mode="json")
        to_definition({**spec, "status": Status.DRAFT})  # 422 naming the field if invalid
        report = self._preflight.check(spec) if self._preflight is not None else None
        now = self._clock()
        row = Experiment(
            status=Status.DRAFT.value,
            version=1,
            allocation_epoch=0,
            allocation_period=0,
            created_at=now,
            updated_at=now,
            **spec,
        )
        try:
            with self._sessions.begin() as session:
                repo = ExperimentRepository(session)
                if repo.exists(data.key):
                    raise self._duplicate(data.key)
                repo.add(row)
                state = experiment_state(row)
                repo.add_audit(self._audit(row.key, "create", actor, now, None, state, []))
        except IntegrityError:
            raise self._duplicate(data.key) from None
        self._cache.put(CachedExperiment.from_state(state))
        return to_read(state, report)

    def update(self, key: str, patch: ExperimentUpdate, actor: str) -> ExperimentRead:
        changes = patch.changes()
        for name, value in changes.items():
            if value is None and name not in NULLABLE_FIELDS:
                raise InvalidInputError(f"{name}: cannot be null", field=name)
        with self._sessions.begin() as session:
            repo = ExperimentRepository(session)
            row = self._require(repo, key, for_update=True)
            before = experiment_state(row)
            after = {**before, **changes}
            if after == before:
                return to_read(before)
            try:
                assessment = check_change(to_definition(before), to_definition(after))
            except ChangeError as exc:
                raise InvalidInputError(str(exc), field=exc.field) from None
            now = self._clock()
            for name, value in changes.items():
                setattr(row, name, value)
            if row.started_at is not None and assessment.moves_recorded_units:
                row.allocation_epoch += 1
            if row.started_at is not None and (
                assessment.changes or assessment.bucket_version_bumped
            ):
                # Any bucketing change after the start changes who lands where: a new period.
                row.allocation_period += 1
                fields = [c.field for c in assessment.changes]
                if assessment.bucket_version_bumped:
                    fields.append("bucket_version")
                repo.add_period(_period(row, now, fields))
            row.version += 1
            row.updated_at = now
            session.flush()
            state = experiment_state(row)
            field_changes = [
                {**asdict(change), "kind": change.kind.value} for change in assessment.changes
            ]
            repo.add_audit(self._audit(key, "update", actor, now, before, state, field_changes))
        self._cache.put(CachedExperiment.from_state(state))
        return to_read(state)

    def act(self, key: str, action: Action, actor: str, force: bool = False) -> ExperimentRead:
        """Apply ``action``. ``start`` first runs the pre-flight check and is refused while
        anything is missing (422) or unknown (503), unless ``force``."""
        report = None
        if action is Action.START and self._preflight is not None:
            with self._sessions() as session:
                current = experiment_state(self._require(ExperimentRepository(session), key))
            try:  # a start the lifecycle refuses is a 409 before anything is asked
                transition(current["status"], action)
            except LifecycleError as exc:
                raise ConflictError(str(exc), field="status") from None
            report = self._preflight.check(current)
            if not report.ok and not force:
                if report.missing:
                    raise PreflightRefusedError(key, report)
                raise PreflightUnavailableError(key, report)
            if not report.ok:
                logger.warning(
                    "experiment started despite the pre-flight check",
                    extra={"experiment": key, "actor": actor, "problems": report.describe()},
                )
        with self._sessions.begin() as session:
            repo = ExperimentRepository(session)
            row = self._require(repo, key, for_update=True)
            before = experiment_state(row)
            try:
                status = transition(row.status, action)
            except LifecycleError as exc:
                raise ConflictError(str(exc), field="status") from None
            now = self._clock()
            row.status = status.value
            stamp = _ACTION_TIMESTAMP.get(action)
            if stamp is not None and getattr(row, stamp) is None:
                setattr(row, stamp, now)
                if action is Action.START:
                    repo.add_period(_period(row, now, []))
            row.version += 1
            row.updated_at = now
            session.flush()
            state = experiment_state(row)
            repo.add_audit(self._audit(key, action.value, actor, now, before, state, []))
        self._cache.put(CachedExperiment.from_state(state))
        return to_read(state, report, forced=force)

    # ------------------------------------------------------------------ cache
    def refresh_cache(self) -> int:
        """Reload experiments whose version changed; forget deleted ones. Returns the reloads."""
        return refresh_cache(self._sessions, self._cache)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _require(repo: ExperimentRepository, key: str, *, for_update: bool = False) -> Experiment:
        row = repo.get(key, for_update=for_update)
        if row is None:
            raise NotFoundError(f"no experiment {key!r}", field="key")
        return row

    @staticmethod
    def _duplicate(key: str) -> ConflictError:
        return ConflictError(
            f"an experiment with key {key!r} already exists; keys are unique", field="key"
        )

    @staticmethod
    def _audit(
        key: str,
        action: str,
        actor: str,
        at: datetime,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        changes: list[dict[str, Any]],
    ) -> ExperimentAuditEntry:
        return ExperimentAuditEntry(
            experiment_key=key,
            action=action,
            actor=actor,
            at=at,
            before=before,
            after=after,
            changes=changes,
        )


def _period(row: Experiment, at: datetime, changes: list[str]) -> AllocationPeriod:
    """The allocation period ``row`` enters now (its current split and coverage)."""
    return AllocationPeriod(
        experiment_key=row.key,
        period=row.allocation_period,
        started_at=at,
        weights={str(v["key"]): float(v["weight"]) for v in row.variants},
        coverage=float(row.coverage),
        changes=changes,
    )

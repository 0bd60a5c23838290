"""SQL for the experiment registry: the only module of the service that writes queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from splitlab.platform.storage.models import AllocationPeriod, Experiment, ExperimentAuditEntry


class ExperimentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str, *, for_update: bool = False) -> Experiment | None:
        query = select(Experiment).where(Experiment.key == key)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def exists(self, key: str) -> bool:
        return self.session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None

    def list(self, statuses: Iterable[str] | None = None) -> Sequence[Experiment]:
        query = select(Experiment).order_by(Experiment.key)
        if statuses is not None:
            query = query.where(Experiment.status.in_(list(statuses)))
        return self.session.scalars(query).all()

    def add(self, experiment: Experiment) -> None:
        self.session.add(experiment)
        self.session.flush()

    def add_period(self, period: AllocationPeriod) -> None:
        self.session.add(period)

    def add_audit(self, entry: ExperimentAuditEntry) -> None:
        self.session.add(entry)

    def audit(self, key: str, limit: int) -> Sequence[ExperimentAuditEntry]:
        query = (
            select(ExperimentAuditEntry)
            .where(ExperimentAuditEntry.experiment_key == key)
            .order_by(ExperimentAuditEntry.at.desc(), ExperimentAuditEntry.id.desc())
            .limit(limit)
        )
        return self.session.scalars(query).all()

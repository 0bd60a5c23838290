"""Postgres access of the trainer: the model catalogue, entities, experiments and metric
definitions (read-only: the assignment service and the analyzer own them), and the atomic
switch of an experiment metric's CUPAC predictions to a new model version."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.storage.models import (
    Experiment,
    MetricDefinition,
    TrainedModel,
    TrainingEntity,
)
from splitlab_trainer.definitions import MetricSpec
from splitlab_trainer.scheduling import History

ACTIVE = ("queued", "running")
KINDS = ("in_experiment", "pre_experiment")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ExperimentRef:
    key: str
    status: str
    variants: list[str]
    metric_names: list[str]
    started_at: datetime | None
    stopped_at: datetime | None


def to_ref(row: Experiment) -> ExperimentRef:
    metrics = row.metrics or {}
    names = [str(metrics.get("primary")), *(str(m) for m in metrics.get("secondary", []))]
    names += [str(g["metric"]) for g in metrics.get("guardrails", [])]
    return ExperimentRef(
        key=row.key,
        status=row.status,
        variants=[str(v["key"]) for v in row.variants],
        metric_names=list(dict.fromkeys(names)),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
    )


@dataclass(frozen=True)
class EntitySpec:
    """A training entity's model spec (``default`` for experiments in no entity)."""

    name: str
    features: tuple[str, ...]
    families: tuple[str, ...]
    in_experiment_every_seconds: float
    pre_experiment_every_seconds: float
    history_days: float

    def every(self, kind: str) -> float:
        if kind == "in_experiment":
            return self.in_experiment_every_seconds
        return self.pre_experiment_every_seconds


class ExperimentReader:
    """Experiments and metric definitions, read-only."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, key: str) -> ExperimentRef | None:
        with self.sessions() as session:
            row = session.scalar(select(Experiment).where(Experiment.key == key))
            return None if row is None else to_ref(row)

    def trainable(self) -> list[ExperimentRef]:
        """Running experiments, and stopped ones (their final training)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Experiment).where(Experiment.status.in_(("running", "stopped")))
            )
            return [to_ref(r) for r in rows]

    def metrics(self, names: Sequence[str]) -> dict[str, MetricSpec]:
        """Plain metrics among ``names`` (ratio metrics and ``event_mean`` metrics, analysed as
        ratios by the delta method, get no model)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(MetricDefinition).where(MetricDefinition.name.in_(list(names)))
            )
            return {
                r.name: MetricSpec(
                    name=r.name,
                    source=str(r.source),
                    outcome_type=r.outcome_type,
                    aggregation=str(r.aggregation),
                    attribution_window_seconds=r.attribution_window_seconds,
                    pre_period_days=r.pre_period_days,
                    covariates=tuple(r.covariates or ()),
                )
                for r in rows
                if r.numerator is None
                and r.source is not None
                and r.aggregation not in (None, "event_mean")
            }

    def unit_counts(self, keys: Sequence[str]) -> dict[str, int]:
        with self.sessions() as session:
            rows = session.execute(
                text(
                    "SELECT experiment_key, count(*) FROM experiment_units "
                    "WHERE experiment_key = ANY(:keys) GROUP BY experiment_key"
                ),
                {"keys": list(keys)},
            )
            return {str(k): int(n) for k, n in rows}


class EntityRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def all(self) -> list[TrainingEntity]:
        with self.sessions() as session:
            return list(session.scalars(select(TrainingEntity).order_by(TrainingEntity.name)))

    def get(self, name: str) -> TrainingEntity | None:
        with self.sessions() as session:
            return session.get(TrainingEntity, name)

    def put(self, name: str, values: dict[str, Any]) -> TrainingEntity:
        """Create or replace ``name``; its experiments leave any other entity."""
        now = utc_now()
        with self.sessions.begin() as session:
            for other in session.scalars(
                select(TrainingEntity).where(TrainingEntity.name != name).with_for_update()
            ):
                kept = [k for k in other.experiments if k not in values["experiments"]]
                if kept != other.experiments:
                    other.experiments = kept
                    other.updated_at = now
            row = session.get(TrainingEntity, name, with_for_update=True)
            if row is None:
                row = TrainingEntity(name=name, created_at=now, updated_at=now, **values)
                session.add(row)
            else:
                for field, value in values.items():
                    setattr(row, field, value)
                row.updated_at = now
        return row


class CatalogueRepository:
    """``trained_models``: queue, progress, results, the version in use."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self.engine = engine
        self.sessions = sessions

    def enqueue(
        self, entity: str, key: str, metric: str, kinds: Sequence[str], every: dict[str, float]
    ) -> list[int]:
        now = utc_now()
        with self.sessions.begin() as session:
            rows = [
                TrainedModel(
                    entity=entity,
                    experiment_key=key,
                    metric=metric,
                    kind=kind,
                    status="queued",
                    progress=0.0,
                    attempts=0,
                    params={},
                    features=[],
                    r2_candidates={},
                    notes=[],
                    schedule_seconds=every[kind],
                    in_use=False,
                    queued_at=now,
                )
                for kind in kinds
            ]
            session.add_all(rows)
            session.flush()
            return [r.id for r in rows]

    def set_task(self, ids: Sequence[int], task_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(TrainedModel).where(TrainedModel.id.in_(list(ids))).values(task_id=task_id)
            )

    def get(self, model_id: int) -> TrainedModel | None:
        with self.sessions() as session:
            return session.get(TrainedModel, model_id)

    def many(self, ids: Sequence[int]) -> list[TrainedModel]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(TrainedModel)
                    .where(TrainedModel.id.in_(list(ids)))
                    .order_by(TrainedModel.id)
                )
            )

    def search(
        self,
        experiment_key: str | None = None,
        metric: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        in_use: bool | None = None,
        limit: int = 100,
    ) -> list[TrainedModel]:
        query = select(TrainedModel)
        if experiment_key is not None:
            query = query.where(TrainedModel.experiment_key == experiment_key)
        if metric is not None:
            query = query.where(TrainedModel.metric == metric)
        if status is not None:
            query = query.where(TrainedModel.status == status)
        if kind is not None:
            query = query.where(TrainedModel.kind == kind)
        if in_use is not None:
            query = query.where(TrainedModel.in_use == in_use)
        with self.sessions() as session:
            return list(session.scalars(query.order_by(TrainedModel.id.desc()).limit(limit)))

    def start(self, model_id: int) -> TrainedModel | None:
        """Mark a queued (or re-delivered running) training running; None when it is already
        done or failed (a duplicate delivery)."""
        with self.sessions.begin() as session:
            row = session.get(TrainedModel, model_id, with_for_update=True)
            if row is None or row.status not in ACTIVE:
                return None
            row.status = "running"
            row.progress = 0.0
            row.attempts += 1
            row.started_at = utc_now()
            return row

    def progress(self, ids: Sequence[int], share: float) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(TrainedModel)
                .where(TrainedModel.id.in_(list(ids)), TrainedModel.status == "running")
                .values(progress=round(100.0 * share, 1))
            )

    def fail(self, ids: Sequence[int], error: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(TrainedModel)
                .where(TrainedModel.id.in_(list(ids)), TrainedModel.status.in_(ACTIVE))
                .values(status="failed", error=error, trained_at=utc_now())
            )

    def latest_done(self, key: str, metric: str, kind: str) -> TrainedModel | None:
        with self.sessions() as session:
            return session.scalar(
                select(TrainedModel)
                .where(
                    TrainedModel.experiment_key == key,
                    TrainedModel.metric == metric,
                    TrainedModel.kind == kind,
                    TrainedModel.status == "done",
                )
                .order_by(TrainedModel.id.desc())
                .limit(1)
            )

    def in_use(self, key: str, metric: str) -> TrainedModel | None:
        with self.sessions() as session:
            return session.scalar(
                select(TrainedModel).where(
                    TrainedModel.experiment_key == key,
                    TrainedModel.metric == metric,
                    TrainedModel.in_use,
                )
            )

    def histories(self) -> dict[tuple[str, str, str], History]:
        """Per (experiment, metric, kind): when the newest finished training finished and the
        units the newest done one saw (for the scheduler)."""
        with self.sessions() as session:
            rows = session.execute(
                text(
                    "SELECT experiment_key, metric, kind, "
                    "max(trained_at) FILTER (WHERE status IN ('done', 'failed')) AS finished_at, "
                    "(array_agg(coalesce(experiment_units, rows) ORDER BY id DESC) "
                    "FILTER (WHERE status = 'done'))[1] AS done_units "
                    "FROM trained_models GROUP BY experiment_key, metric, kind"
                )
            )
            return {
                (str(k), str(m), str(kind)): History(finished, None if n is None else int(n))
                for k, m, kind, finished, n in rows
            }

    def active(self) -> set[tuple[str, str]]:
        """(experiment, metric) pairs with a training queued or running."""
        with self.sessions() as session:
            rows = session.execute(
                select(TrainedModel.experiment_key, TrainedModel.metric)
                .where(TrainedModel.status.in_(ACTIVE))
                .distinct()
            )
            return {(str(k), str(m)) for k, m in rows}

    def task_rows(self, task_id: str) -> list[int]:
        """The catalogue rows queued for the task ``task_id``."""
        with self.sessions() as session:
            return list(
                session.scalars(select(TrainedModel.id).where(TrainedModel.task_id == task_id))
            )

    def fail_queued_before(self, cutoff: datetime, error: str, now: datetime) -> int:
        """Mark failed (with ``error``, at ``now``) the trainings queued or running that were
        queued before ``cutoff``; how many."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(TrainedModel)
                .where(TrainedModel.status.in_(ACTIVE), TrainedModel.queued_at < cutoff)
                .values(status="failed", error=error, trained_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def counts_by_status(self) -> dict[str, int]:
        with self.sessions() as session:
            rows = session.execute(
                select(TrainedModel.status, func.count()).group_by(TrainedModel.status)
            )
            return {str(s): int(n) for s, n in rows}

    def complete(
        self,
        figures: dict[int, dict[str, Any]],
        chosen: int | None = None,
        key: str = "",
        metric: str = "",
        units: Sequence[str] = (),
        predictions: Sequence[float] = (),
        family: str = "",
    ) -> None:
        """Record finished trainings (``figures`` per model id, each with its ``status``) and,
        when ``chosen`` is given, make it the version in use with these predictions -- all in
        ONE transaction: readers see the old version's predictions or the new one's, never a
        mix, and a crash before the commit leaves the previous version in use and every
        training still ``running`` (so a re-delivered task runs them again)."""
        now = utc_now()
        with self.engine.begin() as connection:
            for model_id, values in figures.items():
                connection.execute(
                    update(TrainedModel)
                    .where(TrainedModel.id == model_id)
                    .values(trained_at=now, progress=100.0, **values)
                )
            if chosen is None:
                return
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:lock))"),
                {"lock": f"splitlab.cupac:{key}:{metric}"},
            )
            connection.execute(
                text("DELETE FROM cupac_predictions WHERE experiment_key = :k AND metric = :m"),
                {"k": key, "m": metric},
            )
            buffer = io.StringIO()
            stamp = now.isoformat()
            for unit, prediction in zip(units, predictions, strict=True):
                buffer.write(
                    f"{_copy_text(key)}\t{_copy_text(metric)}\t{_copy_text(unit)}\t"
                    f"{float(prediction)!r}\t{family}\t{stamp}\t{chosen}\n"
                )
            buffer.seek(0)
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.copy_expert(
                "COPY cupac_predictions (experiment_key, metric, unit_id, prediction, model, "
                "computed_at, model_id) FROM STDIN",
                buffer,
            )
            connection.execute(
                update(TrainedModel)
                .where(
                    TrainedModel.experiment_key == key,
                    TrainedModel.metric == metric,
                    TrainedModel.in_use,
                    TrainedModel.id != chosen,
                )
                .values(in_use=False)
            )
            connection.execute(
                update(TrainedModel)
                .where(TrainedModel.id == chosen)
                .values(in_use=True, predicted_units=len(units))
            )


def _copy_text(value: str) -> str:
    """A value in COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )

"""Postgres access of the analyzer: metric definitions, unit features, CUPAC predictions, its
own actions, and read-only experiment definitions.

Experiments are read straight from the registry's table (``experiments``, owned by the
assignment service) rather than over HTTP: the analyzer needs them on every refresh, the table
is the registry's source of truth, and reads cannot break the registry's rules. Every *change*
to an experiment (pausing it) goes through the assignment service's API.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.storage.models import (
    AllocationPeriod,
    AnalyzerAction,
    Experiment,
    MetricDefinition,
)
from splitlab_analyzer.definitions import MetricDef


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_def(row: MetricDefinition) -> MetricDef:
    return MetricDef(
        name=row.name,
        source=row.source,  # type: ignore[arg-type]
        outcome_type=row.outcome_type,
        aggregation=row.aggregation,  # type: ignore[arg-type]
        numerator=row.numerator,
        denominator=row.denominator,
        direction=row.direction,  # type: ignore[arg-type]
        guardrail_margin=row.guardrail_margin,
        attribution_window_seconds=row.attribution_window_seconds,
        pre_period_days=row.pre_period_days,
        covariates=tuple(row.covariates or ()),
        description=row.description,
        deprecated_at=row.deprecated_at,
        deprecation_reason=row.deprecation_reason or "",
        test=row.test,  # type: ignore[arg-type]
        quantile=row.quantile,
        in_experiment_covariates=tuple(row.in_experiment_covariates or ()),
    )


class MetricRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, name: str) -> MetricDef | None:
        with self.sessions() as session:
            row = session.get(MetricDefinition, name)
            return None if row is None else to_def(row)

    def all(self) -> list[MetricDef]:
        with self.sessions() as session:
            rows = session.scalars(select(MetricDefinition).order_by(MetricDefinition.name))
            return [to_def(r) for r in rows]

    def many(self, names: Iterable[str]) -> dict[str, MetricDef]:
        wanted = list(set(names))
        with self.sessions() as session:
            rows = session.scalars(
                select(MetricDefinition).where(MetricDefinition.name.in_(wanted))
            )
            return {r.name: to_def(r) for r in rows}

    def with_parts(self, names: Iterable[str]) -> dict[str, MetricDef]:
        """The definitions of ``names`` and of the numerators and denominators of the ratio
        metrics among them, in one statement."""
        wanted = list(set(names))
        named = MetricDefinition.name.in_(wanted)
        parts = (
            select(MetricDefinition.numerator).where(named),
            select(MetricDefinition.denominator).where(named),
        )
        with self.sessions() as session:
            rows = session.scalars(
                select(MetricDefinition).where(
                    or_(named, *(MetricDefinition.name.in_(p) for p in parts))
                )
            )
            return {r.name: to_def(r) for r in rows}

    def create(self, metric: MetricDef) -> bool:
        """Insert; False when the name is taken."""
        now = utc_now()
        with self.sessions.begin() as session:
            result = session.execute(
                insert(MetricDefinition)
                .values(
                    name=metric.name,
                    description=metric.description,
                    source=metric.source,
                    outcome_type=metric.outcome_type,
                    aggregation=metric.aggregation,
                    numerator=metric.numerator,
                    denominator=metric.denominator,
                    direction=metric.direction,
                    guardrail_margin=metric.guardrail_margin,
                    attribution_window_seconds=metric.attribution_window_seconds,
                    pre_period_days=metric.pre_period_days,
                    covariates=list(metric.covariates),
                    test=metric.test,
                    quantile=metric.quantile,
                    in_experiment_covariates=list(metric.in_experiment_covariates),
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def update(self, metric: MetricDef) -> MetricDef | None:
        """Replace the stored definition's fields (not its name or deprecation); None when no
        metric has the name."""
        with self.sessions.begin() as session:
            row = session.get(MetricDefinition, metric.name, with_for_update=True)
            if row is None:
                return None
            row.description = metric.description
            row.source = metric.source
            row.outcome_type = metric.outcome_type
            row.aggregation = metric.aggregation
            row.numerator = metric.numerator
            row.denominator = metric.denominator
            row.direction = metric.direction
            row.guardrail_margin = metric.guardrail_margin
            row.attribution_window_seconds = metric.attribution_window_seconds
            row.pre_period_days = metric.pre_period_days
            row.covariates = list(metric.covariates)
            row.test = metric.test
            row.quantile = metric.quantile
            row.in_experiment_covariates = list(metric.in_experiment_covariates)
            row.updated_at = utc_now()
            session.flush()
            return to_def(row)

    def deprecate(self, name: str, reason: str) -> MetricDef | None:
        """Mark deprecated now (once: a second call keeps the first time and reason); None when
        no metric has the name."""
        with self.sessions.begin() as session:
            row = session.get(MetricDefinition, name, with_for_update=True)
            if row is None:
                return None
            if row.deprecated_at is None:
                row.deprecated_at = utc_now()
                row.deprecation_reason = reason
                row.updated_at = row.deprecated_at
                session.flush()
            return to_def(row)

    def ratios_using(self, name: str) -> list[str]:
        """Ratio metrics whose numerator or denominator is ``name``."""
        with self.sessions() as session:
            rows = session.scalars(
                select(MetricDefinition.name).where(
                    (MetricDefinition.numerator == name) | (MetricDefinition.denominator == name)
                )
            )
            return sorted(rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
"""What COPY's text format needs escaped in a value (a raw carriage return ends the row)."""


@dataclass(frozen=True)
class FeatureRow:
    unit_id: str
    name: str
    observed_at: datetime
    value: float


class FeatureRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, rows: Sequence[FeatureRow]) -> int:
        """Upsert feature values (a re-load of the same file changes nothing); returns rows."""
        if not rows:
            return 0
        buffer = io.StringIO()
        for r in rows:
            unit = r.unit_id.translate(_COPY_ESCAPES)
            name = r.name.translate(_COPY_ESCAPES)
            buffer.write(f"{unit}\t{name}\t{r.observed_at.isoformat()}\t{r.value!r}\n")
        buffer.seek(0)
        connection: Any = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_unit_features "
                "(LIKE unit_features) ON COMMIT DELETE ROWS"
            )
            cursor.copy_expert(
                "COPY stage_unit_features (unit_id, name, observed_at, value) FROM STDIN", buffer
            )
            cursor.execute(
                "INSERT INTO unit_features SELECT DISTINCT ON (unit_id, name, observed_at) * "
                "FROM stage_unit_features ON CONFLICT (unit_id, name, observed_at) "
                "DO UPDATE SET value = EXCLUDED.value"
            )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()
        return len(rows)

    def names(self) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(text("SELECT DISTINCT name FROM unit_features"))]


@dataclass(frozen=True)
class ExperimentInfo:
    """What the analyzer reads of an experiment definition."""

    key: str
    status: str
    variants: list[str]
    weights: dict[str, float]
    primary: str
    secondary: list[str]
    guardrails: dict[str, float]
    alpha: float
    power: float
    mde: float | None
    planned_sample_size: int | None
    auto_stop: bool
    started_at: datetime | None
    updated_at: datetime | None = None
    models: dict[str, str] = field(default_factory=dict)
    """Variant -> model name, for variants served through ``/predict``."""
    owner: str = ""
    """The owning team (routes the experiment's alerts: docs/operations.md)."""

    @property
    def control(self) -> str:
        return self.variants[0]

    @property
    def shadow_variants(self) -> list[str]:
        """Variants of weight 0 (docs/router.md: they get no units; their model sees copies of
        the requests): reported apart, never in SRM or comparisons."""
        return [v for v in self.variants[1:] if self.weights.get(v, 0.0) <= 0.0]

    @property
    def analyzed_variants(self) -> list[str]:
        """Control and the treatments that take units."""
        shadows = set(self.shadow_variants)
        return [v for v in self.variants if v not in shadows]

    @property
    def analyzed_weights(self) -> dict[str, float]:
        return {v: self.weights[v] for v in self.analyzed_variants}

    @property
    def metric_names(self) -> list[str]:
        names = [self.primary, *self.secondary, *self.guardrails]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class PeriodInfo:
    """One allocation period of an experiment (the registry's ``allocation_periods``)."""

    period: int
    started_at: datetime
    weights: dict[str, float]
    coverage: float
    changes: list[str]


def to_info(row: Experiment) -> ExperimentInfo:
    metrics = row.metrics or {}
    return ExperimentInfo(
        key=row.key,
        status=row.status,
        variants=[str(v["key"]) for v in row.variants],
        weights={str(v["key"]): float(v["weight"]) for v in row.variants},
        primary=str(metrics.get("primary")),
        secondary=[str(m) for m in metrics.get("secondary", [])],
        guardrails={str(g["metric"]): float(g["margin"]) for g in metrics.get("guardrails", [])},
        alpha=row.alpha,
        power=row.power,
        mde=row.mde,
        planned_sample_size=row.planned_sample_size,
        auto_stop=row.auto_stop,
        started_at=row.started_at,
        updated_at=row.updated_at,
        models={str(v["key"]): str(v["model"]) for v in row.variants if v.get("model")},
        owner=row.owner or "",
    )


class ExperimentRepository:
    """Read-only view of the registry's ``experiments`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, key: str) -> ExperimentInfo | None:
        with self.sessions() as session:
            row = session.scalar(select(Experiment).where(Experiment.key == key))
            return None if row is None else to_info(row)

    def running(self) -> list[ExperimentInfo]:
        return self.with_status("running")

    def with_status(self, *statuses: str) -> list[ExperimentInfo]:
        with self.sessions() as session:
            rows = session.scalars(select(Experiment).where(Experiment.status.in_(statuses)))
            return [to_info(r) for r in rows]

    def periods(self, key: str) -> list[PeriodInfo]:
        """The experiment's allocation periods, in order (empty before its start)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(AllocationPeriod)
                .where(AllocationPeriod.experiment_key == key)
                .order_by(AllocationPeriod.period)
            )
            return [
                PeriodInfo(
                    r.period,
                    r.started_at,
                    {str(k): float(v) for k, v in r.weights.items()},
                    r.coverage,
                    [str(c) for c in r.changes or ()],
                )
                for r in rows
            ]


class ActionRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(
        self, key: str, action: str, reason: str, evidence: dict[str, Any], outcome: str
    ) -> None:
        with self.sessions.begin() as session:
            session.add(
                AnalyzerAction(
                    experiment_key=key,
                    action=action,
                    reason=reason,
                    evidence=evidence,
                    outcome=outcome,
                    at=utc_now(),
                )
            )

    def last_pause(self, key: str) -> datetime | None:
        """When the analyzer last paused the experiment successfully (None: never)."""
        with self.sessions() as session:
            return session.scalar(
                select(AnalyzerAction.at)
                .where(
                    AnalyzerAction.experiment_key == key,
                    AnalyzerAction.action == "pause",
                    AnalyzerAction.outcome == "paused",
                )
                .order_by(AnalyzerAction.at.desc())
                .limit(1)
            )

    def list(self, key: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.scalars(
                select(AnalyzerAction)
                .where(AnalyzerAction.experiment_key == key)
                .order_by(AnalyzerAction.at.desc(), AnalyzerAction.id.desc())
                .limit(limit)
            )
            return [
                {
                    "experiment_key": r.experiment_key,
                    "action": r.action,
                    "reason": r.reason,
                    "evidence": r.evidence,
                    "outcome": r.outcome,
                    "at": r.at.isoformat(),
                }
                for r in rows
            ]


STALE_FACTOR = 2.0
"""A model version older than this many schedule periods is flagged stale."""


class CupacRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def metrics_with_predictions(self, key: str) -> frozenset[str]:
        with self.engine.connect() as c:
            rows = c.execute(
                text("SELECT DISTINCT metric FROM cupac_predictions WHERE experiment_key = :k"),
                {"k": key},
            )
            return frozenset(r[0] for r in rows)

    def models_in_use(self, key: str) -> dict[str, dict[str, Any]]:
        """Per metric: the trainer's model version whose predictions ``cupac_predictions``
        holds (id, kind, family, R^2, when trained, its age and schedule; ``stale`` when it is
        older than twice its schedule while the experiment runs, one missed run allowed)."""
        with self.engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT m.metric, m.id, m.kind, m.family, m.r2, m.trained_at, "
                    "m.schedule_seconds, extract(epoch FROM now() - m.trained_at) AS age, "
                    "e.status = 'running' AS running FROM trained_models m "
                    "LEFT JOIN experiments e ON e.key = m.experiment_key "
                    "WHERE m.experiment_key = :k AND m.in_use ORDER BY m.metric"
                ),
                {"k": key},
            ).mappings()
            return {
                r["metric"]: {
                    "model_id": r["id"],
                    "kind": r["kind"],
                    "family": r["family"],
                    "r2": r["r2"],
                    "trained_at": r["trained_at"].isoformat(),
                    "age_seconds": round(float(r["age"]), 3),
                    "schedule_seconds": r["schedule_seconds"],
                    "stale": bool(r["running"])
                    and float(r["age"]) > STALE_FACTOR * r["schedule_seconds"],
                }
                for r in rows
            }

"""SQLAlchemy 2.0 models: the single owner of SplitLab's Postgres schema.

Alembic migrations in ``splitlab/platform/storage/migrations`` move a database to match these
models; ``tests/integration/test_migrations.py`` checks that head and the models agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
    }


class EventColumns:
    """Columns every event carries (ARCHITECTURE.md, event contract). ``event_id`` is the
    idempotency key: sinks insert with ``ON CONFLICT (event_id) DO NOTHING``."""

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    unit_id: Mapped[str] = mapped_column(Text)


class Exposure(EventColumns, Base):
    __tablename__ = "exposures"

    experiment_key: Mapped[str] = mapped_column(Text)
    variant: Mapped[str] = mapped_column(Text)
    bucket_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allocation_period: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The experiment's allocation period the exposure was decided in (0 for events that
    predate periods)."""

    __table_args__ = (Index(None, "experiment_key", "unit_id", "occurred_at"),)


class Prediction(EventColumns, Base):
    __tablename__ = "predictions"

    experiment_key: Mapped[str] = mapped_column(Text)
    variant: Mapped[str] = mapped_column(Text)
    bucket_version: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(Text)
    shadow: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    prediction: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    fallback: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index(None, "experiment_key", "unit_id", "occurred_at"),
        Index(None, "request_id"),
    )


class Outcome(EventColumns, Base):
    __tablename__ = "outcomes"

    request_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome_type: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index(None, "unit_id", "outcome_type", "occurred_at"),
        # Rows beyond splitlab.contracts.values.MAX_ABS_VALUE (stored before the limit): the
        # results leave them out and count them through this index.
        Index("ix_outcomes_beyond_limit", "unit_id", postgresql_where=text("abs(value) > 1e12")),
    )


class Experiment(Base):
    """One experiment of the registry (the assignment service owns writes). ``version`` grows by
    one with every change, so replicas reload only what changed."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(Text, index=True)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    coverage: Mapped[float] = mapped_column(Float)
    hash_seed: Mapped[str | None] = mapped_column(Text, nullable=True)
    hash_version: Mapped[int] = mapped_column(Integer)
    hash_attribute: Mapped[str] = mapped_column(Text)
    namespace: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    targeting: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    segment_attributes: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    """Request attributes every exposure records beside the targeting ones (segments)."""
    metrics: Mapped[dict[str, Any]] = mapped_column()
    alpha: Mapped[float] = mapped_column(Float)
    power: Mapped[float] = mapped_column(Float)
    mde: Mapped[float | None] = mapped_column(Float, nullable=True)
    planned_sample_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    auto_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    bucket_version: Mapped[int] = mapped_column(Integer, default=0)
    min_bucket_version: Mapped[int] = mapped_column(Integer, default=0)
    allocation_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Grows by one with every change after the start that could make a unit's sticky record
    differ from what hashing now gives it (weights, narrowing, bucket versions...); while it is
    0 hashing alone is every unit's record, so ``/assign`` need not read Redis."""
    allocation_period: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The current allocation period (``allocation_periods``): 0 from the start, one more with
    every change of a bucketing setting after it (weights, coverage, namespace, targeting,
    bucket versions). Exposures carry it, so analyses know each unit's split."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AllocationPeriod(Base):
    """One allocation period of an experiment: from ``started_at`` until the next period's,
    new units were assigned with ``weights`` (variant key -> configured weight) and
    ``coverage``; ``changes`` names the settings whose change began it (empty for period 0)."""

    __tablename__ = "allocation_periods"

    experiment_key: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    weights: Mapped[dict[str, float]] = mapped_column(JSONB)
    coverage: Mapped[float] = mapped_column(Float)
    changes: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")


class ExperimentAuditEntry(Base):
    """Every change to an experiment: who, when, which action, the state before and after."""

    __tablename__ = "experiment_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_key: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    before: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    after: Mapped[dict[str, Any]] = mapped_column()
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)

    __table_args__ = (Index(None, "experiment_key", "at"),)


class MetricDefinition(Base):
    """How the analyzer turns events into one number per unit (the analyzer owns writes).

    A plain metric has a ``source`` (``outcome`` with its ``outcome_type``, ``prediction_latency``
    or ``prediction_error``) and an ``aggregation`` per unit (sum, count, any, mean); a ratio
    metric names a ``numerator`` and a ``denominator`` metric instead.
    """

    __tablename__ = "metric_definitions"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome_type: Mapped[str | None] = mapped_column(Text, nullable=True)
    aggregation: Mapped[str | None] = mapped_column(Text, nullable=True)
    numerator: Mapped[str | None] = mapped_column(Text, nullable=True)
    denominator: Mapped[str | None] = mapped_column(Text, nullable=True)
    direction: Mapped[str] = mapped_column(Text)
    guardrail_margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    attribution_window_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    pre_period_days: Mapped[float] = mapped_column(Float)
    covariates: Mapped[list[str]] = mapped_column(JSONB, default=list)
    in_experiment_covariates: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    """Features observed during the experiment (CUNOPAC), balance-checked before use."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deprecated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set once the metric is deprecated: kept for running experiments, refused in new ratios."""
    deprecation_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    test: Mapped[str] = mapped_column(Text, default="welch", server_default="welch")
    """The metric's test (``splitlab.core.stats.metric_tests.TESTS``)."""
    quantile: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The quantile a bootstrap test compares (None: the median)."""


class UnitFeature(Base):
    """Pre-exposure covariates: a unit's feature value as observed at a time."""

    __tablename__ = "unit_features"

    unit_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index(
            "ix_unit_features_beyond_limit", "unit_id", postgresql_where=text("abs(value) > 1e12")
        ),
    )


class ExperimentUnit(Base):
    """The first exposure of a unit in an experiment (earliest ``occurred_at``, then event
    id): its variant and start. Kept by the analyzer's consumer at ingestion, so results never
    search the raw exposures for it."""

    __tablename__ = "experiment_units"

    experiment_key: Mapped[str] = mapped_column(Text, primary_key=True)
    unit_id: Mapped[str] = mapped_column(Text, primary_key=True)
    variant: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_event_id: Mapped[uuid.UUID] = mapped_column()
    allocation_period: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The allocation period of the first exposure: the split the unit was assigned with."""
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    """The first exposure's attributes: the unit's segment in the results by segment
    (stable, cannot be moved by the treatment)."""


class ExperimentRollup(Base):
    """Which per-unit slots ``unit_rollups`` holds for an experiment (the analyzer's rollup
    plan, identified by ``digest``), and when they were built (NULL: being built)."""

    __tablename__ = "experiment_rollups"

    experiment_key: Mapped[str] = mapped_column(Text, primary_key=True)
    digest: Mapped[str] = mapped_column(Text)
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


ROLLUP_SLOTS = 16
"""Slot columns of ``unit_rollups``: ``n0..n15`` (events in the slot's window) and
``s0..s15`` (the sum of their values); a plan uses the first ones."""

unit_rollups = Table(
    "unit_rollups",
    Base.metadata,
    Column("experiment_key", Text, primary_key=True),
    Column("unit_id", Text, primary_key=True),
    Column("variant", Text, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("allocation_period", Integer, nullable=False, server_default="0"),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    *(Column(f"n{i}", Integer, nullable=True) for i in range(ROLLUP_SLOTS)),
    *(Column(f"s{i}", Float, nullable=True) for i in range(ROLLUP_SLOTS)),
)
"""Per (experiment, unit) with a stored plan: the unit's first exposure and its slots, as of
the last catch-up (see ``rollup_backlog``). A Core table: its slot columns are numbered."""

rollup_backlog = Table(
    "rollup_backlog",
    Base.metadata,
    Column("unit_id", Text, nullable=False),
)
"""Units with events written since the last rollup catch-up (appended by the analyzer's
consumer while any rollups are stored, deleted by the catch-up that recomputed them). An
append-only log: no key, duplicates allowed."""


class CupacPrediction(Base):
    """CUPAC covariates: one out-of-fold prediction of a metric per unit of an experiment."""

    __tablename__ = "cupac_predictions"

    experiment_key: Mapped[str] = mapped_column(Text, primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    unit_id: Mapped[str] = mapped_column(Text, primary_key=True)
    prediction: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The ``trained_models`` row (the version) that made the prediction; NULL for predictions
    written before the trainer kept a catalogue."""


class TrainingEntity(Base):
    """A named scope experiments belong to (a market, a product surface) and its model spec:
    extra features, candidate families, retraining frequency per model kind (the trainer owns
    writes). Experiments in no entity use the ``default`` spec from the settings."""

    __tablename__ = "training_entities"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    experiments: Mapped[list[str]] = mapped_column(JSONB, default=list)
    features: Mapped[list[str]] = mapped_column(JSONB, default=list)
    families: Mapped[list[str]] = mapped_column(JSONB)
    in_experiment_every_seconds: Mapped[float] = mapped_column(Float)
    pre_experiment_every_seconds: Mapped[float] = mapped_column(Float)
    history_days: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrainedModel(Base):
    """The model catalogue: one row per training of one kind (``in_experiment`` cross-fitted,
    ``pre_experiment`` fitted on history) for an experiment's metric; its id is the version.
    ``in_use`` marks the version whose predictions ``cupac_predictions`` holds (at most one per
    experiment and metric)."""

    __tablename__ = "trained_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(Text)
    experiment_key: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    task_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    family: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    features: Mapped[list[str]] = mapped_column(JSONB, default=list)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    r2: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Out-of-fold R^2 (in-experiment) or R^2 on the experiment's units (pre-experiment)."""
    r2_candidates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schedule_seconds: Mapped[float] = mapped_column(Float)
    """The entity's frequency for this kind when it trained: older than that, it is stale."""
    cutoff_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Pre-experiment: features as of this time, the metric over the window after it."""
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """Pre-experiment: the fitted model and its imputation means (joblib), to predict units
    exposed later without refitting. Written and read by the trainer only."""
    predicted_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    experiment_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The experiment's units when it trained (the scheduler retrains only when units grew)."""
    in_use: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    trained_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(None, "experiment_key", "metric", "id"),
        Index(
            "uq_trained_models_in_use",
            "experiment_key",
            "metric",
            unique=True,
            postgresql_where=text("in_use"),
        ),
    )


class AnalyzerAction(Base):
    """What the analyzer did on its own (flag, pause) and the evidence it acted on."""

    __tablename__ = "analyzer_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_key: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column()
    outcome: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "experiment_key", "at"),)


class ResultsSnapshot(Base):
    """The results of one experiment as a scheduled refresh (or its stop) found them; its
    per-metric, per-variant numbers are in ``results_snapshot_metrics``."""

    __tablename__ = "results_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_key: Mapped[str] = mapped_column(Text)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    """``refresh`` (the scheduled pass) or ``stop`` (the experiment's final results)."""
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    units: Mapped[dict[str, Any]] = mapped_column()
    """Units per analyzed variant."""
    srm_p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    decisions: Mapped[dict[str, Any]] = mapped_column()
    """Per treatment: the decision's ``action`` and ``reasons``."""

    __table_args__ = (Index(None, "experiment_key", "taken_at"),)


class ResultsSnapshotMetric(Base):
    """One metric and treatment of a snapshot: the fixed-horizon comparison with control and
    the always-valid confidence sequence at that moment."""

    __tablename__ = "results_snapshot_metrics"

    snapshot_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("results_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    variant: Mapped[str] = mapped_column(Text, primary_key=True)
    method: Mapped[str] = mapped_column(Text)
    variance_reduction: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_control: Mapped[int] = mapped_column(Integer)
    n_treatment: Mapped[int] = mapped_column(Integer)
    mean_control: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_treatment: Mapped[float | None] = mapped_column(Float, nullable=True)
    effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    cs_lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    cs_upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    always_valid_p_value: Mapped[float | None] = mapped_column(Float, nullable=True)


class RegisteredModel(Base):
    """One version of a model the router can serve (the router owns writes). A registered
    version never changes; ``name:version`` is what an experiment variant's ``model`` names.

    ``flavor`` is ``sklearn`` (``artifact`` is a skops or joblib file in the model store) or
    ``http`` (``url`` of a remote model server, called with ``timeout_ms``).
    """

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    flavor: Mapped[str] = mapped_column(Text)
    artifact: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    timeout_ms: Mapped[int] = mapped_column(Integer)
    input_schema: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    model_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("name", "version"),)


class ModelArtifact(Base):
    """An uploaded model file (``POST /models`` with a file), by its sha256: in Postgres so that
    every router replica reads it without a shared disk. A ``models`` row whose ``sha256`` is
    here loads from these bytes; any other sklearn row from the model store folder."""

    __tablename__ = "model_artifacts"

    sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

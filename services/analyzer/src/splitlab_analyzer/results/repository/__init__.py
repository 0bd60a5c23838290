"""The results path's Postgres: the one aggregate read and what sits beside it, and the history.

:meth:`ResultsRepository.read` runs the results query of
:mod:`splitlab_analyzer.results.repository.query` in one REPEATABLE READ transaction (its
settings, the aggregation, the count of values left out for being beyond the limit), from the
stored rollups when they are built for the query's plan and caught up, else from the events.
The services call these methods; no other module of the results path executes SQL (the holdout
impact's read is :mod:`splitlab_analyzer.results.repository.holdout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.storage.models import ResultsSnapshot, ResultsSnapshotMetric
from splitlab_analyzer.results.history import Snapshot, SnapshotRow, snapshot_of
from splitlab_analyzer.results.repository.query import ResultsQuery
from splitlab_analyzer.results.unit_values import unit_values
from splitlab_analyzer.rollups.repository import built_digest, count_units

if TYPE_CHECKING:
    from splitlab_analyzer.results.service import Results


@dataclass(frozen=True)
class AggregateRead:
    """What the one aggregate read returned."""

    rows: list[dict[str, Any]]
    """The results query's rows (analyzed and shadow variants)."""
    rollups: bool
    """True when the per-unit values came from the stored rollups, False from the events."""
    excluded: dict[str, int]
    """Stored values beyond the value limit that the query left out, per table."""
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per metric whose test needs every unit's value, per variant: the values
    (:mod:`splitlab_analyzer.results.unit_values`)."""


@dataclass(frozen=True)
class FallbackCount:
    """A variant's non-shadow predictions and how many of them fell back to control's model."""

    predictions: int
    fallbacks: int


class ResultsRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self, query: ResultsQuery, *, rollups_current: bool) -> AggregateRead:
        """The aggregates of ``query`` in one snapshot (REPEATABLE READ). ``rollups_current``:
        the stored rollups were just caught up, so they are read when built for the query's
        plan (checked again inside the snapshot); else the events are."""
        key = query.experiment_key
        with self.engine.connect().execution_options(
            isolation_level="REPEATABLE READ"
        ) as connection:
            rollups = rollups_current and built_digest(connection, key) == query.plan.digest
            units = 0 if rollups else count_units(connection, key)
            for statement in query.settings_sql(rollups, units):
                connection.execute(text(statement))
            sql = query.aggregate_sql(rollups)
            rows = [dict(r) for r in connection.execute(text(sql), query.params).mappings()]
            excluded = connection.execute(text(query.excluded_sql()), query.params).mappings()
            beyond = {str(k): int(v) for k, v in excluded.one().items()}
            values = {}
            if query.per_unit_metrics:
                # the same snapshot: the values of the units the aggregates counted
                result = connection.execute(text(query.values_sql(rollups)), query.params)
                values = unit_values(result.all(), query.variants, query.per_unit_metrics)
        return AggregateRead(rows, rollups, beyond, values)

    def attribute_keys(self, key: str) -> list[str]:
        """The attribute names the experiment's units carry at their first exposure."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT DISTINCT jsonb_object_keys(attributes) FROM experiment_units "
                    "WHERE experiment_key = :k ORDER BY 1"
                ),
                {"k": key},
            )
            return [str(r[0]) for r in rows]

    def fallback_counts(self, key: str) -> Mapping[str, FallbackCount]:
        """Per variant served: non-shadow predictions of the experiment and how many of them
        fell back to control's model (the ``fallback`` column the router writes)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT variant, count(*), count(*) FILTER (WHERE fallback) FROM predictions "
                    "WHERE experiment_key = :k AND NOT shadow GROUP BY variant"
                ),
                {"k": key},
            )
            return {str(v): FallbackCount(int(total), int(fell)) for v, total, fell in rows}


class HistoryRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(self, key: str, results: Results, reason: str) -> Snapshot:
        """Store a snapshot of one computation's results, taken now."""
        snapshot = snapshot_of(key, results, reason, datetime.now(UTC))
        with self.sessions.begin() as session:
            row = ResultsSnapshot(
                experiment_key=key,
                taken_at=snapshot.taken_at,
                reason=reason,
                computed_at=snapshot.computed_at,
                units=snapshot.units,
                srm_p_value=snapshot.srm_p_value,
                decisions=snapshot.decisions,
            )
            session.add(row)
            session.flush()
            session.add_all(
                ResultsSnapshotMetric(snapshot_id=row.id, **asdict(m)) for m in snapshot.metrics
            )
        return snapshot

    def latest(self, keys: list[str]) -> dict[str, Snapshot]:
        """The newest snapshot (without its metric rows) of each of these experiments."""
        if not keys:
            return {}
        with self.sessions() as session:
            heads = session.scalars(
                select(ResultsSnapshot)
                .where(ResultsSnapshot.experiment_key.in_(keys))
                .order_by(
                    ResultsSnapshot.experiment_key,
                    ResultsSnapshot.taken_at.desc(),
                    ResultsSnapshot.id.desc(),
                )
                .ext(distinct_on(ResultsSnapshot.experiment_key))
            ).all()
            return {
                h.experiment_key: Snapshot(
                    experiment_key=h.experiment_key,
                    taken_at=h.taken_at,
                    reason=h.reason,
                    computed_at=h.computed_at,
                    units={str(k): int(v) for k, v in h.units.items()},
                    srm_p_value=h.srm_p_value,
                    decisions=dict(h.decisions),
                    metrics=[],
                )
                for h in heads
            }

    def snapshots(self, key: str) -> list[Snapshot]:
        """The experiment's snapshots, oldest first."""
        with self.sessions() as session:
            heads = session.scalars(
                select(ResultsSnapshot)
                .where(ResultsSnapshot.experiment_key == key)
                .order_by(ResultsSnapshot.taken_at, ResultsSnapshot.id)
            ).all()
            ids = [h.id for h in heads]
            metrics: dict[int, list[SnapshotRow]] = {i: [] for i in ids}
            if ids:
                for m in session.scalars(
                    select(ResultsSnapshotMetric)
                    .where(ResultsSnapshotMetric.snapshot_id.in_(ids))
                    .order_by(ResultsSnapshotMetric.metric, ResultsSnapshotMetric.variant)
                ):
                    metrics[m.snapshot_id].append(
                        SnapshotRow(**{f: getattr(m, f) for f in SnapshotRow.__dataclass_fields__})
                    )
            return [
                Snapshot(
                    experiment_key=h.experiment_key,
                    taken_at=h.taken_at,
                    reason=h.reason,
                    computed_at=h.computed_at,
                    units={str(k): int(v) for k, v in h.units.items()},
                    srm_p_value=h.srm_p_value,
                    decisions=dict(h.decisions),
                    metrics=metrics[h.id],
                )
                for h in heads
            ]

    def stop_pending(self, stopped: list[str]) -> list[str]:
        """Of these stopped experiments, those with snapshots but none taken at stop."""
        if not stopped:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(ResultsSnapshot.experiment_key)
                .where(ResultsSnapshot.experiment_key.in_(stopped))
                .group_by(ResultsSnapshot.experiment_key)
                .having(func.count().filter(ResultsSnapshot.reason == "stop") == 0)
            )
            return sorted(r[0] for r in rows)

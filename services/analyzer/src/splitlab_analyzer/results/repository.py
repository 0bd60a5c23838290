"""The results path's reads of Postgres: the one aggregate read and what sits beside it.

:meth:`ResultsRepository.read` runs the results query of :mod:`splitlab_analyzer.results.sql`
in one REPEATABLE READ transaction (its settings, the aggregation, the count of values left
out for being beyond the limit), from the stored rollups when they are built for the query's
plan and caught up, else from the events. The services call these methods; no other module of
the results path executes SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from splitlab_analyzer.results.sql import ResultsQuery
from splitlab_analyzer.rollups.store import built_digest, count_units


@dataclass(frozen=True)
class AggregateRead:
    """What the one aggregate read returned."""

    rows: list[dict[str, Any]]
    """The results query's rows (analyzed and shadow variants)."""
    rollups: bool
    """True when the per-unit values came from the stored rollups, False from the events."""
    excluded: dict[str, int]
    """Stored values beyond the value limit that the query left out, per table."""


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
        return AggregateRead(rows, rollups, beyond)

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

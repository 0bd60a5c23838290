"""Keeping ``experiment_units`` and ``unit_rollups`` in step with ingestion, inside the batch's
transaction (the consumer's sink calls this with its DBAPI cursor).

- ``experiment_units``: the first exposure per (experiment, unit), upserted from the batch's
  exposures with ``ON CONFLICT DO UPDATE ... WHERE`` the new one is earlier (by
  ``occurred_at``, then event id, as the results define it), so replays, duplicates and
  out-of-order exposures all leave the earliest one. Always maintained.
- ``unit_rollups``: per-unit slots of the experiments that have a stored plan
  (``experiment_rollups``). The batch's *new* outcomes and predictions (``RETURNING`` of the
  idempotent insert: a replayed event adds nothing) are added to their units' slots; a unit
  whose first exposure is new or moved earlier is recomputed from its events instead (its
  windows moved).

Exactness under concurrency: every batch transaction takes one transaction-level advisory lock
(:data:`ROLLUP_LOCK`) before it reads the plans, and so does a rollup build. Batches and builds
are therefore serialized, and each one's statements (READ COMMITTED) see everything committed
before it: an increment is applied on top of every earlier batch, a recompute sees every
committed event, a build sees every committed batch and no batch runs during it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from splitlab_analyzer.rollups.plan import RollupPlan
from splitlab_analyzer.rollups.sql import Binder, increment_sql, store_sql

ROLLUP_LOCK = 0x53504C54524F4C4C
"""Key of the transaction-level advisory lock shared by ingestion batches and rollup builds."""

NEW_OUTCOMES = "new_outcomes"
NEW_PREDICTIONS = "new_predictions"
MOVED_UNITS = "moved_units"

NEW_ROWS: dict[str, tuple[str, str]] = {
    # event table -> (temporary table of this batch's new rows, the columns it keeps)
    "outcomes": (NEW_OUTCOMES, "unit_id, occurred_at, outcome_type, value"),
    "predictions": (
        NEW_PREDICTIONS,
        "unit_id, occurred_at, experiment_key, shadow, latency_ms, error",
    ),
}


@dataclass(frozen=True)
class StoredPlan:
    experiment_key: str
    plan: RollupPlan


def first_exposures_sql(stage: str, returning: bool) -> str:
    """Upsert the earliest exposure per (experiment, unit) of staging table ``stage``."""
    upsert = (
        "INSERT INTO experiment_units (experiment_key, unit_id, variant, first_at, "
        "first_event_id) SELECT DISTINCT ON (experiment_key, unit_id) experiment_key, unit_id, "
        f"variant, occurred_at, event_id FROM {stage} "
        "ORDER BY experiment_key, unit_id, occurred_at, event_id "
        "ON CONFLICT (experiment_key, unit_id) DO UPDATE SET variant = excluded.variant, "
        "first_at = excluded.first_at, first_event_id = excluded.first_event_id "
        "WHERE (excluded.first_at, excluded.first_event_id) "
        "< (experiment_units.first_at, experiment_units.first_event_id)"
    )
    if not returning:
        return upsert
    return (
        f"WITH moved AS ({upsert} RETURNING experiment_key, unit_id) "
        f"INSERT INTO {MOVED_UNITS} SELECT experiment_key, unit_id FROM moved"
    )


class RollupMaintainer:
    """Stateless apart from a cache of generated SQL per (experiment, plan)."""

    def __init__(self) -> None:
        self._sql: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}

    def begin(self, cursor: Any) -> list[StoredPlan]:
        """Take the rollup lock; the stored plans (empty: nothing to maintain but first
        exposures). Call first in the batch's transaction."""
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
        cursor.execute("SELECT experiment_key, slots FROM experiment_rollups")
        plans = [StoredPlan(str(k), RollupPlan.from_json(v)) for k, v in cursor.fetchall()]
        if plans:
            for table, columns in (
                (NEW_OUTCOMES, "unit_id text, occurred_at timestamptz, outcome_type text, "
                 "value float8"),
                (NEW_PREDICTIONS, "unit_id text, occurred_at timestamptz, experiment_key text, "
                 "shadow boolean, latency_ms float8, error text"),
                (MOVED_UNITS, "experiment_key text, unit_id text"),
            ):  # fmt: skip
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
                )
        return plans

    @staticmethod
    def insert_sql(table: str, insert: str, plans: list[StoredPlan]) -> str:
        """The event insert, keeping its new rows when there are rollups to maintain."""
        if not plans or table not in NEW_ROWS:
            return insert
        new, columns = NEW_ROWS[table]
        return f"WITH ins AS ({insert} RETURNING {columns}) INSERT INTO {new} SELECT * FROM ins"

    @staticmethod
    def record_exposures(cursor: Any, stage: str, plans: list[StoredPlan]) -> None:
        cursor.execute(first_exposures_sql(stage, returning=bool(plans)))

    def apply(self, cursor: Any, plans: list[StoredPlan], *, events: bool, exposures: bool) -> None:
        """Bring the stored rollups up to date with this batch (after its inserts)."""
        for stored in plans:
            increment, store, params = self._statements(stored)
            if events:
                cursor.execute(increment, params)
            if exposures:
                cursor.execute(store, params)

    def _statements(self, stored: StoredPlan) -> tuple[str, str, dict[str, Any]]:
        cache_key = (stored.experiment_key, stored.plan.digest)
        if cache_key not in self._sql:
            bind = Binder("pyformat")
            key = bind("key", stored.experiment_key)
            increment = increment_sql(
                stored.plan, bind, key, outcomes=NEW_OUTCOMES, predictions=NEW_PREDICTIONS
            )
            moved = (
                f"experiment_units u JOIN {MOVED_UNITS} m "
                "ON m.experiment_key = u.experiment_key AND m.unit_id = u.unit_id"
            )
            store = store_sql(stored.plan, bind, key, units=moved)
            self._sql[cache_key] = (increment, store, bind.params)
        return self._sql[cache_key]

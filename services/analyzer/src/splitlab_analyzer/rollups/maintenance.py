"""What ingestion does for first exposures and rollups, inside the batch's transaction (the
consumer's sink runs these statements with its DBAPI cursor).

- ``experiment_units``: the first exposure per (experiment, unit) (its variant, time,
  allocation period and attributes, the unit's segment), upserted from the batch's
  exposures with ``ON CONFLICT DO UPDATE ... WHERE`` the new one is earlier (by
  ``occurred_at``, then event id, as the results define it), so replays, duplicates and
  out-of-order exposures all leave the earliest one. Always maintained.
- ``rollup_backlog``: while any rollups are stored, the units of the batch's events (every
  table) are appended; the next catch-up recomputes those units' rollups from their events
  (:mod:`splitlab_analyzer.rollups.store`). An append costs far less than updating a
  unit's rollups in place (measured: updating them in every batch cut ingestion from 0.31 to
  0.23-0.28 of a plain COPY), and a unit with many events between two catch-ups is
  recomputed once.

The batch holds :data:`INGEST_LOCK` in shared mode from before it asks whether rollups exist
until it commits; registering a new rollup plan takes it exclusively (for a moment), so every
batch either committed before the build's snapshot or saw the plan and wrote its backlog.
"""

from __future__ import annotations

from typing import Any

INGEST_LOCK = 0x53504C54494E4753
"""Advisory lock key: shared by ingestion batches, exclusive while a rollup plan registers."""


def begin(cursor: Any) -> bool:
    """Take the ingestion lock (shared); whether any rollups are stored (or being built).
    Call first in the batch's transaction."""
    cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (INGEST_LOCK,))
    cursor.execute("SELECT EXISTS (SELECT 1 FROM experiment_rollups)")
    return bool(cursor.fetchone()[0])


def first_exposures_sql(stage: str) -> str:
    """Upsert the earliest exposure per (experiment, unit) of the exposures in ``stage``."""
    return (
        "INSERT INTO experiment_units (experiment_key, unit_id, variant, first_at, "
        "first_event_id, allocation_period, attributes) "
        "SELECT DISTINCT ON (experiment_key, unit_id) "
        "experiment_key, unit_id, variant, occurred_at, event_id, allocation_period, "
        f"attributes FROM {stage} "
        "ORDER BY experiment_key, unit_id, occurred_at, event_id "
        "ON CONFLICT (experiment_key, unit_id) DO UPDATE SET variant = excluded.variant, "
        "first_at = excluded.first_at, first_event_id = excluded.first_event_id, "
        "allocation_period = excluded.allocation_period, attributes = excluded.attributes "
        "WHERE (excluded.first_at, excluded.first_event_id) "
        "< (experiment_units.first_at, experiment_units.first_event_id)"
    )


def backlog_sql(stage: str) -> str:
    """Append the units of the events in ``stage`` to the rollup backlog."""
    return f"INSERT INTO rollup_backlog (unit_id) SELECT DISTINCT unit_id FROM {stage}"

"""All SQL of the stored rollups (``experiment_rollups``, ``unit_rollups``,
``rollup_backlog``): the statements :mod:`splitlab_analyzer.rollups.store` runs to build,
catch up and drop them, the ones ingestion runs in its batch's transaction, and the SQL of
per-unit slots computed from the events (results without rollups, builds and catch-ups). The
callers decide what to do and when; this module says how to ask Postgres. Values are bind
parameters.

**Ingestion** (the consumer's sink runs these with its DBAPI cursor, inside the batch's
transaction):

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

**Per-unit slots from the events.**
One relation holds every event a slot may count: the outcomes and the experiment's
predictions, as a ``UNION ALL`` whose branches have no ``WHERE`` (the filters sit in the join
condition and fold to constants per branch), so Postgres flattens it and can drive index scans
into both tables for a few units (ingestion) or hash-join all of them (results, builds).
Window conditions become boolean columns computed once per joined row (``OFFSET 0`` keeps the
planner from copying them back into every aggregate's ``FILTER``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

from splitlab.contracts.values import MAX_ABS_VALUE
from splitlab_analyzer.rollups.plan import RollupPlan, Slot


@dataclass
class Binder:
    """Collects bind parameters; ``style`` is ``named`` (SQLAlchemy ``text``) or ``pyformat``
    (a DBAPI cursor). Equal values bound under the same prefix share one parameter."""

    style: str = "named"
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, prefix: str, value: Any) -> str:
        name = None
        for bound, existing in self.params.items():
            if bound.rstrip("0123456789") == prefix and existing == value:
                name = bound
                break
        if name is None:
            name = f"{prefix}{sum(1 for b in self.params if b.rstrip('0123456789') == prefix)}"
            self.params[name] = value
        return f":{name}" if self.style == "named" else f"%({name})s"


Bind = Callable[[str, Any], str]


def slot_condition(slot: Slot, bind: Bind, e: str = "e", first: str = "u.first_at") -> str:
    """Whether event ``e`` (a row of :func:`events_sql`) counts in ``slot`` for a unit whose
    first exposure is ``first``."""
    if slot.source == "outcome":
        stream = f"{e}.src = 0 AND {e}.outcome_type = {bind('ot', slot.outcome_type)}"
    else:
        stream = f"{e}.src = 1"
    t = f"{e}.occurred_at"
    if slot.kind == "pre":
        seconds = bind("pre", slot.seconds)
        window = f"{t} < {first} AND {t} >= {first} - make_interval(secs => {seconds})"
    elif slot.seconds is None:
        window = f"{t} >= {first}"
    else:
        seconds = bind("win", slot.seconds)
        window = f"{t} >= {first} AND {t} < {first} + make_interval(secs => {seconds})"
    return f"{stream} AND {window}"


def slot_value(slot: Slot) -> str:
    """The column of the joined rows a slot sums."""
    if slot.source == "outcome":
        return "value"
    return "latency_ms" if slot.source == "prediction_latency" else "err"


def events_sql(
    plan: RollupPlan, key: str, *, outcomes: str = "outcomes", predictions: str = "predictions"
) -> str:
    """The event relation of a plan (columns ``unit_id, occurred_at, src, outcome_type, value,
    latency_ms, err, experiment_key, shadow``); ``key`` is the bound experiment key. Filter it
    with :func:`events_condition` in the join."""
    branches = []
    if plan.outcome_types:
        branches.append(
            "SELECT unit_id, occurred_at, 0 AS src, outcome_type, value, "
            "NULL::float8 AS latency_ms, NULL::float8 AS err, "
            f"CAST({key} AS text) AS experiment_key, false AS shadow FROM {outcomes}"
        )
    if plan.uses_predictions:
        branches.append(
            "SELECT unit_id, occurred_at, 1 AS src, NULL::text AS outcome_type, "
            "NULL::float8 AS value, latency_ms, (error IS NOT NULL)::int::float8 AS err, "
            f"experiment_key, shadow FROM {predictions}"
        )
    return " UNION ALL ".join(branches)


def events_condition(plan: RollupPlan, bind: Bind, key: str, e: str = "e", u: str = "u") -> str:
    """Join condition of a unit ``u`` of experiment ``key`` (bound) with its events ``e``: its
    outcomes of the plan's types, its predictions in the experiment (never shadow ones), and
    only values within :data:`~splitlab.contracts.values.MAX_ABS_VALUE` (rows stored before the
    edges held that limit are left out, so one 1e308 cannot overflow a sum)."""
    parts = [f"{e}.unit_id = {u}.unit_id", f"{e}.experiment_key = {key}"]
    if plan.uses_predictions:
        parts.append(f"NOT {e}.shadow")
    if plan.outcome_types:
        types = f"{e}.outcome_type = ANY(CAST({bind('ots', plan.outcome_types)} AS text[]))"
        parts.append(f"({e}.src = 1 OR {types})" if plan.uses_predictions else types)
    parts.append(f"abs(coalesce({e}.value, {e}.latency_ms)) <= {bind('vmax', MAX_ABS_VALUE)}")
    return " AND ".join(parts)


def slot_aggregates(plan: RollupPlan, x: str = "x") -> list[str]:
    """``n{i}`` and ``s{i}`` of every slot over flagged rows ``x`` (``k{i}``)."""
    out = []
    for i, slot in enumerate(plan.slots):
        out.append(f"count(*) FILTER (WHERE {x}.k{i}) AS n{i}")
        out.append(f"coalesce(sum({x}.{slot_value(slot)}) FILTER (WHERE {x}.k{i}), 0) AS s{i}")
    return out


def flagged_rows(plan: RollupPlan, bind: Bind, units: str, events: str, key: str) -> str:
    """Units ``u`` (a relation with ``experiment_key, unit_id, variant, first_at,
    allocation_period``) joined with
    their events, one boolean ``k{i}`` per slot."""
    flags = ", ".join(f"{slot_condition(s, bind)} AS k{i}" for i, s in enumerate(plan.slots))
    return (
        "SELECT u.unit_id, u.variant, u.first_at, u.allocation_period, e.value, e.latency_ms, "
        "e.err, "
        f"{flags} FROM {units} LEFT JOIN ({events}) e ON {events_condition(plan, bind, key)} "
        f"WHERE u.experiment_key = {key} OFFSET 0"
    )


def unit_slots_sql(
    plan: RollupPlan, bind: Bind, key: str, units: str = "experiment_units u"
) -> str:
    """Per unit of the experiment: ``unit_id, variant, first_at, allocation_period, n0, s0,
    ...`` computed from the events. ``units`` may restrict the units with a join (ingestion:
    the moved units)."""
    rows = flagged_rows(plan, bind, units, events_sql(plan, key), key)
    return (
        f"SELECT x.unit_id, x.variant, x.first_at, x.allocation_period, "
        f"{', '.join(slot_aggregates(plan))} "
        f"FROM ({rows}) x GROUP BY x.unit_id, x.variant, x.first_at, x.allocation_period"
    )


def slot_columns(plan: RollupPlan) -> list[str]:
    return [c for i in range(len(plan.slots)) for c in (f"n{i}", f"s{i}")]


def store_sql(plan: RollupPlan, bind: Bind, key: str, units: str = "experiment_units u") -> str:
    """Insert (or replace) the rollups of the units of ``units`` computed from the events, with
    each unit's first-exposure attributes (what results by segment group by)."""
    columns = slot_columns(plan)
    replace = ", ".join(
        f"{c} = excluded.{c}"
        for c in ["variant", "first_at", "allocation_period", "attributes", *columns]
    )
    return (
        f"INSERT INTO unit_rollups (experiment_key, unit_id, variant, first_at, "
        f"allocation_period, attributes, {', '.join(columns)}) "
        f"SELECT {key}, a.unit_id, a.variant, a.first_at, a.allocation_period, eu.attributes, "
        f"{', '.join(f'a.{c}' for c in columns)} FROM ({unit_slots_sql(plan, bind, key, units)}) a "
        f"JOIN experiment_units eu ON eu.experiment_key = {key} AND eu.unit_id = a.unit_id "
        f"ON CONFLICT (experiment_key, unit_id) DO UPDATE SET {replace}"
    )


# --- ingestion (a DBAPI cursor inside the batch's transaction) ---

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


def record_first_exposures(cursor: Any, stage: str) -> None:
    cursor.execute(first_exposures_sql(stage))


def append_backlog(cursor: Any, stage: str) -> None:
    cursor.execute(backlog_sql(stage))


# --- builds, catch-ups and drops (a SQLAlchemy connection; the store holds the transaction) ---

BACKLOG_UNITS = (  # in key order: index pages are read in order
    "experiment_units u JOIN (SELECT DISTINCT unit_id FROM rollup_backlog "
    "ORDER BY unit_id) b ON b.unit_id = u.unit_id"
)
"""The units of the backlog, as the ``units`` relation of :func:`store_slots`."""


def count_units(connection: Connection, key: str) -> int:
    return int(
        connection.execute(
            text("SELECT count(*) FROM experiment_units WHERE experiment_key = :k"), {"k": key}
        ).scalar_one()
    )


def built_digest(connection: Connection, key: str) -> str | None:
    """The digest of the experiment's built rollups (None: none, or still being built)."""
    row = connection.execute(
        text(
            "SELECT digest FROM experiment_rollups WHERE experiment_key = :k "
            "AND built_at IS NOT NULL"
        ),
        {"k": key},
    ).first()
    return None if row is None else str(row[0])


def advisory_lock(connection: Connection, lock: int) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:lock)"), {"lock": lock})


def advisory_unlock(connection: Connection, lock: int) -> None:
    connection.execute(text("SELECT pg_advisory_unlock(:lock)"), {"lock": lock})


def lock_ingestion(connection: Connection) -> None:
    """Take :data:`INGEST_LOCK` exclusively until the transaction ends."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": INGEST_LOCK})


def rollup_keys(connection: Connection) -> list[str]:
    return [r[0] for r in connection.execute(text("SELECT experiment_key FROM experiment_rollups"))]


def register_plan(connection: Connection, key: str, digest: str, slots: str) -> None:
    """Register a plan (``slots``: its JSON) as not yet built."""
    connection.execute(
        text(
            "INSERT INTO experiment_rollups (experiment_key, digest, slots, built_at) "
            "VALUES (:k, :d, CAST(:s AS jsonb), NULL) ON CONFLICT (experiment_key) "
            "DO UPDATE SET digest = excluded.digest, slots = excluded.slots, "
            "built_at = NULL"
        ),
        {"k": key, "d": digest, "s": slots},
    )


def set_work_mem(connection: Connection, megabytes: int) -> None:
    connection.execute(text(f"SET LOCAL work_mem = '{megabytes}MB'"))


def disable_jit(connection: Connection) -> None:
    connection.execute(text("SET LOCAL jit = off"))


def delete_unit_rollups(connection: Connection, key: str) -> None:
    connection.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})


def store_slots(
    connection: Connection, plan: RollupPlan, key: str, units: str = "experiment_units u"
) -> None:
    """Store ``plan``'s slots for the units of ``units`` (:func:`store_sql`)."""
    bind = Binder("named")
    connection.execute(text(store_sql(plan, bind, bind("key", key), units=units)), bind.params)


def mark_built(connection: Connection, key: str, at: datetime) -> None:
    connection.execute(
        text("UPDATE experiment_rollups SET built_at = :t WHERE experiment_key = :k"),
        {"k": key, "t": at},
    )


def analyze_unit_rollups(connection: Connection) -> None:
    connection.execute(text("ANALYZE unit_rollups"))


def backlog_units(connection: Connection) -> int:
    return int(
        connection.execute(text("SELECT count(DISTINCT unit_id) FROM rollup_backlog")).scalar_one()
    )


def built_plans(connection: Connection) -> list[Row[str, Any]]:
    """``(experiment_key, slots)`` of every built plan."""
    return list(
        connection.execute(
            text("SELECT experiment_key, slots FROM experiment_rollups "
                 "WHERE built_at IS NOT NULL")
        ).all()
    )  # fmt: skip


def mark_unbuilt(connection: Connection, key: str) -> None:
    connection.execute(
        text("UPDATE experiment_rollups SET built_at = NULL WHERE experiment_key = :k"),
        {"k": key},
    )


def clear_backlog(connection: Connection) -> None:
    connection.execute(text("DELETE FROM rollup_backlog"))


def delete_rollups(connection: Connection, key: str) -> None:
    connection.execute(text("DELETE FROM experiment_rollups WHERE experiment_key = :k"), {"k": key})
    connection.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})

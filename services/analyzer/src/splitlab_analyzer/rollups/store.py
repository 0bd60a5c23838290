"""Building, catching up, checking and dropping stored rollups (``experiment_rollups``,
``unit_rollups``, ``rollup_backlog``).

- A **build** stores a plan's slots for every unit of an experiment. First the plan is
  registered (``built_at`` NULL) while holding the ingestion lock exclusively, so from then on
  every batch notes its units in the backlog; then, in one REPEATABLE READ snapshot taken
  after that, every unit's slots are computed from the events and ``built_at`` is set. A
  batch committed before the snapshot is in it; one committed after it is in the backlog.
- A **catch-up** brings every built plan up to date: in one REPEATABLE READ snapshot it reads
  the backlog, recomputes those units' slots from their events (every plan), and deletes the
  backlog rows it read (rows committed after its snapshot are invisible to it and stay for the
  next one). After it, each built plan's rollups equal the events as of its snapshot.

Builds, catch-ups and drops are serialized by a session-level advisory lock
(:data:`MAINTENANCE_LOCK`) taken *before* the snapshot, so a later one never works from an
older snapshot. Ingestion never waits for them (apart from a plan's registration).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from splitlab_analyzer.rollups.maintenance import INGEST_LOCK
from splitlab_analyzer.rollups.plan import RollupPlan
from splitlab_analyzer.rollups.sql import Binder, store_sql

logger = logging.getLogger(__name__)

MAINTENANCE_LOCK = 0x53504C54524F4C4C
"""Advisory lock key serializing rollup builds, catch-ups and drops (session level)."""

CATCH_UP_SECONDS = Histogram(
    "splitlab_analyzer_rollup_catch_up_seconds",
    "Time to catch the stored rollups up with the backlog (lock wait included).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CAUGHT_UP_UNITS = Counter(
    "splitlab_analyzer_rollup_caught_up_units_total",
    "Units whose rollups a catch-up recomputed.",
)
CATCH_UP_FAILURES = Counter(
    "splitlab_analyzer_rollup_catch_up_failures",
    "Catch-ups of one experiment's rollups that failed (the others went ahead; its rollups "
    "are rebuilt at its next refresh).",
    ["experiment"],
)

MAX_CATCH_UP_UNITS = 20_000
"""A results computation catches up at most this many backlog units (about 0.1 ms each when
their pages are not cached, measured on the 2-core bench machine); with a longer backlog it
computes from the events instead and leaves the catch-up to the next refresh."""

BYTES_PER_UNIT = 200
BYTES_PER_SLOT = 64
MIN_WORK_MEM_MB = 64
MAX_WORK_MEM_MB = 1024


def work_mem_mb(units: int, slots: int) -> int:
    """``work_mem`` for a per-unit aggregation of ``units`` units (a hash entry and its
    aggregate states per unit; Postgres 15's ``hash_mem_multiplier`` of 2 gives headroom)."""
    need = units * (BYTES_PER_UNIT + BYTES_PER_SLOT * slots) // (1024 * 1024)
    return max(MIN_WORK_MEM_MB, min(MAX_WORK_MEM_MB, need))


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


@dataclass(frozen=True)
class CatchUp:
    units: int
    """Distinct units in the backlog that was caught up."""
    seconds: float
    failed: tuple[str, ...] = ()
    """Experiments whose catch-up failed (their rollups were marked unbuilt)."""


class RollupStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def _maintenance(self) -> Iterator[Connection]:
        """A connection holding :data:`MAINTENANCE_LOCK`; its next transaction is REPEATABLE
        READ (its snapshot is taken after the lock)."""
        with self.engine.connect() as c:
            c.execute(text("SELECT pg_advisory_lock(:lock)"), {"lock": MAINTENANCE_LOCK})
            c.commit()
            try:
                yield c
            finally:
                c.rollback()
                c.execute(text("SELECT pg_advisory_unlock(:lock)"), {"lock": MAINTENANCE_LOCK})
                c.commit()

    def keys(self) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(text("SELECT experiment_key FROM experiment_rollups"))]

    def ensure(self, key: str, plan: RollupPlan) -> bool:
        """Build ``plan``'s rollups for ``key`` unless they are built; True when built.
        A plan with too many slots (or none) is not stored, and older rollups are dropped."""
        if not plan.storable:
            self.drop(key)
            return False
        started = time.perf_counter()
        with self._maintenance() as c:
            with c.begin():
                if built_digest(c, key) == plan.digest:
                    return False
                c.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": INGEST_LOCK})
                c.execute(
                    text(
                        "INSERT INTO experiment_rollups (experiment_key, digest, slots, built_at) "
                        "VALUES (:k, :d, CAST(:s AS jsonb), NULL) ON CONFLICT (experiment_key) "
                        "DO UPDATE SET digest = excluded.digest, slots = excluded.slots, "
                        "built_at = NULL"
                    ),
                    {"k": key, "d": plan.digest, "s": json.dumps(plan.to_json())},
                )
            with c.execution_options(isolation_level="REPEATABLE READ").begin():
                units = count_units(c, key)
                c.execute(text(f"SET LOCAL work_mem = '{work_mem_mb(units, len(plan.slots))}MB'"))
                c.execute(text("SET LOCAL jit = off"))
                c.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})
                bind = Binder("named")
                c.execute(text(store_sql(plan, bind, bind("key", key))), bind.params)
                c.execute(
                    text("UPDATE experiment_rollups SET built_at = :t WHERE experiment_key = :k"),
                    {"k": key, "t": datetime.now(UTC)},
                )
                # Fresh statistics: without them the planner guesses a few rows, sorts a million.
                c.execute(text("ANALYZE unit_rollups"))
        logger.info(
            "rollups built",
            extra={
                "experiment": key,
                "units": units,
                "slots": len(plan.slots),
                "seconds": round(time.perf_counter() - started, 2),
            },
        )
        return True

    def digest(self, key: str) -> str | None:
        """The digest of the experiment's built rollups (None: none, or still being built)."""
        with self.engine.connect() as c:
            return built_digest(c, key)

    def backlog_units(self) -> int:
        with self.engine.connect() as c:
            return int(
                c.execute(text("SELECT count(DISTINCT unit_id) FROM rollup_backlog")).scalar_one()
            )

    def catch_up(self) -> CatchUp:
        """Recompute the rollups of the units in the backlog (every built plan)."""
        started = time.perf_counter()
        failed: list[str] = []
        with (
            self._maintenance() as c,
            c.execution_options(isolation_level="REPEATABLE READ").begin(),
        ):
            pending = int(
                c.execute(text("SELECT count(DISTINCT unit_id) FROM rollup_backlog")).scalar_one()
            )
            if pending:
                plans = c.execute(
                    text("SELECT experiment_key, slots FROM experiment_rollups "
                         "WHERE built_at IS NOT NULL")
                ).all()  # fmt: skip
                c.execute(text("SET LOCAL jit = off"))
                units = (  # in key order: index pages are read in order
                    "experiment_units u JOIN (SELECT DISTINCT unit_id FROM rollup_backlog "
                    "ORDER BY unit_id) b ON b.unit_id = u.unit_id"
                )
                for key, slots in plans:
                    try:
                        with c.begin_nested():  # a savepoint: one plan's failure is its own
                            plan = RollupPlan.from_json(slots)
                            bind = Binder("named")
                            sql = store_sql(plan, bind, bind("key", str(key)), units=units)
                            c.execute(text(sql), bind.params)
                    except (DBAPIError, KeyError, TypeError, ValueError):
                        # Its rollups now miss the backlog's units: mark them unbuilt, so
                        # reads compute from the events and the next refresh rebuilds them.
                        c.execute(
                            text(
                                "UPDATE experiment_rollups SET built_at = NULL "
                                "WHERE experiment_key = :k"
                            ),
                            {"k": key},
                        )
                        failed.append(str(key))
                        CATCH_UP_FAILURES.labels(str(key)).inc()
                        logger.exception(
                            "rollup catch-up failed for one experiment; its rollups will be "
                            "rebuilt, the others are caught up",
                            extra={"experiment": key},
                        )
                c.execute(text("DELETE FROM rollup_backlog"))
        seconds = time.perf_counter() - started
        CATCH_UP_SECONDS.observe(seconds)
        CAUGHT_UP_UNITS.inc(pending)
        return CatchUp(pending, seconds, tuple(failed))

    def drop(self, key: str) -> None:
        with self._maintenance() as c, c.begin():
            c.execute(text("DELETE FROM experiment_rollups WHERE experiment_key = :k"), {"k": key})
            c.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})

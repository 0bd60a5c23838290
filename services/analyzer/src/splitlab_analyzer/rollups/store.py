"""Building, checking and dropping an experiment's stored rollups (``experiment_rollups`` and
``unit_rollups``).

A build recomputes every unit's slots from the events under the ingestion lock
(:data:`~splitlab_analyzer.rollups.maintenance.ROLLUP_LOCK`): no batch runs meanwhile, and the
consumer maintains the new plan from the next batch on. The results use the rollups only while
the stored digest equals the digest of the slots the current definitions ask for; until a
build they are computed from the events (same answer, slower).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from splitlab_analyzer.rollups.maintenance import ROLLUP_LOCK
from splitlab_analyzer.rollups.plan import RollupPlan
from splitlab_analyzer.rollups.sql import Binder, store_sql

logger = logging.getLogger(__name__)

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


def stored_digest(connection: Connection, key: str) -> str | None:
    row = connection.execute(
        text("SELECT digest FROM experiment_rollups WHERE experiment_key = :k"), {"k": key}
    ).first()
    return None if row is None else str(row[0])


class RollupStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keys(self) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(text("SELECT experiment_key FROM experiment_rollups"))]

    def ensure(self, key: str, plan: RollupPlan) -> bool:
        """Store ``plan``'s rollups for ``key`` unless they are already stored; True when built.
        A plan with too many slots (or none) is not stored, and older rollups are dropped."""
        if not plan.storable:
            self.drop(key)
            return False
        with self.engine.begin() as c:
            c.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": ROLLUP_LOCK})
            if stored_digest(c, key) == plan.digest:
                return False
            started = datetime.now(UTC)
            units = count_units(c, key)
            c.execute(text(f"SET LOCAL work_mem = '{work_mem_mb(units, len(plan.slots))}MB'"))
            c.execute(text("SET LOCAL jit = off"))
            c.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})
            bind = Binder("named")
            sql = store_sql(plan, bind, bind("key", key))
            c.execute(text(sql), bind.params)
            c.execute(
                text(
                    "INSERT INTO experiment_rollups (experiment_key, digest, slots, built_at) "
                    "VALUES (:k, :d, CAST(:s AS jsonb), :t) ON CONFLICT (experiment_key) DO "
                    "UPDATE SET digest = excluded.digest, slots = excluded.slots, "
                    "built_at = excluded.built_at"
                ),
                {
                    "k": key,
                    "d": plan.digest,
                    "s": json.dumps(plan.to_json()),
                    "t": datetime.now(UTC),
                },
            )
            # Fresh statistics: without them the planner guesses a few rows and sorts a million.
            c.execute(text("ANALYZE unit_rollups"))
        logger.info(
            "rollups built",
            extra={
                "experiment": key,
                "units": units,
                "slots": len(plan.slots),
                "seconds": round((datetime.now(UTC) - started).total_seconds(), 2),
            },
        )
        return True

    def drop(self, key: str) -> None:
        with self.engine.begin() as c:
            c.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": ROLLUP_LOCK})
            c.execute(text("DELETE FROM experiment_rollups WHERE experiment_key = :k"), {"k": key})
            c.execute(text("DELETE FROM unit_rollups WHERE experiment_key = :k"), {"k": key})

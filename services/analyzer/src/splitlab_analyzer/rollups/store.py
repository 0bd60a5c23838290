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

The statements are in :mod:`splitlab_analyzer.rollups.repository`.
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
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from splitlab_analyzer.rollups import repository
from splitlab_analyzer.rollups.plan import RollupPlan

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
            repository.advisory_lock(c, MAINTENANCE_LOCK)
            c.commit()
            try:
                yield c
            finally:
                c.rollback()
                repository.advisory_unlock(c, MAINTENANCE_LOCK)
                c.commit()

    def keys(self) -> list[str]:
        with self.engine.connect() as c:
            return repository.rollup_keys(c)

    def ensure(self, key: str, plan: RollupPlan) -> bool:
        """Build ``plan``'s rollups for ``key`` unless they are built; True when built.
        A plan with too many slots (or none) is not stored, and older rollups are dropped."""
        if not plan.storable:
            self.drop(key)
            return False
        started = time.perf_counter()
        with self._maintenance() as c:
            with c.begin():
                if repository.built_digest(c, key) == plan.digest:
                    return False
                repository.lock_ingestion(c)
                repository.register_plan(c, key, plan.digest, json.dumps(plan.to_json()))
            with c.execution_options(isolation_level="REPEATABLE READ").begin():
                units = repository.count_units(c, key)
                repository.set_work_mem(c, work_mem_mb(units, len(plan.slots)))
                repository.disable_jit(c)
                repository.delete_unit_rollups(c, key)
                repository.store_slots(c, plan, key)
                repository.mark_built(c, key, datetime.now(UTC))
                # Fresh statistics: without them the planner guesses a few rows, sorts a million.
                repository.analyze_unit_rollups(c)
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
            return repository.built_digest(c, key)

    def backlog_units(self) -> int:
        with self.engine.connect() as c:
            return repository.backlog_units(c)

    def catch_up(self) -> CatchUp:
        """Recompute the rollups of the units in the backlog (every built plan)."""
        started = time.perf_counter()
        failed: list[str] = []
        with (
            self._maintenance() as c,
            c.execution_options(isolation_level="REPEATABLE READ").begin(),
        ):
            pending = repository.backlog_units(c)
            if pending:
                plans = repository.built_plans(c)
                repository.disable_jit(c)
                for key, slots in plans:
                    try:
                        with c.begin_nested():  # a savepoint: one plan's failure is its own
                            plan = RollupPlan.from_json(slots)
                            repository.store_slots(
                                c, plan, str(key), units=repository.BACKLOG_UNITS
                            )
                    except (DBAPIError, KeyError, TypeError, ValueError):
                        # Its rollups now miss the backlog's units: mark them unbuilt, so
                        # reads compute from the events and the next refresh rebuilds them.
                        repository.mark_unbuilt(c, key)
                        failed.append(str(key))
                        CATCH_UP_FAILURES.labels(str(key)).inc()
                        logger.exception(
                            "rollup catch-up failed for one experiment; its rollups will be "
                            "rebuilt, the others are caught up",
                            extra={"experiment": key},
                        )
                repository.clear_backlog(c)
        seconds = time.perf_counter() - started
        CATCH_UP_SECONDS.observe(seconds)
        CAUGHT_UP_UNITS.inc(pending)
        return CatchUp(pending, seconds, tuple(failed))

    def drop(self, key: str) -> None:
        with self._maintenance() as c, c.begin():
            repository.delete_rollups(c, key)

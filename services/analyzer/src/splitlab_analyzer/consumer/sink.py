"""Write a batch of event rows to Postgres in one transaction, idempotently by ``event_id``.

Per table: ``COPY`` the rows into a session-local temporary staging table, then
``INSERT INTO <table> SELECT ... FROM <stage> ON CONFLICT (event_id) DO NOTHING``, all in one
transaction. ``COPY`` is the fastest way into Postgres; the insert-select keeps the
idempotency that a plain ``COPY`` into the table cannot give (a replayed event would violate
the primary key and fail the whole batch). Duplicates, within a batch or against earlier
batches, are no-ops.

The same transaction keeps the first exposure per (experiment, unit) and, while rollups are
stored, notes the batch's units in the rollup backlog
(:mod:`splitlab_analyzer.rollups.repository`). The statements are in
:mod:`splitlab_analyzer.consumer.repository`.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from splitlab.contracts.topics import EventType
from splitlab_analyzer.consumer import repository
from splitlab_analyzer.consumer.rows import TABLE_COLUMNS, TABLES, Row
from splitlab_analyzer.rollups import repository as rollups

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_str(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


_COPY_BY_TYPE: dict[type, Callable[[Any], str]] = {
    # Exact types (a ``bool`` is not formatted as an ``int``); anything else takes the slow path.
    type(None): lambda _: "\\N",
    bool: lambda v: "t" if v else "f",
    float: float.__repr__,
    int: int.__str__,
    uuid.UUID: uuid.UUID.__str__,
    datetime: datetime.isoformat,
    str: _copy_str,
}


def copy_field(value: object) -> str:
    """One value in ``COPY ... FROM STDIN`` text format (``\\N`` is NULL)."""
    fast = _COPY_BY_TYPE.get(type(value))
    if fast is not None:
        return fast(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, uuid.UUID)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    return json.dumps(value).translate(_ESCAPES)


def copy_text(rows: Sequence[Row]) -> io.StringIO:
    buffer = io.StringIO()
    buffer.writelines("\t".join(map(copy_field, row)) + "\n" for row in rows)
    buffer.seek(0)
    return buffer


class PostgresSink:
    """Owns nothing but the engine; each write borrows one pooled connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, rows: dict[EventType, list[Row]]) -> dict[EventType, int]:
        """Insert every row in one transaction; returns the rows new to the database per type.

        Raises the driver's error (``sqlalchemy.exc.DBAPIError`` family) when Postgres is down:
        then nothing was written and the caller retries the same batch.
        """
        inserted: dict[EventType, int] = {}
        connection: Any = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            backlog = rollups.begin(cursor)
            for kind, batch in rows.items():
                if not batch:
                    continue
                table = TABLES[kind]
                stage = f"stage_{table}"
                columns = ", ".join(TABLE_COLUMNS[kind])
                repository.stage(cursor, table, stage, columns, copy_text(batch))
                inserted[kind] = repository.insert_staged(cursor, table, stage, columns)
                if kind == "exposure":
                    rollups.record_first_exposures(cursor, stage)
                if backlog:
                    rollups.append_backlog(cursor, stage)
            connection.commit()
        except BaseException:
            try:
                connection.rollback()
            except Exception:  # the connection itself is gone: the pool drops it
                connection.invalidate()
            raise
        finally:
            connection.close()
        return inserted

"""All SQL of ingestion: a batch's rows go through a session-local temporary staging table into
their event table, with a DBAPI cursor inside the batch's transaction (the sink holds the
transaction; the first exposures and the rollup backlog are
:mod:`splitlab_analyzer.rollups.repository`'s)."""

from __future__ import annotations

import io
from typing import Any


def stage(cursor: Any, table: str, stage: str, columns: str, rows: io.StringIO) -> None:
    """Create ``stage`` like ``table`` (once per session; emptied at commit) and ``COPY`` the
    rows (``COPY ... FROM STDIN`` text format) of ``columns`` into it."""
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cursor.copy_expert(f"COPY {stage} ({columns}) FROM STDIN", rows)


def insert_staged(cursor: Any, table: str, stage: str, columns: str) -> int:
    """Insert the staged rows new to ``table`` (by ``event_id``); how many were new."""
    insert = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
        "ON CONFLICT (event_id) DO NOTHING"
    )
    cursor.execute(insert)
    return int(cursor.rowcount)

"""Telling a Postgres that cannot be reached from a statement it refused.

Services answer the first with a 503 that names Postgres (``splitlab.platform.errors``) and keep
running; the pool's pre-ping replaces dead connections once it is back. The second is a bug or a
conflict of its own and stays a 500.
"""

from __future__ import annotations

import logging
from typing import TypeGuard

from psycopg2.extensions import QueryCanceledError, TransactionRollbackError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

POSTGRES_UNAVAILABLE = (
    "Postgres is unavailable: this call needs the database, which cannot be reached right now; "
    "retry shortly"
)


def is_connection_error(exc: BaseException) -> TypeGuard[DBAPIError]:
    """Postgres down, restarting or unreachable, or a connection lost mid-call.

    psycopg2 files a deadlock and a cancelled statement under ``OperationalError`` too; those
    are answers from a live server, not an outage."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    refused = isinstance(exc.orig, (TransactionRollbackError, QueryCanceledError))
    return isinstance(exc, OperationalError) and not refused


def driver_reason(exc: DBAPIError) -> str:
    """The driver's message, first line, at most 200 characters (for a one-line log)."""
    lines = str(exc.orig or exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def log_background_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failed background pass over Postgres (a cache refresh, say): while Postgres is
    unreachable one warning line a pass, naming it; anything else is a bug, with its
    traceback."""
    if is_connection_error(exc):
        log.warning("%s: Postgres unavailable", what, extra={"error": driver_reason(exc)})
    else:
        log.error(what, exc_info=exc)

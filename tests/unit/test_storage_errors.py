"""An unreachable Postgres told from a statement it refused, and how a background pass logs it."""

from __future__ import annotations

import logging

import psycopg2
import psycopg2.extensions
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from splitlab.platform.storage.errors import is_connection_error, log_background_failure

REFUSED = OperationalError(
    "SELECT 1", {}, psycopg2.OperationalError("connection to server failed: Connection refused")
)
DEADLOCK = OperationalError(
    "UPDATE t", {}, psycopg2.extensions.TransactionRollbackError("deadlock detected")
)
SYNTAX = ProgrammingError("SELEC 1", {}, psycopg2.ProgrammingError("syntax error"))


def test_only_an_unreachable_server_is_an_outage() -> None:
    assert is_connection_error(REFUSED)
    assert not is_connection_error(DEADLOCK)  # a live server's answer
    assert not is_connection_error(SYNTAX)
    assert not is_connection_error(ValueError("not a database error"))


def test_an_outage_is_one_warning_line_and_a_bug_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("splitlab.test.refresh")
    with caplog.at_level(logging.INFO, logger="splitlab.test.refresh"):
        log_background_failure(log, "cache refresh failed", REFUSED)
        log_background_failure(log, "cache refresh failed", SYNTAX)
    outage, bug = caplog.records
    assert (outage.levelno, outage.getMessage()) == (
        logging.WARNING,
        "cache refresh failed: Postgres unavailable",
    )
    assert outage.exc_info is None
    assert "Connection refused" in outage.error  # type: ignore[attr-defined]
    assert bug.levelno == logging.ERROR
    assert bug.exc_info is not None

"""Structured logs carrying the request id, shared by every SplitLab process.

``configure_logging`` is called once by a process's entry point (never at import). The request
id lives in a context variable set by the HTTP middleware, so every log line written while a
request is handled carries it, including lines from library code.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("splitlab_request_id", default=None)


class RequestIdFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.service = self.service
        return True


class RepeatFilter(logging.Filter):
    """Lets a library's line through once per ``seconds`` for each message template.

    While Kafka is down kafka-python logs a connection error at ERROR for every attempt of every
    connection, dozens in the first second; the first of each kind says what is wrong, the
    service's own warnings and gauges say it lasts. Lines of other loggers always pass."""

    def __init__(
        self,
        prefixes: tuple[str, ...],
        seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.seconds = seconds
        self.clock = clock
        self.last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        if now - self.last.get(key, -self.seconds) < self.seconds:
            return False
        self.last[key] = now
        return True


def _prints_to_console(handler: logging.Handler) -> bool:
    if getattr(handler, "splitlab", False):
        return True
    stream = getattr(handler, "stream", None)
    return type(handler) is logging.StreamHandler and stream in (sys.stderr, sys.stdout)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every logger's records to stderr, as JSON lines (or text for local reading)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter(service))
    handler.addFilter(RepeatFilter(prefixes=("kafka",)))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(service)s %(name)s [%(request_id)s] %(message)s"
            )
        )
    handler.splitlab = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    # Ours from an earlier call, or a console handler (``basicConfig``), would print every line
    # twice: they go. Any other handler stays (a test's log capture, an embedding app's file).
    root.handlers[:] = [h for h in root.handlers if not _prints_to_console(h)] + [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours (splitlab.access) without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))

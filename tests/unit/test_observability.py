"""Logging set up by every service: one console handler, whoever calls it and how often."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from splitlab.platform.telemetry.logs import RepeatFilter, configure_logging


@pytest.fixture
def root_handlers() -> Iterator[list[logging.Handler]]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield root.handlers
    root.handlers[:] = saved
    root.setLevel(level)


def test_a_second_call_or_a_basic_config_never_doubles_the_console_lines(
    root_handlers: list[logging.Handler],
) -> None:
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))  # as basicConfig does
    configure_logging("demo")
    configure_logging("demo")
    console = [h for h in root_handlers if getattr(h, "stream", None) is sys.stderr]
    assert len(console) == 1


def test_other_handlers_keep_receiving_records(root_handlers: list[logging.Handler]) -> None:
    captured = io.StringIO()
    kept = logging.StreamHandler(captured)  # a log file, a test's capture
    logging.getLogger().addHandler(kept)
    configure_logging("demo", fmt="json")
    assert kept in root_handlers
    logging.getLogger("splitlab.demo").warning("still here")
    assert "still here" in captured.getvalue()


def test_console_lines_are_json_with_the_service(
    root_handlers: list[logging.Handler], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("demo", fmt="json")
    logging.getLogger("splitlab.demo").warning("hello")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["message"], line["service"], line["level"]) == ("hello", "demo", "WARNING")


def test_a_library_flood_is_one_line_per_minute_for_each_kind() -> None:
    now = [0.0]
    flood = RepeatFilter(prefixes=("kafka",), seconds=60, clock=lambda: now[0])

    def passes(name: str, message: str, *args: object) -> bool:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)
        return flood.filter(record)

    refused = "Connect attempt to %s returned error %s. Disconnecting."
    assert passes("kafka.conn", refused, "<broker 1>", 111)
    assert not any(passes("kafka.conn", refused, f"<broker {i}>", 111) for i in range(50))
    assert passes("kafka.client", "Node %s not ready", 1)  # another kind of line
    assert passes("splitlab.analyzer", refused, "x", 1)  # our own lines always pass
    assert passes("splitlab.analyzer", refused, "x", 1)
    now[0] = 61.0
    assert passes("kafka.conn", refused, "<broker 1>", 111)  # a minute later, once again

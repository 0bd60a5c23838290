"""Logging set up by every service: one console handler, whoever calls it and how often."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from splitlab.observability import configure_logging


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

"""Waiting for what a real component does in its own time, and timing a call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """``call()``'s result and how long it took, in seconds."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started

"""``splitlab.assigning.runtime``: the wiring the assignment service and the router share."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from splitlab.assigning.runtime import (
    DiscardingPublisher,
    holdout_from,
    open_assignment_runtime,
    refreshing,
)
from splitlab.assigning.service import AssignmentService
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.settings import Settings


def settings(**fields: Any) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def test_the_holdout_is_none_at_share_zero_and_the_settings_otherwise() -> None:
    assert holdout_from(settings(holdout_share=0.0)) is None
    assert holdout_from(settings(holdout_share=0.05, holdout_seed="h")) == HoldoutConfig(
        share=0.05, seed="h"
    )


def test_refreshing_runs_once_before_the_block_then_periodically_and_counts_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    failures = Counter("refresh_failures", "test", registry=registry)
    calls: list[str] = []
    lock = threading.Lock()

    def refresh() -> None:
        with lock:
            calls.append(threading.current_thread().name)
            if len(calls) % 2 == 0:
                raise ConnectionError("postgres is down")

    async def run() -> tuple[int, int]:
        async with refreshing(refresh, every=0.01, failures=failures, failure="refresh failed"):
            at_start = len(calls)
            while len(calls) < 5:
                await asyncio.sleep(0.01)
        after_exit = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == after_exit  # the loop stopped with the block
        return at_start, after_exit

    with caplog.at_level(logging.WARNING, logger="splitlab.assigning.runtime"):
        at_start, after_exit = asyncio.run(run())
    assert at_start == 1  # the start-up refresh ran before the block
    assert after_exit >= 5  # failures did not stop the loop
    assert all(name != threading.main_thread().name for name in calls)  # in a worker thread
    assert registry.get_sample_value("refresh_failures_total") == after_exit // 2
    logged = [r for r in caplog.records if r.name == "splitlab.assigning.runtime"]
    assert len(logged) == after_exit // 2
    assert all("refresh failed" in r.getMessage() for r in logged)


def test_the_runtime_uses_the_given_publisher_or_drops_events_when_logging_is_off() -> None:
    given = DiscardingPublisher()

    async def run() -> None:
        async with open_assignment_runtime(
            settings(), service="test", publisher_factory=lambda _: given
        ) as runtime:
            assert runtime.publisher is given
            assert isinstance(runtime.assignment_service(), AssignmentService)
            assert len(runtime.cache.versions()) == 0
        async with open_assignment_runtime(
            settings(holdout_share=0.1), service="test", publish_events=False
        ) as runtime:
            assert isinstance(runtime.publisher, DiscardingPublisher)
            assert runtime.holdout == HoldoutConfig(share=0.1, seed=settings().holdout_seed)

    asyncio.run(run())

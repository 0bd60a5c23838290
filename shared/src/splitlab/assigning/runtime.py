"""The wiring every process that assigns needs, built and closed in one place.

The assignment service (``/assign``) and the router (``/predict``) run the same assignment
runtime, so they need the same collaborators around it: the experiment cache, the sticky store
on its own asyncio Redis client (short timeouts, circuit breaker), the event publisher, the
global holdout, and a loop that refreshes the cache from Postgres so replicas converge.

- ``open_assignment_runtime``: builds the cache, the sticky store and the publisher, yields them
  as an ``AssignmentRuntime``, and on exit closes the publisher (its spool is flushed and
  shipped for up to 10 s), waits for the sticky records the last answers remembered, and closes
  the Redis client.
- ``refreshing``: runs a refresh once (at start-up) and then every ``every`` seconds until the
  block exits; a failed refresh is counted and logged, and the last state is kept.

Each app opens both in its lifespan, inside ``open_core_resources`` (which owns the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.service import AssignmentService
from splitlab.assigning.sticky import StickyStore
from splitlab.contracts.events import Event
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.connections import create_async_redis
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings
from splitlab.platform.storage.errors import log_background_failure

__all__ = [
    "AssignmentRuntime",
    "DiscardingPublisher",
    "EventSink",
    "holdout_from",
    "open_assignment_runtime",
    "refreshing",
]

logger = logging.getLogger(__name__)

PUBLISHER_CLOSE_SECONDS = 10.0


class EventSink(Protocol):
    """What the runtime needs of ``EventPublisher``: one call per event, never raising."""

    def publish(self, event: Event) -> None: ...


class DiscardingPublisher:
    """Event logging switched off (``SPLITLAB_ROUTER_EVENT_LOGGING=false``): drops events."""

    def publish(self, event: Event) -> None:
        return None


def holdout_from(settings: Settings) -> HoldoutConfig | None:
    """The global holdout of the settings, or None when its share is 0."""
    if settings.holdout_share <= 0:
        return None
    return HoldoutConfig(share=settings.holdout_share, seed=settings.holdout_seed)


@dataclass(frozen=True, slots=True)
class AssignmentRuntime:
    """What ``open_assignment_runtime`` built; valid until its block exits."""

    cache: ExperimentCache
    sticky: StickyStore
    publisher: EventSink
    holdout: HoldoutConfig | None

    def assignment_service(self) -> AssignmentService:
        return AssignmentService(self.cache, self.sticky, self.publisher, self.holdout)


@contextlib.asynccontextmanager
async def open_assignment_runtime(
    settings: Settings,
    *,
    service: str,
    publisher_factory: Callable[[Settings], EventSink] | None = None,
    publish_events: bool = True,
) -> AsyncIterator[AssignmentRuntime]:
    """The cache (empty: fill it with ``refreshing``), the sticky store and the publisher.

    ``publisher_factory`` replaces the Kafka publisher (tests); without it, ``service`` names
    the ``EventPublisher``'s spool and ``publish_events=False`` drops every event instead."""
    event_publisher: EventPublisher | None = None
    publisher: EventSink
    if publisher_factory is not None:
        publisher = publisher_factory(settings)
    elif publish_events:
        event_publisher = EventPublisher(settings, service=service)
        event_publisher.start()
        publisher = event_publisher
    else:
        publisher = DiscardingPublisher()
    sticky_redis = create_async_redis(settings)
    sticky = StickyStore(
        sticky_redis,
        ttl_seconds=settings.sticky_ttl_seconds,
        breaker_seconds=settings.sticky_breaker_seconds,
    )
    try:
        yield AssignmentRuntime(
            cache=ExperimentCache(),
            sticky=sticky,
            publisher=publisher,
            holdout=holdout_from(settings),
        )
    finally:
        if event_publisher is not None:
            await asyncio.to_thread(event_publisher.close, PUBLISHER_CLOSE_SECONDS)
        await sticky.settled()  # records remembered by the last answers
        await sticky_redis.aclose()


@contextlib.asynccontextmanager
async def refreshing(
    refresh: Callable[[], object], *, every: float, failures: Counter, failure: str
) -> AsyncIterator[None]:
    """``refresh`` (blocking: it runs in a thread) once now, then every ``every`` seconds until
    the block exits. A failure increments ``failures`` and logs ``failure`` at WARNING (a
    traceback only for an unexpected error: ``log_background_failure``); the loop goes on."""

    async def run_once() -> None:
        try:
            await asyncio.to_thread(refresh)
        except Exception as exc:
            failures.inc()
            log_background_failure(logger, failure, exc)

    async def run_periodically() -> None:
        while True:
            await asyncio.sleep(every)
            await run_once()

    await run_once()
    task = asyncio.create_task(run_periodically())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

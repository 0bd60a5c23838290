"""Publishing events to Kafka without blocking requests and without losing any.

``EventPublisher.publish`` appends the event to this process's spool (``splitlab.platform.messaging.
spool``): one buffered write and flush, a few microseconds, never a network call, never an
exception. A shipper (``splitlab.platform.messaging.shipper``) in a child process of its own reads
the spool and produces to Kafka with ``acks=all`` and idempotence, moving its cursor only after
Kafka acknowledged; a thread of that process fsyncs the spool every ``fsync_interval_seconds``
(no thread of this process wakes periodically: each wake-up cost the event loop the
interpreter lock, see ``splitlab.platform.messaging.spool.SpoolSyncer``). When Kafka
is away the spool grows on disk and is shipped, in order, when it returns; when this process
dies, the next one (or another replica's publisher) ships what it left.

Rejected: an in-memory queue drained by a sender thread in this process (kafka-python's Python
producer then competes with request handling for the interpreter lock: it tripled the cost of
an ``/assign`` call), and sending synchronously (a slow broker would slow every request).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from splitlab.contracts.events import EventBase
from splitlab.platform.messaging.shipper import (
    STATUS_FILE,
    Producer,
    ShipperConfig,
    ShipperStatus,
    run_in_thread,
    start_process,
)
from splitlab.platform.messaging.spool import (
    OpenedSpools,
    SpoolReader,
    SpoolWriter,
    open_spools,
    segments,
)
from splitlab.platform.settings import Settings

logger = logging.getLogger(__name__)

EVENTS_WRITTEN = Counter(
    "splitlab_events_spooled",
    "Events written to the local spool on their way to Kafka (every event is).",
    ["service"],
)
EVENTS_LOST = Counter(
    "splitlab_events_lost",
    "Events that could not even be written to the spool (disk full or unwritable).",
    ["service"],
)


class EventPublisher:
    def __init__(
        self,
        settings: Settings,
        *,
        service: str,
        producer_factory: Callable[[], Producer] | None = None,
        spool_root: Path | None = None,
        retry_seconds: float = 1.0,
        fsync_interval_seconds: float = 0.05,
    ) -> None:
        """``producer_factory`` runs the shipper in a thread with that producer (for tests);
        without it the shipper is a child process with a real Kafka producer."""
        self.service = service
        self._written = EVENTS_WRITTEN.labels(service)
        # Created at 0 now, not at the first loss: SplitLabEventsLost's increase() needs a
        # sample before the first increment to see it.
        self._lost = EVENTS_LOST.labels(service)
        self._settings = settings
        self._producer_factory = producer_factory
        self._spool_root = spool_root or settings.spool_dir
        self._retry_seconds = retry_seconds
        self._fsync_interval = fsync_interval_seconds
        self._spools: OpenedSpools | None = None
        self._writer: SpoolWriter | None = None
        self._backlog_at_start = 0
        self._thread: threading.Thread | None = None
        self._stop_thread = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._spools = open_spools(self._spool_root, self.service)
        folders = [*self._spools.orphans, self._spools.own]
        self._backlog_at_start = sum(SpoolReader(folder).backlog() for folder in folders)
        if self._backlog_at_start:
            logger.info(
                "the spool holds events from before", extra={"events": self._backlog_at_start}
            )
        self._writer = SpoolWriter(self._spools.own)
        (self._spools.own / STATUS_FILE).unlink(missing_ok=True)  # a previous run's counts
        config = ShipperConfig(
            folders=folders,
            retry_seconds=self._retry_seconds,
            fsync_interval_seconds=self._fsync_interval,
        )
        if self._producer_factory is not None:
            self._thread = run_in_thread(config, self._producer_factory, self._stop_thread)
        else:
            self._process = start_process(config, self._settings, self.service)
        _LIVE.add(self)

    def close(self, timeout: float = 10.0) -> None:
        """fsync the spool, let the shipper send what it can within ``timeout``, then stop it.
        Whatever is not shipped by then stays in the spool for the next start."""
        if self._writer is not None:
            self._writer.close()
        self._stop_thread.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._process is not None:
            self._process.terminate()  # SIGTERM: the shipper sends what it holds, then exits
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("the shipper did not finish in time; the spool keeps the rest")
                self._process.kill()
                self._process.wait(5)
        if self._spools is not None:
            self._spools.release()
        _LIVE.discard(self)

    # ------------------------------------------------------------------ the request path
    def publish(self, event: EventBase) -> None:
        """Record ``event`` for Kafka. Never blocks on the network, never raises."""
        try:
            assert self._writer is not None, "EventPublisher.start() was not called"
            self._writer.append(event.to_bytes())
            self._written.inc()
        except Exception:
            self._lost.inc()
            logger.exception("could not spool an event: it is lost")

    # ------------------------------------------------------------------ state
    def status(self) -> ShipperStatus:
        return ShipperStatus.read(self._spools.own) if self._spools is not None else ShipperStatus()

    @property
    def kafka_up(self) -> bool:
        return self.status().kafka_up

    def pending(self) -> int:
        """Events written but not yet acknowledged by Kafka."""
        written = self._writer.written if self._writer is not None else 0
        status = self.status()
        return max(0, self._backlog_at_start + written - status.shipped - status.unreadable)

    def shipped(self) -> int:
        return self.status().shipped

    def spool_bytes(self) -> int:
        if self._spools is None:
            return 0
        folders = [*self._spools.orphans, self._spools.own]
        return sum(
            path.stat().st_size for folder in folders for path in segments(folder) if path.exists()
        )


_LIVE: weakref.WeakSet[EventPublisher] = weakref.WeakSet()


class _PublisherCollector(Collector):
    """Exports the shipper's counters (kept in process-shared memory) at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        shipped = CounterMetricFamily(
            "splitlab_events_shipped", "Events acknowledged by Kafka.", labels=["service"]
        )
        unreadable = CounterMetricFamily(
            "splitlab_events_unreadable",
            "Spooled lines that were not events (skipped).",
            labels=["service"],
        )
        pending = GaugeMetricFamily(
            "splitlab_spool_events",
            "Events in the spool not yet acknowledged by Kafka.",
            labels=["service"],
        )
        size = GaugeMetricFamily(
            "splitlab_spool_bytes", "Bytes of the spool on disk.", labels=["service"]
        )
        up = GaugeMetricFamily(
            "splitlab_event_publisher_kafka_up",
            "1 while the shipper's last send or probe reached Kafka.",
            labels=["service"],
        )
        for publisher in list(_LIVE):
            service = [publisher.service]
            status = publisher.status()
            shipped.add_metric(service, status.shipped)
            unreadable.add_metric(service, status.unreadable)
            pending.add_metric(service, publisher.pending())
            size.add_metric(service, publisher.spool_bytes())
            up.add_metric(service, 1 if status.kafka_up else 0)
        yield from (shipped, unreadable, pending, size, up)


REGISTRY.register(_PublisherCollector())

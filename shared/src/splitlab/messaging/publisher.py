"""Publishing events to Kafka without blocking requests and without losing any.

``EventPublisher.publish`` puts an event on a bounded in-memory queue and returns: it never
blocks and never raises. A sender thread sends with ``acks=all`` and idempotence. Whatever
cannot be sent -- broker down, queue full, a send that failed after its retries -- goes to the
durable spool (``splitlab.messaging.spool``), and a replay thread sends the spool back, oldest
first, once Kafka answers again. While the spool holds events, new events join it behind them,
so replay keeps their order. Consumers drop the duplicates a crash during replay can cause, by
event id.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from splitlab.messaging.spool import Spool, open_spool
from splitlab.messaging.topics import topic_for
from splitlab.schemas.events import Event
from splitlab.settings import Settings

logger = logging.getLogger(__name__)

EVENTS_PRODUCED = Counter(
    "splitlab_events_produced", "Events acknowledged by Kafka.", ["service", "topic"]
)
EVENTS_SPOOLED = Counter(
    "splitlab_events_spooled",
    "Events written to the local spool instead of Kafka, by reason.",
    ["service", "reason"],
)
EVENTS_REPLAYED = Counter(
    "splitlab_events_replayed", "Spooled events acknowledged by Kafka on replay.", ["service"]
)
EVENTS_FAILED = Counter(
    "splitlab_events_failed",
    "Events that could be neither sent nor spooled (disk full or unwritable): lost.",
    ["service"],
)
SPOOL_EVENTS = Gauge("splitlab_spool_events", "Events waiting in the spool.", ["service"])
SPOOL_BYTES = Gauge("splitlab_spool_bytes", "Bytes of the spool on disk.", ["service"])
QUEUE_DEPTH = Gauge("splitlab_event_queue_depth", "Events in the in-memory queue.", ["service"])
KAFKA_UP = Gauge(
    "splitlab_event_publisher_kafka_up",
    "1 while the publisher sends straight to Kafka, 0 while it spools.",
    ["service"],
)


class RecordFuture(Protocol):
    def add_callback(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def add_errback(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def succeeded(self) -> bool: ...


class Producer(Protocol):
    """The part of ``kafka.KafkaProducer`` the publisher uses (a fake implements it in tests)."""

    def send(self, topic: str, value: bytes, key: bytes) -> RecordFuture: ...
    def flush(self, timeout: float | None = None) -> None: ...
    def close(self, timeout: float | None = None) -> None: ...


class EventPublisher:
    def __init__(
        self,
        settings: Settings,
        *,
        service: str,
        producer_factory: Callable[[], Producer] | None = None,
        queue_size: int = 50_000,
        spool_root: Path | None = None,
        retry_seconds: float = 1.0,
        fsync_interval_seconds: float = 0.05,
    ) -> None:
        self.service = service
        self._settings = settings
        self._producer_factory = producer_factory or self._kafka_producer
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=queue_size)
        self._spool_root = spool_root or settings.spool_dir
        self._retry_seconds = retry_seconds
        self._fsync_interval = fsync_interval_seconds
        self._spool: Spool | None = None
        self._producer: Producer | None = None
        self._producer_lock = threading.Lock()
        self._direct = False  # True: send straight to Kafka; False: append to the spool
        self._mode_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_sync = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._spool = open_spool(self._spool_root, self.service)
        if self._spool.pending_events:
            logger.info(
                "spool holds events from before", extra={"events": self._spool.pending_events}
            )
        self._threads = [
            threading.Thread(
                target=self._send_loop, name=f"{self.service}-event-sender", daemon=True
            ),
            threading.Thread(
                target=self._replay_loop, name=f"{self.service}-event-replay", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, spool what cannot be sent in ``timeout``, release the spool."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        with self._producer_lock:
            if self._producer is not None:
                # Unacknowledged records fail on close; their errbacks spool them.
                try:
                    self._producer.flush(max(0.1, deadline - time.monotonic()))
                except Exception:
                    logger.warning("flush on close timed out; spooling what is in flight")
                self._producer.close(timeout=1.0)
                self._producer = None
        self._drain_queue_to_spool("shutdown")
        if self._spool is not None:
            self._spool.sync()
            self._update_gauges()
            self._spool.close()

    # ------------------------------------------------------------------ the request path
    def publish(self, event: Event) -> None:
        """Queue ``event`` for Kafka. Never blocks, never raises."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._to_spool(event.to_bytes(), "queue_full")
        except Exception:  # pragma: no cover - defensive: the request path must not fail
            logger.exception("publish failed")

    @property
    def kafka_up(self) -> bool:
        return self._direct

    def pending(self) -> int:
        """Events not yet acknowledged by Kafka: queued plus spooled."""
        spooled = self._spool.pending_events if self._spool is not None else 0
        return self._queue.qsize() + spooled

    # ------------------------------------------------------------------ sending
    def _kafka_producer(self) -> Producer:
        from splitlab.clients import create_kafka_producer

        producer: Producer = create_kafka_producer(
            self._settings, request_timeout_ms=5000, delivery_timeout_ms=15_000
        )
        return producer

    def _get_producer(self) -> Producer | None:
        with self._producer_lock:
            if self._producer is None:
                try:
                    self._producer = self._producer_factory()
                except Exception as exc:
                    logger.warning("Kafka producer unavailable", extra={"reason": str(exc)})
                    return None
            return self._producer

    def _send_loop(self) -> None:
        while not (self._stopping.is_set() and self._queue.empty()):
            try:
                event = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._maybe_sync()
                continue
            batch = [event]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                self._send_or_spool(item)
            self._maybe_sync()

    def _send_or_spool(self, event: Event) -> None:
        payload = event.to_bytes()
        with self._mode_lock:
            direct = self._direct
            if not direct:
                self._to_spool(payload, "kafka_unavailable")
                return
        producer = self._get_producer()
        if producer is None:
            self._mark_down()
            self._to_spool(payload, "kafka_unavailable")
            return
        topic = event.topic
        try:
            future = producer.send(topic, value=payload, key=event.key())
        except Exception as exc:
            self._mark_down(exc)
            self._to_spool(payload, "send_failed")
            return
        future.add_callback(self._on_sent, topic)
        future.add_errback(self._on_send_failed, payload)

    def _on_sent(self, _metadata: object, topic: str) -> None:
        EVENTS_PRODUCED.labels(self.service, topic).inc()

    def _on_send_failed(self, exc: BaseException, payload: bytes) -> None:
        self._mark_down(exc)
        self._to_spool(payload, "send_failed")

    def _mark_down(self, exc: BaseException | None = None) -> None:
        with self._mode_lock:
            if self._direct:
                logger.warning(
                    "Kafka unavailable; spooling events",
                    extra={"reason": f"{type(exc).__name__}: {exc}" if exc else "no producer"},
                )
            self._direct = False
        KAFKA_UP.labels(self.service).set(0)

    # ------------------------------------------------------------------ spool and replay
    def _to_spool(self, payload: bytes, reason: str) -> None:
        try:
            assert self._spool is not None, "publisher not started"
            self._spool.append(payload)
            EVENTS_SPOOLED.labels(self.service, reason).inc()
        except Exception:
            EVENTS_FAILED.labels(self.service).inc()
            logger.exception("could not spool an event: it is lost", extra={"reason": reason})

    def _drain_queue_to_spool(self, reason: str) -> None:
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return
            self._to_spool(event.to_bytes(), reason)

    def _maybe_sync(self) -> None:
        now = time.monotonic()
        if self._spool is not None and now - self._last_sync >= self._fsync_interval:
            self._spool.sync()
            self._last_sync = now
            self._update_gauges()

    def _update_gauges(self) -> None:
        QUEUE_DEPTH.labels(self.service).set(self._queue.qsize())
        if self._spool is not None:
            SPOOL_EVENTS.labels(self.service).set(self._spool.pending_events)

    def _replay_loop(self) -> None:
        assert self._spool is not None
        spool = self._spool
        while not self._stopping.is_set():
            if self._direct:
                self._stopping.wait(0.2)
                continue
            producer = self._get_producer()
            if producer is None:
                self._stopping.wait(self._retry_seconds)
                continue
            segments = spool.sealed_segments()
            if not segments:
                # Only the segment being written remains: seal it and switch new events to
                # Kafka, then replay it on the next pass.
                with self._mode_lock:
                    spool.seal()
                    if not spool.sealed_segments():
                        self._direct = True
                        KAFKA_UP.labels(self.service).set(1)
                        logger.info("sending events straight to Kafka")
                continue
            for segment in segments:
                if self._stopping.is_set() or not self._replay(producer, spool, segment):
                    self._stopping.wait(self._retry_seconds)
                    break
            SPOOL_BYTES.labels(self.service).set(spool.size_bytes())

    def _replay(self, producer: Producer, spool: Spool, segment: Path) -> bool:
        futures: list[RecordFuture] = []
        count = 0
        for line in spool.read(segment):
            count += 1
            try:
                document = json.loads(line)
                topic = topic_for(document["event_type"])
                key = str(document["unit_id"]).encode()
            except (ValueError, KeyError, TypeError):
                EVENTS_FAILED.labels(self.service).inc()
                logger.error(
                    "unreadable line in the spool skipped", extra={"segment": segment.name}
                )
                continue
            try:
                futures.append(producer.send(topic, value=line, key=key))
            except Exception as exc:
                logger.info("replay paused: Kafka unavailable", extra={"reason": str(exc)})
                return False
        try:
            producer.flush(timeout=30)
        except Exception:
            return False
        if not all(f.succeeded() for f in futures):
            return False
        spool.remove(segment, count)
        EVENTS_REPLAYED.labels(self.service).inc(len(futures))
        SPOOL_EVENTS.labels(self.service).set(spool.pending_events)
        logger.info(
            "replayed a spool segment", extra={"events": len(futures), "segment": segment.name}
        )
        return True

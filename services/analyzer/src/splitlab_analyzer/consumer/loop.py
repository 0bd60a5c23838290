"""The ingestion loop: poll a batch, write it, then commit its offsets; back off while Postgres
is down.

Guarantees (see docs/analyzer.md): offsets are committed only after the database transaction
committed, so a crash at any point re-delivers at most the uncommitted batch, and the
``ON CONFLICT (event_id) DO NOTHING`` sink turns re-deliveries into no-ops: nothing is lost,
nothing is doubled. While Postgres refuses writes the consumer pauses its partitions (it keeps
polling, so it stays in the group) and retries the same batch with exponential back-off.
Malformed messages go to the dead-letter topic, which is flushed before the offsets are
committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg2
from sqlalchemy.exc import DBAPIError

from splitlab.contracts.topics import EventType
from splitlab_analyzer.consumer import metrics
from splitlab_analyzer.consumer.rows import Batch, DeadLetter, RawRecord, Row, build_batch

logger = logging.getLogger(__name__)

TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)


class Sink(Protocol):
    def write(self, rows: dict[EventType, list[Row]]) -> dict[EventType, int]: ...


class DeadLetterProducer(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...
    def flush(self, timeout: float | None = None) -> None: ...


def is_transient(exc: BaseException) -> bool:
    """Connection-type failures (Postgres down, restarting, network) are worth retrying."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, TRANSIENT)
    return isinstance(exc, TRANSIENT)


class StopRequestedError(Exception):
    """Stop was requested while a batch could not be written; its offsets stay uncommitted."""


class Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.current = initial

    def next(self) -> float:
        wait = self.current
        self.current = min(self.maximum, self.current * 2)
        return wait

    def reset(self) -> None:
        self.current = self.initial


class IngestLoop:
    """One consumer of the group. ``consumer`` is a ``kafka.KafkaConsumer`` already subscribed."""

    def __init__(
        self,
        consumer: Any,
        sink: Sink,
        dead_letters: DeadLetterProducer,
        *,
        dead_letter_topic: str,
        topics: Mapping[str, EventType],
        batch_size: int,
        batch_wait_ms: int,
        retry_initial_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self.consumer = consumer
        self.sink = sink
        self.dead_letters = dead_letters
        self.dead_letter_topic = dead_letter_topic
        self.topics = dict(topics)
        self.batch_size = batch_size
        self.batch_wait_ms = batch_wait_ms
        self.backoff = Backoff(retry_initial_seconds, retry_max_seconds)
        self.batches = 0

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set; the batch in hand is finished (written, committed) first."""
        try:
            while not stop.is_set():
                self.run_once(stop)
        except StopRequestedError:
            logger.warning("stopped with an unwritten batch; it will be re-read (not committed)")
        logger.info("ingestion stopped", extra={"batches": self.batches})

    def run_once(self, stop: threading.Event | None = None) -> Batch | None:
        records = self.poll_batch()
        if not records:
            self.update_lag()
            return None
        started = time.perf_counter()
        batch = build_batch(records, self.topics)
        self.write_with_retry(batch, stop)
        self.publish_dead_letters(batch.dead_letters)
        self.commit(batch)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_EVENTS.observe(batch.records)
        self.batches += 1
        self.update_lag()
        return batch

    def poll_batch(self) -> list[RawRecord]:
        """Up to ``batch_size`` records, waiting at most ``batch_wait_ms`` for them."""
        records: list[RawRecord] = []
        deadline = time.monotonic() + self.batch_wait_ms / 1000
        while len(records) < self.batch_size:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            polled = self.consumer.poll(
                timeout_ms=left_ms, max_records=self.batch_size - len(records)
            )
            for partition_records in polled.values():
                records.extend(
                    RawRecord(r.topic, r.partition, r.offset, r.key, r.value)
                    for r in partition_records
                )
        return records

    def write_with_retry(self, batch: Batch, stop: threading.Event | None) -> None:
        """Write the batch; on a transient failure pause, back off and retry the same rows.

        A permanent failure (the database refuses a row) is isolated row by row; refused rows
        become dead letters. ``stop`` does not interrupt a retry: a batch whose offsets will
        not be committed would only be re-read by the next owner (no harm, but no progress).
        """
        if batch.event_count == 0:
            return
        paused = False
        while True:
            try:
                inserted = self.sink.write(batch.rows)
            except Exception as exc:
                metrics.DB_WRITE_FAILURES.inc()
                if not is_transient(exc):
                    logger.warning("batch refused by Postgres; writing row by row", exc_info=True)
                    inserted = self.write_row_by_row(batch)
                    break
                if not paused:
                    self.pause()
                    paused = True
                wait = self.backoff.next()
                logger.warning(
                    "Postgres write failed; retrying the same batch",
                    extra={"retry_in_s": wait, "error": str(exc)[:200]},
                )
                self.wait_polling(wait, stop)
                if stop is not None and stop.is_set():
                    raise StopRequestedError("stop requested while Postgres is down") from exc
                continue
            break
        if paused:
            self.resume()
        self.backoff.reset()
        for kind, rows in batch.rows.items():
            topic = self.topic_of(kind)
            new = inserted.get(kind, 0)
            metrics.EVENTS_INGESTED.labels(topic).inc(new)
            metrics.EVENTS_DUPLICATE.labels(topic).inc(max(0, len(rows) - new))

    def write_row_by_row(self, batch: Batch) -> dict[EventType, int]:
        inserted: dict[EventType, int] = {}
        for kind, rows in batch.rows.items():
            kept: list[Row] = []
            for row, source in zip(rows, batch.sources[kind], strict=True):
                try:
                    inserted[kind] = inserted.get(kind, 0) + self.sink.write({kind: [row]}).get(
                        kind, 0
                    )
                    kept.append(row)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    batch.dead_letters.append(
                        DeadLetter(f"refused by Postgres: {str(exc).strip()[:300]}", source)
                    )
            batch.rows[kind] = kept
        return inserted

    def wait_polling(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Sleep, but keep polling (paused partitions return nothing) to stay in the group."""
        deadline = time.monotonic() + seconds
        while stop is None or not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.consumer.poll(timeout_ms=int(min(left, 1.0) * 1000))

    def pause(self) -> None:
        assigned = list(self.consumer.assignment())
        if assigned:
            self.consumer.pause(*assigned)
        metrics.CONSUMER_PAUSED.set(1)

    def resume(self) -> None:
        paused = list(self.consumer.paused())
        if paused:
            self.consumer.resume(*paused)
        metrics.CONSUMER_PAUSED.set(0)

    def publish_dead_letters(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        for letter in dead:
            self.dead_letters.send(self.dead_letter_topic, letter.to_bytes(), letter.record.key)
            metrics.DEAD_LETTERS.labels(letter.record.topic).inc()
            logger.warning(
                "dead letter",
                extra={
                    "reason": letter.reason,
                    "topic": letter.record.topic,
                    "partition": letter.record.partition,
                    "offset": letter.record.offset,
                },
            )
        # Sent before the offsets move on: a dead letter is never lost either.
        self.dead_letters.flush(timeout=30)

    def commit(self, batch: Batch) -> None:
        from kafka import TopicPartition
        from kafka.errors import CommitFailedError, KafkaError
        from kafka.structs import OffsetAndMetadata

        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in batch.offsets.items()
        }
        try:
            self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance moved the partitions: their new owner re-reads the batch, and the
            # idempotent sink makes that harmless.
            logger.warning(
                "offset commit failed; the batch will be re-read", extra={"error": str(exc)}
            )

    def update_lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=1000)
            except Exception:
                continue
            if position is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    max(0, high - position)
                )

    def topic_of(self, kind: EventType) -> str:
        for topic, event_type in self.topics.items():
            if event_type == kind:
                return topic
        return kind

"""The spool shipper's Kafka producer: confluent-kafka (librdkafka, in C) behind the shipper's
``Producer`` seam.

librdkafka partitions, batches, retries and talks to the broker in its own C threads; what is
left in Python per record is one ``produce`` call and one delivery callback. The shipper sends a
batch, flushes, and moves its cursor only if every record of the batch was acknowledged, so the
records sent between two flushes share one ``DeliveryBatch`` that counts the per-message
delivery reports: it is every record's "future", and it succeeded only when all its records did.

Settings that keep the contract of the kafka-python producer it replaces in the shipper
(``splitlab.platform.connections.create_confluent_producer``): ``acks=all`` with idempotence; the
``murmur2_random`` partitioner (the Java client's and kafka-python's hash of the key, so a unit
stays on its partition; librdkafka's own default, CRC32, would move it); a delivery timeout
after which every record is acknowledged or failed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException
from confluent_kafka import Producer as RdKafkaProducer

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message

logger = logging.getLogger(__name__)
LIBRDKAFKA_LOGGER = logging.getLogger("splitlab.platform.messaging.librdkafka")
ERROR_REPEAT_SECONDS = 60.0
"""A client error already logged is logged again only after this long: while Kafka is down
librdkafka reports a refused connection at every reconnect, of every fresh producer."""


class LibrdkafkaLog:
    """librdkafka's own log lines, kept at DEBUG: errors that matter also reach ``error_cb``
    (logged, without repeats) and the delivery reports (the shipper logs and retries)."""

    def log(self, level: int, message: str, *args: object) -> None:
        LIBRDKAFKA_LOGGER.debug(message, *args)


class ErrorLog:
    """Logs client-wide errors, each code at most once per ``ERROR_REPEAT_SECONDS``."""

    def __init__(self) -> None:
        self._logged: dict[int, float] = {}

    def __call__(self, error: KafkaError) -> None:
        now = time.monotonic()
        if now - self._logged.get(error.code(), -ERROR_REPEAT_SECONDS) < ERROR_REPEAT_SECONDS:
            return
        self._logged[error.code()] = now
        if error.fatal():
            logger.warning("Kafka producer fatal error", extra={"reason": str(error)})
        else:
            # Transient (a broker down, all brokers down): librdkafka reconnects by itself.
            logger.info("Kafka producer error", extra={"reason": str(error)})


_ERRORS = ErrorLog()


class DeliveryBatch:
    """Delivery results of the records sent between two flushes, counted by librdkafka's
    per-message delivery callback (served by ``poll``/``flush``)."""

    __slots__ = ("acknowledged", "failed", "first_error", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.acknowledged = 0
        self.failed = 0
        self.first_error: KafkaError | None = None

    def delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self.failed += 1
            if self.first_error is None:
                self.first_error = error

    def succeeded(self) -> bool:
        """True once Kafka acknowledged every record of the batch; False while any is pending
        or after any failed."""
        return self.failed == 0 and self.acknowledged == self.sent


class ConfluentProducer:
    """``splitlab.platform.messaging.shipper.Producer`` on a ``confluent_kafka.Producer``.

    Not thread-safe: one shipper loop sends, flushes and closes. After a failed batch the
    shipper discards the producer (``close(timeout=0)``) and builds a fresh one.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        metadata_timeout_seconds: float = 2.0,
        queue_full_timeout_seconds: float = 15.0,
    ) -> None:
        self._producer = RdKafkaProducer({**config, "error_cb": _ERRORS, "logger": LibrdkafkaLog()})
        self._metadata_timeout = metadata_timeout_seconds
        self._queue_full_timeout = queue_full_timeout_seconds
        self._batch = DeliveryBatch()
        self._on_delivery = self._batch.delivered

    def send(self, topic: str, value: bytes, key: bytes) -> DeliveryBatch:
        """Queue one record; its result is known after the next ``flush``."""
        try:
            self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
        except BufferError:
            self._produce_when_room(topic, value, key)
        self._batch.sent += 1
        return self._batch

    def _produce_when_room(self, topic: str, value: bytes, key: bytes) -> None:
        """The local queue is full: serve delivery reports (which frees room) and try again,
        up to ``queue_full_timeout_seconds``; then let ``BufferError`` fail the batch."""
        deadline = time.monotonic() + self._queue_full_timeout
        while True:
            self._producer.poll(0.05)
            try:
                self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    raise

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent is acknowledged or failed; a record still pending after
        ``timeout`` seconds raises ``TimeoutError`` (and leaves its batch unsucceeded)."""
        batch = self._batch
        self._batch = DeliveryBatch()
        self._on_delivery = self._batch.delivered
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        if batch.failed:
            logger.info(
                "Kafka did not acknowledge records",
                extra={"failed": batch.failed, "reason": str(batch.first_error)},
            )
        if remaining:
            raise TimeoutError(
                f"{remaining} records neither acknowledged nor failed in {timeout} s"
            )

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions from a metadata request; raises ``KafkaException`` when no
        broker answers within ``metadata_timeout_seconds`` or the topic is unknown."""
        metadata = self._producer.list_topics(topic, timeout=self._metadata_timeout)
        found = metadata.topics.get(topic)
        if found is None:
            raise KafkaException(f"no metadata for {topic}")
        if found.error is not None:
            raise KafkaException(found.error)
        return set(found.partitions)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within ``timeout`` seconds (None: as long as it takes), drop
        what is left (the spool still holds it), and release the client."""
        if timeout is None or timeout > 0:
            self._producer.flush(-1 if timeout is None else timeout)
        self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        self._producer.poll(0)  # serve the purged records' reports: nothing is left to wait for
        self._producer.close()

    def __len__(self) -> int:
        """Records queued or in flight, delivery reports not yet served included."""
        return len(self._producer)

"""DeliveryBatch: the per-message delivery reports of one batch, and what they add up to.
(The adapter itself is tested against the real broker in tests/integration/messaging.)"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

from splitlab.messaging.confluent_producer import DeliveryBatch


def sent(n: int) -> DeliveryBatch:
    batch = DeliveryBatch()
    batch.sent = n
    return batch


def test_a_batch_succeeds_only_once_every_record_is_acknowledged() -> None:
    batch = sent(3)
    message = Message(topic="t", value=b"v")
    assert not batch.succeeded(), "nothing reported yet"
    batch.delivered(None, message)
    batch.delivered(None, message)
    assert not batch.succeeded(), "one record still pending"
    batch.delivered(None, message)
    assert batch.succeeded()
    assert (batch.acknowledged, batch.failed) == (3, 0)


def test_one_failed_record_fails_the_batch_and_keeps_the_first_reason() -> None:
    batch = sent(3)
    message = Message(topic="t", value=b"v")
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    batch.delivered(None, message)
    batch.delivered(timed_out, message)
    batch.delivered(KafkaError(KafkaError._PURGE_QUEUE), message)
    assert not batch.succeeded()
    assert (batch.acknowledged, batch.failed) == (1, 2)
    assert batch.first_error == timed_out


def test_an_empty_batch_has_nothing_to_wait_for() -> None:
    assert sent(0).succeeded()

"""DeliveryBatch: the per-message delivery reports of one batch, and what they add up to;
ErrorLog: client errors without the repeats of an outage. (The adapter itself is tested
against the real broker in tests/integration/messaging.)"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message

from splitlab.platform.messaging.confluent_producer import DeliveryBatch, ErrorLog


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


def test_a_client_error_is_logged_once_while_it_repeats(caplog: pytest.LogCaptureFixture) -> None:
    log = ErrorLog()
    with caplog.at_level(logging.INFO, logger="splitlab.platform.messaging.confluent_producer"):
        for _ in range(20):  # every reconnect to a dead broker
            log(KafkaError(KafkaError._TRANSPORT))
            log(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert [r.reason for r in caplog.records] == [  # type: ignore[attr-defined]
        str(KafkaError(KafkaError._TRANSPORT)),
        str(KafkaError(KafkaError._ALL_BROKERS_DOWN)),
    ]

"""The ingestion loop with fakes: commit after write, dead letters, Postgres down -> pause,
back off, retry the same batch, resume; nothing committed before the write succeeds."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest

from splitlab.contracts.events import OutcomeEvent
from splitlab.contracts.topics import EventType
from splitlab_analyzer.consumer.loop import IngestLoop, is_transient
from splitlab_analyzer.consumer.rows import RawRecord, Row, build_batch, topic_types
from splitlab_analyzer.consumer.sink import copy_field, copy_text

TOPICS = topic_types()


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    def __init__(self, records: list[Record]) -> None:
        self.pending = list(records)
        self.commits: list[dict[Any, Any]] = []
        self.paused_parts: set[Any] = set()
        self.log: list[str] = []

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Record]]:
        if self.paused_parts or not self.pending:
            return {}
        batch, self.pending = self.pending[: max_records or 500], self.pending[max_records or 500 :]
        return {"tp": batch}

    def assignment(self) -> set[Any]:
        from kafka import TopicPartition

        return {TopicPartition("splitlab.outcomes.v1", 0)}

    def pause(self, *parts: Any) -> None:
        self.paused_parts |= set(parts)
        self.log.append("pause")

    def paused(self) -> set[Any]:
        return set(self.paused_parts)

    def resume(self, *parts: Any) -> None:
        self.paused_parts -= set(parts)
        self.log.append("resume")

    def commit(self, offsets: dict[Any, Any]) -> None:
        self.commits.append(offsets)
        self.log.append("commit")

    def highwater(self, tp: Any) -> int | None:
        return None


class FakeSink:
    def __init__(self, failures: int = 0, log: list[str] | None = None) -> None:
        self.failures = failures
        self.rows: dict[Any, Row] = {}
        self.log = log if log is not None else []

    def write(self, rows: dict[EventType, list[Row]]) -> dict[EventType, int]:
        if self.failures:
            self.failures -= 1
            self.log.append("write-failed")
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        out: dict[EventType, int] = {}
        for kind, batch in rows.items():
            new = [r for r in batch if r[0] not in self.rows]
            for r in new:
                self.rows[r[0]] = r
            out[kind] = len(new)
        self.log.append("write")
        return out


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.flushed = 0

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1


def records(n: int, start: int = 0) -> list[Record]:
    return [
        Record(
            "splitlab.outcomes.v1", 0, start + i, b"u",
            OutcomeEvent(unit_id=f"u{i}", outcome_type="click", value=1.0).to_bytes(),
        )
        for i in range(n)
    ]  # fmt: skip


def loop(consumer: FakeConsumer, sink: FakeSink, producer: FakeProducer) -> IngestLoop:
    return IngestLoop(
        consumer, sink, producer, dead_letter_topic="dlq", topics=TOPICS, batch_size=100,
        batch_wait_ms=50, retry_initial_seconds=0.01, retry_max_seconds=0.02,
    )  # fmt: skip


def test_offsets_are_committed_after_the_write_with_the_next_offset() -> None:
    consumer = FakeConsumer(records(150))
    sink = FakeSink(log=consumer.log)
    ingest = loop(consumer, sink, FakeProducer())
    ingest.run_once()
    ingest.run_once()
    assert consumer.log == ["write", "commit", "write", "commit"]
    assert [next(iter(c.values())).offset for c in consumer.commits] == [100, 150]
    assert len(sink.rows) == 150


def test_postgres_down_pauses_retries_the_same_batch_then_resumes_and_commits() -> None:
    consumer = FakeConsumer(records(80))
    sink = FakeSink(failures=3, log=consumer.log)
    ingest = loop(consumer, sink, FakeProducer())
    ingest.run_once()
    assert consumer.log == [
        "write-failed", "pause", "write-failed", "write-failed", "write", "resume", "commit",
    ]  # fmt: skip
    assert len(sink.rows) == 80
    assert next(iter(consumer.commits[0].values())).offset == 80


def test_stop_during_an_outage_exits_without_committing() -> None:
    consumer = FakeConsumer(records(10))
    sink = FakeSink(failures=10**6, log=consumer.log)
    stop = threading.Event()
    ingest = loop(consumer, sink, FakeProducer())
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    ingest.run(stop)
    assert consumer.commits == []
    assert sink.rows == {}


def test_malformed_messages_become_dead_letters_flushed_before_the_commit() -> None:
    bad = [
        Record("splitlab.outcomes.v1", 1, 7, b"k", b"{oops"),
        Record("splitlab.outcomes.v1", 1, 8, None, None),
        Record("splitlab.exposures.v1", 2, 3, b"k", records(1)[0].value),
    ]
    consumer = FakeConsumer([*records(5), *bad])
    producer = FakeProducer()
    ingest = loop(consumer, FakeSink(log=consumer.log), producer)
    batch = ingest.run_once()
    assert batch is not None
    assert batch.event_count == 5
    letters = [json.loads(v) for _, v in producer.sent]
    assert [(x["topic"], x["partition"], x["offset"]) for x in letters] == [
        ("splitlab.outcomes.v1", 1, 7), ("splitlab.outcomes.v1", 1, 8),
        ("splitlab.exposures.v1", 2, 3),
    ]  # fmt: skip
    assert "Invalid JSON" in letters[0]["reason"]
    assert "does not belong on topic" in letters[2]["reason"]
    assert producer.flushed == 1
    committed = {(tp.topic, tp.partition): o.offset for tp, o in consumer.commits[0].items()}
    assert committed == {
        ("splitlab.outcomes.v1", 0): 5, ("splitlab.outcomes.v1", 1): 9,
        ("splitlab.exposures.v1", 2): 4,
    }  # fmt: skip


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_written() -> None:
    class PickySink(FakeSink):
        def write(self, rows: dict[EventType, list[Row]]) -> dict[EventType, int]:
            if any(r[3] == "u2" for batch in rows.values() for r in batch):
                raise psycopg2.DataError("value out of range")
            return super().write(rows)

    consumer = FakeConsumer(records(4))
    producer = FakeProducer()
    sink = PickySink()
    loop(consumer, sink, producer).run_once()
    assert len(sink.rows) == 3
    (letter,) = [json.loads(v) for _, v in producer.sent]
    assert "refused by Postgres" in letter["reason"]
    assert letter["offset"] == 2


def test_nul_characters_are_dead_lettered_before_they_reach_postgres() -> None:
    event = OutcomeEvent(unit_id="a\x00b", outcome_type="click", value=1.0)
    batch = build_batch([RawRecord("splitlab.outcomes.v1", 0, 0, None, event.to_bytes())], TOPICS)
    assert batch.event_count == 0
    assert "NUL" in batch.dead_letters[0].reason


def test_transient_errors_are_connection_errors_only() -> None:
    assert is_transient(psycopg2.OperationalError("down"))
    assert not is_transient(psycopg2.DataError("bad"))
    assert not is_transient(ValueError("x"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "\\N"), (True, "t"), (1.5, "1.5"), ("a\tb\nc\\d", "a\\tb\\nc\\\\d"),
     ({"k": [1]}, '{"k": [1]}')],
)  # fmt: skip
def test_copy_text_escapes(value: object, text: str) -> None:
    assert copy_field(value) == text


def test_copy_text_has_a_line_per_row() -> None:
    eid = uuid.uuid4()
    assert copy_text([(eid, 1, None)]).read() == f"{eid}\t1\t\\N\n"

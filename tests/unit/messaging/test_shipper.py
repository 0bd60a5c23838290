"""SpoolShipper's reading of spooled lines and its batch guarantees, with an in-memory producer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from splitlab.contracts.topics import EXPOSURES, OUTCOMES
from splitlab.platform.messaging.shipper import ShipperConfig, ShipperStatus, SpoolShipper
from splitlab.platform.messaging.spool import SpoolReader, SpoolWriter


class Acknowledged:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def succeeded(self) -> bool:
        return self.ok


class RecordingProducer:
    """Acknowledges every record unless told to fail the ``fail_at``-th send of its life."""

    def __init__(self, received: list[tuple[str, bytes, bytes]], fail_at: int | None) -> None:
        self.received = received
        self.fail_at = fail_at
        self.sent = 0
        self.closed = False

    def send(self, topic: str, value: bytes, key: bytes) -> Acknowledged:
        self.sent += 1
        if self.sent == self.fail_at:
            return Acknowledged(False)
        self.received.append((topic, value, key))
        return Acknowledged(True)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def partitions_for(self, topic: str) -> set[int]:
        return {0}


def drain(folder: Path, factory: Callable[[], RecordingProducer]) -> SpoolShipper:
    """Run a shipper until the spool is empty (the stop signal set first: it drains, then
    returns)."""
    stop = threading.Event()
    stop.set()
    shipper = SpoolShipper(ShipperConfig(folders=[folder]), factory, stop)
    shipper.run()
    return shipper


def exposure(unit: str) -> bytes:
    return ExposureEvent(
        unit_id=unit, experiment_key="ranker", variant="control", bucket_version=2, reason="hashed"
    ).to_bytes()


def test_records_are_the_spooled_bytes_keyed_by_unit_on_their_events_topic(
    tmp_path: Path,
) -> None:
    lines = [exposure("u-1"), OutcomeEvent(unit_id="u-2", outcome_type="click", value=1).to_bytes()]
    lines.append(exposure('u-"quoted" \\ é'))  # escapes in the key survive
    writer = SpoolWriter(tmp_path)
    for line in lines:
        writer.append(line)
    writer.close()
    received: list[tuple[str, bytes, bytes]] = []
    shipper = drain(tmp_path, lambda: RecordingProducer(received, None))
    assert received == [
        (EXPOSURES, lines[0], b"u-1"),
        (OUTCOMES, lines[1], b"u-2"),
        (EXPOSURES, lines[2], 'u-"quoted" \\ é'.encode()),
    ]
    assert shipper.status == ShipperStatus(shipped=3, unreadable=0, kafka_up=True)
    assert SpoolReader(tmp_path).backlog() == 0


def test_lines_that_are_not_readable_events_are_counted_and_skipped(tmp_path: Path) -> None:
    good = [exposure(f"u-{i}") for i in range(3)]
    bad = [
        b"not json",
        b"\x00\x00\x00" + good[0],  # zeros of a torn write before a line
        good[0][:-1] + b",}",  # the fields are there, the JSON is broken
        good[0] + b"x",  # trailing garbage after the object
        b'["exposure", "u-1"]',  # JSON, not an object
        b'{"event_type": "exposure"}',  # no unit_id
        b'{"unit_id": "u-1", "event_type": "click"}',  # no such event type
        b'{"unit_id": "u-1", "event_type": ["exposure"]}',  # event_type not a string
    ]
    writer = SpoolWriter(tmp_path)
    for line in [good[0], *bad[:4], good[1], *bad[4:], good[2]]:
        writer.append(line)
    writer.close()
    received: list[tuple[str, bytes, bytes]] = []
    shipper = drain(tmp_path, lambda: RecordingProducer(received, None))
    assert [value for _, value, _ in received] == good
    assert shipper.status.shipped == 3
    assert shipper.status.unreadable == len(bad)
    assert SpoolReader(tmp_path).backlog() == 0


def test_a_batch_with_one_unacknowledged_record_is_resent_whole_by_a_fresh_producer(
    tmp_path: Path,
) -> None:
    lines = [exposure(f"u-{i}") for i in range(10)]
    writer = SpoolWriter(tmp_path)
    for line in lines:
        writer.append(line)
    writer.close()
    received: list[tuple[str, bytes, bytes]] = []
    producers: list[RecordingProducer] = []

    def factory() -> RecordingProducer:
        # The first producer loses the 7th record of its first batch; later ones lose none.
        producers.append(RecordingProducer(received, 7 if not producers else None))
        return producers[-1]

    stop = threading.Event()
    shipper = SpoolShipper(ShipperConfig(folders=[tmp_path], retry_seconds=0.01), factory, stop)
    thread = threading.Thread(target=shipper.run)
    thread.start()
    try:
        for _ in range(500):
            if shipper.status.shipped == 10:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(10)
    assert len(producers) == 2, "the failed producer was discarded, a fresh one sent the batch"
    assert producers[0].closed
    values = [value for _, value, _ in received]
    assert values[:9] == lines[:6] + lines[7:], "the first attempt, less its lost record"
    assert values[9:] == lines, "the whole batch again, from the cursor"
    assert SpoolReader(tmp_path).backlog() == 0


class ScriptedStop:
    """A stop signal that records every wait, spools one event at the ``write_at``-th and is
    set after ``waits`` waits."""

    def __init__(self, writer: SpoolWriter, write_at: int, waits: int) -> None:
        self.writer = writer
        self.write_at = write_at
        self.total = waits
        self.waits: list[float | None] = []

    def is_set(self) -> bool:
        return len(self.waits) >= self.total

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) == self.write_at:
            self.writer.append(exposure("after-a-quiet-spell"))
        return self.is_set()


def test_an_idle_spool_is_looked_at_less_and_less_often_until_an_event_comes(
    tmp_path: Path,
) -> None:
    writer = SpoolWriter(tmp_path)
    stop = ScriptedStop(writer, write_at=6, waits=9)
    received: list[tuple[str, bytes, bytes]] = []
    config = ShipperConfig(folders=[tmp_path], poll_seconds=0.01, idle_poll_max_seconds=0.1,
                           linger_seconds=0.02)  # fmt: skip
    SpoolShipper(config, lambda: RecordingProducer(received, None), stop).run()
    writer.close()
    # idle: doubling up to the cap; the event ships, then the linger, then idle from the start
    assert stop.waits == [0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.02, 0.01, 0.02]
    assert [key for _, _, key in received] == [b"after-a-quiet-spell"]

"""The spool shipper's CPU per event: kafka-python against confluent-kafka, in the same run.

The shipper (``splitlab.platform.messaging.shipper``) runs beside every service on the same cores,
so its CPU per event is taken from request handling under load. Here ``BENCH_SHIPPER_EVENTS``
(100,000) exposure events are spooled into a temporary folder and the real ``SpoolShipper``
ships them to the configured Kafka (the stack's ``splitlab.exposures.v1``), once with each
producer, alternating, twice each; the figure is the lower CPU time of the two (CPU of every
thread of this process, ``time.process_time``, not wall time: the machine is shared). The
kafka-python producer is configured as the shipper had it before (acks=all, idempotence, linger
2 ms, 15 s delivery timeout); the confluent one is ``create_confluent_producer``. Both runs use
the same line parsing (``pydantic_core.from_json``); its cost and ``json.loads``' are reported
apart. Target: the confluent producer's CPU per event at most a third of kafka-python's.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import BenchResult, best_of
from pydantic_core import from_json

from splitlab.contracts.events import ExposureEvent
from splitlab.platform.connections import create_confluent_producer, create_kafka_producer
from splitlab.platform.messaging.admin import ensure_topics
from splitlab.platform.messaging.shipper import Producer, ShipperConfig, SpoolShipper
from splitlab.platform.messaging.spool import SpoolReader, SpoolWriter
from splitlab.platform.settings import Settings, load_settings

EVENTS = int(os.environ.get("BENCH_SHIPPER_EVENTS", 100_000))
ROUNDS = 2


def exposure(i: int) -> bytes:
    return ExposureEvent(
        unit_id=f"7c9e6679-7425-40de-944b-e07fc1f9{i:06x}",
        experiment_key="bench-shipper",
        variant=("control", "treatment")[i % 2],
        bucket_version=2,
        reason="hashed",
        attributes={"country": "US", "app_version": "2.10.1"},
    ).to_bytes()


def ship(lines: list[bytes], factory: Callable[[], Producer]) -> tuple[float, float]:
    """Spool ``lines`` and ship them all: (CPU seconds, wall seconds) of the shipping alone."""
    with tempfile.TemporaryDirectory(prefix="bench-shipper-") as tmp:
        folder = Path(tmp)
        writer = SpoolWriter(folder)
        for line in lines:
            writer.append(line)
        writer.close()
        stop = threading.Event()
        stop.set()  # ship everything, then return
        shipper = SpoolShipper(ShipperConfig(folders=[folder]), factory, stop)
        cpu, wall = time.process_time(), time.perf_counter()
        shipper.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if shipper.status.shipped != len(lines) or SpoolReader(folder).backlog():
            raise RuntimeError(f"the shipper did not ship every event: {shipper.status}")
    return cpu, wall


def producers(settings: Settings) -> dict[str, Callable[[], Producer]]:
    def kafka_python() -> Producer:
        made: Producer = create_kafka_producer(
            settings, request_timeout_ms=5000, delivery_timeout_ms=15_000, linger_ms=2
        )
        return made

    def confluent() -> Producer:
        return create_confluent_producer(settings)

    return {"kafka_python": kafka_python, "confluent": confluent}


def run() -> list[BenchResult]:
    settings = load_settings()
    ensure_topics(settings)
    lines = [exposure(i) for i in range(EVENTS)]
    factories = producers(settings)
    cpu: dict[str, list[float]] = {name: [] for name in factories}
    wall: dict[str, list[float]] = {name: [] for name in factories}
    for _ in range(ROUNDS):
        for name, factory in factories.items():
            seconds, elapsed = ship(lines, factory)
            cpu[name].append(seconds)
            wall[name].append(elapsed)
    figures: dict[str, float] = {}
    for name in factories:
        figures[f"{name}_cpu_us_per_event"] = min(cpu[name]) / EVENTS * 1e6
        figures[f"{name}_events_per_s"] = EVENTS / min(wall[name])
    ratio = figures["confluent_cpu_us_per_event"] / figures["kafka_python_cpu_us_per_event"]
    figures["confluent_vs_kafka_python_cpu_ratio"] = ratio
    sample = lines[:10_000]
    figures["parse_json_loads_us"] = best_of(lambda: [json.loads(s) for s in sample]) / 1e4 * 1e6
    figures["parse_from_json_us"] = best_of(lambda: [from_json(s) for s in sample]) / 1e4 * 1e6
    return [
        BenchResult(
            benchmark="shipper.cpu_per_event",
            figures=figures,
            target="confluent_cpu_us_per_event <= kafka_python_cpu_us_per_event / 3",
            met=ratio <= 1 / 3,
            notes=(
                "The real SpoolShipper draining a spool of exposure events (~330 bytes) into "
                "the stack's Kafka, batches of 5,000, each acknowledged (acks=all, idempotent) "
                "before the cursor moves. CPU of the whole process (the producers' own threads "
                "included: kafka-python's sender, librdkafka's broker threads), lower of "
                f"{ROUNDS} alternating runs each; events/s from the faster wall time. parse_*: "
                "one spooled line parsed, the shipper's from_json against json.loads."
            ),
            context={
                "events": EVENTS,
                "rounds": ROUNDS,
                "cpu_s": cpu,
                "wall_s": wall,
                "bootstrap_servers": settings.kafka_bootstrap_servers,
            },
        )
    ]

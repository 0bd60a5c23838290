"""The analyzer: sustained Kafka -> Postgres ingestion against a plain COPY, and results time.

1. Ingestion: 1,000,000 events (20% exposures, 10% predictions, 70% outcomes) are produced to
   fresh topics (6 partitions), then one consumer process-equivalent (the real ingestion loop,
   in a thread) drains them into Postgres; the rate is events / time from start to the last
   row committed. Baseline in the same run: a plain ``COPY`` of the same rows into empty copies
   of the tables (no idempotency, no Kafka, no parsing). Target: >= 25% of the COPY rate.
   The experiment ``bench`` and its 5 metrics are defined and its rollups stored before the
   consumer starts, so ingestion also keeps first exposures and per-unit rollups (what it does
   for a running experiment).
2. Results: an experiment with 1,000,000 units, 3 variants and 5 metrics (sum, count, any on
   outcomes; a count of clicks; mean prediction latency), pre-period events for CUPED, is
   loaded with COPY; the time of one uncached ``ResultsService.compute`` (one snapshot with one
   SQL aggregation, then the stats engine at both horizons, method ``auto``) is reported, and
   that of a refresh's computation (``maintain=True``). Target: <= 2 s. The COPY load bypasses the
   consumer, so the load step does what ingestion would have done: first exposures, then the
   rollup build (timed apart, ``rollups_build_s``). Then, for context: one computation after
   10,000 more events went through the consumer's sink (it includes catching the rollups up
   on the units those events touched), and one computation from the events (no rollups).

Everything lives in a schema of its own (``bench_analyzer``) of the configured database,
dropped at the end. Reports, does not assert.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import scratch
from harness import BenchResult
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import sessionmaker

from splitlab.contracts.events import ExposureEvent, OutcomeEvent, PredictionEvent
from splitlab.contracts.topics import EventType
from splitlab.platform.settings import Settings, load_settings
from splitlab.platform.storage.models import Experiment, MetricDefinition
from splitlab_analyzer.consumer.main import run as run_consumer
from splitlab_analyzer.consumer.rows import (
    TABLE_COLUMNS,
    TABLES,
    RawRecord,
    build_batch,
    outcome_row,
    topic_types,
)
from splitlab_analyzer.consumer.sink import PostgresSink, copy_text
from splitlab_analyzer.repository import CupacRepository, ExperimentRepository, MetricRepository
from splitlab_analyzer.results.service import ResultsService
from splitlab_analyzer.rollups.repository import first_exposures_sql

SCHEMA = "bench_analyzer"
EVENTS = int(os.environ.get("BENCH_ANALYZER_EVENTS", 1_000_000))
UNITS = int(os.environ.get("BENCH_ANALYZER_UNITS", 1_000_000))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def schema_engine(settings: Settings) -> Engine:
    return scratch.schema_engine(settings, SCHEMA, pool_size=4)


def fresh_schema(settings: Settings) -> Engine:
    return scratch.fresh_schema(settings, SCHEMA, pool_size=4)


def drop_schema(settings: Settings) -> None:
    scratch.drop_schema(settings, SCHEMA)


# --- ingestion ----------------------------------------------------------------------------
def make_events(n: int) -> list[ExposureEvent | PredictionEvent | OutcomeEvent]:
    rng = np.random.default_rng(0)
    kinds = rng.choice(3, n, p=[0.2, 0.1, 0.7])
    out: list[ExposureEvent | PredictionEvent | OutcomeEvent] = []
    for i, kind in enumerate(kinds):
        unit = f"u{i % 200_000}"
        at = T0 + timedelta(seconds=i)
        if kind == 0:
            out.append(ExposureEvent(unit_id=unit, experiment_key="bench", variant="control",
                                     bucket_version=0, reason="hashed",
                                     occurred_at=at))  # fmt: skip
        elif kind == 1:
            out.append(PredictionEvent(unit_id=unit, experiment_key="bench", variant="control",
                                       bucket_version=0, request_id=uuid.uuid4().hex,
                                       model_name="m", model_version="1", latency_ms=12.5,
                                       prediction=0.3, occurred_at=at))  # fmt: skip
        else:
            out.append(OutcomeEvent(unit_id=unit, outcome_type="purchase", value=float(i % 97),
                                    occurred_at=at))  # fmt: skip
    return out


def create_topics(settings: Settings) -> dict[str, str]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    tag = uuid.uuid4().hex[:8]
    names = {k: f"splitlab.bench.{k}.{tag}" for k in ("exposure", "prediction", "outcome", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics(
        [NewTopic(n, num_partitions=6, replication_factor=1) for n in names.values()]
    )
    admin.close()
    return names


def delete_topics(settings: Settings, names: dict[str, str]) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.delete_topics(list(names.values()))
    admin.close()


def produce(
    settings: Settings, topics: dict[str, str], payloads: list[tuple[str, bytes, bytes]]
) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=50,
                             batch_size=512 * 1024, acks="all")  # fmt: skip
    start = time.perf_counter()
    for kind, key, value in payloads:
        producer.send(topics[kind], value, key=key)
    producer.flush(300)
    producer.close()
    return time.perf_counter() - start


def total_rows(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text(
            "SELECT (SELECT count(*) FROM exposures) + (SELECT count(*) FROM predictions) "
            "+ (SELECT count(*) FROM outcomes)"
        )).scalar_one())  # fmt: skip


def bench_ingestion(settings: Settings) -> BenchResult:
    events = make_events(EVENTS)
    payloads = [(e.event_type, e.key(), e.to_bytes()) for e in events]
    del events
    topics = create_topics(settings)
    try:
        produce_s = produce(settings, topics, payloads)
        engine = fresh_schema(settings)
        define_experiment(engine)
        assert results_service(engine).build_rollups("bench")
        own = settings.model_copy(update={
            "database_url": settings.database_url,
            "analyzer_consumer_group": f"bench-{uuid.uuid4().hex[:8]}",
            "analyzer_consumer_metrics_port": 0,
            "analyzer_batch_size": 5000,
        })  # fmt: skip
        stop = threading.Event()
        event_topics: dict[EventType, str] = {
            k: topics[k] for k in ("exposure", "prediction", "outcome")
        }  # type: ignore[misc]
        import splitlab_analyzer.consumer.main as consumer_main

        original = consumer_main.create_db_engine
        consumer_main.create_db_engine = lambda s, **kw: schema_engine(s)  # type: ignore[assignment]
        start = time.perf_counter()
        thread = threading.Thread(
            target=run_consumer,
            args=(own, stop),
            kwargs={
                "topics": event_topics,
                "dead_letter_topic": topics["dlq"],
                "serve_metrics": False,
            },
        )
        thread.start()
        try:
            while total_rows(engine) < EVENTS:
                time.sleep(0.25)
                if time.perf_counter() - start > 900:
                    raise TimeoutError("ingestion did not finish in 15 minutes")
            ingest_s = time.perf_counter() - start
        finally:
            stop.set()
            thread.join(60)
            consumer_main.create_db_engine = original  # type: ignore[assignment]

        # Baseline: a plain COPY of the same rows into empty copies of the tables.
        batch = build_batch(
            (RawRecord(topics[k], 0, i, key, value) for i, (k, key, value) in enumerate(payloads)),
            topic_types(event_topics),
        )
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for kind in TABLES.values():
                cursor.execute(f"CREATE TABLE copy_{kind} (LIKE {kind} INCLUDING ALL)")
            raw.commit()
            start = time.perf_counter()
            for kind, rows in batch.rows.items():
                columns = ", ".join(TABLE_COLUMNS[kind])
                cursor.copy_expert(
                    f"COPY copy_{TABLES[kind]} ({columns}) FROM STDIN", copy_text(rows)
                )
            raw.commit()
            copy_s = time.perf_counter() - start
        finally:
            raw.close()
        engine.dispose()
    finally:
        delete_topics(settings, topics)
        drop_schema(settings)
    ingest_rate = EVENTS / ingest_s
    copy_rate = EVENTS / copy_s
    ratio = ingest_rate / copy_rate
    return BenchResult(
        benchmark="analyzer.ingestion_1m_events",
        figures={
            "ingest_events_per_s": round(ingest_rate),
            "copy_rows_per_s": round(copy_rate),
            "ingest_vs_copy_ratio": round(ratio, 3),
            "ingest_s": round(ingest_s, 2),
            "copy_s": round(copy_s, 2),
            "produce_s": round(produce_s, 2),
        },
        target="ingest_events_per_s >= 0.25 * copy_rows_per_s",
        met=ratio >= 0.25,
        notes="one consumer thread (batch 5000: parse, COPY to staging, INSERT ... ON CONFLICT, "
        "first exposures, rollups of the running experiment bench (5 metrics, 6 slots), commit, "
        "offset commit); COPY baseline writes the same rows with no Kafka and no parsing",
        context={"events": EVENTS, "partitions": 6},
    )


# --- results --------------------------------------------------------------------------------
def copy_frame(engine: Engine, table: str, columns: list[str], data: dict[str, Any]) -> None:
    import pandas as pd

    buffer = io.StringIO()
    pd.DataFrame(data)[columns].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        raw.cursor().copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN CSV", buffer)
        raw.commit()
    finally:
        raw.close()


def load_experiment(engine: Engine, n: int) -> None:
    rng = np.random.default_rng(1)
    units = np.array([f"u{i}" for i in range(n)], dtype=object)
    variants = rng.choice(np.array(["control", "t1", "t2"], dtype=object), n)
    first = T0.timestamp() + rng.uniform(0, 14 * 86400, n)  # epoch seconds
    ids = lambda m: [str(uuid.uuid4()) for _ in range(m)]  # noqa: E731
    copy_frame(engine, "exposures",
               ["event_id", "schema_version", "occurred_at", "unit_id", "experiment_key",
                "variant", "bucket_version", "reason", "attributes"],
               {"event_id": ids(n), "schema_version": 1, "occurred_at": stamps(first),
                "unit_id": units,
                "experiment_key": "bench", "variant": variants, "bucket_version": 0,
                "reason": "hashed", "attributes": "{}"})  # fmt: skip
    # Outcomes: purchases after exposure (some units several), purchases before, clicks.
    k = rng.poisson(0.8, n)
    idx = np.repeat(np.arange(n), k)
    post = first[idx] + rng.uniform(0, 7 * 86400, idx.size)
    pre_k = rng.poisson(0.5, n)
    pidx = np.repeat(np.arange(n), pre_k)
    pre = first[pidx] - rng.uniform(1, 13 * 86400, pidx.size)
    c_k = rng.poisson(0.6, n)
    cidx = np.repeat(np.arange(n), c_k)
    clicks = first[cidx] + rng.uniform(0, 7 * 86400, cidx.size)
    all_idx = np.concatenate([idx, pidx, cidx])
    m = all_idx.size
    copy_frame(engine, "outcomes",
               ["event_id", "schema_version", "occurred_at", "unit_id", "request_id",
                "outcome_type", "value"],
               {"event_id": ids(m), "schema_version": 1,
                "occurred_at": stamps(np.concatenate([post, pre, clicks])),
                "unit_id": units[all_idx],
                "request_id": "", "outcome_type": ["purchase"] * (idx.size + pidx.size)
                + ["click"] * cidx.size,
                "value": np.round(rng.gamma(2, 10, m), 2)})  # fmt: skip
    p_k = rng.poisson(0.5, n)
    qidx = np.repeat(np.arange(n), p_k)
    copy_frame(engine, "predictions",
               ["event_id", "schema_version", "occurred_at", "unit_id", "experiment_key",
                "variant", "bucket_version", "request_id", "model_name", "model_version",
                "shadow", "latency_ms", "fallback"],
               {"event_id": ids(qidx.size), "schema_version": 1,
                "occurred_at": stamps(first[qidx] + 60.0),
                "unit_id": units[qidx], "experiment_key": "bench", "variant": variants[qidx],
                "bucket_version": 0, "request_id": "r", "model_name": "m", "model_version": "1",
                "shadow": False, "latency_ms": np.round(rng.gamma(4, 10, qidx.size), 2),
                "fallback": False})  # fmt: skip
    with engine.begin() as c:
        c.execute(text("ANALYZE"))


def stamps(epoch_seconds: np.ndarray) -> Any:
    import pandas as pd

    return pd.to_datetime(epoch_seconds, unit="s", utc=True)


def define_experiment(engine: Engine) -> None:
    """The running experiment ``bench``: 3 variants, 5 metrics with 14-day pre-periods."""
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(insert(Experiment).values(
            key="bench", name="bench", hypothesis="", owner="", status="running",
            variants=[{"key": "control", "weight": 1 / 3}, {"key": "t1", "weight": 1 / 3},
                      {"key": "t2", "weight": 1 / 3}],
            coverage=1.0, hash_seed=None, hash_version=2, hash_attribute="id",
            metrics={"primary": "revenue", "secondary": ["orders", "converted", "clicks"],
                     "guardrails": [{"metric": "latency", "margin": 0.05}]},
            alpha=0.05, power=0.8, mde=0.02, planned_sample_size=2_000_000, auto_stop=False,
            bucket_version=0, min_bucket_version=0, version=1, created_at=now,
            updated_at=now, started_at=now))  # fmt: skip
        for name, source, otype, agg in (
            ("revenue", "outcome", "purchase", "sum"),
            ("orders", "outcome", "purchase", "count"),
            ("converted", "outcome", "purchase", "any"),
            ("clicks", "outcome", "click", "count"),
            ("latency", "prediction_latency", None, "mean"),
        ):  # fmt: skip
            c.execute(insert(MetricDefinition).values(
                name=name, description="", source=source, outcome_type=otype,
                aggregation=agg, direction="higher_is_better", pre_period_days=14.0,
                covariates=[], created_at=now, updated_at=now))  # fmt: skip


def results_service(engine: Engine) -> ResultsService:
    sessions = sessionmaker(bind=engine)
    return ResultsService(engine, ExperimentRepository(sessions), MetricRepository(sessions),
                          CupacRepository(engine))  # fmt: skip


def record_first_exposures(engine: Engine) -> None:
    """What the consumer does per batch, over every loaded exposure at once."""
    with engine.begin() as c:
        c.execute(text("SET LOCAL work_mem = '256MB'"))
        c.execute(text(first_exposures_sql("exposures")))
        c.execute(text("ANALYZE experiment_units"))


BACKLOG_EVENTS = 10_000


def write_more_outcomes(engine: Engine, n: int) -> None:
    """``n`` purchases and clicks of random units, through the consumer's sink (batches of
    5,000, as ingestion writes them: the units go to the rollup backlog)."""
    rng = np.random.default_rng(2)
    sink = PostgresSink(engine)
    for start in range(0, n, 5000):
        rows = [
            outcome_row(OutcomeEvent(
                unit_id=f"u{rng.integers(UNITS)}",
                outcome_type=str(rng.choice(["purchase", "click"])), value=float(rng.gamma(2, 10)),
                occurred_at=T0 + timedelta(seconds=float(rng.uniform(0, 21 * 86400)))))
            for _ in range(min(5000, n - start))
        ]  # fmt: skip
        sink.write({"exposure": [], "prediction": [], "outcome": rows})


def bench_results(settings: Settings) -> BenchResult:
    engine = fresh_schema(settings)
    try:
        start = time.perf_counter()
        load_experiment(engine, UNITS)
        record_first_exposures(engine)
        load_s = time.perf_counter() - start
        define_experiment(engine)
        service = results_service(engine)
        start = time.perf_counter()
        service.build_rollups("bench")
        build_s = time.perf_counter() - start
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            computed = service.compute("bench", "auto")
            timings.append(time.perf_counter() - start)
        body = computed.body
        refreshes = []
        for _ in range(3):  # what Automation.refresh computes: rollups checked, caught up, read
            start = time.perf_counter()
            service.compute("bench", "auto", maintain=True)
            refreshes.append(time.perf_counter() - start)
        write_more_outcomes(engine, BACKLOG_EVENTS)
        start = time.perf_counter()
        after = service.compute("bench", "auto")
        backlog_s = time.perf_counter() - start
        service.rollups.drop("bench")
        start = time.perf_counter()
        from_events = service.compute("bench", "auto")
        events_s = time.perf_counter() - start
    finally:
        engine.dispose()
        drop_schema(settings)
    best = min(timings)
    return BenchResult(
        benchmark="analyzer.results_1m_units_3_variants_5_metrics",
        figures={
            "results_s": round(best, 3),
            "results_median_s": round(sorted(timings)[1], 3),
            "refresh_s": round(min(refreshes), 3),
            "sql_s": body["timings"]["sql_s"],
            "results_after_backlog_s": round(backlog_s, 3),
            "rollup_catch_up_s": after.body["timings"]["rollup_catch_up_s"],
            "results_from_events_s": round(events_s, 3),
            "rollups_build_s": round(build_s, 1),
            "load_s": round(load_s, 1),
        },
        target="results_s <= 2.0",
        met=best <= 2.0,
        notes="uncached ResultsService.compute(method=auto) reading the stored per-unit rollups "
        "(caught up: nothing in the backlog): one snapshot (one SQL aggregation to sufficient "
        "statistics per variant and missing pattern), then splitlab.analyze_horizons (both "
        "horizons from one estimation); best of 3. refresh_s: the same with maintain=True (what "
        "a refresh computes: rollups checked and caught up first), best of 3. "
        "results_after_backlog_s: once more after 10,000 outcomes went through the consumer's "
        "sink (includes the catch-up of their units); results_from_events_s: the same "
        "computation from the events (no rollups stored), once",
        context={
            "units": UNITS,
            "variants": 3,
            "metrics": 5,
            "total_units": body["sample"]["total_units"],
            "per_unit": body["timings"]["per_unit"],
            "backlog_events": BACKLOG_EVENTS,
            "backlog_units_caught_up": after.body["timings"]["rollup_catch_up_units"],
            "per_unit_from_events": from_events.body["timings"]["per_unit"],
        },
    )


def run() -> list[BenchResult]:
    settings = load_settings()
    return [bench_results(settings), bench_ingestion(settings)]

"""Trainer benchmark (issue 16): one in-experiment CUPAC training through the trainer's code
path (``Trainer.run``: the per-unit rows read through a server-side cursor, the design matrix,
linear regression and gradient boosting with the bounded search, the out-of-fold choice, the
atomic publish of every prediction) for 100,000 and 1,000,000 units with 20 features.

Goal: 1,000,000 units in at most 90 s with a peak memory under 4 GB on the 2-core machine.
Each training runs in a fresh process (as the worker runs one task per child), so the peak
resident memory the catalogue records is that training's. The data live in a schema of their
own (``bench_trainer``) of the configured database, dropped at the end. Sizes:
``BENCH_TRAINER_SIZES`` (comma-separated, default ``100000,1000000``).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import scratch
from harness import BenchResult
from sqlalchemy import Engine, insert, text

from splitlab.platform.settings import Settings, load_settings
from splitlab.platform.storage.models import Experiment, MetricDefinition

SCHEMA = "bench_trainer"
FEATURES = 20
SIZES = [int(s) for s in os.environ.get("BENCH_TRAINER_SIZES", "100000,1000000").split(",")]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOAL_S = 90.0
GOAL_BYTES = 4 * 2**30


def schema_engine(settings: Settings) -> Engine:
    return scratch.schema_engine(settings, SCHEMA, pool_size=2)


def fresh_schema(settings: Settings) -> Engine:
    return scratch.fresh_schema(settings, SCHEMA, pool_size=2)


def copy_rows(engine: Engine, table: str, lines: io.StringIO) -> None:
    lines.seek(0)
    raw = engine.raw_connection()
    try:
        raw.cursor().copy_expert(f"COPY {table} FROM STDIN", lines)
        raw.commit()
    finally:
        raw.close()


def load(engine: Engine, n: int, key: str) -> None:
    """``n`` units: 20 features observed before exposure, a purchase after it whose value
    depends nonlinearly on five of them, and one in the pre-period."""
    rng = np.random.default_rng(n)
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(
            insert(Experiment).values(
                key=key, name=key, hypothesis="", owner="", status="running",
                variants=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
                coverage=1.0, hash_seed=None, hash_version=2, hash_attribute="id",
                namespace=None, targeting=None,
                metrics={"primary": "revenue", "secondary": [], "guardrails": []},
                alpha=0.05, power=0.8, mde=None, planned_sample_size=None, auto_stop=False,
                bucket_version=0, min_bucket_version=0, version=1, created_at=now,
                updated_at=now, started_at=T0,
            )
        )  # fmt: skip
        c.execute(
            insert(MetricDefinition).values(
                name="revenue", description="", source="outcome", outcome_type="purchase",
                aggregation="sum", direction="higher_is_better", pre_period_days=14.0,
                covariates=[f"f{j}" for j in range(FEATURES)], created_at=now, updated_at=now,
            )
        )  # fmt: skip
    step = 100_000
    for start in range(0, n, step):
        size = min(step, n - start)
        x = rng.normal(size=(size, FEATURES))
        y = 2 * np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + x[:, 0] * x[:, 2] + 0.5 * x[:, 3]
        y += rng.normal(size=size) + 10
        first = [T0 + timedelta(seconds=float(s)) for s in rng.uniform(0, 5 * 86400, size)]
        units, outcomes, features = io.StringIO(), io.StringIO(), io.StringIO()
        for i in range(size):
            unit = f"u{start + i}"
            at = first[i]
            units.write(
                f"{key}\t{unit}\t{'control' if i % 2 else 'treatment'}\t{at.isoformat()}\t"
                f"{uuid4()}\n"
            )
            outcomes.write(f"{uuid4()}\t1\t{(at + timedelta(hours=2)).isoformat()}\t{unit}\t"
                           f"purchase\t{float(y[i])!r}\n")  # fmt: skip
            outcomes.write(f"{uuid4()}\t1\t{(at - timedelta(days=2)).isoformat()}\t{unit}\t"
                           f"purchase\t{float(abs(y[i] + rng.normal()))!r}\n")  # fmt: skip
            seen = (at - timedelta(days=1)).isoformat()
            for j in range(FEATURES):
                features.write(f"{unit}\tf{j}\t{seen}\t{float(x[i, j])!r}\n")
        copy_rows(engine, "experiment_units (experiment_key, unit_id, variant, first_at, "
                  "first_event_id)", units)  # fmt: skip
        copy_rows(engine, "outcomes (event_id, schema_version, occurred_at, unit_id, "
                  "outcome_type, value)", outcomes)  # fmt: skip
        copy_rows(engine, "unit_features (unit_id, name, observed_at, value)", features)
    with engine.begin() as c:
        c.execute(text("ANALYZE"))


def uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


def train(settings: Settings, model_ids: list[int]) -> None:
    """The trainer's code path in this (fresh) process."""
    from splitlab_trainer.resources import build_resources

    engine = schema_engine(settings)
    build_resources(settings, engine).trainings.run(model_ids)
    engine.dispose()


def bench_size(settings: Settings, n: int) -> BenchResult:
    from splitlab_trainer.resources import build_resources

    engine = fresh_schema(settings)
    key = f"bench-{n}"
    try:
        started = time.perf_counter()
        load(engine, n, key)
        load_s = time.perf_counter() - started
        res = build_resources(settings, engine)
        ids = res.catalogue.enqueue(
            "default", key, "revenue", ["in_experiment"], {"in_experiment": 900.0}
        )
        process = multiprocessing.get_context("spawn").Process(target=train, args=(settings, ids))
        started = time.perf_counter()
        process.start()
        process.join()
        wall = time.perf_counter() - started
        (row,) = res.catalogue.many(ids)
        assert row.status == "done", row.error
        seconds = float(row.duration_seconds or 0.0)
        peak = int(row.peak_memory_bytes or 0)
        return BenchResult(
            benchmark=f"trainer.in_experiment_{n}_units_{FEATURES}_features",
            figures={
                "training_s": round(seconds, 2),
                "process_wall_s": round(wall, 2),
                "peak_memory_mb": round(peak / 2**20, 1),
                "oof_r2": round(float(row.r2 or 0.0), 4),
                "load_s": round(load_s, 1),
            },
            target=f"1,000,000 units: training_s <= {GOAL_S:g}, peak < 4096 MB",
            met=None if n != 1_000_000 else (seconds <= GOAL_S and peak < GOAL_BYTES),
            notes=f"chose {row.family}; candidates {row.r2_candidates}; {'; '.join(row.notes)}",
            context={"units": n, "features": FEATURES, "load": os.getloadavg()[0]},
        )
    finally:
        engine.dispose()
        scratch.drop_schema(settings, SCHEMA)


def run() -> list[BenchResult]:
    settings = load_settings()
    return [bench_size(settings, n) for n in SIZES]

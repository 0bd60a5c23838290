"""First exposures and per-unit rollups through real Postgres: whatever the order of the
batches, replays, and consumers writing while rollups are built and caught up, caught-up
rollups equal the slots computed from the events, and results read from the rollups equal
results computed from the events, also after a metric definition changes."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from splitlab.contracts.events import ExposureEvent
from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app
from splitlab_analyzer.consumer.rows import exposure_row, outcome_row, prediction_row
from splitlab_analyzer.consumer.sink import PostgresSink
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repository import CupacRepository, ExperimentRepository, MetricRepository
from splitlab_analyzer.results.service import ResultsService
from splitlab_analyzer.rollups.plan import RollupPlan
from splitlab_analyzer.rollups.repository import Binder, built_digest, unit_slots_sql
from splitlab_analyzer.rollups.store import RollupStore
from tests.integration.analyzer.conftest import insert_experiment, wait_until
from tests.integration.analyzer.simulation import (
    T0,
    Event,
    _exposure,
    _outcome,
    _prediction,
    experiment_row,
)
from tests.integration.analyzer.test_results_pipeline import assert_same

pytestmark = pytest.mark.integration


def write(sink: PostgresSink, events: Sequence[Event]) -> None:
    rows: dict[Any, list[tuple[object, ...]]] = {"exposure": [], "prediction": [], "outcome": []}
    for e in events:
        if isinstance(e, ExposureEvent):
            rows["exposure"].append(exposure_row(e))
        elif e.event_type == "prediction":
            rows["prediction"].append(prediction_row(e))  # type: ignore[arg-type]
        else:
            rows["outcome"].append(outcome_row(e))  # type: ignore[arg-type]
    sink.write(rows)


def batches(events: list[Event], size: int, rng: random.Random) -> list[list[Event]]:
    shuffled = list(events)
    rng.shuffle(shuffled)
    return [shuffled[i : i + size] for i in range(0, len(shuffled), size)]


def test_the_first_exposure_is_the_earliest_whatever_the_order_and_the_replays(
    engine: Engine,
) -> None:
    key = f"first-{uuid.uuid4().hex[:8]}"
    rng = random.Random(3)
    events: list[Event] = []
    for i in range(60):
        unit = f"{key}-u{i}"
        for j in range(4):
            at = T0 + timedelta(minutes=rng.uniform(0, 10_000))
            events.append(_exposure(unit, key, f"v{j}", at))
        if i % 6 == 0:  # a tie on the earliest time: the smaller event id wins
            earliest = min(e.occurred_at for e in events if e.unit_id == unit)
            events.append(_exposure(unit, key, "tie", earliest))
    late = [  # arrive last, earlier than everything before
        _exposure(f"{key}-u{i}", key, "late", T0 - timedelta(days=1)) for i in range(0, 60, 7)
    ]
    sink = PostgresSink(engine)
    for batch in batches(events, 37, rng):
        write(sink, batch)
    for batch in reversed(batches(events, 50, rng)):  # a replay of everything
        write(sink, batch)
    write(sink, late)
    write(sink, late + events[:30])  # and once more

    expected = {}
    for e in [*events, *late]:
        current = expected.get(e.unit_id)
        if current is None or (e.occurred_at, e.event_id) < (current[1], current[2]):
            expected[e.unit_id] = (e.variant, e.occurred_at, e.event_id)  # type: ignore[union-attr]
    with engine.connect() as c:
        got = {
            r.unit_id: (r.variant, r.first_at, r.first_event_id)
            for r in c.execute(
                text("SELECT * FROM experiment_units WHERE experiment_key = :k"), {"k": key}
            )
        }
    assert got == expected
    assert sum(1 for v in got.values() if v[0] == "late") == len(late)


def define(engine: Engine, tag: str) -> dict[str, MetricDef]:
    metrics = {
        "revenue": MetricDef(f"{tag}_revenue", "outcome", "purchase", "sum"),
        "revenue_1d": MetricDef(f"{tag}_revenue_1d", "outcome", "purchase", "sum",
                                attribution_window_seconds=86400.0),
        "converted": MetricDef(f"{tag}_converted", "outcome", "purchase", "any",
                               pre_period_days=0),
        "clicks": MetricDef(f"{tag}_clicks", "outcome", "click", "count", pre_period_days=3),
        "latency": MetricDef(f"{tag}_latency", "prediction_latency", None, "mean",
                             direction="lower_is_better"),
        "errors": MetricDef(f"{tag}_errors", "prediction_error", None, "mean"),
    }  # fmt: skip
    repository = MetricRepository(sessionmaker(bind=engine))
    for m in metrics.values():
        assert repository.create(m)
    return metrics


def experiment(engine: Engine, key: str, metrics: dict[str, MetricDef]) -> None:
    row = experiment_row(key, guardrails=[])
    names = [m.name for m in metrics.values()]
    row["metrics"] = {"primary": names[0], "secondary": names[1:], "guardrails": []}
    insert_experiment(engine, row)


def traffic(key: str, n: int, rng: random.Random) -> list[Event]:
    """Exposures (some later ones earlier than the first written), outcomes before and after
    them (and of a type no metric reads), predictions (shadow ones, another experiment's)."""
    events: list[Event] = []
    for i in range(n):
        unit = f"{key}-u{i}"
        variant = rng.choice(["control", "t1", "t2"])
        first = T0 + timedelta(hours=rng.uniform(0, 96))
        for k in range(rng.randint(1, 3)):
            at = first + timedelta(hours=rng.uniform(-30, 30) * k)
            events.append(_exposure(unit, key, variant, at))
        for _ in range(rng.randint(0, 4)):
            at = first + timedelta(hours=rng.uniform(-100, 60))
            events.append(_outcome(unit, "purchase", round(rng.gammavariate(2, 5), 2), at))
        for _ in range(rng.randint(0, 3)):
            at = first + timedelta(hours=rng.uniform(-80, 40))
            events.append(_outcome(unit, "click", 1.0, at))
        events.append(_outcome(unit, "refund", 5.0, first + timedelta(hours=1)))
        for _ in range(rng.randint(0, 3)):
            at = first + timedelta(minutes=rng.uniform(-600, 600))
            p = _prediction(unit, key, variant, rng.gammavariate(4, 10), at)
            if rng.random() < 0.2:
                p = p.model_copy(update={"error": "timeout"})
            events.append(p)
        events.append(_prediction(unit, key, variant, 999.0, first, shadow=True))
        events.append(_prediction(unit, f"{key}-other", "control", 555.0, first))
    return events


def stored_equal_computed(engine: Engine, key: str, plan: RollupPlan) -> int:
    """After a catch-up every stored rollup row equals the same slots computed from the
    events; returns the rows."""
    RollupStore(engine).catch_up()
    bind = Binder("named")
    sql = unit_slots_sql(plan, bind, bind("key", key))
    with engine.connect() as c:
        computed = {r.unit_id: r for r in c.execute(text(sql), bind.params)}
        stored = {
            r.unit_id: r
            for r in c.execute(
                text("SELECT * FROM unit_rollups WHERE experiment_key = :k"), {"k": key}
            )
        }
    assert stored.keys() == computed.keys()
    for unit, row in computed.items():
        got = stored[unit]
        assert (got.variant, got.first_at) == (row.variant, row.first_at), unit
        for i in range(len(plan.slots)):
            assert getattr(got, f"n{i}") == getattr(row, f"n{i}"), (unit, i)
            assert getattr(got, f"s{i}") == pytest.approx(getattr(row, f"s{i}"), rel=1e-12)
    return len(stored)


def service(engine: Engine) -> ResultsService:
    sessions = sessionmaker(bind=engine)
    return ResultsService(
        engine, ExperimentRepository(sessions), MetricRepository(sessions), CupacRepository(engine)
    )


def test_rollups_kept_by_the_sink_equal_the_events_and_results_agree(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = f"r{uuid.uuid4().hex[:6]}"
    key = f"rollups-{tag}"
    metrics = define(engine, tag)
    experiment(engine, key, metrics)
    results = service(engine)
    rng = random.Random(5)
    events = traffic(key, 300, rng)
    head, tail = events[: len(events) // 3], events[len(events) // 3 :]
    sink = PostgresSink(engine)
    for batch in batches(head, 90, rng):  # before the rollups exist
        write(sink, batch)
    assert results.build_rollups(key)  # built from what is there
    assert not results.build_rollups(key)  # and only once
    plan = results.query(results.experiment(key)).plan
    written = batches(tail, 70, rng)
    for i, batch in enumerate(written):
        write(sink, batch)
        if i % 3 == 2:
            write(sink, written[i - 1])  # a replayed batch adds nothing
    write(sink, events[:200])  # replays of early events too
    with engine.connect() as c:
        pending = c.execute(text("SELECT count(DISTINCT unit_id) FROM rollup_backlog"))
        assert pending.scalar_one() > 0  # noted by ingestion, not yet caught up
    assert stored_equal_computed(engine, key, plan) == 300

    more = traffic(key, 300, random.Random(6))[:400]
    write(sink, more[:200])
    # A backlog longer than a computation may catch up: computed from the events instead.
    monkeypatch.setattr("splitlab_analyzer.results.service.MAX_CATCH_UP_UNITS", 10)
    assert results.compute(key, "none").body["timings"]["per_unit"] == "events"
    monkeypatch.undo()
    write(sink, more[200:])  # more, then results catch up
    from_rollups = results.compute(key, "none")
    assert from_rollups.body["timings"]["per_unit"] == "rollups"
    assert from_rollups.body["timings"]["rollup_catch_up_units"] > 0
    # Per-unit values (what CUPAC fits on) are the same from either source.
    query = results.query(results.experiment(key))
    with engine.connect() as c:
        per_unit = [
            c.execute(text(query.per_unit_sql(rollups)), query.params).mappings().all()
            for rollups in (True, False)
        ]
    assert len(per_unit[0]) == 300
    for stored, computed in zip(*per_unit, strict=True):
        assert stored.keys() == computed.keys()
        for column, value in computed.items():
            if isinstance(value, float):
                assert stored[column] == pytest.approx(value, rel=1e-12), column
            else:
                assert stored[column] == value, column
    results.rollups.drop(key)
    from_events = results.compute(key, "none")
    assert from_events.body["timings"]["per_unit"] == "events"
    assert_same(from_events.body["metrics"], from_rollups.body["metrics"])
    for field in ("units", "total_units", "first_exposure_at", "last_exposure_at"):
        assert from_events.body["sample"][field] == from_rollups.body["sample"][field]
    assert from_rollups.body["sample"]["total_units"] == 300

    # A definition change asks for other slots: the stored ones are not used until rebuilt.
    assert results.build_rollups(key)
    with engine.begin() as c:
        c.execute(
            text("UPDATE metric_definitions SET attribution_window_seconds = 7200 WHERE name = :n"),
            {"n": metrics["revenue_1d"].name},
        )
    changed = results.compute(key, "none")
    assert changed.body["timings"]["per_unit"] == "events"
    assert changed.body["metrics"] != from_events.body["metrics"]
    with engine.connect() as c:
        assert built_digest(c, key) != results.query(results.experiment(key)).plan.digest
    assert results.build_rollups(key)
    rebuilt = results.compute(key, "none")
    assert rebuilt.body["timings"]["per_unit"] == "rollups"
    assert_same(changed.body["metrics"], rebuilt.body["metrics"])


def test_builds_and_catch_ups_while_two_consumers_write_stay_exact(
    engine: Engine, migrated_database: str
) -> None:
    tag = f"c{uuid.uuid4().hex[:6]}"
    key = f"rollups-{tag}"
    experiment(engine, key, define(engine, tag))
    results = service(engine)
    plan = results.query(results.experiment(key)).plan
    rng = random.Random(9)
    events = traffic(key, 200, rng)
    halves = [events[0::2], events[1::2]]  # the same units in both, interleaved in time
    errors: list[BaseException] = []
    done = threading.Event()

    def consume(part: list[Event], seed: int) -> None:
        own = create_engine(migrated_database)
        try:
            sink = PostgresSink(own)
            for batch in batches(part, 25, random.Random(seed)):
                write(sink, batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    def maintain() -> None:
        own = create_engine(migrated_database)
        try:
            store = RollupStore(own)
            built = False
            while not done.is_set():
                if not built:
                    built = store.ensure(key, plan)  # a build in the middle of ingestion
                store.catch_up()
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    consumers = [threading.Thread(target=consume, args=(h, s)) for s, h in enumerate(halves)]
    maintainer = threading.Thread(target=maintain)
    consumers[0].start()
    maintainer.start()
    consumers[1].start()
    for t in consumers:
        t.join(120)
    done.set()
    maintainer.join(120)
    assert not errors, errors
    assert stored_equal_computed(engine, key, plan) == 200


def test_a_build_waits_for_the_batches_in_flight_and_includes_them(
    engine: Engine, migrated_database: str
) -> None:
    tag = f"w{uuid.uuid4().hex[:6]}"
    key = f"rollups-{tag}"
    experiment(engine, key, define(engine, tag))
    results = service(engine)
    plan = results.query(results.experiment(key)).plan
    events = traffic(key, 20, random.Random(4))
    rows: dict[Any, list[tuple[object, ...]]] = {"exposure": [], "prediction": [], "outcome": []}
    for e in events:
        row = {"exposure": exposure_row, "prediction": prediction_row, "outcome": outcome_row}
        rows[e.event_type].append(row[e.event_type](e))  # type: ignore[operator]

    class Paused(PostgresSink):
        """Commits only when told: a batch in flight while the build starts."""

        def __init__(self, engine: Engine) -> None:
            super().__init__(engine)
            self.written = threading.Event()
            self.release = threading.Event()

        def write(self, batch: Any) -> Any:
            connection: Any = self.engine.raw_connection()
            original = connection.commit

            def commit() -> None:
                self.written.set()
                assert self.release.wait(30)
                original()

            connection.commit = commit
            self.engine.raw_connection = lambda: connection  # type: ignore[method-assign]
            return super().write(batch)

    own = create_engine(migrated_database)
    sink = Paused(own)
    writer = threading.Thread(target=sink.write, args=(rows,))
    writer.start()
    builder = threading.Thread(target=results.build_rollups, args=(key,))
    try:
        assert sink.written.wait(30)
        builder.start()
        builder.join(1.5)
        waited = builder.is_alive()
    finally:
        sink.release.set()
        writer.join(30)
        if builder.is_alive() or builder.ident is not None:
            builder.join(60)
        own.dispose()
    assert waited, "the build must wait for the batch in flight"
    assert stored_equal_computed(engine, key, plan) == 20


def test_the_analyzer_app_catches_the_rollups_up_without_a_read(
    engine: Engine, analyzer_settings: Settings, redis_client: Any
) -> None:
    """With the periodic catch-up on, what ingestion noted lands in the rollups while nobody
    reads; a read then has nothing left to catch up and stays on the rollups."""
    tag = f"c{uuid.uuid4().hex[:6]}"
    key = f"catch-up-{tag}"
    metrics = define(engine, tag)
    experiment(engine, key, metrics)
    results = service(engine)
    rng = random.Random(8)
    events = traffic(key, 120, rng)
    sink = PostgresSink(engine)
    write(sink, events[: len(events) // 2])
    assert results.build_rollups(key)
    for batch in batches(events[len(events) // 2 :], 50, rng):
        write(sink, batch)

    def backlog() -> int:
        with engine.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM rollup_backlog")).scalar_one())

    assert backlog() > 0
    settings = analyzer_settings.model_copy(update={"analyzer_rollup_catch_up_seconds": 0.2})
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: backlog() == 0, 30, "the periodic rollup catch-up")
        exported = client.get("/metrics").text
    assert "splitlab_analyzer_rollup_caught_up_units_total" in exported
    computed = results.compute(key, "none")
    assert computed.body["timings"]["per_unit"] == "rollups"
    assert computed.body["timings"]["rollup_catch_up_units"] == 0
    plan = results.query(results.experiment(key)).plan
    assert stored_equal_computed(engine, key, plan) == 120
    results.rollups.drop(key)

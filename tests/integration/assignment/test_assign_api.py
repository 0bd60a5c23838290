"""/assign against real Redis, Postgres and Kafka: stickiness across changes and restarts,
bucket-version bumps, the split over 100,000 units, exposures in Kafka, and a dead Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from scipy.stats import chisquare

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.service import AssignmentService
from splitlab.assigning.sticky import StickyStore
from splitlab.contracts.topics import EXPOSURES
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab.platform.connections import create_async_redis
from splitlab.platform.settings import Settings
from splitlab.platform.storage.redis_keys import sticky_key
from splitlab_assignment.app import create_app
from tests.integration.assignment.conftest import experiment_body
from tests.support.redis_server import RedisServer

UNITS = [f"user-{i}" for i in range(200)]


def _start(client: TestClient, admin: dict[str, str], key: str, **overrides: Any) -> None:
    created = client.post("/experiments", json=experiment_body(key, **overrides), headers=admin)
    assert created.status_code == 201, created.text
    assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200


def _assign_all(client: TestClient, key: str, units: list[str]) -> dict[str, dict[str, Any]]:
    answers = {}
    for unit in units:
        response = client.post("/assign", json={"unit_id": unit, "experiment_key": key})
        assert response.status_code == 200, response.text
        answers[unit] = response.json()
    return answers


def test_assign_answers_the_contract_and_not_running_is_not_an_error(
    client: TestClient,
    admin: dict[str, str],
    new_key: Callable[[], str],
    redis_client: redis.Redis,
) -> None:
    key = new_key()
    client.post("/experiments", json=experiment_body(key), headers=admin)
    draft = client.post("/assign", json={"unit_id": "u1", "experiment_key": key})
    assert draft.status_code == 200
    assert draft.json() == {
        "experiment_key": key,
        "variant": "control",
        "in_experiment": False,
        "reason": "not_running",
        "sticky": False,
        "bucket_version": 0,
        "degraded": False,
    }
    unknown = client.post("/assign", json={"unit_id": "u1", "experiment_key": new_key()})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "experiment_key"
    client.post(f"/experiments/{key}/start", headers=admin)
    first = client.post("/assign", json={"unit_id": "u1", "experiment_key": key}).json()
    assert (first["in_experiment"], first["reason"], first["sticky"]) == (True, "hashed", True)
    # Nothing has moved a unit since the start: hashing answers, the record is written behind.
    again = client.post("/assign", json={"unit_id": "u1", "experiment_key": key}).json()
    assert (again["variant"], again["reason"], again["sticky"]) == (
        first["variant"],
        "hashed",
        True,
    )
    deadline = time.monotonic() + 5
    while redis_client.hget(sticky_key("u1"), key) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert redis_client.hget(sticky_key("u1"), key) == f"{first['variant']}|0"
    bad = client.post("/assign", json={"unit_id": "", "experiment_key": key})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "unit_id"
    metrics = client.get("/metrics").text
    assert f'splitlab_assignments_total{{experiment="{key}",reason="hashed"' in metrics


def test_stickiness_survives_a_weight_change_and_a_restart(
    service_settings: Settings,
    admin: dict[str, str],
    new_key: Callable[[], str],
    redis_client: redis.Redis,
) -> None:
    key = new_key()
    with TestClient(create_app(service_settings)) as client:
        _start(client, admin, key)
        before = _assign_all(client, key, UNITS)
        assert {a["reason"] for a in before.values()} == {"hashed"}
        ramp = {
            "variants": [{"key": "control", "weight": 0.9}, {"key": "treatment", "weight": 0.1}]
        }
        assert client.patch(f"/experiments/{key}", json=ramp, headers=admin).status_code == 200
        after = _assign_all(client, key, UNITS)
        fresh = _assign_all(client, key, [f"new-{i}" for i in range(200)])
    assert {u: a["variant"] for u, a in after.items()} == {
        u: a["variant"] for u, a in before.items()
    }
    assert {a["reason"] for a in after.values()} == {"sticky"}
    treated_before = sum(a["variant"] == "treatment" for a in before.values())
    assert 65 < treated_before < 135
    assert sum(a["variant"] == "treatment" for a in fresh.values()) < 40  # new weights: 10%
    assert redis_client.hget(sticky_key("user-7"), key) == f"{before['user-7']['variant']}|0"
    assert 0 < redis_client.ttl(sticky_key("user-7")) <= service_settings.sticky_ttl_seconds

    with TestClient(create_app(service_settings)) as restarted:  # a new service instance
        again = _assign_all(restarted, key, UNITS)
    assert {u: a["variant"] for u, a in again.items()} == {
        u: a["variant"] for u, a in before.items()
    }
    assert {a["reason"] for a in again.values()} == {"sticky"}


def test_a_bucket_version_bump_rebuckets_and_min_bucket_version_excludes(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    _start(client, admin, key)
    before = _assign_all(client, key, UNITS)
    bump = {"hash_seed": f"{key}-v1", "bucket_version": 1}
    assert client.patch(f"/experiments/{key}", json=bump, headers=admin).status_code == 200
    rebucketed = _assign_all(client, key, UNITS)
    assert {a["reason"] for a in rebucketed.values()} == {"hashed"}
    assert {a["bucket_version"] for a in rebucketed.values()} == {1}
    moved = sum(rebucketed[u]["variant"] != before[u]["variant"] for u in UNITS)
    assert 60 < moved < 140  # a new seed: about half move
    assert {a["reason"] for a in _assign_all(client, key, UNITS).values()} == {"sticky"}

    exclude = {"bucket_version": 2, "min_bucket_version": 2}
    assert client.patch(f"/experiments/{key}", json=exclude, headers=admin).status_code == 200
    excluded = _assign_all(client, key, UNITS[:50])
    assert {a["reason"] for a in excluded.values()} == {"bucket_version_excluded"}
    assert {a["in_experiment"] for a in excluded.values()} == {False}
    newcomer = _assign_all(client, key, ["brand-new-unit"])["brand-new-unit"]
    assert (newcomer["reason"], newcomer["bucket_version"]) == ("hashed", 2)


def test_batch_assigns_every_running_experiment_in_one_call(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    keys = [new_key(), new_key()]
    for key in keys:
        _start(client, admin, key)
    targeted = new_key()
    _start(client, admin, targeted, targeting={"country": "FR"})
    body = {"unit_id": "batch-unit", "attributes": {"country": "US"}}
    first = client.post("/assign/batch", json=body).json()
    mine = {a["experiment_key"]: a for a in first["assignments"] if a["experiment_key"] in keys}
    assert set(mine) == set(keys)
    assert {a["reason"] for a in mine.values()} == {"hashed"}
    assert targeted not in {a["experiment_key"] for a in first["assignments"]}
    second = client.post("/assign/batch", json={**body, "include_excluded": True}).json()
    by_key = {a["experiment_key"]: a for a in second["assignments"]}
    assert {by_key[k]["reason"] for k in keys} == {"sticky"}
    assert by_key[targeted]["reason"] == "not_targeted"
    assert second["degraded"] is False
    single = client.post("/assign", json={"unit_id": "batch-unit", "experiment_key": keys[0]})
    assert single.json()["variant"] == mine[keys[0]]["variant"]


def test_the_split_of_100k_units_matches_the_weights(
    service_settings: Settings, redis_client: redis.Redis
) -> None:
    """Through the service layer (real Redis stickiness), fast enough for the suite."""
    weights = {"control": 0.5, "treatment": 0.3, "treatment-b": 0.2}
    state = {
        "key": "split-100k",
        "status": "running",
        "version": 1,
        "variants": [{"key": k, "weight": w} for k, w in weights.items()],
        "coverage": 1.0,
        "hash_version": 2,
        "hash_attribute": "id",
        "allocation_epoch": 0,  # a fresh experiment: records are written in the background
    }
    cache = ExperimentCache()
    cache.put(CachedExperiment.from_state(state))
    published: list[Any] = []

    class Collect:
        def publish(self, event: Any) -> None:
            published.append(event)

    async def run() -> Counter[str]:
        client = create_async_redis(service_settings, timeout=5.0)
        store = StickyStore(client, ttl_seconds=3600, breaker_seconds=1.0)
        service = AssignmentService(cache, store, Collect(), HoldoutConfig(share=0.0))
        counts: Counter[str] = Counter()
        semaphore = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with semaphore:
                answer = await service.assign("split-100k", f"unit-{i}")
            assert not answer.degraded
            counts[answer.variant] += 1

        for chunk in range(0, 100_000, 5_000):
            await asyncio.gather(*(one(i) for i in range(chunk, chunk + 5_000)))
        await store.settled()
        await client.aclose()
        return counts

    counts = asyncio.run(run())
    assert sum(counts.values()) == 100_000
    observed = [counts[k] for k in weights]
    expected = [w * 100_000 for w in weights.values()]
    assert chisquare(observed, expected).pvalue > 0.001
    assert len(published) == 100_000
    assert redis_client.dbsize() == 100_000  # one sticky hash per unit


def test_exposure_events_arrive_in_kafka(
    client: TestClient,
    admin: dict[str, str],
    new_key: Callable[[], str],
    service_settings: Settings,
) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=service_settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    partitions = [TopicPartition(EXPOSURES, p) for p in consumer.partitions_for_topic(EXPOSURES)]
    consumer.assign(partitions)
    starts = consumer.end_offsets(partitions)
    for tp, offset in starts.items():
        consumer.seek(tp, offset)

    key = new_key()
    _start(client, admin, key, targeting={"country": {"$in": ["US", "CA"]}})
    attributes = {"country": "US", "email": "not-recorded@example.com"}
    answers = {}
    for i in range(20):
        unit = f"kafka-unit-{i}"
        response = client.post(
            "/assign", json={"unit_id": unit, "experiment_key": key, "attributes": attributes}
        )
        answers[unit] = response.json()
    # A change that moves units: from now on answers read the unit's record ("sticky").
    weights = {"variants": [{"key": "control", "weight": 0.4}, {"key": "treatment", "weight": 0.6}]}
    assert client.patch(f"/experiments/{key}", json=weights, headers=admin).status_code == 200
    client.post(
        "/assign", json={"unit_id": "kafka-unit-0", "experiment_key": key, "attributes": attributes}
    )
    client.post("/assign", json={"unit_id": "outsider", "experiment_key": key})  # not targeted

    received: list[tuple[bytes, dict[str, Any]]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(received) < 21:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                event = json.loads(record.value)
                if event.get("experiment_key") == key:
                    received.append((record.key, event))
    consumer.close()
    assert len(received) == 21, received
    for record_key, event in received:
        unit = event["unit_id"]
        assert record_key == unit.encode()
        assert event["event_type"] == "exposure"
        assert event["schema_version"] == 1
        assert event["variant"] == answers[unit]["variant"]
        assert event["bucket_version"] == 0
        assert event["attributes"] == {"country": "US"}
        assert event["occurred_at"].endswith("Z") or event["occurred_at"].endswith("+00:00")
        assert len(event["event_id"]) == 36
    reasons = Counter(event["reason"] for _, event in received)
    assert reasons == {"hashed": 20, "sticky": 1}
    assert len({event["event_id"] for _, event in received}) == 21


def test_killing_redis_gives_degraded_answers_and_no_5xx_then_recovers(
    service_settings: Settings,
    admin: dict[str, str],
    new_key: Callable[[], str],
    private_redis: RedisServer,
) -> None:
    own = service_settings.model_copy(
        update={"redis_url": private_redis.url, "sticky_breaker_seconds": 0.5}
    )
    key = new_key()
    statuses: Counter[int] = Counter()
    with TestClient(create_app(own)) as client:
        _start(client, admin, key)

        def call(unit: str) -> dict[str, Any]:
            started = time.perf_counter()
            response = client.post("/assign", json={"unit_id": unit, "experiment_key": key})
            statuses[response.status_code] += 1
            assert time.perf_counter() - started < 1.0, "a dead Redis must not slow /assign"
            return response.json() if response.status_code == 200 else {}

        healthy = [call(f"r-{i}") for i in range(50)]
        assert not any(a["degraded"] for a in healthy)
        private_redis.kill()
        killed = time.monotonic()
        answered_after = []
        down = []
        for i in range(200):
            down.append(call(f"r-{i}"))
            answered_after.append(time.monotonic() - killed)
        # Answers before the first failed round trip cannot know (the records of a fresh
        # experiment are written behind the answer, a batch every 5 ms); from the first failure
        # on, every answer is flagged, including the breaker's periodic retries.
        flagged = next((i for i, a in enumerate(down) if a["degraded"]), None)
        assert flagged is not None, "no answer was flagged degraded while Redis was dead"
        assert answered_after[flagged] < 1.0, (flagged, answered_after[flagged])
        assert all(a["degraded"] and not a["sticky"] for a in down[flagged:])
        assert [a["variant"] for a in down[:50]] == [a["variant"] for a in healthy]
        assert {a["reason"] for a in down} == {"hashed"}
        metrics = client.get("/metrics").text
        assert 'splitlab_assignment_redis_fallbacks_total{operation="write"}' in metrics
        assert 'splitlab_assignment_redis_fallbacks_total{operation="skipped"}' in metrics

        private_redis.start()  # same port, empty (no persistence)
        deadline = time.monotonic() + 10
        recovered: dict[str, Any] = {"degraded": True}
        while recovered.get("degraded") and time.monotonic() < deadline:
            time.sleep(0.1)
            recovered = call("r-after")
        assert recovered["degraded"] is False
        assert recovered["sticky"] is True
        assert redis.Redis.from_url(private_redis.url).hget(sticky_key("r-after"), key)
        assert call("r-after")["degraded"] is False
    assert set(statuses) == {200}


def test_the_caller_key_covers_assign_and_assign_batch_alike(
    service_settings: Settings, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    """With SPLITLAB_ASSIGN_API_KEY set both production paths take the caller key (or an admin
    key) and nothing else; a read key is refused."""
    caller_key, read_key = "test-caller-key-0123456789", "test-read-key-0123456789"
    guarded = service_settings.model_copy(
        update={"assign_api_key": SecretStr(caller_key), "read_api_key": SecretStr(read_key)}
    )
    key = new_key()
    calls = [
        ("/assign", {"unit_id": "u1", "experiment_key": key}),
        ("/assign/batch", {"unit_id": "u1"}),
    ]
    with TestClient(create_app(guarded)) as client:
        _start(client, admin, key)
        for path, body in calls:
            codes = [
                client.post(path, json=body, headers=headers).status_code
                for headers in (
                    {},
                    {"Authorization": f"Bearer {read_key}"},
                    {"Authorization": f"Bearer {caller_key}"},
                    admin,
                )
            ]
            assert codes == [401, 403, 200, 200], path

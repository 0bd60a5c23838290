"""The whole system gives the right answer: simulated users through /predict and /outcomes,
events through Kafka into Postgres, results from the analyzer, checked against the world's truth
and against what every hop holds."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text

from splitlab.contracts.topics import topic_for
from splitlab.simulation.demo import CHALLENGER_MODEL, CONTROL_MODEL, PRESETS, experiment_body
from splitlab.simulation.driver import RunCounts, RunPlan, run, wait_until_served
from splitlab.simulation.world import World
from tests.integration.system.conftest import Platform

USERS = 2000
RATE = 80.0


def start_experiment(platform: Platform, key: str, control: str, treatment: str) -> None:
    body = experiment_body(key, control, treatment)
    with platform.admin() as client:
        assert client.post(f"{platform.endpoints.assignment_url}/experiments", json=body
                           ).status_code == 201  # fmt: skip
        response = client.post(f"{platform.endpoints.assignment_url}/experiments/{key}/start")
        assert response.status_code == 200, response.text


def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            TopicPartition(topic_for(kind), p)
            for kind in ("exposure", "prediction", "outcome")
            for p in consumer.partitions_for_topic(topic_for(kind)) or ()
        ]
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()


def events_since(bootstrap: str, marks: dict[TopicPartition, int], units: set[str]
                 ) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Every event of ``units`` written to the event topics after ``marks``, by topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=2000)  # fmt: skip
    try:
        consumer.assign(list(marks))
        for partition, offset in marks.items():
            consumer.seek(partition, offset)
        ends = consumer.end_offsets(list(marks))
        found: dict[str, list[dict[str, Any]]] = {tp.topic: [] for tp in marks}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in marks):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("unit_id") in units:
                        found[record.topic].append(event)
        return found
    finally:
        consumer.close()


def simulate(platform: Platform, key: str, world: World, models: list[str]) -> RunCounts:
    asyncio.run(wait_until_served(platform.endpoints, key, models))
    plan = RunPlan(key, users=USERS, rate=RATE, duration_s=300)
    counts = asyncio.run(run(world, plan, platform.endpoints))
    assert counts.failed_requests == 0, counts.errors
    assert counts.outcomes_rejected == 0, counts.errors
    return counts


def settled_results(platform: Platform, key: str, units: int) -> dict[str, Any]:
    """Results once every exposed unit has been ingested (refreshed, not cached)."""
    deadline = time.monotonic() + 120
    body: dict[str, Any] = {}
    with platform.admin() as client:
        while time.monotonic() < deadline:
            response = client.post(f"{platform.endpoints.analyzer_url}/experiments/{key}/refresh")
            if response.status_code == 200:
                body = response.json()
                if body["sample"]["total_units"] >= units:
                    return body
            time.sleep(2)
    pytest.fail(f"the analyzer saw {body.get('sample')} of {units} units after 120 s")


def comparison(body: dict[str, Any], metric: str) -> dict[str, Any]:
    result: dict[str, Any] = body["metrics"][metric]["comparisons"]["treatment"]
    return result


@pytest.fixture
def world_seed() -> int:
    return random.Random(uuid.uuid4().int).randrange(10**6)


def test_an_aa_test_finds_nothing_and_every_hop_holds_every_event(
    platform: Platform, world_seed: int
) -> None:
    key = f"sys-aa-{uuid.uuid4().hex[:8]}"
    start_experiment(platform, key, CONTROL_MODEL, CONTROL_MODEL)
    marks = end_offsets(platform.kafka_bootstrap_servers)
    world = World(seed=world_seed, behaviours=PRESETS["aa"])
    counts = simulate(platform, key, world, [CONTROL_MODEL])
    body = settled_results(platform, key, counts.in_experiment)

    # The analyzer counted exactly the units the simulator enrolled, per variant.
    assert body["sample"]["units"] == dict(counts.by_variant)
    assert not body["flags"]["srm"], body["srm"]
    # No effect at a family-wise level of 0.1% (Bonferroni over the four metrics): a broken
    # pipeline (variants swapped, events lost in one arm) gives p-values far below it, while
    # a healthy one fails it once in a thousand runs. The 5% rate itself is the studies' job.
    for metric in ("clicks", "ctr", "conversion", "revenue"):
        found = comparison(body, metric)
        assert found["p_value"] is not None, (metric, body["metrics"][metric])
        assert found["p_value"] > 0.001 / 4, (metric, found)

    # Accounting: what the simulator sent = what Kafka holds = what Postgres stored.
    units = {world.user(i).unit_id for i in range(USERS)}
    found = events_since(platform.kafka_bootstrap_servers, marks, units)
    outcomes_sent = sum(counts.outcomes.values())
    assert len(found[topic_for("exposure")]) == counts.requests
    assert len(found[topic_for("prediction")]) == counts.requests
    assert len(found[topic_for("outcome")]) == outcomes_sent
    engine = create_engine(platform.database_url)
    with engine.connect() as connection:
        stored = {
            table: connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE unit_id = ANY(:units)"),
                {"units": sorted(units)},
            ).scalar_one()
            for table in ("exposures", "predictions", "outcomes")
        }
    engine.dispose()
    assert stored == {"exposures": counts.requests, "predictions": counts.requests,
                      "outcomes": outcomes_sent}  # fmt: skip


def test_a_known_lift_is_found_with_the_right_sign_and_covered_by_the_interval(
    platform: Platform, world_seed: int
) -> None:
    key = f"sys-ab-{uuid.uuid4().hex[:8]}"
    start_experiment(platform, key, CONTROL_MODEL, CHALLENGER_MODEL)
    world = World(seed=world_seed, behaviours=PRESETS["recommender"])
    counts = simulate(platform, key, world, [CONTROL_MODEL, CHALLENGER_MODEL])
    settled_results(platform, key, counts.in_experiment)
    with platform.admin() as client:
        response = client.post(f"{platform.endpoints.analyzer_url}/experiments/{key}/cupac")
        assert response.status_code == 202, response.text
    # The trainer's worker fits the models; results use them once a version is in use.
    deadline = time.monotonic() + 300
    body = settled_results(platform, key, counts.in_experiment)
    while "clicks" not in body["cupac_models"] and time.monotonic() < deadline:
        time.sleep(2)
        body = settled_results(platform, key, counts.in_experiment)
    assert "clicks" in body["cupac_models"], "no CUPAC model in use after 300 s"

    challenger, control = world.expected(CHALLENGER_MODEL), world.expected(CONTROL_MODEL)
    truth = {
        metric: challenger[kind] - control[kind]
        for metric, kind in (("clicks", "click"), ("ctr", "ctr"), ("revenue", "revenue"),
                             ("conversion", "any_conversion"))
    }  # fmt: skip
    clicks = comparison(body, "clicks")
    assert clicks["effect"] > 0, clicks
    assert clicks["p_value"] < 0.05, clicks
    # Each estimate is within 3.29 standard errors of the truth (a 99.9% interval, so four
    # metrics miss together less than once in 250 runs; a biased pipeline misses by far more).
    for metric, true_effect in truth.items():
        found = comparison(body, metric)
        assert abs(found["effect"] - true_effect) <= 3.29 * found["se"], (
            metric,
            true_effect,
            found,
        )

    # The covariates (pre-exposure history) reduce variance: CUPED and CUPAC are reported with
    # their reduction, and CUPAC's interval is narrower than the unadjusted one.
    candidates = body["metrics"]["clicks"]["candidates"]
    assert candidates["cuped"]["variance_reduction"] > 0.05, candidates["cuped"]
    cupac = body["metrics"]["clicks"]["cupac"] or candidates.get("cupac")
    assert cupac is not None, body["metrics"]["clicks"]
    assert cupac["variance_reduction"] > 0.05, cupac
    assert cupac["se"]["treatment"] < candidates["none"]["se"]["treatment"]

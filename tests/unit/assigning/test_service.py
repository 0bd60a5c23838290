"""``splitlab.assigning.service`` with fake Redis and publisher: stickiness, degraded mode,
the circuit breaker, the holdout, batch and exposures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.service import AssignmentService
from splitlab.assigning.sticky import StickyStore
from splitlab.core.assignment.decision import HoldoutConfig, in_holdout
from splitlab.platform.errors import NotFoundError
from splitlab.platform.storage.redis_keys import sticky_key
from tests.unit.assigning.fakes import Clock, CollectingPublisher, FakeRedis


def state(key: str = "exp", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": key,
        "status": "running",
        "version": 1,
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "coverage": 1.0,
    }
    base.update(overrides)
    return base


class Harness:
    def __init__(self, *states: dict[str, Any], holdout: HoldoutConfig | None = None) -> None:
        self.cache = ExperimentCache()
        for s in states or (state(),):
            self.cache.put(CachedExperiment.from_state(s))
        self.redis = FakeRedis()
        self.clock = Clock()
        self.store = StickyStore(
            self.redis,  # type: ignore[arg-type]
            ttl_seconds=3600,
            breaker_seconds=5.0,
            clock=self.clock,
        )
        self.publisher = CollectingPublisher()
        self.service = AssignmentService(self.cache, self.store, self.publisher, holdout)

    def assign(self, unit: str, key: str = "exp", **attributes: Any) -> Any:
        return asyncio.run(self.service.assign(key, unit, attributes or None))

    def batch(self, unit: str, include_excluded: bool = False, **attributes: Any) -> Any:
        return asyncio.run(
            self.service.assign_batch(unit, attributes or None, include_excluded=include_excluded)
        )


def test_first_call_hashes_and_stores_then_sticks_in_one_round_trip_each() -> None:
    h = Harness()
    first = h.assign("u1")
    assert (first.reason, first.sticky, first.degraded, first.in_experiment) == (
        "hashed",
        True,
        False,
        True,
    )
    assert h.redis.hashes[sticky_key("u1")] == {"exp": f"{first.variant}|0"}
    assert h.redis.ttls[sticky_key("u1")] == 3600
    assert h.redis.calls == 1
    second = h.assign("u1")
    assert (second.variant, second.reason, second.sticky) == (first.variant, "sticky", True)
    assert h.redis.calls == 2


def test_a_sticky_record_outlives_a_weight_change() -> None:
    h = Harness()
    answers = {f"u{i}": h.assign(f"u{i}").variant for i in range(200)}
    h.cache.put(
        CachedExperiment.from_state(
            state(
                version=2,
                variants=[{"key": "control", "weight": 1.0}, {"key": "treatment", "weight": 0.0}],
            )
        )
    )
    assert "treatment" in answers.values()
    assert {u: h.assign(u).variant for u in answers} == answers
    assert h.assign("newcomer").variant == "control"


def test_an_outdated_record_is_replaced_after_a_bucket_version_bump() -> None:
    h = Harness()
    h.redis.hashes[sticky_key("u1")] = {"exp": "treatment|0"}
    h.cache.put(CachedExperiment.from_state(state(version=2, bucket_version=1, hash_seed="new")))
    answer = h.assign("u1")
    assert (answer.reason, answer.bucket_version, answer.sticky) == ("hashed", 1, True)
    assert h.redis.hashes[sticky_key("u1")]["exp"] == f"{answer.variant}|1"


def test_redis_down_answers_from_hashing_and_the_breaker_skips_redis() -> None:
    h = Harness()
    healthy = h.assign("u1").variant
    h.redis.down = True
    degraded = h.assign("u1")
    assert (degraded.variant, degraded.degraded, degraded.sticky, degraded.reason) == (
        healthy,
        True,
        False,
        "hashed",
    )
    calls = h.redis.calls
    for i in range(20):
        assert h.assign(f"other-{i}").degraded
    assert h.redis.calls == calls, "the open breaker must not touch Redis"
    assert not h.store.available
    h.redis.down = False
    h.clock.now += 5.0
    recovered = h.assign("u1")
    assert (recovered.degraded, recovered.reason) == (False, "sticky")


def test_not_running_unknown_and_untargeted() -> None:
    h = Harness(state(), state("paused", status="paused"), state("tgt", targeting={"c": "FR"}))
    paused = h.assign("u1", "paused")
    assert (paused.in_experiment, paused.reason, paused.variant) == (
        False,
        "not_running",
        "control",
    )
    assert h.redis.calls == 0, "no Redis round trip for a non-running experiment"
    with pytest.raises(NotFoundError):
        h.assign("u1", "missing")
    untargeted = h.assign("u1", "tgt", c="US")
    assert (untargeted.reason, untargeted.sticky) == ("not_targeted", False)
    assert sticky_key("u1") not in h.redis.hashes or "tgt" not in h.redis.hashes[sticky_key("u1")]


def test_a_sticky_unit_stays_when_targeting_narrows() -> None:
    h = Harness(state("tgt", targeting={"c": {"$in": ["FR", "US"]}}))
    first = h.assign("u1", "tgt", c="US")
    h.cache.put(CachedExperiment.from_state(state("tgt", version=2, targeting={"c": "FR"})))
    again = h.assign("u1", "tgt", c="US")
    assert (again.reason, again.variant) == ("sticky", first.variant)


def test_holdout_units_get_control_and_no_exposure() -> None:
    holdout = HoldoutConfig(share=0.3)
    h = Harness(holdout=holdout)
    units = [f"u{i}" for i in range(300)]
    held = [u for u in units if in_holdout(u, holdout)]
    assert 50 < len(held) < 130
    for unit in held:
        answer = h.assign(unit)
        assert (answer.reason, answer.variant, answer.in_experiment) == (
            "holdout",
            "control",
            False,
        )
    assert h.publisher.events == []
    assert h.redis.calls == 0


def test_exposures_carry_the_contract_and_only_targeting_attributes() -> None:
    h = Harness(state(targeting={"country": "US", "$or": [{"device.os": "ios"}, {"age": 3}]}))
    answer = h.assign("u1", country="US", device={"os": "ios"}, email="x@example.com")
    h.assign("u1", country="US", device={"os": "ios"})
    first, second = h.publisher.events
    assert first.event_type == "exposure"
    assert first.unit_id == "u1"
    assert first.experiment_key == "exp"
    assert first.variant == answer.variant
    assert (first.reason, second.reason) == ("hashed", "sticky")
    assert first.attributes == {"country": "US", "device": {"os": "ios"}}
    assert first.event_id != second.event_id
    assert first.occurred_at.tzinfo is not None
    parsed = type(first).model_validate_json(first.to_bytes())
    assert parsed == first


def test_batch_reads_once_and_writes_once_for_all_experiments() -> None:
    h = Harness(state("a"), state("b"), state("c", status="draft"), state("d", coverage=0.0))
    answer = h.batch("u1")
    assert [a.experiment_key for a in answer.assignments] == ["a", "b"]
    assert h.redis.calls == 2  # one read, one pipelined write
    assert set(h.redis.hashes[sticky_key("u1")]) == {"a", "b"}
    again = h.batch("u1", include_excluded=True)
    assert [(a.experiment_key, a.reason) for a in again.assignments] == [
        ("a", "sticky"),
        ("b", "sticky"),
        ("d", "coverage_excluded"),
    ]
    assert h.redis.calls == 3  # nothing new to store
    h.redis.down = True
    degraded = h.batch("u2")
    assert degraded.degraded
    assert all(not a.sticky for a in degraded.assignments)


def test_batch_narrowed_to_named_experiments() -> None:
    h = Harness(state("a"), state("b"), state("c"), state("d", status="paused"))
    answer = asyncio.run(h.service.assign_batch("u1", experiment_keys=["c", "a", "c"]))
    assert [a.experiment_key for a in answer.assignments] == ["c", "a"]
    assert set(h.redis.hashes[sticky_key("u1")]) == {"a", "c"}  # b was not enrolled
    assert {e.experiment_key for e in h.publisher.events} == {"a", "c"}
    paused = asyncio.run(h.service.assign_batch("u1", experiment_keys=["d"], include_excluded=True))
    assert [(a.experiment_key, a.reason) for a in paused.assignments] == [("d", "not_running")]
    with pytest.raises(NotFoundError) as missing:
        asyncio.run(h.service.assign_batch("u1", experiment_keys=["a", "nope"]))
    assert missing.value.field == "experiment_keys"
    assert "'nope'" in missing.value.message


def test_batch_for_a_held_out_unit_skips_redis() -> None:
    holdout = HoldoutConfig(share=1.0)
    h = Harness(state("a"), state("b"), holdout=holdout)
    answer = h.batch("u1", include_excluded=True)
    assert {a.reason for a in answer.assignments} == {"holdout"}
    assert h.redis.calls == 0


def test_concurrent_claims_share_one_round_trip_and_keep_their_own_answers() -> None:
    h = Harness()
    h.assign("u0")  # a record to find
    h.redis.calls = 0

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(h.service.assign("exp", f"u{i}") for i in range(5))))

    answers = asyncio.run(together())
    assert h.redis.calls == 1  # one pipeline for the five claims
    assert [a.reason.value for a in answers] == ["sticky"] + ["hashed"] * 4
    assert all(a.sticky and not a.degraded for a in answers)
    assert sorted(h.redis.hashes) == sorted(sticky_key(f"u{i}", "id") for i in range(5))


def test_a_failed_claim_in_a_batch_degrades_only_its_caller() -> None:
    h = Harness()
    h.redis.failing_keys.add(sticky_key("u1", "id"))

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(h.service.assign("exp", f"u{i}") for i in range(3))))

    answers = asyncio.run(together())
    assert [a.degraded for a in answers] == [False, True, False]
    assert not h.store.available  # the failure still opens the breaker


def test_redis_down_fails_every_claim_of_a_batch_to_hashing() -> None:
    h = Harness()
    h.redis.down = True

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(h.service.assign("exp", f"u{i}") for i in range(3))))

    answers = asyncio.run(together())
    assert all(a.degraded and not a.sticky and a.in_experiment for a in answers)


# --- experiments whose allocation never changed since the start: hashing is every record -------


def test_an_unchanged_experiment_answers_from_hashing_and_writes_the_record_behind() -> None:
    h = Harness(state(allocation_epoch=0))

    async def scenario() -> None:
        first = await h.service.assign("exp", "u1")
        assert (first.reason, first.sticky, first.degraded) == ("hashed", True, False)
        assert h.redis.calls == 0, "the answer must not wait for Redis"
        await h.store.settled()
        assert h.redis.hashes[sticky_key("u1")] == {"exp": f"{first.variant}|0"}
        again = await h.service.assign("exp", "u1")
        assert (again.variant, again.reason) == (first.variant, "hashed")

    asyncio.run(scenario())
    assert [e.unit_id for e in h.publisher.events] == ["u1", "u1"]


def test_records_remembered_together_go_out_in_one_round_trip() -> None:
    h = Harness(state(allocation_epoch=0))

    async def scenario() -> None:
        answers = await asyncio.gather(*(h.service.assign("exp", f"u{i}") for i in range(20)))
        await h.store.settled()
        assert h.redis.calls == 1
        for i, answer in enumerate(answers):
            assert h.redis.hashes[sticky_key(f"u{i}")] == {"exp": f"{answer.variant}|0"}

    asyncio.run(scenario())


def test_after_a_change_that_moves_units_a_remembered_record_holds_the_unit() -> None:
    h = Harness(state(allocation_epoch=0))
    moved = state(
        allocation_epoch=1,
        version=2,
        variants=[{"key": "control", "weight": 0.01}, {"key": "treatment", "weight": 0.99}],
    )

    async def scenario() -> None:
        before = {u: (await h.service.assign("exp", u)).variant for u in map(str, range(40))}
        h.cache.put(CachedExperiment.from_state(moved))  # before the background write ran
        after = {u: await h.service.assign("exp", u) for u in before}
        assert {u: a.variant for u, a in after.items()} == before
        assert {a.reason for a in after.values()} == {"sticky"}

    asyncio.run(scenario())


def test_a_failed_background_write_opens_the_breaker_and_answers_turn_degraded() -> None:
    h = Harness(state(allocation_epoch=0))
    h.redis.down = True

    async def scenario() -> None:
        await h.service.assign("exp", "u1")
        await h.store.settled()  # the write failed
        later = await h.service.assign("exp", "u2")
        assert (later.reason, later.sticky, later.degraded) == ("hashed", False, True)

    asyncio.run(scenario())
    assert h.redis.calls == 0


def test_exposures_carry_the_allocation_period_of_the_definition_that_decided_them() -> None:
    h = Harness(state(allocation_period=0))
    h.assign("u1")
    h.cache.put(
        CachedExperiment.from_state(
            state(
                version=2,
                allocation_period=1,
                allocation_epoch=1,
                variants=[{"key": "control", "weight": 0.2}, {"key": "treatment", "weight": 0.8}],
            )
        )
    )
    h.assign("u1")
    h.assign("u2")
    asyncio.run(h.service.assign_batch("u3"))
    periods = [(e.unit_id, e.allocation_period) for e in h.publisher.events]
    # u1's second exposure says period 1; the analyzer keeps its first one (period 0).
    assert periods == [("u1", 0), ("u1", 1), ("u2", 1), ("u3", 1)]
    parsed = type(h.publisher.events[0]).model_validate_json(h.publisher.events[-1].to_bytes())
    assert parsed.allocation_period == 1

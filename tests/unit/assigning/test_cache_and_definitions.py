"""The experiment cache, the state -> definition conversion and the sticky key layout."""

from __future__ import annotations

import pytest

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.definitions import exposure_attribute_names
from splitlab.platform.storage.redis_keys import parse_sticky_value, sticky_key, sticky_value


def test_exposure_attributes_are_the_ones_targeting_and_hashing_read() -> None:
    names = exposure_attribute_names(
        {
            "hash_attribute": "company",
            "targeting": {
                "country": "US",
                "$or": [{"device.os": "ios"}, {"$not": {"plan": "free"}}],
                "age": {"$not": {"$lt": 18}},
            },
        }
    )
    assert names == {"company", "country", "device", "plan", "age"}


def test_exposure_attributes_include_the_experiments_segment_attributes() -> None:
    state = {"targeting": {"country": "US"}, "segment_attributes": ["platform", "country"]}
    assert exposure_attribute_names(state) == {"country", "platform"}
    assert exposure_attribute_names({"segment_attributes": ["tier"]}) == {"tier"}
    assert exposure_attribute_names({"segment_attributes": []}) == frozenset()
    entry = CachedExperiment.from_state(
        {
            "key": "seg",
            "status": "running",
            "version": 1,
            "variants": [{"key": "c", "weight": 0.5}, {"key": "t", "weight": 0.5}],
            "coverage": 1.0,
            "segment_attributes": ["tier"],
        }
    )
    assert entry.exposure_attributes == {"tier"}


def test_cache_keeps_the_newest_version_and_lists_running_by_key() -> None:
    def entry(key: str, version: int, status: str = "running") -> CachedExperiment:
        return CachedExperiment.from_state(
            {
                "key": key,
                "status": status,
                "version": version,
                "variants": [{"key": "c", "weight": 0.5}, {"key": "t", "weight": 0.5}],
                "coverage": 1.0,
            }
        )

    cache = ExperimentCache()
    cache.put(entry("b", 2))
    cache.put(entry("a", 1))
    cache.put(entry("b", 1, "paused"))  # older: ignored
    assert [e.definition.key for e in cache.running()] == ["a", "b"]
    cache.apply([entry("a", 2, "paused")], present=["a"])  # b was deleted elsewhere
    assert cache.get("b") is None
    assert cache.running() == ()
    assert cache.versions() == {"a": 2}


def test_redis_key_layout() -> None:
    assert sticky_key("user-42") == "splitlab:{unit:user-42}:sticky"
    assert sticky_key("acme", "company") == "splitlab:{attr:company=acme}:sticky"
    assert sticky_value("treatment", 3) == "treatment|3"
    assert parse_sticky_value("a|b|12") == ("a|b", 12)
    assert parse_sticky_value("garbage") is None
    assert parse_sticky_value("x|") is None
    with pytest.raises(ValueError, match="hash_value"):
        sticky_key("")

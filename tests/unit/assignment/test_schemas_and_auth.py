"""Schemas, definitions, the cache and the auth helpers, without servers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from splitlab.storage.redis_keys import parse_sticky_value, sticky_key, sticky_value
from splitlab.web.errors import InvalidInputError
from splitlab_assignment.cache import CachedExperiment, ExperimentCache
from splitlab_assignment.definitions import exposure_attribute_names, to_definition
from splitlab_assignment.deps import bearer_token, keys_match
from splitlab_assignment.schemas import ExperimentCreate, ExperimentUpdate


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "ranker-v3",
        "name": "Ranker",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": {"primary": "conversion"},
    }
    base.update(overrides)
    return base


def test_create_defaults() -> None:
    created = ExperimentCreate.model_validate(body())
    assert (created.coverage, created.hash_version, created.hash_attribute) == (1.0, 2, "id")
    assert (created.alpha, created.power, created.bucket_version) == (0.05, 0.8, 0)


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"key": "has space"}, ("key",)),
        ({"coverage": 2}, ("coverage",)),
        ({"metrics": {"primary": "Conversion Rate"}}, ("metrics", "primary")),
        ({"alpha": 0.7}, ("alpha",)),
        ({"unknown_field": 1}, ("unknown_field",)),
        (
            {"variants": [{"key": "a", "weight": 1.2}, {"key": "b", "weight": 0}]},
            ("variants", 0, "weight"),
        ),
    ],
)
def test_field_errors_name_the_field(overrides: dict[str, Any], location: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        ExperimentCreate.model_validate(body(**overrides))
    assert caught.value.errors()[0]["loc"] == location


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variants": [{"key": "a", "weight": 0.6}, {"key": "b", "weight": 0.6}]}, "variants"),
        ({"variants": [{"key": "a", "weight": 1.0}]}, "variants"),
        (
            {"variants": [{"key": "a", "weight": 0.5}, {"key": "a", "weight": 0.5}]},
            "variants[1].key",
        ),
        ({"targeting": {"name": {"$regex": "(unclosed"}}}, "targeting.name.$regex"),
        ({"min_bucket_version": 3}, "min_bucket_version"),
    ],
)
def test_cross_field_rules_come_from_the_core_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    spec = ExperimentCreate.model_validate(body(**overrides)).model_dump()
    with pytest.raises(InvalidInputError) as caught:
        to_definition({**spec, "status": "draft"})
    assert caught.value.field == field
    assert caught.value.status_code == 422


def test_update_refuses_key_and_status_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="status changes through POST"):
        ExperimentUpdate.model_validate({"status": "running"})
    with pytest.raises(ValidationError, match="key never changes"):
        ExperimentUpdate.model_validate({"key": "other"})
    patch = ExperimentUpdate.model_validate({"coverage": 0.5, "targeting": None})
    assert patch.changes() == {"coverage": 0.5, "targeting": None}


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


def test_bearer_parsing_and_constant_time_compare() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert keys_match("secret", "secret")
    assert not keys_match("secret", "secreT")
    assert not keys_match("sécret", "secret")

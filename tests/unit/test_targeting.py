"""splitlab.core.assignment.targeting: operators, logic, GrowthBook version vectors, and validation
errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from splitlab.core.assignment import targeting
from splitlab.core.assignment.targeting import (
    ConditionError,
    compile_condition,
    evaluate_condition,
    padded_version,
    validate_condition,
)

VECTORS_PATH = Path(__file__).parent / "data" / "growthbook_vectors.json"

USER = {
    "country": "US",
    "age": 34,
    "score": 0.75,
    "beta": True,
    "email": "ana@example.com",
    "app_version": "2.10.1",
    "tags": ["ml", "early-adopter"],
    "device": {"os": "ios", "model": {"year": 2023}},
    "nothing": None,
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, True),
        ({"country": "US"}, True),
        ({"country": "CA"}, False),
        ({"age": 34}, True),
        ({"age": "34"}, False),  # strict: a string never equals a number
        ({"beta": True}, True),
        ({"beta": 1}, False),  # strict: a number never equals a boolean
        ({"nothing": None}, True),
        ({"missing": None}, True),
        ({"tags": ["ml", "early-adopter"]}, True),
        ({"tags": ["early-adopter", "ml"]}, False),
        ({"device": {"os": "ios", "model": {"year": 2023}}}, True),
        ({"device.os": "ios"}, True),
        ({"device.model.year": {"$gte": 2020}}, True),
        ({"device.model.month": {"$exists": False}}, True),
        ({"country": {"$eq": "US"}}, True),
        ({"country": {"$ne": "US"}}, False),
        ({"missing": {"$ne": "US"}}, True),
        ({"country": {"$in": ["US", "CA"]}}, True),
        ({"country": {"$in": ["FR"]}}, False),
        ({"country": {"$nin": ["FR", "DE"]}}, True),
        ({"missing": {"$in": ["US"]}}, False),
        ({"missing": {"$nin": ["US"]}}, True),
        ({"missing": {"$in": [None]}}, True),
        ({"tags": {"$in": ["ml", "cv"]}}, True),  # array attribute: any element
        ({"tags": {"$nin": ["ml"]}}, False),
        ({"age": {"$in": [34.0]}}, True),
        ({"beta": {"$in": [1]}}, False),
        ({"age": {"$gt": 30, "$lt": 40}}, True),
        ({"age": {"$gte": 34}}, True),
        ({"age": {"$gt": 34}}, False),
        ({"age": {"$lte": 34}}, True),
        ({"score": {"$lt": 0.5}}, False),
        ({"missing": {"$lt": 18}}, False),  # missing never compares (JavaScript: null < 18)
        ({"age": {"$lt": "50"}}, False),  # a string bound compares strings only
        ({"country": {"$gt": "CA"}}, True),
        ({"beta": {"$gt": 0}}, False),
        ({"email": {"$regex": "@example\\.com$"}}, True),
        ({"email": {"$regex": "^bob"}}, False),
        ({"email": {"$regex": "EXAMPLE"}}, False),
        ({"email": {"$regexi": "EXAMPLE"}}, True),
        ({"age": {"$regex": "3"}}, False),  # regexes match strings only
        ({"email": {"$exists": True}}, True),
        ({"missing": {"$exists": True}}, False),
        ({"nothing": {"$exists": False}}, True),
        ({"app_version": {"$vgt": "2.9.0"}}, True),
        ({"app_version": {"$vgte": "2.10.1"}}, True),
        ({"app_version": {"$vlt": "2.10.1-rc.1"}}, False),
        ({"app_version": {"$veq": "v2.10.1+build7"}}, True),
        ({"app_version": {"$vne": "2.10.1"}}, False),
        ({"missing": {"$vlt": "9.0.0"}}, False),
        ({"age": {"$not": {"$lt": 18}}}, True),
        ({"age": {"$not": 34}}, False),
        ({"$not": {"country": "US"}}, False),
        ({"$and": [{"country": "US"}, {"age": {"$gt": 18}}]}, True),
        ({"$and": [{"country": "US"}, {"age": {"$gt": 40}}]}, False),
        ({"$or": [{"country": "FR"}, {"beta": True}]}, True),
        ({"$or": [{"country": "FR"}, {"beta": False}]}, False),
        ({"$or": []}, True),
        ({"$nor": []}, False),
        ({"$and": []}, True),
        ({"$nor": [{"country": "FR"}, {"beta": False}]}, True),
        ({"$nor": [{"country": "US"}]}, False),
        (
            {
                "country": {"$in": ["US", "CA"]},
                "$or": [{"age": {"$lt": 18}}, {"app_version": {"$vgte": "2.0.0"}}],
                "$not": {"tags": {"$in": ["internal"]}},
            },
            True,
        ),
    ],
)
def test_operators(condition: dict[str, Any], expected: bool) -> None:
    assert evaluate_condition(condition, USER) is expected


def test_growthbook_version_vectors() -> None:
    data = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    padded = [
        (v, p, padded_version(v)) for v, p in data["padded_version"] if padded_version(v) != p
    ]
    assert padded == []
    mismatches = [
        (actual, op, expected, result)
        for actual, op, expected, result in data["version_compare"]
        if evaluate_condition({"v": {op: expected}}, {"v": actual}) is not result
    ]
    assert mismatches == []
    assert len(data["version_compare"]) > 500


def test_padded_version_of_numbers_and_garbage() -> None:
    assert padded_version(2) == padded_version("2")
    assert padded_version(2.0) == padded_version("2")
    assert padded_version(1.5) == padded_version("1.5")
    assert padded_version(None) == padded_version("0")
    assert padded_version("1.0.0-beta") < padded_version("1.0.0")
    assert padded_version("1.9.0") < padded_version("1.10.0")


@pytest.mark.parametrize(
    ("condition", "path", "operator", "fragment"),
    [
        ({"country": {"$inn": ["US"]}}, "country.$inn", "$inn", "unknown operator '$inn'"),
        ({"$xor": []}, "$xor", "$xor", "unknown logical operator"),
        ({"$or": [{"a": 1}, {"b": {"$foo": 1}}]}, "$or[1].b.$foo", "$foo", "unknown operator"),
        ({"email": {"$regex": "(["}}, "email.$regex", "$regex", "invalid regular expression"),
        ({"email": {"$regexi": "a{2,1}"}}, "email.$regexi", "$regexi", "invalid regular"),
        ({"email": {"$regex": 5}}, "email.$regex", "$regex", "takes a regular expression"),
        ({"country": {"$in": "US"}}, "country.$in", "$in", "takes a list"),
        ({"country": {"$nin": [["US"]]}}, "country.$nin[0]", "$nin", "got array"),
        ({"age": {"$gt": [1]}}, "age.$gt", "$gt", "takes a number"),
        ({"age": {"$lte": True}}, "age.$lte", "$lte", "got boolean"),
        ({"age": {"$exists": 1}}, "age.$exists", "$exists", "true or false"),
        ({"v": {"$vgt": None}}, "v.$vgt", "$vgt", "version string"),
        ({"age": {"$eq": {"a": 1}}}, "age.$eq", "$eq", "got object"),
        ({"$or": {"a": 1}}, "$or", "$or", "takes a list"),
        ({"$and": ["a"]}, "$and[0]", "$and", "expected a condition object"),
        ({"$not": [1]}, "$not", "$not", "takes a condition object"),
        ({"age": {"$gt": 1, "max": 2}}, "age", "$gt", "mixes operators"),
        ({"age": {"$not": {"$bad": 1}}}, "age.$not.$bad", "$bad", "unknown operator"),
    ],
)
def test_invalid_conditions_name_path_and_operator(
    condition: dict[str, Any], path: str, operator: str, fragment: str
) -> None:
    with pytest.raises(ConditionError) as caught:
        validate_condition(condition)
    assert caught.value.path == path
    assert caught.value.operator == operator
    assert fragment in str(caught.value)
    assert path in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("condition", [["a"], "country", None, 3])
def test_a_condition_must_be_an_object(condition: object) -> None:
    with pytest.raises(ConditionError, match="must be an object"):
        validate_condition(condition)


def test_regexes_are_compiled_once() -> None:
    targeting._regex.cache_clear()
    first = compile_condition({"email": {"$regex": "^a.+@example"}})
    second = compile_condition({"other": {"$regex": "^a.+@example"}})
    info = targeting._regex.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert first({"email": "ana@example.com"})
    assert second({"other": "ana@example.com"})


def test_compiled_condition_is_reusable_and_keeps_its_source() -> None:
    cond = {"country": {"$in": ["US"]}}
    compiled = compile_condition(cond)
    assert compiled.condition == cond
    assert [compiled({"country": c}) for c in ("US", "FR", "US")] == [True, False, True]
    assert "country" in repr(compiled)

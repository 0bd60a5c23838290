"""The assignment service's schemas and their cross-field rules, without servers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from splitlab.assigning.definitions import to_definition
from splitlab.platform.errors import InvalidInputError
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
    ("names", "location", "words"),
    [
        (["country", "plan", "country"], ("segment_attributes",), "'country' is listed twice"),
        (["$country"], ("segment_attributes",), "segment_attributes[0]: '$country' starts"),
        (["plan", "device.os"], ("segment_attributes",), "top-level attribute ('device')"),
        (["bad\x00name"], ("segment_attributes",), "cannot contain NUL"),
        ([""], ("segment_attributes", 0), "at least 1 character"),
        ([f"a{i}" for i in range(21)], ("segment_attributes",), "at most 20"),
    ],
)
def test_segment_attributes_errors_name_the_field_and_the_fix(
    names: list[str], location: tuple[Any, ...], words: str
) -> None:
    for model, data in (
        (ExperimentCreate, body(segment_attributes=names)),
        (ExperimentUpdate, {"segment_attributes": names}),
    ):
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        error = caught.value.errors()[0]
        assert error["loc"] == location
        assert words in error["msg"]


def test_segment_attributes_default_to_none_and_an_update_may_set_them() -> None:
    assert ExperimentCreate.model_validate(body()).segment_attributes == []
    listed = [f"a{i}" for i in range(20)]
    assert ExperimentCreate.model_validate(body(segment_attributes=listed)).segment_attributes == (
        listed
    )
    patch = ExperimentUpdate.model_validate({"segment_attributes": ["country"]})
    assert patch.changes() == {"segment_attributes": ["country"]}


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

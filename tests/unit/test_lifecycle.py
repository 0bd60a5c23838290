"""splitlab.core.assignment.lifecycle: the state machine and the change rules, checked against real
assignments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.core.assignment.decision import ExperimentDefinition, Namespace, Variant, assign
from splitlab.core.assignment.lifecycle import (
    Action,
    ChangeError,
    ChangeKind,
    LifecycleError,
    Status,
    allowed_actions,
    check_change,
    classify_change,
    has_started,
    transition,
)

ALLOWED = {
    (Status.DRAFT, Action.START): Status.RUNNING,
    (Status.DRAFT, Action.STOP): Status.STOPPED,
    (Status.RUNNING, Action.PAUSE): Status.PAUSED,
    (Status.RUNNING, Action.STOP): Status.STOPPED,
    (Status.PAUSED, Action.START): Status.RUNNING,
    (Status.PAUSED, Action.STOP): Status.STOPPED,
    (Status.STOPPED, Action.ARCHIVE): Status.ARCHIVED,
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_transition(status: Status, action: Action) -> None:
    target = ALLOWED.get((status, action))
    if target is not None:
        assert transition(status, action) is target
        assert action in allowed_actions(status)
        return
    with pytest.raises(LifecycleError) as caught:
        transition(status, action)
    message = str(caught.value)
    assert f"cannot {action} an experiment that is {status}" in message
    for allowed in allowed_actions(status):
        assert allowed in message
    assert caught.value.allowed == allowed_actions(status)


def test_lifecycle_error_message() -> None:
    with pytest.raises(LifecycleError, match="allowed actions from stopped: archive"):
        transition("stopped", "start")
    with pytest.raises(LifecycleError, match=r"none \(archived is final\)"):
        transition("archived", "start")


@pytest.mark.parametrize("status", ["draft", "running", "paused"])
def test_archive_needs_a_stopped_experiment_and_says_so(status: str) -> None:
    with pytest.raises(LifecycleError, match="archive needs a stopped experiment: stop it first"):
        transition(status, "archive")
    assert transition(transition(status, "stop"), "archive") is Status.ARCHIVED


def test_strings_are_accepted_and_bad_ones_named() -> None:
    assert transition("paused", "start") is Status.RUNNING
    with pytest.raises(ValueError, match="action must be one of start, pause, stop, archive"):
        transition("running", "resume")
    with pytest.raises(ValueError, match="status must be one of"):
        allowed_actions("live")


def test_has_started() -> None:
    assert not has_started(Status.DRAFT)
    assert all(has_started(s) for s in Status if s is not Status.DRAFT)


# --- change classification ----------------------------------------------------------------------


def definition(**overrides: Any) -> ExperimentDefinition:
    settings_: dict[str, Any] = {
        "key": "ranker",
        "variants": (Variant("control", 0.5), Variant("treatment", 0.5)),
        "status": Status.RUNNING,
        "coverage": 0.5,
    }
    settings_.update(overrides)
    return ExperimentDefinition(**settings_)


def kinds(old: ExperimentDefinition, new: ExperimentDefinition) -> dict[str, ChangeKind]:
    return {c.field: c.kind for c in classify_change(old, new).changes}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {}),
        ({"coverage": 0.8}, {"coverage": ChangeKind.KEEPS}),
        ({"coverage": 0.2}, {"coverage": ChangeKind.NARROWS}),
        (
            {"variants": (Variant("control", 0.3), Variant("treatment", 0.7))},
            {
                "variants[0].weight": ChangeKind.RELIES_ON_STICKINESS,
                "variants[1].weight": ChangeKind.RELIES_ON_STICKINESS,
            },
        ),
        ({"hash_seed": "other"}, {"hash_seed": ChangeKind.RESHUFFLES}),
        ({"hash_seed": "ranker"}, {}),  # the default seed is the key: no change
        ({"hash_attribute": "device_id"}, {"hash_attribute": ChangeKind.RESHUFFLES}),
        ({"hash_version": 1}, {"hash_version": ChangeKind.RESHUFFLES}),
        (
            {"variants": (Variant("treatment", 0.5), Variant("control", 0.5))},
            {"variants": ChangeKind.RESHUFFLES},
        ),
        (
            {"variants": (Variant("control", 0.5), Variant("other", 0.5))},
            {"variants": ChangeKind.RESHUFFLES},
        ),
        (
            {"variants": (Variant("control", 0.4), Variant("treatment", 0.3), Variant("c", 0.3))},
            {"variants": ChangeKind.RESHUFFLES},
        ),
        ({"namespace": Namespace("n", 0, 0.5)}, {"namespace": ChangeKind.NARROWS}),
        ({"targeting": {"country": "US"}}, {"targeting": ChangeKind.NARROWS}),
        (
            {"bucket_version": 1, "min_bucket_version": 1},
            {"min_bucket_version": ChangeKind.NARROWS},
        ),
    ],
)
def test_classify_change(overrides: dict[str, Any], expected: dict[str, ChangeKind]) -> None:
    assert kinds(definition(), definition(**overrides)) == expected


def test_namespace_widening_keeps_narrowing_narrows() -> None:
    narrow = definition(namespace=Namespace("n", 0.2, 0.4))
    wide = definition(namespace=Namespace("n", 0.1, 0.6))
    assert kinds(narrow, wide) == {"namespace": ChangeKind.KEEPS}
    assert kinds(wide, narrow) == {"namespace": ChangeKind.NARROWS}
    assert kinds(narrow, definition()) == {"namespace": ChangeKind.KEEPS}
    assert kinds(narrow, definition(namespace=Namespace("m", 0.2, 0.4))) == {
        "namespace": ChangeKind.NARROWS
    }


def test_assessment_kind_is_the_worst_change() -> None:
    change = classify_change(definition(), definition(coverage=0.9, hash_version=1))
    assert change.kind is ChangeKind.RESHUFFLES
    assert [c.field for c in change.reshuffling] == ["hash_version"]
    assert classify_change(definition(), definition()).kind is None


# --- check_change -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.RUNNING, Status.PAUSED])
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hash_seed": "other"}, "hash_seed"),
        ({"hash_attribute": "device_id"}, "hash_attribute"),
        ({"hash_version": 1}, "hash_version"),
        ({"variants": (Variant("treatment", 0.5), Variant("control", 0.5))}, "variants"),
        ({"variants": (Variant("control", 0.5), Variant("b", 0.5))}, "variants"),
    ],
)
def test_reshuffling_a_started_experiment_needs_a_bump(
    status: Status, overrides: dict[str, Any], field: str
) -> None:
    old = definition(status=status)
    with pytest.raises(ChangeError) as caught:
        check_change(old, definition(status=status, **overrides))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert "bump bucket_version" in str(caught.value)
    assert status in str(caught.value)
    bumped = check_change(old, definition(status=status, bucket_version=1, **overrides))
    assert bumped.bucket_version_bumped


@pytest.mark.parametrize(
    "overrides",
    [
        {"coverage": 0.9},
        {"coverage": 0.1},
        {"variants": (Variant("control", 0.2), Variant("treatment", 0.8))},
        {"targeting": {"country": {"$in": ["US"]}}},
        {"namespace": Namespace("n", 0, 0.5)},
    ],
)
def test_non_reshuffling_changes_are_allowed_on_a_running_experiment(
    overrides: dict[str, Any],
) -> None:
    assert check_change(definition(), definition(**overrides)).reshuffling == ()


def test_a_draft_may_change_anything() -> None:
    draft = definition(status=Status.DRAFT)
    change = check_change(draft, definition(status=Status.DRAFT, hash_seed="x", hash_version=1))
    assert change.kind is ChangeKind.RESHUFFLES


@pytest.mark.parametrize("status", [Status.STOPPED, Status.ARCHIVED])
def test_stopped_experiments_are_frozen(status: Status) -> None:
    old = definition(status=status)
    assert check_change(old, definition(status=status)).changes == ()
    with pytest.raises(ChangeError, match=f"coverage: the experiment is {status}"):
        check_change(old, definition(status=status, coverage=0.9))
    with pytest.raises(ChangeError) as caught:
        check_change(old, definition(status=status, bucket_version=1))
    assert caught.value.field == "bucket_version"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ({"bucket_version": 2}, {"bucket_version": 1}, "bucket_version"),
        (
            {"bucket_version": 2, "min_bucket_version": 2},
            {"bucket_version": 2, "min_bucket_version": 1},
            "min_bucket_version",
        ),
        ({}, {"key": "other"}, "key"),
        ({}, {"status": Status.PAUSED}, "status"),
    ],
)
def test_invariants_of_any_update(old: dict[str, Any], new: dict[str, Any], field: str) -> None:
    for status in (Status.DRAFT, Status.RUNNING):
        before = definition(**{"status": status, **old})
        after = definition(**{"status": status, **new})
        with pytest.raises(ChangeError) as caught:
            check_change(before, after)
        assert caught.value.field == field


# --- the classification is true of real assignments ---------------------------------------------

UNITS = [f"unit-{i}" for i in range(400)]


@st.composite
def weight_pairs(draw: st.DrawFn) -> tuple[Variant, ...]:
    first = draw(st.integers(min_value=0, max_value=100)) / 100
    return (Variant("control", first), Variant("treatment", 1 - first))


coverage = st.integers(min_value=0, max_value=100).map(lambda c: c / 100)


@settings(max_examples=40, deadline=None)
@given(variants=weight_pairs(), low=coverage, high=coverage)
def test_coverage_changes_move_no_unit_to_another_variant(
    variants: tuple[Variant, ...], low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    small = definition(variants=variants, coverage=low)
    large = replace(small, coverage=high)
    assert classify_change(small, large).kind in (None, ChangeKind.KEEPS)
    assert classify_change(large, small).kind in (None, ChangeKind.NARROWS)
    for unit in UNITS:
        in_small, in_large = assign(small, unit), assign(large, unit)
        # Ramping up (small -> large) never moves an included unit; read backwards, lowering
        # coverage (large -> small) only removes units: whoever stays keeps their variant.
        if in_small.in_experiment:
            assert in_large.in_experiment
            assert in_large.variant_key == in_small.variant_key


@settings(max_examples=40, deadline=None)
@given(old=weight_pairs(), new=weight_pairs(), cov=coverage)
def test_weight_changes_are_never_classified_as_keeping_units(
    old: tuple[Variant, ...], new: tuple[Variant, ...], cov: float
) -> None:
    before = definition(variants=old, coverage=cov)
    after = definition(variants=new, coverage=cov)
    moved = any(
        assign(before, u).in_experiment
        and assign(after, u).in_experiment
        and assign(before, u).variant_key != assign(after, u).variant_key
        for u in UNITS
    )
    kind = classify_change(before, after).kind
    if moved:
        # Hashing alone moved someone: the classifier must not call it harmless.
        assert kind is ChangeKind.RELIES_ON_STICKINESS
    if old == new:
        assert kind is None

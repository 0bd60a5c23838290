"""splitlab.core.assignment.decision: the decision order, stickiness, holdout, validation, and the
split."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from splitlab.core.assignment.bucketing import bucket_hash, in_namespace
from splitlab.core.assignment.decision import (
    AssignmentDecision,
    ExperimentDefinition,
    ExperimentDefinitionError,
    HoldoutConfig,
    Namespace,
    Reason,
    StickyRecord,
    Variant,
    assign,
    assign_all,
    in_holdout,
)
from splitlab.core.assignment.lifecycle import Status

VECTORS_PATH = Path(__file__).parent / "data" / "growthbook_vectors.json"


def experiment(**overrides: Any) -> ExperimentDefinition:
    settings: dict[str, Any] = {
        "key": "checkout",
        "variants": (Variant("control", 0.5), Variant("treatment", 0.5)),
        "status": Status.RUNNING,
    }
    settings.update(overrides)
    return ExperimentDefinition(**settings)


def units(count: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"key": ""}, "key"),
        ({"variants": (Variant("control", 1.0),)}, "variants"),
        ({"variants": (Variant("a", 0.5), Variant("a", 0.5))}, "variants[1].key"),
        ({"variants": (Variant("a", 0.5), Variant("", 0.5))}, "variants[1].key"),
        ({"variants": (Variant("a", 0.5), Variant("b", 0.4))}, "variants"),
        ({"variants": (Variant("a", 1.5), Variant("b", -0.5))}, "variants[1].weight"),
        ({"variants": (Variant("a", float("nan")), Variant("b", 0.5))}, "variants[0].weight"),
        ({"coverage": 1.2}, "coverage"),
        ({"coverage": -0.1}, "coverage"),
        ({"hash_version": 3}, "hash_version"),
        ({"hash_attribute": ""}, "hash_attribute"),
        ({"bucket_version": -1}, "bucket_version"),
        ({"bucket_version": 1, "min_bucket_version": 2}, "min_bucket_version"),
        ({"status": "launched"}, "status"),
        ({"targeting": {"email": {"$regex": "(unclosed"}}}, "targeting.email.$regex"),
        ({"targeting": {"country": {"$inn": ["US"]}}}, "targeting.country.$inn"),
    ],
)
def test_invalid_definitions_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ExperimentDefinitionError) as caught:
        experiment(**overrides)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(0.5, 0.5, "namespace.end"), (-0.1, 0.5, "namespace.start"), (0.1, 1.1, "namespace.end")],
)
def test_invalid_namespaces_name_the_field(start: float, end: float, field: str) -> None:
    with pytest.raises(ExperimentDefinitionError) as caught:
        Namespace("ns", start, end)
    assert caught.value.field == field


def test_weights_may_carry_float_rounding() -> None:
    tenth = experiment(variants=tuple(Variant(f"v{i}", 0.1) for i in range(10)))
    assert len(tenth.ranges) == 10


def test_seed_defaults_to_the_key() -> None:
    assert experiment().seed == "checkout"
    assert experiment(hash_seed="").seed == "checkout"
    assert experiment(hash_seed="other").seed == "other"


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_invalid_holdout_share(share: float) -> None:
    with pytest.raises(ValueError, match="holdout share"):
        HoldoutConfig(share=share)


# --- GrowthBook end to end ----------------------------------------------------------------------


def test_assign_matches_growthbook_run_vectors() -> None:
    data = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    definitions = []
    for spec in data["run_experiments"]:
        count = len(spec["variations"])
        weights = spec.get("weights", [1 / count] * count)
        namespace = spec.get("namespace")
        definitions.append(
            experiment(
                key=spec["key"],
                variants=tuple(Variant(f"v{i}", w) for i, w in enumerate(weights)),
                coverage=spec.get("coverage", 1.0),
                hash_seed=spec.get("seed"),
                hash_version=spec["hashVersion"],
                namespace=None if namespace is None else Namespace(*namespace),
            )
        )
    mismatches = []
    for index, unit, variation, in_experiment, bucket in data["run"]:
        definition = definitions[index]
        decision = assign(definition, unit)
        if (decision.variant_index, decision.in_experiment) != (variation, in_experiment):
            mismatches.append((index, unit, variation, in_experiment, decision))
        if bucket is not None and definition.bucket(unit) != bucket:
            mismatches.append((index, unit, bucket, definition.bucket(unit)))
    assert mismatches == []
    assert len(data["run"]) > 1000


@given(unit=st.text(min_size=1, max_size=40), version=st.sampled_from([1, 2]))
def test_precomputed_seed_state_equals_bucket_hash(unit: str, version: int) -> None:
    definition = experiment(hash_seed="seed-É🧪", hash_version=version)
    assert definition.bucket(unit) == bucket_hash("seed-É🧪", unit, version)


# --- the decision order -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.DRAFT, Status.PAUSED, Status.STOPPED, Status.ARCHIVED])
def test_not_running_gives_control_even_to_sticky_units(status: Status) -> None:
    decision = assign(experiment(status=status), "user-1", sticky=StickyRecord("treatment", 0))
    assert decision == AssignmentDecision(
        "checkout", 0, "control", False, Reason.NOT_RUNNING, 0, False
    )


def test_hashed_assignment_asks_to_be_stored() -> None:
    decision = assign(experiment(), "user-1")
    assert decision.reason is Reason.HASHED
    assert decision.in_experiment
    assert decision.save_sticky
    assert decision.sticky_record == StickyRecord(decision.variant_key, 0)
    assert decision.variant_key == ("control", "treatment")[decision.variant_index]


def test_coverage_zero_excludes_everyone_with_control() -> None:
    decisions = {assign(experiment(coverage=0.0), unit) for unit in units(200)}
    assert {(d.reason, d.variant_key, d.in_experiment) for d in decisions} == {
        (Reason.COVERAGE_EXCLUDED, "control", False)
    }


def test_namespace_excludes_units_outside_the_slice() -> None:
    namespace = Namespace("pricing", 0.0, 0.3)
    definition = experiment(namespace=namespace)
    for unit in units(300):
        decision = assign(definition, unit)
        if in_namespace(unit, namespace.as_tuple()):
            assert decision.reason is Reason.HASHED
        else:
            assert decision.reason is Reason.NAMESPACE_EXCLUDED
            assert not decision.in_experiment


def test_targeting_gates_entry() -> None:
    definition = experiment(targeting={"country": {"$in": ["US", "CA"]}})
    assert assign(definition, "u", {"country": "US"}).reason is Reason.HASHED
    assert assign(definition, "u", {"country": "FR"}).reason is Reason.NOT_TARGETED
    assert assign(definition, "u").reason is Reason.NOT_TARGETED
    assert assign(experiment(targeting={}), "u").reason is Reason.HASHED


def test_hash_attribute_buckets_on_that_attribute() -> None:
    definition = experiment(hash_attribute="device_id")
    by_device = assign(definition, "user-1", {"device_id": "d-9"})
    assert by_device == assign(definition, "user-2", {"device_id": "d-9"})
    assert definition.hash_value("user-1", {"device_id": 42}) == "42"
    assert assign(definition, "user-1").reason is Reason.NOT_TARGETED
    assert assign(definition, "user-1", {"device_id": ""}).reason is Reason.NOT_TARGETED
    assert assign(definition, "user-1", {"device_id": True}).reason is Reason.NOT_TARGETED
    assert assign(experiment(), "").reason is Reason.NOT_TARGETED


def test_holdout_share_is_respected_and_beats_stickiness() -> None:
    holdout = HoldoutConfig(share=0.1)
    ids = units(20_000)
    held = [unit for unit in ids if in_holdout(unit, holdout)]
    assert stats.binomtest(len(held), len(ids), 0.1).pvalue > 0.001
    decision = assign(experiment(), held[0], sticky=StickyRecord("treatment", 0), holdout=holdout)
    assert (decision.reason, decision.variant_key, decision.in_experiment) == (
        Reason.HOLDOUT,
        "control",
        False,
    )
    assert not in_holdout(held[0], HoldoutConfig(share=0.0))
    assert in_holdout(held[0], HoldoutConfig(share=1.0))


def test_holdout_is_independent_of_the_experiment_split() -> None:
    holdout = HoldoutConfig(share=0.5)
    definition = experiment(hash_seed=holdout.seed + "-not-the-same")
    table = [[0, 0], [0, 0]]
    for unit in units(20_000):
        table[in_holdout(unit, holdout)][assign(definition, unit).variant_index] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


# --- stickiness and bucket versions -------------------------------------------------------------


def run_with_store(
    definition: ExperimentDefinition, ids: list[str], store: dict[str, StickyRecord]
) -> dict[str, AssignmentDecision]:
    """What the service does: read the record, decide, store when asked."""
    decisions = {}
    for unit in ids:
        decision = assign(definition, unit, sticky=store.get(unit))
        if decision.save_sticky:
            store[unit] = decision.sticky_record
        decisions[unit] = decision
    return decisions


def test_sticky_units_keep_their_variant_across_weight_and_coverage_changes() -> None:
    store: dict[str, StickyRecord] = {}
    ids = units(3000)
    before = run_with_store(experiment(coverage=0.6), ids, store)
    changed = experiment(
        coverage=0.9, variants=(Variant("control", 0.1), Variant("treatment", 0.9))
    )
    after = run_with_store(changed, ids, store)
    moved_by_hash = 0
    for unit in ids:
        if before[unit].in_experiment:
            assert after[unit].reason is Reason.STICKY
            assert after[unit].variant_key == before[unit].variant_key
            moved_by_hash += assign(changed, unit).variant_key != before[unit].variant_key
        else:
            assert after[unit].reason in (Reason.HASHED, Reason.COVERAGE_EXCLUDED)
    assert moved_by_hash > 0  # without the records, the weight change would have moved units


def test_sticky_units_bypass_later_targeting_and_namespace() -> None:
    record = StickyRecord("treatment", 0)
    narrowed = experiment(targeting={"plan": "enterprise"}, namespace=Namespace("n", 0, 0.01))
    assert assign(narrowed, "user-7", {"plan": "free"}, sticky=record).reason is Reason.STICKY


def test_bucket_version_bump_rebuckets_older_records() -> None:
    store: dict[str, StickyRecord] = {}
    ids = units(2000)
    run_with_store(experiment(), ids, store)
    bumped = experiment(hash_seed="checkout-v2", bucket_version=1)
    after = run_with_store(bumped, ids, store)
    assert {d.reason for d in after.values()} == {Reason.HASHED}
    assert all(store[unit].bucket_version == 1 for unit in ids)
    assert any(after[unit].variant_key != assign(experiment(), unit).variant_key for unit in ids)
    again = run_with_store(bumped, ids, store)
    assert {d.reason for d in again.values()} == {Reason.STICKY}


def test_min_bucket_version_excludes_units_from_older_versions() -> None:
    bumped = experiment(bucket_version=2, min_bucket_version=2)
    old = assign(bumped, "user-1", sticky=StickyRecord("treatment", 1))
    assert (old.reason, old.variant_key, old.in_experiment, old.save_sticky) == (
        Reason.BUCKET_VERSION_EXCLUDED,
        "control",
        False,
        False,
    )
    assert assign(bumped, "user-1", sticky=StickyRecord("treatment", 2)).reason is Reason.STICKY
    assert assign(bumped, "new-user").reason is Reason.HASHED


def test_records_naming_a_removed_variant_are_rebucketed() -> None:
    decision = assign(experiment(), "user-1", sticky=StickyRecord("gone", 0))
    assert decision.reason is Reason.HASHED


def test_decision_carries_the_bucket_version() -> None:
    assert assign(experiment(bucket_version=3), "user-1").bucket_version == 3


# --- the split ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hash_version", [1, 2])
def test_observed_split_of_100k_units_matches_the_weights(hash_version: int) -> None:
    weights = (0.2, 0.3, 0.5)
    definition = experiment(
        variants=tuple(Variant(f"v{i}", w) for i, w in enumerate(weights)),
        hash_version=hash_version,
    )
    counts = [0, 0, 0]
    for unit in units(100_000, prefix="synthetic"):
        decision = assign(definition, unit)
        assert decision.in_experiment
        counts[decision.variant_index] += 1
    expected = [w * 100_000 for w in weights]
    assert stats.chisquare(counts, expected).pvalue > 0.001


def test_split_with_partial_coverage_matches_coverage_times_weights() -> None:
    definition = experiment(coverage=0.4, hash_seed="coverage-split")
    counts = {Reason.COVERAGE_EXCLUDED: 0, "control": 0, "treatment": 0}
    for unit in units(100_000, prefix="synthetic"):
        decision = assign(definition, unit)
        key = decision.variant_key if decision.in_experiment else decision.reason
        counts[key] += 1
    observed = [counts[Reason.COVERAGE_EXCLUDED], counts["control"], counts["treatment"]]
    assert stats.chisquare(observed, [60_000, 20_000, 20_000]).pvalue > 0.001


def test_definitions_compare_by_settings_only() -> None:
    assert experiment() == experiment()
    assert replace(experiment(), coverage=0.5) != experiment()
    assert replace(experiment(), coverage=0.5).ranges == ((0, 0.25), (0.5, 0.75))


@given(unit=st.text(max_size=40), share=st.floats(min_value=0, max_value=1))
def test_in_holdout_is_the_v2_hash_below_the_share(unit: str, share: float) -> None:
    holdout = HoldoutConfig(share=share, seed="holdout-É")
    n = bucket_hash("holdout-É", unit, 2)
    assert n is not None
    assert in_holdout(unit, holdout) == (share > 0 and n < share)


def test_assign_all_equals_assign_per_experiment() -> None:
    definitions = [
        experiment(key="a"),
        experiment(key="b", status=Status.PAUSED),
        experiment(key="c", coverage=0.3, targeting={"country": "US"}),
        experiment(key="d", bucket_version=1, min_bucket_version=1),
    ]
    records = {"a": StickyRecord("treatment", 0), "d": StickyRecord("control", 0)}
    holdout = HoldoutConfig(share=0.2)
    seen = set()
    for unit in units(500):
        attributes = {"country": "US" if unit.endswith(("1", "2", "3")) else "FR"}
        batch = assign_all(definitions, unit, attributes, records, holdout)
        single = [assign(d, unit, attributes, records.get(d.key), holdout) for d in definitions]
        assert batch == single
        seen.update(d.reason for d in batch)
    assert seen >= {
        Reason.STICKY,
        Reason.NOT_RUNNING,
        Reason.HOLDOUT,
        Reason.HASHED,
        Reason.NOT_TARGETED,
        Reason.COVERAGE_EXCLUDED,
        Reason.BUCKET_VERSION_EXCLUDED,
    }
    assert assign_all([], "u") == []

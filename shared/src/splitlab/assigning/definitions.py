"""Between stored experiments and the pure core: building ``ExperimentDefinition``s.

An experiment's *state* is the JSON-able dict of its fields (what ``ExperimentRead`` shows and
the audit log records before and after a change). ``to_definition`` turns a state into the
frozen, precomputed ``ExperimentDefinition`` the hot path assigns with, translating the core's
``ExperimentDefinitionError`` into the API's 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from splitlab.core.assignment.decision import (
    ExperimentDefinition,
    ExperimentDefinitionError,
    Namespace,
    Variant,
)
from splitlab.core.assignment.targeting import LOGICAL_OPERATORS
from splitlab.platform.errors import InvalidInputError

BUCKETING_FIELDS = (
    "variants",
    "coverage",
    "hash_seed",
    "hash_version",
    "hash_attribute",
    "namespace",
    "targeting",
    "bucket_version",
    "min_bucket_version",
)


def to_definition(state: Mapping[str, Any]) -> ExperimentDefinition:
    """The definition of ``state``; ``InvalidInputError`` (422) naming the field if invalid."""
    namespace = state.get("namespace")
    try:
        return ExperimentDefinition(
            key=state["key"],
            variants=tuple(Variant(v["key"], float(v["weight"])) for v in state["variants"]),
            status=state["status"],
            coverage=float(state["coverage"]),
            hash_seed=state.get("hash_seed"),
            hash_attribute=state.get("hash_attribute", "id"),
            hash_version=int(state.get("hash_version", 2)),
            namespace=(
                None
                if namespace is None
                else Namespace(namespace["id"], float(namespace["start"]), float(namespace["end"]))
            ),
            targeting=state.get("targeting") or None,
            bucket_version=int(state.get("bucket_version", 0)),
            min_bucket_version=int(state.get("min_bucket_version", 0)),
        )
    except ExperimentDefinitionError as exc:
        raise InvalidInputError(str(exc), field=exc.field) from None


def exposure_attribute_names(state: Mapping[str, Any]) -> frozenset[str]:
    """The request attributes an exposure event records: those targeting reads, the hash
    attribute (top-level names; ``device.os`` records ``device``) and the experiment's
    ``segment_attributes`` (named by the owner to segment results by)."""
    names: set[str] = set(state.get("segment_attributes") or ())
    if state.get("hash_attribute", "id") != "id":
        names.add(state["hash_attribute"])
    _collect(state.get("targeting"), names)
    return frozenset(names)


def _collect(condition: object, names: set[str]) -> None:
    if isinstance(condition, Mapping):
        for key, value in condition.items():
            if key in LOGICAL_OPERATORS:
                _collect(value, names)
            elif isinstance(key, str) and not key.startswith("$"):
                names.add(key.split(".", 1)[0])
    elif isinstance(condition, list):
        for item in condition:
            _collect(item, names)

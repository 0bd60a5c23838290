"""Redis key names: built here and nowhere else.

Keys holding one unit's data carry a Redis Cluster hash tag (the part in braces), so every key of
a unit lives in one slot and multi-key pipelines for a unit stay on one node.

- ``splitlab:{unit:<unit_id>}:sticky``: a hash of the unit's sticky assignments, one field per
  experiment, ``experiment_key -> "<variant_key>|<bucket_version>"``. Experiments that bucket on
  another attribute (``hash_attribute != "id"``) keep their records under that attribute's value:
  ``splitlab:{attr:<name>=<value>}:sticky``.
- ``splitlab:results:<experiment_key>:<method>:<fixed|sequential>``: the analyzer's cached
  results (JSON) of one experiment, with a TTL.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PREFIX",
    "STICKY_SEPARATOR",
    "parse_sticky_value",
    "results_key",
    "results_pattern",
    "sticky_key",
    "sticky_value",
]

PREFIX: Final = "splitlab"
STICKY_SEPARATOR: Final = "|"


def sticky_key(hash_value: str, hash_attribute: str = "id") -> str:
    """The hash of sticky records for a unit id (or for the value of another hash attribute)."""
    if not hash_value:
        raise ValueError("hash_value must be a non-empty string")
    if hash_attribute == "id":
        return f"{PREFIX}:{{unit:{hash_value}}}:sticky"
    return f"{PREFIX}:{{attr:{hash_attribute}={hash_value}}}:sticky"


def sticky_value(variant_key: str, bucket_version: int) -> str:
    """A sticky record as stored in the hash field: ``"<variant_key>|<bucket_version>"``."""
    return f"{variant_key}{STICKY_SEPARATOR}{bucket_version}"


def parse_sticky_value(value: str) -> tuple[str, int] | None:
    """``(variant_key, bucket_version)`` from a stored field; None when it is malformed."""
    variant, sep, version = value.rpartition(STICKY_SEPARATOR)
    if not sep or not variant or not version.isdigit():
        return None
    return variant, int(version)


def results_key(experiment_key: str, method: str, sequential: bool) -> str:
    """The analyzer's cached results of one experiment for one method and horizon."""
    if not experiment_key:
        raise ValueError("experiment_key must be a non-empty string")
    return f"{PREFIX}:results:{experiment_key}:{method}:{'sequential' if sequential else 'fixed'}"


def results_pattern(experiment_key: str) -> str:
    """A SCAN pattern matching every cached result of one experiment."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in experiment_key)
    return f"{PREFIX}:results:{escaped}:*"

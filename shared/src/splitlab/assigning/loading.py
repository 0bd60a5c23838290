"""Loading experiments from Postgres into an ``ExperimentCache``.

``experiment_state`` turns a stored row into its *state* (the JSON-able dict that reads show,
the audit log records and ``CachedExperiment.from_state`` builds from). ``refresh_cache``
reloads only experiments whose ``version`` changed and forgets deleted ones; every replica of
every service that assigns calls it periodically (its staleness bound).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.repository import load_experiments, stored_versions
from splitlab.assigning.telemetry import EXPERIMENTS_CACHED
from splitlab.core.assignment.lifecycle import Status
from splitlab.platform.errors import InvalidInputError
from splitlab.platform.storage.models import Experiment

logger = logging.getLogger(__name__)

SPEC_FIELDS = (
    "name",
    "hypothesis",
    "owner",
    "variants",
    "coverage",
    "hash_seed",
    "hash_version",
    "hash_attribute",
    "namespace",
    "targeting",
    "segment_attributes",
    "metrics",
    "alpha",
    "power",
    "mde",
    "planned_sample_size",
    "auto_stop",
    "bucket_version",
    "min_bucket_version",
)
"""The fields an owner sets (create and update)."""
TIMESTAMPS = ("created_at", "updated_at", "started_at", "stopped_at", "archived_at")


def experiment_state(row: Experiment) -> dict[str, Any]:
    """The row as a JSON-able dict: what reads show and the audit log stores."""
    state: dict[str, Any] = {
        "key": row.key,
        "status": row.status,
        "version": row.version,
        "allocation_epoch": row.allocation_epoch,
        "allocation_period": row.allocation_period,
    }
    for name in SPEC_FIELDS:
        state[name] = getattr(row, name)
    for name in TIMESTAMPS:
        value = getattr(row, name)
        state[name] = None if value is None else value.isoformat()
    return state


def refresh_cache(sessions: sessionmaker[Session], cache: ExperimentCache) -> int:
    """Reload experiments whose version changed; forget deleted ones. Returns the reloads.

    A stored experiment that no longer builds a valid definition is logged and skipped (the
    cache keeps its previous entry for it, if any)."""
    with sessions() as session:
        versions = stored_versions(session)
        known = cache.versions()
        stale = [key for key, version in versions.items() if known.get(key) != version]
        entries = []
        for row in load_experiments(session, stale):
            try:
                entries.append(CachedExperiment.from_state(experiment_state(row)))
            except InvalidInputError:
                logger.exception("stored experiment is invalid", extra={"key": row.key})
    cache.apply(entries, versions)
    counts = dict.fromkeys(Status, 0)
    for key in versions:
        entry = cache.get(key)
        if entry is not None:
            counts[entry.definition.status] += 1
    for status, count in counts.items():
        EXPERIMENTS_CACHED.labels(status.value).set(count)
    return len(entries)

"""The in-memory experiment cache that keeps the database off ``/assign``'s path.

Each replica holds every experiment's precomputed ``ExperimentDefinition`` keyed by experiment
key, with its ``version``. A change made through this replica replaces its entry at once; other
replicas pick it up on their next refresh (every ``SPLITLAB_EXPERIMENT_CACHE_REFRESH_SECONDS``),
which reloads only experiments whose version changed. Readers never lock: writers build new
dicts and swap the references.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from splitlab.assigning.definitions import exposure_attribute_names, to_definition
from splitlab.core.assignment.decision import ExperimentDefinition
from splitlab.core.assignment.lifecycle import Status


@dataclass(frozen=True, slots=True)
class CachedExperiment:
    definition: ExperimentDefinition
    version: int
    exposure_attributes: frozenset[str]
    variant_models: tuple[str | None, ...] = ()
    """Each variant's ``model`` reference (``name:version``; None: none), in variant order."""
    hashing_holds: bool = False
    """No change since the start could have made a sticky record differ from hashing
    (``allocation_epoch`` 0): a unit's record, if any, is what hashing gives it now."""
    allocation_period: int = 0
    """The allocation period this definition belongs to (its split); exposures carry it."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CachedExperiment:
        return cls(
            to_definition(state),
            int(state["version"]),
            exposure_attribute_names(state),
            tuple(v.get("model") for v in state["variants"]),
            state.get("allocation_epoch") == 0,  # unknown: read Redis (always right)
            int(state.get("allocation_period") or 0),
        )


class ExperimentCache:
    def __init__(self) -> None:
        self._entries: dict[str, CachedExperiment] = {}
        self._running: tuple[CachedExperiment, ...] = ()
        self._lock = threading.Lock()
        self.refreshed_at: float | None = None
        """``time.monotonic()`` of the last full refresh; None before the first."""

    def get(self, key: str) -> CachedExperiment | None:
        return self._entries.get(key)

    def running(self) -> tuple[CachedExperiment, ...]:
        """Running experiments, ordered by key."""
        return self._running

    def versions(self) -> dict[str, int]:
        return {key: entry.version for key, entry in self._entries.items()}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entry: CachedExperiment) -> None:
        """Install ``entry`` unless the cache already holds a newer version of it."""
        with self._lock:
            current = self._entries.get(entry.definition.key)
            if current is not None and current.version > entry.version:
                return
            entries = dict(self._entries)
            entries[entry.definition.key] = entry
            self._swap(entries)

    def apply(self, changed: Iterable[CachedExperiment], present: Iterable[str]) -> None:
        """A refresh: install ``changed`` entries and forget keys not in ``present``."""
        keep = set(present)
        with self._lock:
            entries = {k: v for k, v in self._entries.items() if k in keep}
            for entry in changed:
                current = entries.get(entry.definition.key)
                if current is None or current.version <= entry.version:
                    entries[entry.definition.key] = entry
            self._swap(entries)
            self.refreshed_at = time.monotonic()

    def _swap(self, entries: dict[str, CachedExperiment]) -> None:
        running = tuple(
            entries[k] for k in sorted(entries) if entries[k].definition.status is Status.RUNNING
        )
        self._entries = entries
        self._running = running

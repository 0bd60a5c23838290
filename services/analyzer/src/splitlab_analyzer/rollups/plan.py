"""Which per-unit aggregates an experiment needs: slots (pure).

A *slot* is one stream of events (an outcome type, the experiment's prediction latencies or
prediction errors) in one window relative to the unit's first exposure (``post``:
``[first, first + W)`` or ``[first, inf)``; ``pre``: ``[first - P, first)``). Per unit a slot
holds two numbers: ``n``, the events in the window, and ``s``, the sum of their values. Every
plain metric is a function of its slots: ``sum`` = ``s``, ``count`` = ``n``, ``any`` =
``n > 0``, ``mean`` = ``s / n`` (no value when ``n = 0``), and its pre-period covariate the
same over the ``pre`` slot. Metrics of the same stream and window share a slot (revenue,
orders and converted all read the ``purchase`` post slot).

A :class:`RollupPlan` is the sorted set of an experiment's slots; its :attr:`~RollupPlan.digest`
identifies it, so stored per-unit slots (``unit_rollups``) are used only while the metric
definitions still ask for exactly those slots.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from splitlab.platform.storage.models import ROLLUP_SLOTS
from splitlab_analyzer.definitions import MetricDef

MAX_SLOTS = ROLLUP_SLOTS
"""Slot columns of ``unit_rollups``; a plan needing more is not stored (its experiment's
results are computed from the events)."""

Kind = Literal["post", "pre"]

ROLLUP_FORMAT = 2
"""What stored slots mean beyond the slot set. 2: events with a value beyond
``splitlab.contracts.values.MAX_ABS_VALUE`` are left out (1 counted them, so a single stored
1e308 could overflow every later aggregate). Part of the digest: a change rebuilds rollups."""


@dataclass(frozen=True, order=True)
class Slot:
    source: str
    """``outcome``, ``prediction_latency`` or ``prediction_error``."""
    outcome_type: str
    """The outcome type for ``outcome`` slots, ``""`` otherwise."""
    kind: Kind
    seconds: float | None
    """Window length: attribution window (``post``, None = unbounded) or pre-period (``pre``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "outcome_type": self.outcome_type,
            "kind": self.kind,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slot:
        seconds = data["seconds"]
        return cls(
            str(data["source"]),
            str(data["outcome_type"]),
            "pre" if data["kind"] == "pre" else "post",
            None if seconds is None else float(seconds),
        )

    def sort_key(self) -> tuple[str, str, str, float]:
        return (
            self.source,
            self.outcome_type,
            self.kind,
            float("inf") if self.seconds is None else self.seconds,
        )


def post_slot(metric: MetricDef) -> Slot:
    return Slot(
        str(metric.source), metric.outcome_type or "", "post", metric.attribution_window_seconds
    )


def pre_slot(metric: MetricDef) -> Slot | None:
    """The pre-period slot, or None when the metric has no pre-period covariate."""
    if metric.pre_period_days <= 0:
        return None
    return Slot(
        str(metric.source), metric.outcome_type or "", "pre", metric.pre_period_days * 86400.0
    )


@dataclass(frozen=True)
class RollupPlan:
    slots: tuple[Slot, ...]
    """Sorted and unique; slot ``i`` is stored in columns ``n{i}``/``s{i}``."""

    @classmethod
    def for_metrics(cls, bases: Iterable[MetricDef]) -> RollupPlan:
        """The slots of plain (non-ratio) metrics and their pre-periods."""
        wanted: set[Slot] = set()
        for metric in bases:
            if metric.is_ratio:
                raise ValueError(f"bases: {metric.name!r} is a ratio metric; pass its parts")
            wanted.add(post_slot(metric))
            pre = pre_slot(metric)
            if pre is not None:
                wanted.add(pre)
        return cls(tuple(sorted(wanted, key=Slot.sort_key)))

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]]) -> RollupPlan:
        return cls(tuple(sorted((Slot.from_json(d) for d in data), key=Slot.sort_key)))

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.slots]

    @property
    def digest(self) -> str:
        """A stable identifier of the slot set and of :data:`ROLLUP_FORMAT` (sha256 of their
        canonical JSON): rollups stored under another format are rebuilt."""
        canonical = {"format": ROLLUP_FORMAT, "slots": self.to_json()}
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def storable(self) -> bool:
        return 0 < len(self.slots) <= MAX_SLOTS

    def index(self, slot: Slot) -> int:
        return self.slots.index(slot)

    @property
    def outcome_types(self) -> list[str]:
        return sorted({s.outcome_type for s in self.slots if s.source == "outcome"})

    @property
    def uses_predictions(self) -> bool:
        return any(s.source != "outcome" for s in self.slots)

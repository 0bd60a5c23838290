"""Which CUPAC trainings are due (a pure decision) and enqueuing them.

Per experiment metric and model kind, a training is due when

- no training of that kind has finished yet; or
- the experiment is running, the kind's frequency (its entity's, per kind) has passed since
  the last training finished (done or failed: a failing one is retried at that pace, not at
  every look), and the experiment gained units since the last done one; or
- the experiment stopped after the last in-experiment training: once more at stop, so its
  final results use every unit.

Beat calls :func:`plan` every ``SPLITLAB_TRAINER_SCHEDULE_SECONDS``; a pair with a training
queued or running is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

KINDS = ("in_experiment", "pre_experiment")


@dataclass(frozen=True)
class History:
    """What the catalogue says of one (experiment, metric, kind)."""

    finished_at: datetime | None
    """When the newest done or failed training finished."""
    done_units: int | None
    """Experiment units when the newest done training ran (None: none done)."""


def due_kinds(
    now: datetime,
    status: str,
    stopped_at: datetime | None,
    units: int,
    every: Mapping[str, float],
    history: Mapping[str, History],
) -> list[str]:
    due: list[str] = []
    for kind in KINDS:
        past = history.get(kind, History(None, None))
        if past.finished_at is None:
            due.append(kind)
        elif status == "stopped":
            if kind == "in_experiment" and stopped_at is not None and past.finished_at < stopped_at:
                due.append(kind)
        elif (now - past.finished_at).total_seconds() >= every[kind] and (
            past.done_units is None or units > past.done_units
        ):
            due.append(kind)
    return due

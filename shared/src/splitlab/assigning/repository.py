"""The assignment runtime's Postgres reads: which experiments changed, and their rows
(:func:`splitlab.assigning.loading.refresh_cache` decides what to reload)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from splitlab.platform.storage.models import Experiment


def stored_versions(session: Session) -> dict[str, int]:
    """Every experiment's key and version (what a cache refresh compares)."""
    rows = session.execute(select(Experiment.key, Experiment.version)).all()
    return {str(key): int(version) for key, version in rows}


def load_experiments(session: Session, keys: Iterable[str]) -> Sequence[Experiment]:
    wanted = list(keys)
    if not wanted:
        return []
    return session.scalars(select(Experiment).where(Experiment.key.in_(wanted))).all()

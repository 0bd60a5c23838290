"""The clients and services a trainer process holds: built once per process (a prefork child
builds its own after the fork, never sharing the parent's connections), from the settings the
Celery app carries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from splitlab.platform.connections import create_db_engine, create_session_factory
from splitlab.platform.settings import Settings
from splitlab_trainer.planner import Planner
from splitlab_trainer.repository import CatalogueRepository, EntityRepository, ExperimentReader
from splitlab_trainer.training import Trainer


@dataclass(frozen=True)
class TrainerResources:
    settings: Settings
    engine: Engine
    catalogue: CatalogueRepository
    experiments: ExperimentReader
    entities: EntityRepository
    trainings: Trainer
    planner: Planner


def build_resources(settings: Settings, engine: Engine | None = None) -> TrainerResources:
    engine = engine or create_db_engine(settings, pool_size=2, max_overflow=2)
    sessions = create_session_factory(engine)
    catalogue = CatalogueRepository(engine, sessions)
    experiments = ExperimentReader(sessions)
    entities = EntityRepository(sessions)
    return TrainerResources(
        settings,
        engine,
        catalogue,
        experiments,
        entities,
        Trainer(engine, catalogue, experiments, entities, settings),
        Planner(catalogue, experiments, entities, settings),
    )


_BUILT: dict[tuple[int, int], TrainerResources] = {}


def resources_for(app: Any) -> TrainerResources:
    """This process's resources for the Celery ``app`` (built on first use in the process)."""
    key = (os.getpid(), id(app))
    if key not in _BUILT:
        _BUILT[key] = build_resources(app.splitlab_settings)
    return _BUILT[key]

"""The clients most services hold, opened at startup and closed at shutdown, with their checks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.connections import create_db_engine, create_redis, create_session_factory
from splitlab.platform.health import DependencyCheck, kafka_check, postgres_check, redis_check
from splitlab.platform.settings import Settings


@dataclass
class CoreResources:
    """What ``open_core_resources`` built; fields are None for dependencies not asked for."""

    engine: Engine | None = None
    sessions: sessionmaker[Session] | None = None
    redis: redis.Redis | None = None
    checks: list[DependencyCheck] = field(default_factory=list)


@contextlib.asynccontextmanager
async def open_core_resources(
    settings: Settings, *, postgres: bool = True, use_redis: bool = True, kafka: bool = True
) -> AsyncIterator[CoreResources]:
    resources = CoreResources()
    if postgres:
        resources.engine = create_db_engine(settings)
        resources.sessions = create_session_factory(resources.engine)
        resources.checks.append(postgres_check(resources.engine))
    if use_redis:
        resources.redis = create_redis(settings)
        resources.checks.append(redis_check(resources.redis))
    if kafka:
        resources.checks.append(kafka_check(settings))
    try:
        yield resources
    finally:
        if resources.redis is not None:
            resources.redis.close()
        if resources.engine is not None:
            resources.engine.dispose()

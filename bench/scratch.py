"""A scratch schema of the configured database for a benchmark's data: created empty with the
project's tables, reached through a ``search_path``, dropped at the end."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text

from splitlab.platform.settings import Settings
from splitlab.platform.storage.models import Base


def schema_engine(settings: Settings, schema: str, pool_size: int) -> Engine:
    return create_engine(
        settings.database_url,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=pool_size,
    )


def drop_schema(settings: Settings, schema: str) -> None:
    admin = create_engine(settings.database_url)
    with admin.begin() as c:
        c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def fresh_schema(settings: Settings, schema: str, pool_size: int) -> Engine:
    """``schema`` dropped if present, created, and holding empty project tables."""
    drop_schema(settings, schema)
    admin = create_engine(settings.database_url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    engine = schema_engine(settings, schema, pool_size)
    Base.metadata.create_all(engine)
    return engine

"""Postgres storage: SQLAlchemy models (the schema's owner), Alembic migrations, Redis keys, and
storage errors (``errors``: what a driver error means)."""

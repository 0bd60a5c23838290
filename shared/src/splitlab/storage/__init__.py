"""Postgres storage: SQLAlchemy models (the schema's owner), Alembic migrations, Redis keys."""

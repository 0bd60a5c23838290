"""A Postgres database of a test's own, migrated to head and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from splitlab.platform.storage.migrate import upgrade


@contextmanager
def own_database(server_url: str, prefix: str = "splitlab_test") -> Iterator[str]:
    """Create ``<prefix>_<pid>_<random>`` on the server of ``server_url`` (whose database only
    serves to connect), migrate it to head, yield its URL, drop it at the end: tests that share
    a server never see each other's rows (metric definitions of the same name, say)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

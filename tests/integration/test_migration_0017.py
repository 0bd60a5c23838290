"""Migration 0017 (``experiments.segment_attributes``): an experiment stored before it gets the
empty list (its exposures record what they did), and the downgrade drops the column only."""

from __future__ import annotations

from sqlalchemy import MetaData, Table, create_engine, insert, inspect, text

from splitlab.platform.storage.migrate import current_revision, downgrade, upgrade
from tests.integration.analyzer.simulation import experiment_row
from tests.support.databases import own_database
from tests.support.stack import StackEndpoints


def columns(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("experiments")}
    finally:
        engine.dispose()


def test_upgrade_gives_stored_experiments_an_empty_list_and_downgrade_drops_it(
    stack: StackEndpoints,
) -> None:
    with own_database(stack.database_url, prefix="splitlab_mig17") as url:
        assert "segment_attributes" in columns(url)
        downgrade(url, "0016")
        assert "segment_attributes" not in columns(url)
        engine = create_engine(url)
        try:
            experiments = Table("experiments", MetaData(), autoload_with=engine)
            with engine.begin() as connection:
                connection.execute(insert(experiments).values(**experiment_row("before-0017")))
            upgrade(url)
            assert current_revision(engine) == "0017"
            with engine.connect() as connection:
                stored = connection.execute(
                    text("SELECT key, segment_attributes FROM experiments")
                ).all()
            assert [tuple(r) for r in stored] == [("before-0017", [])]
        finally:
            engine.dispose()

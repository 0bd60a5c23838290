"""How many SQL statements one results request and one refresh run (issue 15: one snapshot
per request or refresh: the experiment and its metric definitions read once, the aggregates
read once). Counted with a SQLAlchemy ``before_cursor_execute`` listener on every engine, so a
new query on the results path shows up here instead of silently slowing every refresh."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.integration.analyzer.conftest import ADMIN, define_metrics, insert_experiment
from tests.integration.analyzer.simulation import experiment_row, simulate
from tests.integration.analyzer.test_isolation import write

pytestmark = pytest.mark.integration


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(str(statement).split()))

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def reads_of(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if re.search(rf"\bFROM {table}\b", s)]


def aggregates(seen: list[str]) -> list[str]:
    return [s for s in seen if "regr_avg" in s]


def test_one_results_request_and_one_refresh_read_each_input_once(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"stmts-{uuid.uuid4().hex[:8]}"
    insert_experiment(
        engine,
        experiment_row(key, guardrails=[{"metric": "latency", "margin": 0.05}]),
    )
    write(engine, simulate(key, n=300, seed=5).events)

    with statements() as seen:
        answer = analyzer.get(f"/experiments/{key}/results")
    assert answer.status_code == 200, answer.text
    print("request", len(seen), *seen, sep="\n")
    request = list(seen)

    with statements() as seen:
        refreshed = analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN)
    assert refreshed.status_code == 200, refreshed.text
    print("refresh", len(seen), *seen, sep="\n")
    refresh = list(seen)
    for label, run in (("request", request), ("refresh", refresh)):
        assert len(reads_of(run, "experiments")) == 1, label
        assert len(reads_of(run, "metric_definitions")) == 1, label
        assert len(aggregates(run)) == 1, label

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

    with statements() as request:
        answer = analyzer.get(f"/experiments/{key}/results")
    assert answer.status_code == 200, answer.text
    with statements() as first_refresh:  # builds the experiment's rollups
        assert analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN).status_code == 200
    with statements() as refresh:
        assert analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN).status_code == 200
    with statements() as from_rollups:  # another method: not cached
        answer = analyzer.get(f"/experiments/{key}/results", params={"method": "none"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["timings"]["per_unit"] == "rollups"
    with statements() as cached:
        assert analyzer.get(f"/experiments/{key}/results?sequential=true").status_code == 200

    runs = {
        "request": request,
        "first refresh": first_refresh,
        "refresh": refresh,
        "request from rollups": from_rollups,
    }
    for label, run in runs.items():
        shown = "\n".join(s[:120] for s in run)
        assert len(reads_of(run, "experiments")) == 1, f"{label}:\n{shown}"
        assert len(reads_of(run, "metric_definitions")) == 1, f"{label}:\n{shown}"
        assert len(reads_of(run, "allocation_periods")) == 1, f"{label}:\n{shown}"
        assert len(aggregates(run)) == 1, f"{label}:\n{shown}"
    # Measured: 11 (from the events: unit count, work_mem), 11 (from caught-up rollups: the
    # digest and the backlog), 15 (a refresh: the rollups checked and caught up first).
    assert len(request) <= 11, request
    assert len(from_rollups) <= 11, from_rollups
    assert len(refresh) <= 15, refresh
    # The request computed both horizons once: the always-valid one is a cache hit.
    assert cached == []

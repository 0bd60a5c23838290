"""``splitlab_client`` against the real assignment service (in-process app, real Redis,
Postgres and Kafka): typed answers, batch assignment, and a clear error for an experiment
that does not exist instead of control."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from splitlab_client import RequestRejectedError, SplitLabClient
from tests.integration.assignment.conftest import experiment_body


# The client bounds every call with a timeout; the in-process TestClient warns it has no use.
@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
def test_the_client_answers_from_the_service_and_rejects_an_unknown_experiment(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    assert client.post("/experiments", json=experiment_body(key), headers=admin).status_code == 201
    assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200
    with SplitLabClient(http=client, timeout=5.0) as sl:
        answer = sl.assign("client-unit-1", key)
        batch = sl.assign_batch("client-unit-1")
        with pytest.raises(RequestRejectedError) as rejected:
            sl.assign("client-unit-1", f"{key}-misspelled")
    assert not answer.fallback
    assert answer.in_experiment
    assert answer.variant in {"control", "treatment"}
    assert answer.bucket_version == 0
    assert isinstance(answer.sticky, bool)
    assert answer.degraded is False
    assert batch.variant(key) == answer.variant
    assert batch.assignments[key].in_experiment
    assert (rejected.value.status_code, rejected.value.field) == (404, "experiment_key")
    assert f"{key}-misspelled" in rejected.value.message

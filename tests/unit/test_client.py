"""``splitlab_client`` against httpx MockTransports: answers (typed, with sticky, degraded,
bucket_version, in_experiment), batch assignment, retries on idempotent calls only, timeouts,
the control fallback (with a log line saying why) when SplitLab is unreachable, and an error
when SplitLab rejects the request."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from splitlab_client import (
    AsyncSplitLabClient,
    Outcome,
    RequestRejectedError,
    SplitLabClient,
    SplitLabError,
)

ASSIGNED = {
    "experiment_key": "exp",
    "variant": "treatment",
    "in_experiment": True,
    "reason": "hashed",
    "sticky": True,
    "bucket_version": 0,
    "degraded": False,
}
PREDICTED = {
    "request_id": "r1",
    "prediction": 1,
    "probabilities": {"0": 0.2, "1": 0.8},
    "variant": "treatment",
    "model_name": "m",
    "model_version": "2",
    "fallback": False,
    "in_experiment": True,
    "degraded": True,
}
BATCH = {
    "unit_id": "u1",
    "degraded": False,
    "assignments": [
        {**{k: v for k, v in ASSIGNED.items() if k != "degraded"}, "experiment_key": "a"},
        {"experiment_key": "b", "variant": "control", "in_experiment": False,
         "reason": "not_targeted", "sticky": False, "bucket_version": 2},
    ],
}  # fmt: skip


class Server:
    """Answers from a script of statuses (or exceptions), then 200s; records every call."""

    def __init__(self, *script: int | Exception) -> None:
        self.script = list(script)
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        if step != 200:
            error = {"message": f"status {step}", "field": "experiment_key"}
            return httpx.Response(step, json={"error": error})
        path = request.url.path
        if path == "/assign":
            return httpx.Response(200, json=ASSIGNED)
        if path == "/predict":
            return httpx.Response(200, json=PREDICTED)
        if path == "/assign/batch":
            return httpx.Response(200, json=BATCH)
        count = len(json.loads(request.content)["outcomes"])
        return httpx.Response(202, json={"accepted": count, "event_ids": []})


def client(server: Server, **options: Any) -> SplitLabClient:
    return SplitLabClient(transport=httpx.MockTransport(server), backoff=0.0, **options)


def test_answers_pass_through() -> None:
    server = Server()
    with client(server, api_key="k") as sl:
        assigned = sl.assign("u1", "exp", {"country": "FR"})
        predicted = sl.predict("u1", "exp", {"x": 1.0})
    assert (assigned.variant, assigned.fallback) == ("treatment", False)
    assert (predicted.prediction, predicted.request_id, predicted.fallback) == (1, "r1", False)
    assert predicted.probabilities == {"0": 0.2, "1": 0.8}
    assert server.calls[0].headers["authorization"] == "Bearer k"
    assert json.loads(server.calls[0].content)["attributes"] == {"country": "FR"}


def test_assign_retries_transient_failures_then_answers() -> None:
    server = Server(503, httpx.ConnectError("refused"))
    with client(server, retries=2) as sl:
        answer = sl.assign("u1", "exp")
    assert (answer.variant, answer.fallback) == ("treatment", False)
    assert len(server.calls) == 3


def test_assign_falls_back_to_control_when_unreachable_with_bounded_retries() -> None:
    server = Server(*[httpx.ConnectError("refused")] * 10)
    with client(server, retries=2) as sl:
        answer = sl.assign("u1", "exp")
    assert (answer.variant, answer.in_experiment, answer.fallback) == ("control", False, True)
    assert "ConnectError" in (answer.error or "")
    assert len(server.calls) == 3


def test_answers_carry_sticky_degraded_bucket_version_and_in_experiment() -> None:
    with client(Server()) as sl:
        assigned = sl.assign("u1", "exp")
        predicted = sl.predict("u1", "exp", {"x": 1.0})
    assert (assigned.sticky, assigned.degraded, assigned.bucket_version) == (True, False, 0)
    assert assigned.in_experiment
    assert (predicted.in_experiment, predicted.degraded) == (True, True)


def test_assign_batch_answers_every_experiment_of_the_unit() -> None:
    server = Server(503)
    with client(server) as sl:
        batch = sl.assign_batch("u1", {"country": "FR"}, include_excluded=True)
    assert json.loads(server.calls[-1].content) == {
        "unit_id": "u1", "attributes": {"country": "FR"}, "include_excluded": True,
    }  # fmt: skip
    assert len(server.calls) == 2, "retried like /assign"
    assert (batch.unit_id, batch.fallback, batch.degraded) == ("u1", False, False)
    assert set(batch.assignments) == {"a", "b"}
    assert (batch.assignments["a"].variant, batch.assignments["a"].sticky) == ("treatment", True)
    assert batch.assignments["b"].bucket_version == 2
    assert not batch.assignments["b"].in_experiment
    assert (batch.variant("a"), batch.variant("b"), batch.variant("other")) == (
        "treatment",
        "control",
        "control",
    )
    with client(server) as sl:
        sl.assign_batch("u1", experiment_keys=("a", "b"))
    assert json.loads(server.calls[-1].content)["experiment_keys"] == ["a", "b"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_a_rejected_request_raises_a_clear_error_not_control(status: int) -> None:
    server = Server(*[status] * 10)
    with client(server, retries=2) as sl:
        with pytest.raises(RequestRejectedError) as raised:
            sl.assign("u1", "missing")
        assert raised.value.status_code == status
        assert raised.value.field == "experiment_key"
        assert f"HTTP {status}: status {status}" in str(raised.value)
        assert "/assign" in str(raised.value)
        with pytest.raises(SplitLabError):
            sl.predict("u1", "missing", {"x": 1.0}, default=0)
        with pytest.raises(RequestRejectedError):
            sl.assign_batch("u1")
        with pytest.raises(RequestRejectedError):
            sl.send_outcome("u1", "click", 1.0)
    assert len(server.calls) == 4, "never retried"


def test_the_fallback_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    server = Server(*[httpx.ConnectError("connection refused")] * 10, 500)
    with caplog.at_level(logging.WARNING, logger="splitlab_client"), client(server) as sl:
        assert sl.assign("u1", "exp").fallback
        assert sl.predict("u1", "exp", {}, default=0).fallback
        assert sl.assign_batch("u1").fallback
        assert not sl.send_outcome("u1", "click", 1.0).delivered
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "SplitLab /assign for experiment 'exp' failed (ConnectError: connection refused); "
        "answering control"
    )
    assert lines[1].startswith("SplitLab /predict for experiment 'exp' failed (ConnectError")
    assert lines[1].endswith("answering control with the default")
    assert lines[2].startswith("SplitLab /assign/batch for unit 'u1' failed")
    assert "SplitLab /outcomes for 1 outcomes failed (ConnectError" in lines[3]
    server_error = Server(500)
    with caplog.at_level(logging.WARNING, logger="splitlab_client"), client(server_error) as sl:
        assert sl.predict("u1", "exp", {}).error == "HTTP 500: status 500"
    assert "failed (HTTP 500: status 500)" in caplog.records[-1].getMessage()


def test_predict_is_never_retried_and_falls_back_with_the_default() -> None:
    server = Server(httpx.ReadTimeout("slow"), 503)
    with client(server, retries=3) as sl:
        answer = sl.predict("u1", "exp", {"x": 1.0}, default=0)
    assert (answer.variant, answer.prediction, answer.fallback) == ("control", 0, True)
    assert answer.request_id is None
    assert len(server.calls) == 1


def test_outcomes_keep_their_event_ids_across_retries_and_batch() -> None:
    server = Server(502)
    outcomes = [Outcome(f"u{i}", "click", 1.0, request_id="r1") for i in range(5)]
    with client(server, batch_size=2) as sl:
        receipt = sl.send_outcomes(outcomes)
    assert receipt.delivered
    assert receipt.event_ids == [o.event_id for o in outcomes]
    bodies = [json.loads(c.content)["outcomes"] for c in server.calls]
    assert [len(b) for b in bodies] == [2, 2, 2, 1]  # first batch retried once
    assert bodies[0] == bodies[1], "a retry resends the same event ids"
    assert {o["event_id"] for b in bodies for o in b} == {str(o.event_id) for o in outcomes}


def test_undeliverable_outcomes_are_reported_not_raised() -> None:
    server = Server(*[httpx.ConnectError("refused")] * 10)
    event_id = uuid.uuid4()
    with client(server, retries=1) as sl:
        receipt = sl.send_outcome("u1", "click", 1.0, event_id=event_id)
    assert (receipt.delivered, receipt.event_ids) == (False, [event_id])
    assert len(server.calls) == 2


def test_a_real_timeout_bounds_the_call() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with SplitLabClient(transport=httpx.MockTransport(slow), timeout=0.05, retries=0) as sl:
        assert sl.predict("u", "exp", {}).fallback


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="timeout"):
        SplitLabClient(timeout=0)
    with pytest.raises(ValueError, match="retries"):
        SplitLabClient(retries=-1)


def test_async_client_mirrors_the_sync_one() -> None:
    server = Server(503)

    async def handler(request: httpx.Request) -> httpx.Response:
        return server(request)

    async def run() -> tuple[Any, Any, Any]:
        async with AsyncSplitLabClient(transport=httpx.MockTransport(handler), backoff=0.0) as sl:
            assigned = await sl.assign("u1", "exp")
            predicted = await sl.predict("u1", "exp", {"x": 1.0})
            receipt = await sl.send_outcome("u1", "click", 1.0)
            return assigned, predicted, receipt

    assigned, predicted, receipt = asyncio.run(run())
    assert (assigned.variant, assigned.fallback) == ("treatment", False)
    assert len(server.calls) == 4  # one retry of /assign
    assert predicted.request_id == "r1"
    assert receipt.delivered
    down = Server(*[httpx.ConnectError("refused")] * 10)

    async def handler_down(request: httpx.Request) -> httpx.Response:
        return down(request)

    async def run_down() -> Any:
        async with AsyncSplitLabClient(
            transport=httpx.MockTransport(handler_down), backoff=0.0, retries=1
        ) as sl:
            return await sl.predict("u1", "exp", {"x": 1.0}, default="safe")

    fallback = asyncio.run(run_down())
    assert (fallback.variant, fallback.prediction, fallback.fallback) == ("control", "safe", True)
    assert len(down.calls) == 1


def test_async_client_batches_and_rejects_like_the_sync_one() -> None:
    server = Server(404)

    async def handler(request: httpx.Request) -> httpx.Response:
        return server(request)

    async def run() -> Any:
        async with AsyncSplitLabClient(transport=httpx.MockTransport(handler), backoff=0.0) as sl:
            with pytest.raises(RequestRejectedError, match="HTTP 404"):
                await sl.assign("u1", "missing")
            return await sl.assign_batch("u1")

    batch = asyncio.run(run())
    assert batch.variant("a") == "treatment"
    assert batch.assignments["a"].bucket_version == 0

"""``splitlab.client`` against httpx MockTransports: answers, retries on idempotent calls only,
timeouts, and the control fallback when SplitLab is unreachable."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from splitlab.client import AsyncSplitLabClient, Outcome, SplitLabClient

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
}


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
            return httpx.Response(step, json={"error": {"message": f"status {step}"}})
        path = request.url.path
        if path == "/assign":
            return httpx.Response(200, json=ASSIGNED)
        if path == "/predict":
            return httpx.Response(200, json=PREDICTED)
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


def test_client_errors_are_not_retried() -> None:
    server = Server(404)
    with client(server, retries=2) as sl:
        answer = sl.assign("u1", "missing")
    assert answer.fallback
    assert "status 404" in (answer.error or "")
    assert len(server.calls) == 1


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

"""Sends a simulated run's traffic to a running SplitLab, as production callers would.

Per batch of users: their pre-exposure history goes to the analyzer's ``POST /unit-features``
(observed a day before they arrive), then each user arrives on schedule (``rate`` a second,
open loop) and calls the router's ``POST /predict`` (or the assignment service's ``POST /assign``
for an experiment without models); the outcomes the world draws for the model that served them
go to ``POST /outcomes`` in batches, with the prediction's ``request_id``. Everything sent and
every answer is counted in :class:`RunCounts`, which the whole-system tests compare with what
Kafka and Postgres hold. A run stops by itself after ``users`` users or ``duration_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from splitlab.simulation.world import Outcome, User, World

FEATURE_BATCH_USERS = 500
"""Users whose history one ``/unit-features`` call carries (4 values each)."""
OUTCOME_BATCH = 500
OUTCOME_FLUSH_SECONDS = 0.5


@dataclass(frozen=True)
class Endpoints:
    assignment_url: str
    router_url: str
    analyzer_url: str
    admin_key: str
    caller_key: str | None = None

    def caller_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.caller_key}"} if self.caller_key else {}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


@dataclass(frozen=True)
class RunPlan:
    experiment_key: str
    users: int
    rate: float
    """Users arriving a second."""
    duration_s: float = 3600.0
    first_user: int = 0
    """Index of the first user, so a later run continues with new users."""
    concurrency: int = 32
    served_by_model: bool = True
    """``/predict`` (the experiment's variants name models) or ``/assign``."""

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users: at least 1, got {self.users}")
        if not 0 < self.rate <= 10_000:
            raise ValueError(f"rate: users a second in (0, 10000], got {self.rate}")
        if not self.duration_s > 0:
            raise ValueError(f"duration_s: must be positive, got {self.duration_s}")


@dataclass
class RunCounts:
    users: int = 0
    """Users with at least one answered (200) request."""
    requests: int = 0
    """Answered (200) /predict or /assign calls: each logged one exposure (and a prediction)."""
    failed_requests: int = 0
    """Calls that did not answer 200 (no outcome is sent for them)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed calls by what went wrong (``status 503``, ``ConnectError``, ...)."""
    in_experiment: int = 0
    """Users enrolled in the experiment (not held out, targeted, covered)."""
    by_variant: Counter[str] = field(default_factory=Counter)
    """Enrolled users by variant."""
    requests_by_variant: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    """Answered calls by the model that served them (``name:version``)."""
    fallbacks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    """Outcome events accepted (202), by type."""
    outcomes_rejected: int = 0
    clicks: Counter[str] = field(default_factory=Counter)
    """Click events by variant (for the live estimate)."""
    features_loaded: int = 0
    seconds: float = 0.0

    def click_rate(self, variant: str) -> float:
        served = self.requests_by_variant[variant]
        return self.clicks[variant] / served if served else float("nan")

    def summary(self) -> str:
        rates = ", ".join(
            f"{v} {self.by_variant[v]:,} users CTR {self.click_rate(v):.2%}"
            for v in sorted(self.by_variant)
        )
        return (
            f"{self.users:,} users, {self.requests:,} requests, {self.failed_requests:,} failed, "
            f"{sum(self.outcomes.values()):,} outcomes; {rates or 'no variant yet'}"
        )


Progress = Callable[[RunCounts], None]


async def run(
    world: World,
    plan: RunPlan,
    endpoints: Endpoints,
    *,
    on_progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunCounts:
    """One bounded run: returns what was sent and answered."""
    counts = RunCounts()
    started = time.monotonic()
    deadline = started + plan.duration_s
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) could
    # close one under a request on its way (a ReadError that no retry may repair: /predict is
    # not idempotent, its exposure may be logged).
    limits = httpx.Limits(max_connections=plan.concurrency + 4, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=30.0, limits=limits, transport=transport) as client:
        outcomes = _OutcomeSender(client, endpoints, counts)
        sender = asyncio.create_task(outcomes.loop())
        slots = asyncio.Semaphore(plan.concurrency)
        pending: set[asyncio.Task[None]] = set()
        last_report = 0.0
        for batch_start in range(0, plan.users, FEATURE_BATCH_USERS):
            indexes = range(
                plan.first_user + batch_start,
                plan.first_user + min(plan.users, batch_start + FEATURE_BATCH_USERS),
            )
            users = [world.user(i) for i in indexes]
            await _load_history(client, endpoints, users, counts)
            for offset, user in enumerate(users):
                due = started + (batch_start + offset) / plan.rate
                if due >= deadline:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                task = asyncio.create_task(
                    _visit(client, world, plan, endpoints, user, counts, outcomes)
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _: slots.release())
                now = time.monotonic()
                if on_progress is not None and now - last_report >= 0.5:
                    counts.seconds = now - started
                    on_progress(counts)
                    last_report = now
            if time.monotonic() >= deadline:
                break
        if pending:
            await asyncio.wait(pending)
        outcomes.close()
        await sender
    counts.seconds = time.monotonic() - started
    if on_progress is not None:
        on_progress(counts)
    return counts


async def wait_until_served(
    endpoints: Endpoints, experiment_key: str, models: list[str], timeout_s: float = 60.0
) -> None:
    """Return once the router serves ``experiment_key``: each of ``models`` loaded, and the
    experiment known (a ``/predict`` with no features is refused with 422, which logs nothing,
    where an experiment the router has not loaded yet answers 404). A replica loads a started
    experiment and a registered model within its refresh periods
    (``SPLITLAB_EXPERIMENT_CACHE_REFRESH_SECONDS``, ``SPLITLAB_ROUTER_MODEL_REFRESH_SECONDS``);
    before that its callers get 404 or 503. ``TimeoutError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    probe = {"unit_id": "splitlab-simulator-probe", "experiment_key": experiment_key,
             "features": {}}  # fmt: skip
    async with httpx.AsyncClient(timeout=10.0) as client:
        waiting = list(models)
        while time.monotonic() < deadline:
            for ref in list(waiting):
                name, _, version = ref.partition(":")
                response = await client.get(
                    f"{endpoints.router_url}/models/{name}/{version}",
                    headers=endpoints.admin_headers(),
                )
                if response.status_code == 200 and response.json().get("loaded"):
                    waiting.remove(ref)
            if not waiting:
                response = await client.post(
                    f"{endpoints.router_url}/predict", json=probe,
                    headers=endpoints.caller_headers(),
                )  # fmt: skip
                if response.status_code == 422:
                    return
            await asyncio.sleep(0.25)
    raise TimeoutError(
        f"the router did not serve {experiment_key!r} with {models} within {timeout_s:.0f} s"
    )


async def _load_history(
    client: httpx.AsyncClient, endpoints: Endpoints, users: list[User], counts: RunCounts
) -> None:
    observed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    values = [
        {"unit_id": u.unit_id, "name": name, "value": value, "observed_at": observed}
        for u in users
        for name, value in u.history.items()
    ]
    response = await client.post(
        f"{endpoints.analyzer_url}/unit-features",
        json={"features": values},
        headers=endpoints.admin_headers(),
    )
    response.raise_for_status()
    counts.features_loaded += int(response.json()["loaded"])


async def _visit(
    client: httpx.AsyncClient,
    world: World,
    plan: RunPlan,
    endpoints: Endpoints,
    user: User,
    counts: RunCounts,
    outcomes: _OutcomeSender,
) -> None:
    """One user's visits, one after the other, each a request and what the user then did."""
    answered = False
    for visit in range(user.visits):
        answer = await _request(client, plan, endpoints, user, counts)
        if answer is None:
            continue
        counts.requests += 1
        variant = str(answer["variant"])
        if not answered:
            answered = True
            counts.users += 1
            if answer.get("in_experiment", True):
                counts.in_experiment += 1
                counts.by_variant[variant] += 1
        if not answer.get("in_experiment", True):
            continue
        counts.requests_by_variant[variant] += 1
        if plan.served_by_model:
            served = f"{answer['model_name']}:{answer['model_version']}"
            counts.fallbacks += bool(answer.get("fallback"))
        else:
            served = variant
        counts.by_model[served] += 1
        for event in world.outcomes(user, served, draw=visit):
            counts.clicks[variant] += event.outcome_type == "click"
            outcomes.add(event, answer.get("request_id"))


async def _request(
    client: httpx.AsyncClient,
    plan: RunPlan,
    endpoints: Endpoints,
    user: User,
    counts: RunCounts,
) -> dict[str, Any] | None:
    """The answer of one ``/predict`` (or ``/assign``) call, or None (counted as failed)."""
    body: dict[str, Any] = {"unit_id": user.unit_id, "experiment_key": plan.experiment_key,
                            "attributes": user.attributes}  # fmt: skip
    if plan.served_by_model:
        url = f"{endpoints.router_url}/predict"
        body["features"] = user.features
    else:
        url = f"{endpoints.assignment_url}/assign"
    try:
        response = await client.post(url, json=body, headers=endpoints.caller_headers())
    except httpx.HTTPError as exc:
        counts.failed_requests += 1
        counts.errors[type(exc).__name__] += 1
        return None
    if response.status_code != 200:
        counts.failed_requests += 1
        counts.errors[f"status {response.status_code}"] += 1
        return None
    answer: dict[str, Any] = response.json()
    return answer


class _OutcomeSender:
    """Batches outcomes into ``POST /outcomes`` calls (at most ``OUTCOME_BATCH`` or every
    ``OUTCOME_FLUSH_SECONDS``)."""

    def __init__(self, client: httpx.AsyncClient, endpoints: Endpoints, counts: RunCounts) -> None:
        self._client = client
        self._endpoints = endpoints
        self._counts = counts
        self._queue: list[dict[str, Any]] = []
        self._closed = asyncio.Event()

    def add(self, event: Outcome, request_id: str | None) -> None:
        item: dict[str, Any] = {
            "unit_id": event.unit_id,
            "outcome_type": event.outcome_type,
            "value": event.value,
        }
        if request_id:
            item["request_id"] = request_id
        self._queue.append(item)

    def close(self) -> None:
        self._closed.set()

    async def loop(self) -> None:
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), OUTCOME_FLUSH_SECONDS)
            await self.flush()
        await self.flush()

    async def flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:OUTCOME_BATCH], self._queue[OUTCOME_BATCH:]
            try:
                response = await self._client.post(
                    f"{self._endpoints.router_url}/outcomes",
                    json={"outcomes": batch},
                    headers=self._endpoints.caller_headers(),
                )
            except httpx.HTTPError as exc:
                self._counts.outcomes_rejected += len(batch)
                self._counts.errors[f"outcomes {type(exc).__name__}"] += 1
                continue
            if response.status_code == 202:
                for item in batch:
                    self._counts.outcomes[item["outcome_type"]] += 1
            else:
                self._counts.outcomes_rejected += len(batch)
                self._counts.errors[f"outcomes status {response.status_code}"] += 1

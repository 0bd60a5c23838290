"""The client production services use to call SplitLab: ``/assign``, ``/predict``, ``/outcomes``.

    from splitlab.client import SplitLabClient

    with SplitLabClient(assignment_url="http://assign:8001", router_url="http://router:8002") as sl:
        answer = sl.predict("user-42", "ranker-v3", {"x1": 0.3, "x2": 1.0})
        ...
        sl.send_outcome("user-42", "conversion", 1.0, request_id=answer.request_id)

``AsyncSplitLabClient`` has the same methods as coroutines. A caller's product never breaks
because of an experiment:

- every call has a timeout (``timeout`` seconds, connect included);
- idempotent calls are retried a bounded number of times (``retries``, with a short back-off)
  on connection errors, timeouts and 5xx: ``/assign`` (deterministic and sticky) and
  ``/outcomes`` (each outcome carries an ``event_id`` made here, so a retry is stored once);
  ``/predict`` is not retried (a retry would log a second prediction);
- when SplitLab cannot answer, ``assign`` and ``predict`` return a *fallback* answer: the
  control variant, ``fallback=True``, the reason in ``error`` (and ``predict`` returns the
  caller's ``default`` prediction); ``send_outcomes`` returns ``delivered=False`` with the
  event ids, so the caller may resend them later. Nothing raises but misuse (bad arguments).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = [
    "AssignAnswer",
    "AsyncSplitLabClient",
    "Outcome",
    "OutcomeReceipt",
    "PredictAnswer",
    "SplitLabClient",
]

logger = logging.getLogger(__name__)

CONTROL = "control"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class AssignAnswer:
    experiment_key: str
    variant: str
    in_experiment: bool
    reason: str
    fallback: bool = False
    """True when SplitLab did not answer: ``variant`` is control."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PredictAnswer:
    experiment_key: str
    variant: str
    prediction: Any
    probabilities: dict[str, float] | None
    model_name: str | None
    model_version: str | None
    request_id: str | None
    """Attach it to outcomes; None on a client-side fallback (SplitLab did not answer)."""
    fallback: bool
    """True when control answered: the variant's model failed (router) or SplitLab did not
    answer (client, ``prediction`` is the caller's default)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    unit_id: str
    outcome_type: str
    value: float
    request_id: str | None = None
    occurred_at: datetime | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "unit_id": self.unit_id,
            "outcome_type": self.outcome_type,
            "value": self.value,
            "event_id": str(self.event_id),
        }
        if self.request_id is not None:
            body["request_id"] = self.request_id
        if self.occurred_at is not None:
            body["occurred_at"] = self.occurred_at.isoformat()
        return body


@dataclass(frozen=True, slots=True)
class OutcomeReceipt:
    event_ids: list[uuid.UUID]
    delivered: bool
    error: str | None = None


class _CallError(Exception):
    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _check(response: httpx.Response) -> Any:
    if response.status_code < 400:
        return response.json()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    raise _CallError(
        f"HTTP {response.status_code}: {message}", response.status_code in _RETRY_STATUSES
    )


def _assign_fallback(experiment_key: str, error: str) -> AssignAnswer:
    return AssignAnswer(experiment_key, CONTROL, False, "fallback", True, error)


def _assign_answer(data: Mapping[str, Any]) -> AssignAnswer:
    return AssignAnswer(
        data["experiment_key"], data["variant"], data["in_experiment"], data["reason"]
    )


def _predict_answer(experiment_key: str, data: Mapping[str, Any]) -> PredictAnswer:
    return PredictAnswer(
        experiment_key,
        data["variant"],
        data["prediction"],
        data.get("probabilities"),
        data["model_name"],
        data["model_version"],
        data["request_id"],
        bool(data["fallback"]),
    )


def _predict_fallback(experiment_key: str, default: Any, error: str) -> PredictAnswer:
    return PredictAnswer(experiment_key, CONTROL, default, None, None, None, None, True, error)


def _outcome_batches(outcomes: Sequence[Outcome], size: int) -> list[list[Outcome]]:
    return [list(outcomes[i : i + size]) for i in range(0, len(outcomes), size)]


class _Config:
    def __init__(
        self,
        assignment_url: str,
        router_url: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff: float,
        batch_size: int,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size must be in [1, 1000], got {batch_size!r}")
        self.assign_url = assignment_url.rstrip("/") + "/assign"
        self.predict_url = router_url.rstrip("/") + "/predict"
        self.outcomes_url = router_url.rstrip("/") + "/outcomes"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.batch_size = batch_size

    def delay(self, attempt: int) -> float:
        return float(self.backoff * (2**attempt))


class SplitLabClient:
    """Synchronous client; one instance per process (it pools connections). Thread-safe."""

    def __init__(
        self,
        assignment_url: str = "http://127.0.0.1:8001",
        router_url: str = "http://127.0.0.1:8002",
        *,
        api_key: str | None = None,
        timeout: float = 0.5,
        retries: int = 2,
        backoff: float = 0.05,
        batch_size: int = 500,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._config = _Config(
            assignment_url, router_url, api_key, timeout, retries, backoff, batch_size
        )
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _post(self, url: str, body: Any, attempts: int) -> Any:
        error = "no attempt"
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._config.delay(attempt - 1))
            try:
                response = self._http.post(
                    url, json=body, headers=self._config.headers, timeout=self._config.timeout
                )
                return _check(response)
            except _CallError as exc:
                error = str(exc)
                if not exc.retry:
                    break
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        raise _CallError(error, False)

    def assign(
        self, unit_id: str, experiment_key: str, attributes: Mapping[str, Any] | None = None
    ) -> AssignAnswer:
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = self._post(self._config.assign_url, body, self._config.retries + 1)
        except _CallError as exc:
            logger.warning("SplitLab /assign failed; answering control", extra={"error": str(exc)})
            return _assign_fallback(experiment_key, str(exc))
        return _assign_answer(data)

    def predict(
        self,
        unit_id: str,
        experiment_key: str,
        features: Mapping[str, Any],
        attributes: Mapping[str, Any] | None = None,
        *,
        default: Any = None,
    ) -> PredictAnswer:
        body = {
            "unit_id": unit_id,
            "experiment_key": experiment_key,
            "features": dict(features),
            "attributes": attributes,
        }
        try:
            data = self._post(self._config.predict_url, body, 1)
        except _CallError as exc:
            logger.warning("SplitLab /predict failed; answering control", extra={"error": str(exc)})
            return _predict_fallback(experiment_key, default, str(exc))
        return _predict_answer(experiment_key, data)

    def send_outcome(
        self,
        unit_id: str,
        outcome_type: str,
        value: float,
        *,
        request_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> OutcomeReceipt:
        outcome = Outcome(
            unit_id, outcome_type, value, request_id, occurred_at, event_id or uuid.uuid4()
        )
        return self.send_outcomes([outcome])

    def send_outcomes(self, outcomes: Sequence[Outcome]) -> OutcomeReceipt:
        """Send in batches of ``batch_size``; retried safely (event ids are made here)."""
        ids = [o.event_id for o in outcomes]
        for batch in _outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except _CallError as exc:
                logger.warning("SplitLab /outcomes failed", extra={"error": str(exc)})
                return OutcomeReceipt(ids, False, str(exc))
        return OutcomeReceipt(ids, True)


class AsyncSplitLabClient:
    """The asyncio twin of ``SplitLabClient`` (same arguments, same answers)."""

    def __init__(
        self,
        assignment_url: str = "http://127.0.0.1:8001",
        router_url: str = "http://127.0.0.1:8002",
        *,
        api_key: str | None = None,
        timeout: float = 0.5,
        retries: int = 2,
        backoff: float = 0.05,
        batch_size: int = 500,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = _Config(
            assignment_url, router_url, api_key, timeout, retries, backoff, batch_size
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _post(self, url: str, body: Any, attempts: int) -> Any:
        error = "no attempt"
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._config.delay(attempt - 1))
            try:
                response = await self._http.post(
                    url, json=body, headers=self._config.headers, timeout=self._config.timeout
                )
                return _check(response)
            except _CallError as exc:
                error = str(exc)
                if not exc.retry:
                    break
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        raise _CallError(error, False)

    async def assign(
        self, unit_id: str, experiment_key: str, attributes: Mapping[str, Any] | None = None
    ) -> AssignAnswer:
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = await self._post(self._config.assign_url, body, self._config.retries + 1)
        except _CallError as exc:
            logger.warning("SplitLab /assign failed; answering control", extra={"error": str(exc)})
            return _assign_fallback(experiment_key, str(exc))
        return _assign_answer(data)

    async def predict(
        self,
        unit_id: str,
        experiment_key: str,
        features: Mapping[str, Any],
        attributes: Mapping[str, Any] | None = None,
        *,
        default: Any = None,
    ) -> PredictAnswer:
        body = {
            "unit_id": unit_id,
            "experiment_key": experiment_key,
            "features": dict(features),
            "attributes": attributes,
        }
        try:
            data = await self._post(self._config.predict_url, body, 1)
        except _CallError as exc:
            logger.warning("SplitLab /predict failed; answering control", extra={"error": str(exc)})
            return _predict_fallback(experiment_key, default, str(exc))
        return _predict_answer(experiment_key, data)

    async def send_outcome(
        self,
        unit_id: str,
        outcome_type: str,
        value: float,
        *,
        request_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> OutcomeReceipt:
        outcome = Outcome(
            unit_id, outcome_type, value, request_id, occurred_at, event_id or uuid.uuid4()
        )
        return await self.send_outcomes([outcome])

    async def send_outcomes(self, outcomes: Sequence[Outcome]) -> OutcomeReceipt:
        ids = [o.event_id for o in outcomes]
        for batch in _outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                await self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except _CallError as exc:
                logger.warning("SplitLab /outcomes failed", extra={"error": str(exc)})
                return OutcomeReceipt(ids, False, str(exc))
        return OutcomeReceipt(ids, True)

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
- when SplitLab cannot answer (connection errors, timeouts, 5xx, 408 and 429 after the
  retries), ``assign``, ``assign_batch`` and ``predict`` return a *fallback* answer: the
  control variant, ``fallback=True``, the reason in ``error`` (and ``predict`` returns the
  caller's ``default`` prediction); ``send_outcomes`` returns ``delivered=False`` with the
  event ids, so the caller may resend them later. Each fallback logs one warning on the
  ``splitlab.client`` logger that says why.

What does raise is a request SplitLab *rejects*: any other 4xx answer (404 unknown experiment,
422 invalid field, 401/403 wrong key, 413 too large) raises :class:`RequestRejectedError` with the
status, the service's message and the field it names. Answering control there would hide a
bug (a misspelled experiment key looked like a healthy experiment where everyone got
control) until somebody read the results. Bad arguments raise ``ValueError``.
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
    "BatchAssignAnswer",
    "Outcome",
    "OutcomeReceipt",
    "PredictAnswer",
    "RequestRejectedError",
    "SplitLabClient",
    "SplitLabError",
]

logger = logging.getLogger(__name__)

CONTROL = "control"
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers that say "not now": retried where a retry is safe, then a fallback."""


class SplitLabError(Exception):
    """Base of the errors this client raises."""


class RequestRejectedError(SplitLabError):
    """SplitLab answered a 4xx other than 408/429: the request itself is wrong (an unknown
    experiment, an invalid field, a wrong key). Retrying or answering control would hide it."""

    def __init__(self, status_code: int, message: str, field: str | None, url: str) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"SplitLab rejected {url}: HTTP {status_code}: {message}{where}")
        self.status_code = status_code
        """The HTTP status, e.g. 404 or 422."""
        self.message = message
        """The service's message, which names the field and the fix."""
        self.field = field
        """The request field the service blamed, if any."""
        self.url = url


@dataclass(frozen=True, slots=True)
class AssignAnswer:
    """The variant of one unit in one experiment (``/assign``)."""

    experiment_key: str
    variant: str
    in_experiment: bool
    """False when the unit is outside the experiment (coverage, targeting, not running, or a
    fallback): it gets ``variant`` (control) but is not counted."""
    reason: str
    """Why this variant: ``hashed``, ``sticky``, ``not_running``, ... or ``fallback``."""
    fallback: bool = False
    """True when SplitLab did not answer: ``variant`` is control, ``error`` says why."""
    error: str | None = None
    sticky: bool = False
    """The variant is held by the unit's sticky record in Redis."""
    bucket_version: int | None = None
    """The experiment's bucket version the answer was computed with; None on a fallback."""
    degraded: bool = False
    """Redis was not consulted (unreachable): the answer comes from hashing alone."""


@dataclass(frozen=True, slots=True)
class BatchAssignAnswer:
    """A unit's variants in every running experiment it is in (``/assign/batch``)."""

    unit_id: str
    assignments: dict[str, AssignAnswer]
    """By experiment key; experiments the unit is not in are absent (unless asked for)."""
    degraded: bool = False
    """Redis was not consulted (unreachable): every answer comes from hashing alone."""
    fallback: bool = False
    """True when SplitLab did not answer: ``assignments`` is empty, ``error`` says why."""
    error: str | None = None

    def variant(self, experiment_key: str) -> str:
        """The unit's variant in ``experiment_key``; control when it is not in it."""
        answer = self.assignments.get(experiment_key)
        return answer.variant if answer is not None else CONTROL


@dataclass(frozen=True, slots=True)
class PredictAnswer:
    """A prediction of the unit's variant's model (``/predict``)."""

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
    in_experiment: bool = False
    """False when the unit is outside the experiment (it got control's model, not counted)."""
    degraded: bool = False
    """The router's sticky store (Redis) was unavailable: the variant came from hashing alone."""


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
    """SplitLab did not answer usefully (the fallback path); ``retry`` when trying again is
    worth it."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _check(response: httpx.Response) -> Any:
    status = response.status_code
    if status < 400:
        try:
            return response.json()
        except ValueError:
            raise _CallError(f"HTTP {status} with a body that is not JSON", False) from None
    field = None
    try:
        error = response.json()["error"]
        message, field = str(error["message"]), error.get("field")
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    if status < 500 and status not in _RETRY_STATUSES:
        raise RequestRejectedError(status, message, field, str(response.request.url))
    raise _CallError(f"HTTP {status}: {message}", status in _RETRY_STATUSES)


def _fallback_logged(path: str, subject: str, error: str, consequence: str) -> None:
    logger.warning(
        "SplitLab %s for %s failed (%s); %s",
        path,
        subject,
        error,
        consequence,
        extra={"splitlab_path": path, "error": error},
    )


def _assign_fallback(experiment_key: str, error: str) -> AssignAnswer:
    _fallback_logged("/assign", f"experiment {experiment_key!r}", error, "answering control")
    return AssignAnswer(experiment_key, CONTROL, False, "fallback", True, error)


def _assign_answer(data: Mapping[str, Any], degraded: bool | None = None) -> AssignAnswer:
    return AssignAnswer(
        data["experiment_key"],
        data["variant"],
        bool(data["in_experiment"]),
        data["reason"],
        sticky=bool(data.get("sticky", False)),
        bucket_version=data.get("bucket_version"),
        degraded=bool(data.get("degraded", False) if degraded is None else degraded),
    )


def _batch_answer(data: Mapping[str, Any]) -> BatchAssignAnswer:
    degraded = bool(data.get("degraded", False))
    return BatchAssignAnswer(
        data["unit_id"],
        {a["experiment_key"]: _assign_answer(a, degraded) for a in data["assignments"]},
        degraded,
    )


def _batch_fallback(unit_id: str, error: str) -> BatchAssignAnswer:
    _fallback_logged("/assign/batch", f"unit {unit_id!r}", error, "answering control everywhere")
    return BatchAssignAnswer(unit_id, {}, False, True, error)


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
        in_experiment=bool(data.get("in_experiment", False)),
        degraded=bool(data.get("degraded", False)),
    )


def _predict_fallback(experiment_key: str, default: Any, error: str) -> PredictAnswer:
    _fallback_logged(
        "/predict", f"experiment {experiment_key!r}", error, "answering control with the default"
    )
    return PredictAnswer(experiment_key, CONTROL, default, None, None, None, None, True, error)


def _outcomes_undelivered(ids: list[uuid.UUID], error: str) -> OutcomeReceipt:
    _fallback_logged(
        "/outcomes", f"{len(ids)} outcomes", error, "not delivered (resend them with their ids)"
    )
    return OutcomeReceipt(ids, False, error)


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
        self.assign_batch_url = assignment_url.rstrip("/") + "/assign/batch"
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
        """The unit's variant in one experiment; control (``fallback=True``) when SplitLab
        cannot answer. Raises :class:`RequestRejectedError` on a 4xx (e.g. 404: no such experiment).
        """
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = self._post(self._config.assign_url, body, self._config.retries + 1)
        except _CallError as exc:
            return _assign_fallback(experiment_key, str(exc))
        return _assign_answer(data)

    def assign_batch(
        self,
        unit_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        include_excluded: bool = False,
    ) -> BatchAssignAnswer:
        """The unit's variants in every running experiment, in one call (retried like
        ``assign``); ``include_excluded`` also lists experiments the unit is not in, with the
        reason. An empty answer with ``fallback=True`` when SplitLab cannot answer."""
        body = {"unit_id": unit_id, "attributes": attributes, "include_excluded": include_excluded}
        try:
            data = self._post(self._config.assign_batch_url, body, self._config.retries + 1)
        except _CallError as exc:
            return _batch_fallback(unit_id, str(exc))
        return _batch_answer(data)

    def predict(
        self,
        unit_id: str,
        experiment_key: str,
        features: Mapping[str, Any],
        attributes: Mapping[str, Any] | None = None,
        *,
        default: Any = None,
    ) -> PredictAnswer:
        """The unit's variant's prediction (never retried: a retry would log a second one);
        control with ``default`` (``fallback=True``) when SplitLab cannot answer. Raises
        :class:`RequestRejectedError` on a 4xx (an unknown experiment, features that do not fit)."""
        body = {
            "unit_id": unit_id,
            "experiment_key": experiment_key,
            "features": dict(features),
            "attributes": attributes,
        }
        try:
            data = self._post(self._config.predict_url, body, 1)
        except _CallError as exc:
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
        """Send in batches of ``batch_size``; retried safely (event ids are made here).
        ``delivered=False`` when SplitLab cannot take them (resend later, same ids); raises
        :class:`RequestRejectedError` when it refuses a batch (earlier batches were delivered)."""
        ids = [o.event_id for o in outcomes]
        for batch in _outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except _CallError as exc:
                return _outcomes_undelivered(ids, str(exc))
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
        """See :meth:`SplitLabClient.assign`."""
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = await self._post(self._config.assign_url, body, self._config.retries + 1)
        except _CallError as exc:
            return _assign_fallback(experiment_key, str(exc))
        return _assign_answer(data)

    async def assign_batch(
        self,
        unit_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        include_excluded: bool = False,
    ) -> BatchAssignAnswer:
        """See :meth:`SplitLabClient.assign_batch`."""
        body = {"unit_id": unit_id, "attributes": attributes, "include_excluded": include_excluded}
        try:
            data = await self._post(self._config.assign_batch_url, body, self._config.retries + 1)
        except _CallError as exc:
            return _batch_fallback(unit_id, str(exc))
        return _batch_answer(data)

    async def predict(
        self,
        unit_id: str,
        experiment_key: str,
        features: Mapping[str, Any],
        attributes: Mapping[str, Any] | None = None,
        *,
        default: Any = None,
    ) -> PredictAnswer:
        """See :meth:`SplitLabClient.predict`."""
        body = {
            "unit_id": unit_id,
            "experiment_key": experiment_key,
            "features": dict(features),
            "attributes": attributes,
        }
        try:
            data = await self._post(self._config.predict_url, body, 1)
        except _CallError as exc:
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
        """See :meth:`SplitLabClient.send_outcomes`."""
        ids = [o.event_id for o in outcomes]
        for batch in _outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                await self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except _CallError as exc:
                return _outcomes_undelivered(ids, str(exc))
        return OutcomeReceipt(ids, True)

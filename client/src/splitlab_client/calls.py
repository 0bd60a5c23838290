"""How the client calls SplitLab: configuration, reading an answer (rejected, unavailable or
fine), and the fallbacks with the log line that says why. Shared by both clients."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from splitlab_client.answers import (
    CONTROL,
    AssignAnswer,
    BatchAssignAnswer,
    Outcome,
    OutcomeReceipt,
    PredictAnswer,
)
from splitlab_client.errors import RequestRejectedError

logger = logging.getLogger("splitlab_client")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers that say "not now": retried where a retry is safe, then a fallback."""


class CallError(Exception):
    """SplitLab did not answer usefully (the fallback path); ``retry`` when trying again is
    worth it."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def check(response: httpx.Response) -> Any:
    status = response.status_code
    if status < 400:
        try:
            return response.json()
        except ValueError:
            raise CallError(f"HTTP {status} with a body that is not JSON", False) from None
    field = None
    try:
        error = response.json()["error"]
        message, field = str(error["message"]), error.get("field")
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    if status < 500 and status not in RETRY_STATUSES:
        raise RequestRejectedError(status, message, field, str(response.request.url))
    raise CallError(f"HTTP {status}: {message}", status in RETRY_STATUSES)


def fallback_logged(path: str, subject: str, error: str, consequence: str) -> None:
    logger.warning(
        "SplitLab %s for %s failed (%s); %s",
        path,
        subject,
        error,
        consequence,
        extra={"splitlab_path": path, "error": error},
    )


def assign_fallback(experiment_key: str, error: str) -> AssignAnswer:
    fallback_logged("/assign", f"experiment {experiment_key!r}", error, "answering control")
    return AssignAnswer(experiment_key, CONTROL, False, "fallback", True, error)


def assign_answer(data: Mapping[str, Any], degraded: bool | None = None) -> AssignAnswer:
    return AssignAnswer(
        data["experiment_key"],
        data["variant"],
        bool(data["in_experiment"]),
        data["reason"],
        sticky=bool(data.get("sticky", False)),
        bucket_version=data.get("bucket_version"),
        degraded=bool(data.get("degraded", False) if degraded is None else degraded),
    )


def batch_answer(data: Mapping[str, Any]) -> BatchAssignAnswer:
    degraded = bool(data.get("degraded", False))
    return BatchAssignAnswer(
        data["unit_id"],
        {a["experiment_key"]: assign_answer(a, degraded) for a in data["assignments"]},
        degraded,
    )


def batch_body(
    unit_id: str,
    attributes: Mapping[str, Any] | None,
    experiment_keys: Sequence[str] | None,
    include_excluded: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit_id": unit_id,
        "attributes": attributes,
        "include_excluded": include_excluded,
    }
    if experiment_keys is not None:
        body["experiment_keys"] = list(experiment_keys)
    return body


def batch_fallback(unit_id: str, error: str) -> BatchAssignAnswer:
    fallback_logged("/assign/batch", f"unit {unit_id!r}", error, "answering control everywhere")
    return BatchAssignAnswer(unit_id, {}, False, True, error)


def predict_answer(experiment_key: str, data: Mapping[str, Any]) -> PredictAnswer:
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


def predict_fallback(experiment_key: str, default: Any, error: str) -> PredictAnswer:
    fallback_logged(
        "/predict", f"experiment {experiment_key!r}", error, "answering control with the default"
    )
    return PredictAnswer(experiment_key, CONTROL, default, None, None, None, None, True, error)


def outcomes_undelivered(ids: list[uuid.UUID], error: str) -> OutcomeReceipt:
    fallback_logged(
        "/outcomes", f"{len(ids)} outcomes", error, "not delivered (resend them with their ids)"
    )
    return OutcomeReceipt(ids, False, error)


def outcome_batches(outcomes: Sequence[Outcome], size: int) -> list[list[Outcome]]:
    return [list(outcomes[i : i + size]) for i in range(0, len(outcomes), size)]


class Config:
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

"""``SplitLabClient``: the synchronous client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from splitlab_client.answers import (
    AssignAnswer,
    BatchAssignAnswer,
    Outcome,
    OutcomeReceipt,
    PredictAnswer,
)
from splitlab_client.calls import (
    CallError,
    Config,
    assign_answer,
    assign_fallback,
    batch_answer,
    batch_body,
    batch_fallback,
    check,
    outcome_batches,
    outcomes_undelivered,
    predict_answer,
    predict_fallback,
)


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
        self._config = Config(
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
                return check(response)
            except CallError as exc:
                error = str(exc)
                if not exc.retry:
                    break
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        raise CallError(error, False)

    def assign(
        self, unit_id: str, experiment_key: str, attributes: Mapping[str, Any] | None = None
    ) -> AssignAnswer:
        """The unit's variant in one experiment; control (``fallback=True``) when SplitLab
        cannot answer. Raises :class:`RequestRejectedError` on a 4xx (e.g. 404: no such experiment).
        """
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = self._post(self._config.assign_url, body, self._config.retries + 1)
        except CallError as exc:
            return assign_fallback(experiment_key, str(exc))
        return assign_answer(data)

    def assign_batch(
        self,
        unit_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        experiment_keys: Sequence[str] | None = None,
        include_excluded: bool = False,
    ) -> BatchAssignAnswer:
        """The unit's variants in every running experiment (or only ``experiment_keys``), in
        one call, retried like ``assign``; ``include_excluded`` also lists experiments the unit
        is not in, with the reason. An empty answer with ``fallback=True`` when SplitLab cannot
        answer."""
        body = batch_body(unit_id, attributes, experiment_keys, include_excluded)
        try:
            data = self._post(self._config.assign_batch_url, body, self._config.retries + 1)
        except CallError as exc:
            return batch_fallback(unit_id, str(exc))
        return batch_answer(data)

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
        except CallError as exc:
            return predict_fallback(experiment_key, default, str(exc))
        return predict_answer(experiment_key, data)

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
        for batch in outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except CallError as exc:
                return outcomes_undelivered(ids, str(exc))
        return OutcomeReceipt(ids, True)

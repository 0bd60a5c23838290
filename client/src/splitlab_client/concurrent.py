"""``AsyncSplitLabClient``: the asyncio client, the twin of ``SplitLabClient``."""

from __future__ import annotations

import asyncio
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
        self._config = Config(
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
                return check(response)
            except CallError as exc:
                error = str(exc)
                if not exc.retry:
                    break
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        raise CallError(error, False)

    async def assign(
        self, unit_id: str, experiment_key: str, attributes: Mapping[str, Any] | None = None
    ) -> AssignAnswer:
        """See :meth:`SplitLabClient.assign`."""
        body = {"unit_id": unit_id, "experiment_key": experiment_key, "attributes": attributes}
        try:
            data = await self._post(self._config.assign_url, body, self._config.retries + 1)
        except CallError as exc:
            return assign_fallback(experiment_key, str(exc))
        return assign_answer(data)

    async def assign_batch(
        self,
        unit_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        experiment_keys: Sequence[str] | None = None,
        include_excluded: bool = False,
    ) -> BatchAssignAnswer:
        """See :meth:`SplitLabClient.assign_batch`."""
        body = batch_body(unit_id, attributes, experiment_keys, include_excluded)
        try:
            data = await self._post(self._config.assign_batch_url, body, self._config.retries + 1)
        except CallError as exc:
            return batch_fallback(unit_id, str(exc))
        return batch_answer(data)

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
        except CallError as exc:
            return predict_fallback(experiment_key, default, str(exc))
        return predict_answer(experiment_key, data)

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
        for batch in outcome_batches(outcomes, self._config.batch_size):
            body = {"outcomes": [o.to_json() for o in batch]}
            try:
                await self._post(self._config.outcomes_url, body, self._config.retries + 1)
            except CallError as exc:
                return outcomes_undelivered(ids, str(exc))
        return OutcomeReceipt(ids, True)

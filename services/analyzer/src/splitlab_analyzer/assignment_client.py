"""The analyzer's only way to change an experiment, and the console's source of experiment
definitions and audit trails: the assignment service's HTTP API.

It calls with its own key (``SPLITLAB_ANALYZER_API_KEY``), which every service accepts as an
admin key named ``SPLITLAB_ANALYZER_KEY_NAME`` (``splitlab-analyzer``): the registry's audit
log names the analyzer from the key, as it names every other caller. Without that setting it
sends the admin key, and the audit log names the admin key's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from splitlab.platform.errors import DependencyUnavailableError, NotFoundError


@dataclass(frozen=True)
class PauseOutcome:
    ok: bool
    status_code: int | None
    detail: str


class AssignmentClient:
    """``client`` lets tests pass an in-process app's client (``TestClient`` is an httpx one)."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.headers = headers
        self.owns_client = client is None
        self.client = client or httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def pause(self, key: str) -> PauseOutcome:
        """``POST /experiments/{key}/pause``; 409 (already paused or stopped) counts as done."""
        try:
            response = self.client.post(f"/experiments/{key}/pause", headers=self.headers)
        except httpx.HTTPError as exc:
            return PauseOutcome(False, None, f"{type(exc).__name__}: {exc}")
        if response.status_code == 200:
            return PauseOutcome(True, 200, "paused")
        return PauseOutcome(response.status_code == 409, response.status_code, response.text[:500])

    def read(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """``GET path`` as JSON: 404 is ``NotFoundError``; no answer or another error status
        is ``DependencyUnavailableError`` naming the assignment service."""
        try:
            response = self.client.get(path, params=params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailableError(
                f"the assignment service did not answer GET {path} ({type(exc).__name__}); "
                "check SPLITLAB_ASSIGNMENT_URL and that the service runs"
            ) from None
        if response.status_code == 404:
            raise NotFoundError(f"the assignment service has no {path}", field="key")
        if response.status_code != 200:
            raise DependencyUnavailableError(
                f"the assignment service answered GET {path} with {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response.json()

    def experiments(self) -> list[dict[str, Any]]:
        """Every experiment of the registry (``GET /experiments``)."""
        found: list[dict[str, Any]] = self.read("/experiments")["experiments"]
        return found

    def experiment(self, key: str) -> dict[str, Any]:
        found: dict[str, Any] = self.read(f"/experiments/{key}")
        return found

    def audit(self, key: str, limit: int = 100) -> list[dict[str, Any]]:
        """Who changed what and when, newest first (``GET /experiments/{key}/audit``)."""
        entries: list[dict[str, Any]] = self.read(f"/experiments/{key}/audit", {"limit": limit})[
            "entries"
        ]
        return entries

    def close(self) -> None:
        if self.owns_client:
            self.client.close()

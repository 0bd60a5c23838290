"""The analyzer's only way to change an experiment: the assignment service's HTTP API.

It calls with its own key (``SPLITLAB_ANALYZER_API_KEY``), which every service accepts as an
admin key named ``SPLITLAB_ANALYZER_KEY_NAME`` (``splitlab-analyzer``): the registry's audit
log names the analyzer from the key, as it names every other caller. Without that setting it
sends the admin key, and the audit log names the admin key's name."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


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

    def close(self) -> None:
        if self.owns_client:
            self.client.close()

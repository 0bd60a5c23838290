"""A faked SplitLab for command tests: ``FakeServices`` answers the CLI's HTTP calls from routes
that a test registers, and records every request (``install`` routes ``httpx.request`` to it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

Answer = Callable[[httpx.Request], httpx.Response]
HOSTS = {"assignment": "assignment.test", "router": "router.test", "analyzer": "analyzer.test"}


@dataclass
class FakeServices:
    routes: dict[tuple[str, str, str], Answer] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)

    def on(self, service: str, method: str, path: str, answer: Any, status: int = 200) -> None:
        """Answer ``method path`` of ``service`` with ``answer`` (JSON, or a callable)."""
        self.routes[(HOSTS[service], method, path)] = (
            answer if callable(answer) else lambda _: httpx.Response(status, json=answer)
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self.routes.get((request.url.host, request.method, request.url.path))
        if route is None:
            message = f"no route {request.method} {request.url.path}"
            return httpx.Response(404, json={"error": {"code": "not_found", "message": message}})
        return route(request)

    def last_body(self) -> Any:
        return json.loads(self.seen[-1].content)


def install(monkeypatch: pytest.MonkeyPatch) -> FakeServices:
    """Route ``httpx.request`` (what the commands call) to a new ``FakeServices``; point the
    settings at its hosts with an admin key."""
    fake = FakeServices()
    transport = httpx.MockTransport(fake.handle)

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", request)
    monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", "cli-key")
    for name, host in HOSTS.items():
        monkeypatch.setenv(f"SPLITLAB_{name.upper()}_URL", f"http://{host}")
    return fake

"""What every SplitLab request pays for the shared service shell.

The same ``/healthz`` handler is called through a SplitLab service app (request id, body-size
limit, metrics, access log off) and through a bare FastAPI app, in process over ASGI (no
sockets, so the shell's own cost is not drowned by network noise), alternating rounds in the
same run. Reported: microseconds per request for each and the overhead per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI
from harness import BenchResult

from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings
from splitlab.web.app import create_service_app

REQUESTS = 20_000
ROUNDS = 5


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "bare"}

    return app


def splitlab_app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield []

    settings = Settings(access_log=False, log_level="WARNING", _env_file=None)  # type: ignore[call-arg]
    return create_service_app(
        service="bench", settings=settings, lifespan=lifespan, description="benchmark"
    )


async def drive(app: Any, n: int) -> float:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/healthz", "raw_path": b"/healthz", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / n * 1e6


def run() -> list[BenchResult]:
    bare, ours = bare_app(), splitlab_app()
    bare_us: list[float] = []
    ours_us: list[float] = []

    async def measure() -> None:
        await drive(bare, 2000)
        await drive(ours, 2000)  # warm up both
        for _ in range(ROUNDS):
            bare_us.append(await drive(bare, REQUESTS))
            ours_us.append(await drive(ours, REQUESTS))

    asyncio.run(measure())
    bare_best, ours_best = min(bare_us), min(ours_us)
    return [
        BenchResult(
            benchmark="platform.service_shell_overhead",
            figures={
                "bare_fastapi_us_per_request": bare_best,
                "splitlab_shell_us_per_request": ours_best,
                "overhead_us_per_request": ours_best - bare_best,
                "ratio": ours_best / bare_best,
            },
            target="report only: the shell's cost per request, to compare against later changes",
            met=None,
            notes=f"best of {ROUNDS} rounds of {REQUESTS} in-process ASGI requests each",
        )
    ]

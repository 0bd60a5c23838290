"""One pure-ASGI middleware for every request: request id, body-size limit, metrics, access log.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: the latter costs a task and a stream
per request, which matters on ``/assign`` and ``/predict``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitlab.metric_labels import Children
from splitlab.observability import request_id_var
from splitlab.web.metrics import HTTP_LATENCY, HTTP_REJECTED_BODIES, HTTP_REQUESTS

access_logger = logging.getLogger("splitlab.access")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        access_log: bool,
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        """``body_limits``: a larger (or smaller) limit for paths under these prefixes (the
        console's file uploads); every other path has ``max_body_bytes``."""
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.body_limits = sorted((body_limits or {}).items(), key=lambda kv: -len(kv[0]))
        self.access_log = access_log
        self._requests = Children(HTTP_REQUESTS)
        self._latency = Children(HTTP_LATENCY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id: str | None = None
        content_length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = None
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if request_id is None:
            request_id = os.urandom(16).hex()
        limit = self.max_body_bytes
        for prefix, prefix_limit in self.body_limits:
            if scope["path"].startswith(prefix):
                limit = prefix_limit
                break
        token = request_id_var.set(request_id)
        status = 500
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        try:
            if content_length is not None and content_length > limit:
                await self._reject_too_large(send_with_id, content_length, limit)
            elif chunked or (
                content_length is None and scope["method"] in ("POST", "PUT", "PATCH")
            ):
                buffered = await self._read_bounded(receive, limit)
                if buffered is None:
                    await self._reject_too_large(send_with_id, None, limit)
                else:
                    await self.app(scope, replay_receive(buffered, receive), send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            self._requests(self.service, method, template, str(status)).inc()
            self._latency(self.service, template).observe(elapsed)
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": (scope.get("client") or ("-",))[0],
                    },
                )
            request_id_var.reset(token)

    async def _read_bounded(self, receive: Receive, limit: int) -> list[Message] | None:
        """Read a body of unknown length, keeping at most ``limit`` bytes; None if larger."""
        messages: list[Message] = []
        total = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            total += len(message.get("body", b""))
            if total > limit:
                return None
            if not message.get("more_body", False):
                return messages

    async def _reject_too_large(self, send: Send, content_length: int | None, limit: int) -> None:
        HTTP_REJECTED_BODIES.labels(self.service).inc()
        size = f"{content_length} bytes" if content_length is not None else "a chunked body"
        body: dict[str, Any] = {
            "error": {
                "code": "payload_too_large",
                "message": (
                    f"request body is {size}, more than the limit of {limit} "
                    "bytes; send smaller batches (or raise SPLITLAB_MAX_BODY_BYTES)"
                ),
                "field": None,
            }
        }
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def replay_receive(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then reads on from ``receive``."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

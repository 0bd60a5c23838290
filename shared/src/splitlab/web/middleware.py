"""One pure-ASGI middleware for every request: request id, body-size limit, unstorable text,
metrics, access log, and the last word on unexpected exceptions.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: the latter costs a task and a stream
per request, which matters on ``/assign`` and ``/predict``.

An exception no handler turned into an answer still gets a JSON 500 with the request id, and
never reaches the server: Starlette's ``ServerErrorMiddleware`` re-raises after answering, and
uvicorn closes a keep-alive connection whose request raised after its answer started, so the
caller's next request on that pooled connection would fail with a reset.
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

from splitlab.platform.errors import internal_error_body
from splitlab.platform.telemetry.labels import Children
from splitlab.platform.telemetry.logs import request_id_var
from splitlab.web.storable import body_problem, problem_body
from splitlab.web.telemetry import HTTP_LATENCY, HTTP_REJECTED_BODIES, HTTP_REQUESTS

access_logger = logging.getLogger("splitlab.access")
logger = logging.getLogger(__name__)
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
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.body_limits = dict(body_limits or {})
        """Limits of their own of exact paths (uploads, bulk loads), else ``max_body_bytes``."""
        HTTP_REJECTED_BODIES.labels(service)  # at 0 from the start: the dashboard shows 0
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
        token = request_id_var.set(request_id)
        status = 500
        started = completed = False
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))
        limit = self.body_limits.get(scope["path"], self.max_body_bytes)

        async def send_with_id(message: Message) -> None:
            nonlocal status, started, completed
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                completed = True
            await send(message)

        try:
            if content_length is not None and content_length > limit:
                await self._reject_too_large(send_with_id, content_length, limit)
            elif chunked or content_length or scope["method"] in ("POST", "PUT", "PATCH"):
                # Every body is read here, bounded: its size is known before the endpoint runs,
                # and text no service could store is refused before anything parses it.
                buffered = await self._read_bounded(receive, limit)
                if buffered is None:
                    await self._reject_too_large(send_with_id, None, limit)
                    return
                raw = (
                    buffered[0].get("body", b"")
                    if len(buffered) == 1
                    else b"".join(
                        m.get("body", b"") for m in buffered if m["type"] == "http.request"
                    )
                )
                problem = body_problem(raw)
                if problem is not None:
                    await _send_json(send_with_id, 422, problem_body(*problem))
                else:
                    await self.app(scope, replay_receive(buffered, receive), send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            if completed:
                # Answered by the app's handler (which logged it); keep the connection alive.
                return
            if started:
                raise  # half an answer is out: only closing the connection can tell the client
            logger.exception("unhandled error", extra={"path": scope["path"]})
            await _send_json(send_with_id, 500, internal_error_body(request_id))
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
        """Read a body, keeping at most ``limit`` bytes; None if it is larger."""
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
        size = f"{content_length} bytes" if content_length is not None else "a larger body"
        raise_hint = "" if limit != self.max_body_bytes else " (or raise SPLITLAB_MAX_BODY_BYTES)"
        body: dict[str, Any] = {
            "error": {
                "code": "payload_too_large",
                "message": (
                    f"request body is {size}, more than the limit of {limit} "
                    f"bytes; send smaller batches{raise_hint}"
                ),
                "field": None,
            }
        }
        await _send_json(send, 413, body, close=True)


async def _send_json(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def replay_receive(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then reads on from ``receive``."""
    if len(messages) == 1:  # the usual body: one message (a cheaper closure, no list)
        first: Message | None = messages[0]

        async def replay_one() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        return replay_one
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

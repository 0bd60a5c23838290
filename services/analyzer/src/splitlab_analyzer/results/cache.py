"""Cached results: JSON in Redis with a TTL (shared by replicas); memory when Redis is absent.

The cache is an optimisation: results never depend on it. When a Redis call fails (Redis down,
restarting, or not answering within the client's timeout) the call counts as a miss (results
are computed from Postgres) or a no-op, one warning says so, and the cache leaves Redis alone
for ``retry_seconds``: a Redis that hangs then slows one request by one timeout per period
instead of every request by two (a read and a write). The first call after the period tries
Redis again; when it answers, the cache is back and one line says so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis

from splitlab.platform.storage.redis_keys import results_key, results_pattern

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
"""How long the cache leaves Redis alone after a failed call."""


class ResultsCache:
    def __init__(
        self, client: redis.Redis | None, ttl_seconds: float, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.retry_seconds = retry_seconds
        self.memory: dict[str, tuple[float, dict[str, Any]]] = {}
        self.skip_until = 0.0
        self.down = False
        self.lock = threading.Lock()

    def get(self, key: str, method: str, sequential: bool) -> dict[str, Any] | None:
        name = results_key(key, method, sequential)
        if self.client is not None:
            if not self.usable():
                return None
            try:
                raw = self.client.get(name)
            except redis.RedisError as exc:
                self.failed("get", exc)
                return None
            self.answered()
            return None if raw is None else dict(json.loads(str(raw)))
        hit = self.memory.get(name)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, method: str, sequential: bool, body: dict[str, Any]) -> None:
        name = results_key(key, method, sequential)
        if self.client is not None:
            if not self.usable():
                return
            try:
                self.client.set(name, json.dumps(body, allow_nan=False), px=int(self.ttl * 1000))
            except redis.RedisError as exc:
                self.failed("put", exc)
                return
            self.answered()
            return
        self.memory[name] = (time.monotonic() + self.ttl, body)

    def invalidate(self, key: str) -> None:
        if self.client is not None:
            if not self.usable():
                return
            try:
                names = list(self.client.scan_iter(match=results_pattern(key), count=100))
                if names:
                    self.client.delete(*names)
            except redis.RedisError as exc:
                self.failed("invalidate", exc)
                return
            self.answered()
            return
        prefix = results_key(key, "x", False).rsplit(":", 2)[0] + ":"
        for name in [n for n in self.memory if n.startswith(prefix)]:
            del self.memory[name]

    # --- Redis health, as this cache sees it ------------------------------------------------
    def usable(self) -> bool:
        """False while the cache leaves Redis alone after a failure."""
        return time.monotonic() >= self.skip_until

    def failed(self, operation: str, exc: redis.RedisError) -> None:
        with self.lock:
            self.skip_until = time.monotonic() + self.retry_seconds
            first = not self.down
            self.down = True
        if first:
            logger.warning(
                "results cache unavailable; computing results without it",
                extra={
                    "operation": operation,
                    "error": f"{type(exc).__name__}: {exc}"[:200],
                    "retry_in_s": self.retry_seconds,
                },
            )

    def answered(self) -> None:
        if not self.down:
            return
        with self.lock:
            back = self.down
            self.down = False
        if back:
            logger.info("results cache available again")

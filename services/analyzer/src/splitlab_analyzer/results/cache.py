"""Cached results: JSON in Redis with a TTL (shared by replicas); memory when Redis is absent."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from splitlab.storage.redis_keys import results_key, results_pattern

logger = logging.getLogger(__name__)


class ResultsCache:
    def __init__(self, client: redis.Redis | None, ttl_seconds: float) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.memory: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, key: str, method: str, sequential: bool) -> dict[str, Any] | None:
        name = results_key(key, method, sequential)
        if self.client is not None:
            try:
                raw = self.client.get(name)
            except redis.RedisError:
                logger.warning("results cache unavailable (get)", exc_info=True)
                raw = None
            return None if raw is None else dict(json.loads(str(raw)))
        hit = self.memory.get(name)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, method: str, sequential: bool, body: dict[str, Any]) -> None:
        name = results_key(key, method, sequential)
        if self.client is not None:
            try:
                self.client.set(name, json.dumps(body, allow_nan=False), px=int(self.ttl * 1000))
            except redis.RedisError:
                logger.warning("results cache unavailable (put)", exc_info=True)
            return
        self.memory[name] = (time.monotonic() + self.ttl, body)

    def invalidate(self, key: str) -> None:
        if self.client is not None:
            try:
                names = list(self.client.scan_iter(match=results_pattern(key), count=100))
                if names:
                    self.client.delete(*names)
            except redis.RedisError:
                logger.warning("results cache unavailable (invalidate)", exc_info=True)
            return
        prefix = results_key(key, "x", False).rsplit(":", 2)[0] + ":"
        for name in [n for n in self.memory if n.startswith(prefix)]:
            del self.memory[name]

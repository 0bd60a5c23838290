"""In-memory stand-ins for the assignment runtime's collaborators (Redis, the publisher)."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class FakeScript:
    sha = "fake-claim-sha"

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    async def __call__(self, keys: list[str], args: list[Any]) -> str | None:
        self.redis.check()
        self.redis.calls += 1
        return self.redis.claim(keys[0], *args)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.ops: list[tuple[str, tuple[Any, ...]]] = []

    def hgetall(self, name: str) -> None:
        self.ops.append(("hgetall", (name,)))

    def hset(self, name: str, *, mapping: dict[str, str]) -> None:
        self.ops.append(("hset", (name, mapping)))

    def expire(self, name: str, time: int) -> None:
        self.ops.append(("expire", (name, time)))

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> None:
        assert (sha, numkeys) == (FakeScript.sha, 1)
        self.ops.append(("claim", keys_and_args))

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.redis.check()
        self.redis.calls += 1
        results: list[Any] = []
        for op, args in self.ops:
            if op == "claim":
                if args[0] in self.redis.failing_keys:
                    results.append(ResponseError("WRONGTYPE"))
                else:
                    results.append(self.redis.claim(*args))
            elif op == "hgetall":
                results.append(dict(self.redis.hashes.get(args[0], {})))
            elif op == "hset":
                self.redis.hashes.setdefault(args[0], {}).update(args[1])
                results.append(len(args[1]))
            else:
                self.redis.ttls[args[0]] = args[1]
                results.append(True)
        return results


class FakeRedis:
    """Enough of ``redis.asyncio.Redis`` for ``StickyStore``; ``down=True`` fails every call."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.ttls: dict[str, int] = {}
        self.down = False
        self.calls = 0
        self.failing_keys: set[str] = set()
        """Keys whose claim in a pipeline answers an error (one caller's failure)."""

    def claim(self, key: str, field: str, value: str, ttl: Any) -> str | None:
        current = self.hashes.get(key, {}).get(field)
        if current is None and value != "":
            self.hashes.setdefault(key, {})[field] = value
            self.ttls[key] = int(ttl)
        return current

    def check(self) -> None:
        if self.down:
            raise RedisConnectionError("connection refused")

    def register_script(self, script: str) -> FakeScript:
        return FakeScript(self)

    async def hgetall(self, name: str) -> dict[str, str]:
        self.check()
        self.calls += 1
        return dict(self.hashes.get(name, {}))

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class CollectingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, event: Any) -> None:
        self.events.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

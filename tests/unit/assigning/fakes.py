"""In-memory stand-ins for the assignment runtime's collaborators (Redis, the publisher)."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class FakeScript:
    sha = "fake-claim-sha"

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis


def parse_commands(payload: bytes) -> list[list[str]]:
    """RESP arrays of bulk strings (what a client writes) -> commands."""
    commands = []
    lines = iter(payload.split(b"\r\n"))
    for line in lines:
        if not line:
            continue
        assert line.startswith(b"*"), line
        command = []
        for _ in range(int(line[1:])):
            length = next(lines)
            value = next(lines)
            assert length == b"$%d" % len(value)
            command.append(value.decode())
        commands.append(command)
    return commands


class FakeConnection:
    """A pooled connection: takes written commands (``EVALSHA`` claims), answers one each."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.replies: list[Any] = []

    async def send_packed_command(self, payload: bytes, check_health: bool = True) -> None:
        self.redis.check()
        self.redis.calls += 1
        for command in parse_commands(payload):
            assert command[:3] == ["EVALSHA", FakeScript.sha, "1"], command
            key, field, value, ttl = command[3:]
            if key in self.redis.failing_keys:
                self.replies.append(ResponseError("WRONGTYPE"))
            else:
                self.replies.append(self.redis.claim(key, field, value, ttl))

    async def read_response(self) -> Any:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def disconnect(self) -> None:
        self.replies.clear()


class FakePool:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    async def get_connection(self) -> FakeConnection:
        return FakeConnection(self.redis)

    async def release(self, connection: FakeConnection) -> None:
        assert not connection.replies, "a connection went back to the pool with unread replies"


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

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.redis.check()
        self.redis.calls += 1
        results: list[Any] = []
        for op, args in self.ops:
            if op == "hgetall":
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
        self.connection_pool = FakePool(self)

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

"""Sticky assignments in Redis, with a circuit breaker so that a dead Redis costs nothing.

Layout (``splitlab.platform.storage.redis_keys``): one hash per unit,
``splitlab:{unit:<id>}:sticky``, field ``experiment_key`` -> ``"<variant>|<bucket_version>"``.
Reading all of a unit's experiments is one ``HGETALL`` (one round trip, pipelined when experiments
bucket on other attributes); writing new records is one pipelined ``HSET`` + ``EXPIRE``, sent only
when a fresh assignment must be stored. The TTL is renewed on every write.

Claims from concurrent requests are coalesced: every ``claim`` made in one event-loop tick joins
a pending batch, and one flush (scheduled with ``loop.call_soon``) writes the whole batch's
``EVALSHA`` calls at once; each caller awaits its own future and gets its own result or
error. Under load this turns N round trips (and N passes through redis-py's per-command
machinery) into one; a lone call still goes out on the next tick.

Any Redis error opens the breaker: for ``breaker_seconds`` every call answers ``None``
(degraded) without touching the network, then one call tries again. Errors are counted in
``splitlab_assignment_redis_fallbacks``; nothing here raises to the caller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import redis.asyncio
from redis.exceptions import NoScriptError, RedisError, ResponseError

from splitlab.assigning.telemetry import REDIS_FALLBACKS
from splitlab.core.assignment.decision import StickyRecord
from splitlab.platform.storage.redis_keys import parse_sticky_value, sticky_value

logger = logging.getLogger(__name__)

StickyHash = dict[str, StickyRecord]
"""A unit's records: experiment key -> record."""

CLAIM_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current and ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return current
"""
"""Read one experiment's record and, when there is none, store the proposed one: one round trip.

``KEYS[1]`` the unit's hash, ``ARGV`` the experiment key, the proposed value (empty: read
only) and the TTL. Returns the record that was there (nil when the proposal was stored)."""


REMEMBER_LINGER_SECONDS = 0.005
"""How long a background write waits for more records when it has fewer than
``REMEMBER_BATCH``."""
REMEMBER_BATCH = 256


class Claim(NamedTuple):
    """What ``StickyStore.claim`` found: the existing record, or whether the proposal was stored."""

    existing: StickyRecord | None
    stored: bool


class _PendingClaim(NamedTuple):
    key: str
    field: str
    value: str
    future: asyncio.Future[Any] | None
    """The caller waiting for the reply; None for a remembered record (nobody waits)."""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


@functools.lru_cache(maxsize=4)
def _claim_head(sha: str) -> bytes:
    """``EVALSHA <sha> 1``: the first three of a claim's seven words (then key, experiment,
    proposal, TTL), in RESP."""
    return b"*7\r\n" + _bulk(b"EVALSHA") + _bulk(sha.encode()) + _bulk(b"1")


def parse_records(raw: Mapping[str, str]) -> StickyHash:
    records: StickyHash = {}
    for experiment_key, value in raw.items():
        parsed = parse_sticky_value(value)
        if parsed is not None:
            records[experiment_key] = StickyRecord(*parsed)
    return records


class StickyStore:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        ttl_seconds: int,
        breaker_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._breaker_seconds = breaker_seconds
        self._clock = clock
        self._open_until = 0.0
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._pending: list[_PendingClaim] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._remembered: list[_PendingClaim] = []
        self._writer: asyncio.Task[None] | None = None
        self._healthy = True

    async def claim(
        self, key: str, experiment_key: str, proposal: StickyRecord | None
    ) -> Claim | None:
        """The unit's record for one experiment; store ``proposal`` if there is none.

        One round trip (a Lua script: no race between two first calls for a unit, the first
        one's record wins). None when Redis is unavailable."""
        if not self.available:
            REDIS_FALLBACKS.labels("skipped").inc()
            return None
        await self.settled()  # a record remembered before must be what this read sees
        value = (
            "" if proposal is None else sticky_value(proposal.variant_key, proposal.bucket_version)
        )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingClaim(key, experiment_key, value, future))
        if len(self._pending) == 1:
            future.get_loop().call_soon(self._flush)
        try:
            current = await future
        except (RedisError, OSError) as exc:
            self._fail("read", exc)
            return None
        if current is None:
            return Claim(None, proposal is not None)
        parsed = parse_sticky_value(str(current))
        return Claim(None if parsed is None else StickyRecord(*parsed), False)

    def remember(self, key: str, experiment_key: str, record: StickyRecord) -> bool:
        """Store ``record`` where there is none, without waiting for Redis.

        For experiments whose records can only agree with hashing (``CachedExperiment.
        hashing_holds``): the answer does not depend on the reply, and the record only matters
        from the first change that moves recorded units on. Records queue while a write is in
        flight and go out together (one round trip per batch, never on a request's path).
        False, and nothing queued, while the breaker is open; a failed write opens it."""
        if not self.available:
            REDIS_FALLBACKS.labels("skipped").inc()
            return False
        value = sticky_value(record.variant_key, record.bucket_version)
        self._remembered.append(_PendingClaim(key, experiment_key, value, None))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_remembered())
        return True

    async def settled(self) -> None:
        """Return once every remembered record is written (or its write failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_remembered(self) -> None:
        try:
            while self._remembered:
                if len(self._remembered) < REMEMBER_BATCH:
                    # Linger so one round trip carries many records: under a steady trickle of
                    # requests each write would otherwise carry one (a round trip of CPU on
                    # the event loop and in Redis per answer).
                    await asyncio.sleep(REMEMBER_LINGER_SECONDS)
                batch, self._remembered = self._remembered, []
                try:
                    results = await self._send_claims(batch)
                except Exception as exc:  # Redis away: these records are lost, as degraded
                    self._fail("write", exc)  # answers' are; the breaker stops new ones
                    self._remembered.clear()
                    return
                failed = next((r for r in results if isinstance(r, Exception)), None)
                if failed is not None:
                    self._fail("write", failed)
                else:
                    self._healthy = True
        finally:
            self._writer = None

    def _flush(self) -> None:
        """Send every claim made since the last flush (one tick's worth) in one round trip."""
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[_PendingClaim]) -> None:
        try:
            results = await self._send_claims(batch)
        except BaseException as exc:  # every caller sees the failure as its own
            for claim in batch:
                if claim.future is not None and not claim.future.done():
                    claim.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._healthy = True
        for claim, result in zip(batch, results, strict=True):
            if claim.future is None or claim.future.done():  # the caller went away
                continue
            if isinstance(result, Exception):
                claim.future.set_exception(result)
            else:
                claim.future.set_result(result)

    async def _send_claims(self, batch: list[_PendingClaim]) -> list[Any]:
        """One ``EVALSHA`` per claim in one write; loads the script if Redis lost it, then
        resends (a claim is safe to repeat: it only stores a proposal where there is none)."""
        results = await self._round_trip(batch)
        if any(isinstance(result, NoScriptError) for result in results):
            self._claim.sha = await self._client.script_load(CLAIM_SCRIPT)
            results = await self._round_trip(batch)
        return results

    async def _round_trip(self, batch: list[_PendingClaim]) -> list[Any]:
        """Write the batch's commands at once and read one reply each (an error reply is
        returned in its place), on a connection of the client's pool.

        Packed here rather than through a redis-py pipeline: its per-command argument
        encoding and bookkeeping cost more than the rest of ``/assign``'s Redis work; the
        connection (connect, auth, timeouts, reply parsing with hiredis) is still redis-py's."""
        head = _claim_head(self._claim.sha)
        ttl = _bulk(str(self._ttl).encode())
        payload = b"".join(
            head + _bulk(c.key.encode()) + _bulk(c.field.encode()) + _bulk(c.value.encode()) + ttl
            for c in batch
        )
        pool = self._client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(payload, check_health=False)
            results: list[Any] = []
            for _ in batch:
                try:
                    results.append(await connection.read_response())
                except ResponseError as exc:  # this command's error; the rest still follow
                    results.append(exc)
        except BaseException:
            await connection.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            await pool.release(connection)
        return results

    @property
    def available(self) -> bool:
        """False while the breaker is open (Redis failed less than ``breaker_seconds`` ago)."""
        return self._clock() >= self._open_until

    @property
    def healthy(self) -> bool:
        """The last round trip succeeded. After a failure only a call that waits for Redis
        (``claim``, ``read``, ``write``) can tell that it is back: until one does, answers must
        not rely on ``remember``, whose failure would surface only after the answer."""
        return self._healthy

    async def read(self, keys: Sequence[str]) -> dict[str, StickyHash] | None:
        """Each key's records, in one round trip; None when Redis is unavailable."""
        if not keys:
            return {}
        if not self.available:
            REDIS_FALLBACKS.labels("skipped").inc()
            return None
        await self.settled()  # records remembered before must be what this read sees
        try:
            if len(keys) == 1:
                raw = cast(dict[str, str], await self._client.hgetall(keys[0]))
                self._healthy = True
                return {keys[0]: parse_records(raw)}
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            results = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._fail("read", exc)
            return None
        self._healthy = True
        return {
            key: parse_records(cast(dict[str, str], raw) if isinstance(raw, dict) else {})
            for key, raw in zip(keys, results, strict=True)
        }

    async def write(self, records: Mapping[str, Mapping[str, StickyRecord]]) -> bool:
        """Store ``{key: {experiment_key: record}}`` and renew each key's TTL; False on failure."""
        if not records:
            return True
        if not self.available:
            REDIS_FALLBACKS.labels("skipped").inc()
            return False
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, fields in records.items():
                pipe.hset(
                    key,
                    mapping={
                        exp: sticky_value(r.variant_key, r.bucket_version)
                        for exp, r in fields.items()
                    },
                )
                pipe.expire(key, self._ttl)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._fail("write", exc)
            return False
        self._healthy = True
        return True

    def _fail(self, operation: str, exc: BaseException) -> None:
        self._healthy = False
        REDIS_FALLBACKS.labels(operation).inc()
        was_closed = self.available
        self._open_until = self._clock() + self._breaker_seconds
        if was_closed:
            logger.warning(
                "redis unavailable; answering from hashing",
                extra={
                    "operation": operation,
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_in_s": self._breaker_seconds,
                },
            )

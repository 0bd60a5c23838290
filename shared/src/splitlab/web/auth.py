"""Bearer-key checks every service uses, one per kind of call.

Keys come from the settings (``KeyRing.from_settings``), each with a name and a role:

- ``admin``: changes (create, update, start/pause/stop/archive, register models, define
  metrics, load features, refresh, CUPAC fills). ``SPLITLAB_ADMIN_API_KEY`` (named
  ``SPLITLAB_ADMIN_KEY_NAME``), the analyzer's own ``SPLITLAB_ANALYZER_API_KEY`` (named
  ``SPLITLAB_ANALYZER_KEY_NAME``) and any ``SPLITLAB_API_KEYS`` entry with role ``admin``;
- ``read``: reads (experiments, models, metric definitions, results, analyzer actions) and
  expensive computations. ``SPLITLAB_READ_API_KEY`` and ``read`` entries;
- ``caller``: the production paths (``/assign``, ``/assign/batch``, ``/predict``,
  ``/outcomes``). ``SPLITLAB_ASSIGN_API_KEY`` and ``caller`` entries.

An admin key passes every check. Reads and production paths are open while no key of their
role is configured; writes and expensive computations never are. The audit log names the
admin key that made a change (``admin_actor``), never a name the caller chose. Keys are
compared in constant time, against every configured key (no early exit).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Header, Request
from pydantic import SecretStr

from splitlab.platform.errors import ForbiddenError, UnauthorizedError
from splitlab.platform.settings import Settings

__all__ = [
    "ApiKey",
    "KeyRing",
    "admin_actor",
    "bearer_token",
    "keys_match",
    "require_admin",
    "require_caller",
    "require_compute",
    "require_reader",
]

Role = Literal["admin", "read", "caller"]
READ_KEY_NAME = "read"
CALLER_KEY_NAME = "caller"
_SETTING = {
    "admin": "SPLITLAB_ADMIN_API_KEY",
    "read": "SPLITLAB_READ_API_KEY",
    "caller": "SPLITLAB_ASSIGN_API_KEY",
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    role: Role
    secret: bytes


class KeyRing:
    """The configured keys; ``identify`` says whose a bearer token is."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)
        self.roles = frozenset(k.role for k in self.keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: list[ApiKey] = []

        def add(name: str, role: Role, secret: str | None) -> None:
            if secret:
                keys.append(ApiKey(name, role, secret.encode()))

        def value(secret: SecretStr | None) -> str | None:
            return None if secret is None else secret.get_secret_value()

        add(settings.admin_key_name, "admin", value(settings.admin_api_key))
        add(settings.analyzer_key_name, "admin", value(settings.analyzer_api_key))
        add(READ_KEY_NAME, "read", value(settings.read_api_key))
        add(CALLER_KEY_NAME, "caller", value(settings.assign_api_key))
        for name, entry in settings.api_keys.items():
            add(name, entry.role, entry.key.get_secret_value())
        return cls(keys)

    def identify(self, token: str) -> ApiKey | None:
        given = token.encode()
        found = None
        for key in self.keys:  # every key is compared: the time says nothing about which
            if hmac.compare_digest(given, key.secret) and found is None:
                found = key
        return found


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def keys_match(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing leak of how much of the key matched)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def key_ring(request: Request) -> KeyRing:
    """The app's keys, built once from ``app.state.settings`` and kept on ``app.state``."""
    state = request.app.state
    ring: KeyRing | None = getattr(state, "key_ring", None)
    settings: Settings = state.settings
    if ring is None or getattr(state, "key_ring_settings", None) is not settings:
        ring = KeyRing.from_settings(settings)
        state.key_ring = ring
        state.key_ring_settings = settings
    return ring


def _authenticate(ring: KeyRing, authorization: str | None, need: Role) -> ApiKey:
    """The key sent, if its role may make a call that needs ``need`` (admin may do all)."""
    setting = _SETTING[need]
    accepted = {need, "admin"}
    if not ring.roles & accepted:
        raise UnauthorizedError(
            f"{_KIND[need]} are disabled: no {need} key is configured; set {setting} "
            "(in .env or the environment) and send it as 'Authorization: Bearer <key>'"
        )
    token = bearer_token(authorization)
    if token is None:
        raise UnauthorizedError(f"missing {need} key: send 'Authorization: Bearer <{setting}>'")
    key = ring.identify(token)
    if key is None:
        raise ForbiddenError(f"the {need} key is not valid")
    if key.role not in accepted:
        raise ForbiddenError(
            f"the key {key.name!r} is a {key.role} key; {_KIND[need]} need "
            + ("an admin key" if need == "admin" else f"a {need} or an admin key")
        )
    return key


_KIND = {
    "admin": "admin endpoints",
    "read": "reads and computations",
    "caller": "production calls",
}


def require_admin(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Changes: an admin key, always."""
    _authenticate(key_ring(request), authorization, "admin")


def admin_actor(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> str:
    """The configured name of the admin key sent: who the audit log names."""
    return _authenticate(key_ring(request), authorization, "admin").name


def require_reader(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Reads: open while no read key is configured; otherwise a read or an admin key."""
    ring = key_ring(request)
    if "read" in ring.roles:
        _authenticate(ring, authorization, "read")


def require_compute(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Expensive computations: a read or an admin key, always (even while reads are open)."""
    _authenticate(key_ring(request), authorization, "read")


async def require_caller(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Production paths: open while no caller key is configured; otherwise a caller or an admin
    key (async: no thread hop on the hot path)."""
    ring = key_ring(request)
    if "caller" in ring.roles:
        _authenticate(ring, authorization, "caller")

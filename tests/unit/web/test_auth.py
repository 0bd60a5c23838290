"""The shared bearer-key checks: roles, open reads, the audit name from the key."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import NamedKey, Settings
from splitlab.web.app import create_service_app
from splitlab.web.auth import (
    ApiKey,
    KeyRing,
    admin_actor,
    bearer_token,
    keys_match,
    require_admin,
    require_caller,
    require_compute,
    require_reader,
)


def test_bearer_parsing_and_constant_time_compare() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert keys_match("secret", "secret")
    assert not keys_match("secret", "secreT")
    assert not keys_match("sécret", "secret")


ADMIN = "admin-key-0123456789"
READ = "read-key-0123456789"
CALLER = "caller-key-0123456789"
ALICE = "alice-key-0123456789"


def app_with(**keys: Any) -> FastAPI:
    """A service app with one route per check; ``actor`` answers the audit name."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield []

    router = APIRouter()

    @router.post("/change", dependencies=[Depends(require_admin)])
    def change(actor: Annotated[str, Depends(admin_actor)]) -> dict[str, str]:
        return {"actor": actor}

    @router.get("/read", dependencies=[Depends(require_reader)])
    def read() -> dict[str, str]:
        return {}

    @router.post("/compute", dependencies=[Depends(require_compute)])
    def compute() -> dict[str, str]:
        return {}

    @router.post("/call", dependencies=[Depends(require_caller)])
    async def call() -> dict[str, str]:
        return {}

    settings = Settings(
        log_format="text",
        health_interval_seconds=3600,
        _env_file=None,  # type: ignore[call-arg]
        **keys,
    )
    return create_service_app(
        service="test", settings=settings, lifespan=lifespan, description="t", routers=[router]
    )


def status(client: TestClient, method: str, path: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.request(method, path, headers=headers).status_code


ROUTES = [("POST", "/change"), ("GET", "/read"), ("POST", "/compute"), ("POST", "/call")]


def test_every_role_reaches_what_it_may_and_no_more() -> None:
    app = app_with(
        admin_api_key=SecretStr(ADMIN),
        read_api_key=SecretStr(READ),
        assign_api_key=SecretStr(CALLER),
    )
    expected = {  # (no key, read key, caller key, admin key) per route
        ("POST", "/change"): (401, 403, 403, 200),
        ("GET", "/read"): (401, 200, 403, 200),
        ("POST", "/compute"): (401, 200, 403, 200),
        ("POST", "/call"): (401, 403, 200, 200),
    }
    with TestClient(app) as client:
        for route in ROUTES:
            got = tuple(status(client, *route, key) for key in (None, READ, CALLER, ADMIN))
            assert got == expected[route], route
        assert status(client, "GET", "/read", "not-a-key") == 403
        refused = client.post("/change", headers={"Authorization": f"Bearer {READ}"}).json()
        assert refused["error"]["message"] == (
            "the key 'read' is a read key; admin endpoints need an admin key"
        )


def test_reads_and_calls_are_open_without_their_keys_and_computations_never_are() -> None:
    with TestClient(app_with(admin_api_key=SecretStr(ADMIN))) as client:
        assert status(client, "GET", "/read", None) == 200
        assert status(client, "POST", "/call", None) == 200
        assert status(client, "POST", "/compute", None) == 401
        assert status(client, "POST", "/compute", ADMIN) == 200
    with TestClient(app_with()) as client:
        refused = client.post("/compute").json()["error"]["message"]
        assert "no read key is configured; set SPLITLAB_READ_API_KEY" in refused


def test_the_actor_is_the_keys_configured_name_never_a_header() -> None:
    app = app_with(
        admin_api_key=SecretStr(ADMIN),
        admin_key_name="ops",
        analyzer_api_key=SecretStr("analyzer-key-0123456789"),
        api_keys={"alice@example.com": NamedKey(key=SecretStr(ALICE), role="admin")},
    )
    with TestClient(app) as client:

        def actor(key: str) -> str:
            headers = {"Authorization": f"Bearer {key}", "X-SplitLab-Actor": "mallory"}
            return str(client.post("/change", headers=headers).json()["actor"])

        assert actor(ADMIN) == "ops"
        assert actor(ALICE) == "alice@example.com"
        assert actor("analyzer-key-0123456789") == "splitlab-analyzer"


def test_one_secret_under_two_names_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="the same key as SPLITLAB_ADMIN_API_KEY"):
        Settings(
            admin_api_key=SecretStr(ADMIN),
            read_api_key=SecretStr(ADMIN),
            _env_file=None,  # type: ignore[call-arg]
        )


def test_identify_compares_every_key() -> None:
    ring = KeyRing(
        [ApiKey("a", "admin", b"first-key-000000"), ApiKey("b", "read", b"second-key-00000")]
    )
    assert ring.identify("second-key-00000") == ring.keys[1]
    assert ring.identify("second-key-0000") is None
    assert ring.roles == {"admin", "read"}

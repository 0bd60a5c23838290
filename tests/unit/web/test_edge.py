"""The shell's edge rules every service gets: text it cannot store is refused naming the field,
an unexpected exception is a JSON 500 that keeps the connection, the OpenAPI document declares
what the shell answers, and the API docs load nothing from outside the service."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from splitlab.contracts.text import find_unstorable
from splitlab.platform.health import DependencyCheck
from splitlab.platform.settings import Settings
from splitlab.web.app import create_service_app
from splitlab.web.auth import require_admin, require_caller
from splitlab.web.routing import LeanRoute


class Note(BaseModel):
    text: str
    tags: dict[str, Any] = {}


def build(**settings_fields: Any) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Sequence[DependencyCheck]]:
        yield []

    router = APIRouter()

    @router.post("/notes/{key}")
    async def write(key: str, note: Note) -> dict[str, str]:
        return {"key": key, "text": note.text}

    @router.get("/notes")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    @router.get("/boom")
    async def boom() -> None:
        raise ValueError("A string literal cannot contain NUL (0x00) characters.")

    @router.get("/port")
    async def port(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    @router.post("/admin/notes", dependencies=[Depends(require_admin)])
    async def admin_write(note: Note) -> dict[str, str]:
        return {"text": note.text}

    lean = APIRouter(route_class=LeanRoute, dependencies=[Depends(require_caller)])

    @lean.post("/lean")
    async def lean_write(note: Note, request: Request) -> Any:
        from fastapi.responses import JSONResponse

        if note.text == "boom":
            raise RuntimeError("lean failure")
        return JSONResponse({"text": note.text})

    settings = Settings(
        log_format="text",
        health_interval_seconds=3600,
        _env_file=None,  # type: ignore[call-arg]
        **settings_fields,
    )
    return create_service_app(
        service="edge", settings=settings, lifespan=lifespan, description="d",
        routers=[router, lean],
    )  # fmt: skip


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build(), raise_server_exceptions=False) as client:
        yield client


def _json(client: TestClient, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


# --- text no service can store -------------------------------------------------------------


def test_find_unstorable_names_the_dotted_path() -> None:
    assert find_unstorable({"a": [{"b": "ok"}, {"b": "x\x00"}]}) == (
        "a.1.b",
        "contains a NUL character (\\u0000), which cannot be stored; remove it",
    )
    assert find_unstorable({"tags": {"k\x00": 1}})[0] == "tags"  # type: ignore[index]
    assert find_unstorable("\ud800")[0] == "body"  # type: ignore[index]
    assert find_unstorable({"ok": ["\U0001f600", 1, None, 2.5]}) is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"text": "a\\u0000b"}', "text"),
        (b'{"text": "ok", "tags": {"nested": ["x", "\\u0000"]}}', "tags.nested.1"),
        (b'{"text": "ok", "tags": {"\\u0000": 1}}', "tags"),
        (b'{"text": "lone \\ud800 surrogate"}', "text"),
        (b'{"text": "lone \\uDC00 low"}', "text"),
    ],
)
def test_a_body_with_unstorable_text_is_a_422_naming_the_field(
    client: TestClient, raw: bytes, field: str
) -> None:
    for path in ("/notes/k", "/lean"):  # FastAPI's path and the hot lane alike
        response = _json(client, path, raw)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_input", field)
        assert error["message"].startswith(f"{field}: ")


def test_escapes_that_are_not_nul_pass(client: TestClient) -> None:
    escaped = _json(client, "/notes/k", b'{"text": "a\\\\u0000b \\ud83d\\ude00"}')
    assert escaped.status_code == 200
    assert escaped.json()["text"] == "a\\u0000b \U0001f600"


@pytest.mark.parametrize(
    ("request_path", "field"),
    [("/notes/a%00b", "key"), ("/notes?q=a%00", "q"), ("/notes?x%00y=1", "x\x00y")],
)
def test_a_parameter_with_nul_is_a_422_naming_it(
    client: TestClient, request_path: str, field: str
) -> None:
    if request_path.startswith("/notes/"):
        response = client.post(request_path, json={"text": "ok"})
    else:
        response = client.get(request_path)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert "NUL" in error["message"]


# --- unexpected exceptions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"), [("GET", "/boom", None), ("POST", "/lean", {"text": "boom"})]
)
def test_an_unexpected_exception_is_a_json_500_with_the_request_id(
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    response = client.request(method, path, json=body, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-42"
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == "req-42"
    assert "req-42" in error["message"]
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    """The demo app behind a real uvicorn (a TestClient has no connections to keep)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(build(), host="127.0.0.1", port=port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


FAILURES = [("GET", "/boom", None), ("POST", "/lean", {"text": "boom"})]


@pytest.mark.parametrize(("method", "path", "body"), FAILURES)
def test_the_keep_alive_connection_survives_a_500(
    served: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    with httpx.Client(base_url=served, limits=httpx.Limits(max_connections=1)) as http:
        before = http.get("/port").json()["port"]
        failed = http.request(method, path, json=body)
        after = http.get("/port")
        assert after.status_code == 200
        assert after.json()["port"] == before  # the same TCP connection, not a new one
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "internal_error"


# --- the OpenAPI document ------------------------------------------------------------------


def test_openapi_declares_the_shell_answers_and_the_security() -> None:
    app = build(admin_api_key=SecretStr("k" * 20), assign_api_key=SecretStr("c" * 20))
    document = TestClient(app).get("/openapi.json").json()
    paths = document["paths"]
    write = paths["/notes/{key}"]["post"]["responses"]
    assert {"400", "404", "413", "422", "500", "503"} <= set(write)
    assert write["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert {"422", "500", "503"} <= set(paths["/notes"]["get"]["responses"])
    admin = paths["/admin/notes"]["post"]
    assert admin["security"] == [{"adminKey": []}]
    assert {"401", "403"} <= set(admin["responses"])
    assert all(p["name"] != "authorization" for p in admin.get("parameters", []))
    assert paths["/lean"]["post"]["security"] == [{"callerKey": []}, {"adminKey": []}]
    assert "security" not in paths["/notes/{key}"]["post"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["adminKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "SPLITLAB_ADMIN_API_KEY, as 'Authorization: Bearer <key>'.",
    }
    assert schemes["callerKey"]["scheme"] == "bearer"
    assert "503" not in paths["/healthz"]["get"]["responses"]


def test_an_open_caller_path_declares_no_security() -> None:
    document = TestClient(build()).get("/openapi.json").json()
    assert "security" not in document["paths"]["/lean"]["post"]


# --- the API docs, offline -----------------------------------------------------------------

_ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_reference_only_local_assets_that_answer(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    assets = [a or b for a, b in _ASSET.findall(html)]
    assert len(assets) >= 2
    for asset in assets:
        assert asset.startswith("/"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100, asset

"""``splitlab models``: register and list through a faked router admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app

REPO = Path(__file__).resolve().parents[3]
MODEL = {
    "name": "ranker",
    "version": "2",
    "ref": "ranker:2",
    "flavor": "sklearn",
    "artifact": "ranker-2.skops",
    "sha256": "0" * 64,
    "url": None,
    "timeout_ms": 200,
    "input_schema": [{"name": "price", "type": "float"}, {"name": "position", "type": "int"}],
    "metadata": {},
    "created_at": "2026-11-23T10:00:00+00:00",
    "loaded": True,
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            body = json.loads(request.content)
            if body["version"] == "bad":
                return httpx.Response(422, json={"error": {"message": "artifact: no file"}})
            return httpx.Response(201, json=MODEL)
        return httpx.Response(200, json={"models": [MODEL]})

    transport = httpx.MockTransport(handler)

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake)
    monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", "k")
    monkeypatch.setenv("SPLITLAB_ROUTER_URL", "http://router.test")
    return seen


def test_register_the_example_and_list(api: list[httpx.Request], tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    result = runner.invoke(app, ["models", "register", str(REPO / "examples" / "model.yaml")])
    assert result.exit_code == 0, result.output
    assert "ranker:2" in result.output
    sent = json.loads(api[0].content)
    assert (sent["name"], sent["version"], sent["flavor"]) == ("ranker", "2", "sklearn")
    assert api[0].url == "http://router.test/models"
    assert api[0].headers["authorization"] == "Bearer k"
    listed = runner.invoke(app, ["models", "list", "--format", "json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output)[0]["ref"] == "ranker:2"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "version": "bad"}))
    failed = runner.invoke(app, ["models", "register", str(bad)])
    assert failed.exit_code == 1
    assert "422: artifact: no file" in failed.output


def test_register_with_a_file_uploads_it_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--file`` sends the spec and the file as multipart with the file's sha256; when the
    version is registered with the same file already, nothing is uploaded."""
    import hashlib

    artifact = tmp_path / "ranker-2.skops"
    artifact.write_bytes(b"not really a model, the fake router does not care")
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    registered: dict[str, Any] = {}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            if registered:
                return httpx.Response(200, json=registered)
            return httpx.Response(404, json={"error": {"message": "no model ranker:2"}})
        registered.update({**MODEL, "sha256": digest})
        return httpx.Response(201, json=registered)

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake)
    monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", "k")
    monkeypatch.setenv("SPLITLAB_ROUTER_URL", "http://router.test")
    args = ["models", "register", str(REPO / "examples" / "model.yaml"), "--file", str(artifact)]
    runner = CliRunner()

    first = runner.invoke(build_app(), args)
    assert first.exit_code == 0, first.output
    upload = seen[-1]
    assert (upload.method, upload.headers["content-type"].split(";")[0]) == (
        "POST",
        "multipart/form-data",
    )
    assert artifact.read_bytes() in upload.content
    assert f'"sha256": "{digest}"'.encode() in upload.content
    again = runner.invoke(build_app(), args)
    assert again.exit_code == 0, again.output
    assert [r.method for r in seen] == ["GET", "POST", "GET"]

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

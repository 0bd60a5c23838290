"""``splitlab holdout impact`` through a faked analyzer: table, JSON, the HTML report, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.core.analysis.holdout import holdout_impact

runner = CliRunner()


def body() -> dict[str, Any]:
    impact = holdout_impact(
        ["a", "b", "c", "d", "a", "e"], ["2026-12-01"] * 4 + ["2026-12-02"] * 2,
        [1, 2, 3, 5, 1, 4], [True, True, False, False, True, False], metric="revenue",
    )  # fmt: skip
    return {**impact.to_dict(), "holdout_share": 0.05, "since": "2026-11-05T00:00:00+00:00",
            "until": "2026-12-03T00:00:00+00:00"}  # fmt: skip


@pytest.fixture
def analyzer(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params["metric"] == "revenue":
            return httpx.Response(200, json=body())
        return httpx.Response(
            404, json={"error": {"code": "not_found", "field": "metric",
                                 "message": "metric: no metric named 'x'; define it"}},
        )  # fmt: skip

    transport = httpx.MockTransport(handler)

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake)
    monkeypatch.setenv("SPLITLAB_ANALYZER_URL", "http://analyzer.test")
    return seen


def test_table_json_and_html(analyzer: list[httpx.Request], tmp_path: Path) -> None:
    table = runner.invoke(build_app(), ["holdout", "impact", "--metric", "revenue", "--days", "7"])
    assert table.exit_code == 0, table.output
    assert "Holdout impact on revenue" in table.stdout
    assert "2026-12-02" in table.stdout
    params = analyzer[0].url.params
    assert (analyzer[0].url.path, params["days"], params["sequential"]) == (
        "/holdout/impact",
        "7",
        "false",
    )
    out = runner.invoke(build_app(), ["holdout", "impact", "--metric", "revenue", "--format",
                                      "json"])  # fmt: skip
    assert json.loads(out.stdout)["latest"]["effect"] == body()["latest"]["effect"]
    page = tmp_path / "h.html"
    html = runner.invoke(
        build_app(),
        ["holdout", "impact", "--metric", "revenue", "--format", "html", "-o", str(page)],
    )
    assert html.exit_code == 0, html.output
    text = page.read_text()
    assert text.startswith("<!doctype html>")
    assert "<svg" in text
    assert "outside the global holdout" in text
    assert "http://" not in text.split("<svg", 1)[0]  # no external assets before the plot


def test_an_analyzer_error_is_shown_with_its_field(analyzer: list[httpx.Request]) -> None:
    result = runner.invoke(build_app(), ["holdout", "impact", "--metric", "x"])
    assert result.exit_code == 1
    assert "404: metric: no metric named 'x'" in result.output

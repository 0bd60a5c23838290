"""``splitlab holdout impact`` through a faked analyzer: table, JSON, the HTML report, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.cli.holdout import HoldoutAggregation
from splitlab.core.analysis.holdout import HOLDOUT_AGGREGATIONS, holdout_impact

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
        metric = request.url.params["metric"]
        if metric in ("revenue", "orders"):
            return httpx.Response(200, json={**body(), "metric": metric})
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


def test_several_metrics_give_one_answer_each(
    analyzer: list[httpx.Request], tmp_path: Path
) -> None:
    # `--metric revenue --metric orders` once showed orders alone (the last option won).
    metrics = ["--metric", "revenue", "--metric", "orders"]
    table = runner.invoke(build_app(), ["holdout", "impact", *metrics])
    assert table.exit_code == 0, table.output
    assert "Holdout impact on revenue" in table.stdout
    assert "Holdout impact on orders" in table.stdout
    assert [r.url.params["metric"] for r in analyzer] == ["revenue", "orders"]
    out = runner.invoke(build_app(), ["holdout", "impact", *metrics, "--format", "json"])
    assert [b["metric"] for b in json.loads(out.stdout)] == ["revenue", "orders"]
    page = tmp_path / "h.html"
    html = runner.invoke(
        build_app(), ["holdout", "impact", *metrics, "--format", "html", "-o", str(page)]
    )
    assert html.exit_code == 0, html.output
    text = page.read_text()
    assert text.count("<svg") == 2
    assert "<h2>revenue</h2>" in text
    assert "<h2>orders</h2>" in text


def test_an_analyzer_error_is_shown_with_its_field(analyzer: list[httpx.Request]) -> None:
    result = runner.invoke(build_app(), ["holdout", "impact", "--metric", "x"])
    assert result.exit_code == 1
    assert "404: metric: no metric named 'x'" in result.output


@pytest.mark.parametrize("where", ["missing/h.html", "."])
def test_an_output_path_that_cannot_be_written_is_an_error_naming_the_option(
    analyzer: list[httpx.Request], tmp_path: Path, where: str
) -> None:
    # -o into a folder that does not exist (or onto a folder) once ended in a FileNotFoundError
    # (IsADirectoryError) traceback with exit 1.
    target = tmp_path / where
    result = runner.invoke(
        build_app(),
        ["holdout", "impact", "--metric", "revenue", "--format", "html", "-o", str(target)],
    )
    assert result.exit_code == 2, result.output
    assert "--output: cannot write" in result.stderr
    assert str(target) in result.stderr
    assert not isinstance(result.exception, OSError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--metric", ""], "--metric must name a plain outcome metric"),
        (["--metric", "revenue", "--metric", "revenue"], "repeated: revenue"),
        (["--metric", "revenue", "--days", "0"], "--days must be between 1 and 366; got 0"),
        (["--metric", "revenue", "--days", "367"], "--days must be between 1 and 366"),
        (["--metric", "revenue", "--alpha", "nan"], "--alpha must be a number in (0, 1)"),
        (["--metric", "revenue", "--alpha", "1"], "--alpha must be a number in (0, 1)"),
    ],
)
def test_bad_options_are_usage_errors_before_any_request(
    analyzer: list[httpx.Request], options: list[str], message: str
) -> None:
    # These once went to the analyzer and came back as exit 1 with its 422 text ('--alpha nan':
    # 'alpha: Input should be less than 1').
    result = runner.invoke(build_app(), ["holdout", "impact", *options])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert analyzer == []


def daily(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(3)
    rows = [
        (f"u{u}", f"2026-11-0{d}", float(rng.exponential(3) + 0.3 * (u % 10 != 0)),
         int(rng.integers(1, 3)), u % 10 == 0)
        for u in range(300) for d in range(1, 6) if rng.random() < 0.6
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user", "date", "revenue", "orders", "held"])
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_a_file_needs_no_server_and_equals_the_library(tmp_path: Path) -> None:
    path, frame = daily(tmp_path)
    columns = ["--unit-col", "user", "--day-col", "date", "--holdout-col", "held"]
    result = runner.invoke(
        build_app(),
        ["holdout", "impact", "--file", str(path), *columns, "--metric", "revenue",
         "--metric", "revenue", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 2  # the same metric twice
    result = runner.invoke(
        build_app(),
        ["holdout", "impact", "--file", str(path), *columns, "--metric", "revenue",
         "--aggregation", "mean", "--count-col", "orders", "--sequential", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = holdout_impact(
        frame["user"], frame["date"], frame["revenue"], frame["held"], count=frame["orders"],
        aggregation="mean", sequential=True, metric="revenue",
    )  # fmt: skip
    assert json.loads(result.stdout) == json.loads(json.dumps(expected.to_dict()))
    assert len(expected.days) == 5
    both = runner.invoke(
        build_app(),
        ["holdout", "impact", "--file", str(path), *columns, "--metric", "revenue",
         "--metric", "orders"],
    )  # fmt: skip
    assert both.exit_code == 0, both.output
    assert "Holdout impact on revenue" in both.stdout
    assert "Holdout impact on orders" in both.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--metric", "rev"], "has no column for --unit-col unit_id, --day-col day, "
                              "--holdout-col holdout, --metric rev; its columns: user, date"),
        (["--metric", "revenue", "--unit-col", "user", "--day-col", "date", "--holdout-col",
          "held", "--aggregation", "mean"], "--count-col (revenue): count is required"),
        (["--metric", "revenue", "--unit-col", "user", "--day-col", "date", "--holdout-col",
          "revenue"], "--holdout-col (revenue): holdout must be booleans"),
        (["--metric", "revenue", "--days", "3"], "--days selects the analyzer's window"),
    ],
)  # fmt: skip
def test_file_errors_name_the_option(tmp_path: Path, options: list[str], message: str) -> None:
    path, _ = daily(tmp_path)
    result = runner.invoke(build_app(), ["holdout", "impact", "--file", str(path), *options])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_file_options_without_a_file_and_a_missing_file_are_usage_errors(
    analyzer: list[httpx.Request], tmp_path: Path
) -> None:
    result = runner.invoke(build_app(), ["holdout", "impact", "--metric", "revenue",
                                         "--unit-col", "user", "--aggregation", "any"])  # fmt: skip
    assert result.exit_code == 2
    assert "--unit-col, --aggregation only apply with --file" in result.stderr
    missing = tmp_path / "none.csv"
    result = runner.invoke(build_app(), ["holdout", "impact", "--metric", "revenue", "--file",
                                         str(missing)])  # fmt: skip
    assert result.exit_code == 2
    assert f"--file: {missing} does not exist" in result.stderr
    assert analyzer == []


def test_the_aggregation_choices_are_the_library_s() -> None:
    assert tuple(a.value for a in HoldoutAggregation) == HOLDOUT_AGGREGATIONS

"""``splitlab features load`` file parsing, ``splitlab results`` rendering and the metric
commands, against a faked analyzer."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import splitlab
from splitlab.cli import build_app
from splitlab.cli.metrics import feature_rows, history_table
from tests.support.fake_services import FakeServices


def test_feature_rows_melt_a_wide_file_and_skip_missing(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    pd.DataFrame(
        {"user": ["a", "b"], "at": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],
         "spend": [1.5, None], "visits": [3, 4]}
    ).to_csv(path, index=False)  # fmt: skip
    rows = feature_rows(path, "user", "at")
    assert {(r["unit_id"], r["name"], r["value"]) for r in rows} == {
        ("a", "spend", 1.5), ("a", "visits", 3.0), ("b", "visits", 4.0),
    }  # fmt: skip
    assert rows[0]["observed_at"].startswith("2026-01-01")
    with pytest.raises(ValueError, match="--unit-col"):
        feature_rows(path, "unit_id", None)


def server_results() -> dict[str, Any]:
    """An analyzer results body: ``splitlab.analyze``'s JSON plus the analyzer's sections."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"variant": rng.choice(["control", "t1"], 400), "revenue": rng.normal(10, 2, 400)}
    )
    body = splitlab.analyze(data, metrics=["revenue"], method="none").to_dict()
    body["experiment"] = {"key": "exp-1", "status": "running", "primary": "revenue",
                          "auto_stop": False, "alpha": 0.05, "mde": 0.02}  # fmt: skip
    body["sample"] = {"units": {"control": 200, "t1": 200}, "total_units": 400,
                      "planned_sample_size": 1000, "days_to_planned": 3.0,
                      "first_exposure_at": "2026-12-01T00:00:00+00:00",
                      "last_exposure_at": "2026-12-02T00:00:00+00:00"}  # fmt: skip
    body["monitoring"] = {"revenue": {"t1": {"always_valid_p_value": 0.7431,
                                             "cs_lower": -1.0, "cs_upper": 1.0}}}  # fmt: skip
    body["guardrails"] = [{"metric": "revenue", "variant": "t1", "margin": 0.05, "harm": 0.01,
                           "harm_lower": -0.02, "always_valid_p_value": 1.0,
                           "violated": False, "status": "ok"}]  # fmt: skip
    body["fallback"] = {"variants": {"control": {"predictions": 200, "fallbacks": 0, "share": 0.0},
                                     "t1": {"predictions": 200, "fallbacks": 190, "share": 0.95}},
                        "threshold": 0.5, "mostly_fell_back": ["t1"]}  # fmt: skip
    body["methods"] = {"requested": "cuped", "used": {"revenue": "none"},
                       "not_applied": {"revenue": "no covariate; define covariates"}}  # fmt: skip
    body["excluded_values"] = {"limit": 1e12, "outcomes": 2}
    body["shadows"] = {"t2": {"units": 50, "means": {"revenue": 9.5}}}
    return body


NOTES = (
    "95.0% of 200 predictions answered by control's model - MOSTLY CONTROL'S MODEL",
    "cuped not applied: no covariate; define covariates",
    "2 beyond +-1e+12",
    "50 units, not compared; means: revenue 9.5",
)


class Page(HTMLParser):
    """What a browser would see of a page: its declaration, tags and text."""

    def __init__(self) -> None:
        super().__init__()
        self.declarations: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_results_html_on_stdout_is_only_the_report_with_its_plots(
    services: FakeServices,
) -> None:
    services.on("analyzer", "GET", "/experiments/exp-1/results", server_results())
    result = CliRunner().invoke(build_app(), ["results", "exp-1", "--format", "html"])
    assert result.exit_code == 0, result.output
    page = result.stdout
    assert page.lower().startswith("<!doctype html>"), page[:200]
    assert page.rstrip().endswith("</html>")
    parsed = Page()
    parsed.feed(page)
    assert parsed.declarations == ["doctype html"]
    assert parsed.tags.count("svg") == 1, "the effects plot, inline"
    text = " ".join(parsed.text)
    assert "SplitLab results: exp-1" in text
    for section in ("Decisions", "Sample ratio", "Sample", "Guardrails", "Effects"):
        assert section in parsed.text, section
    assert "0.7431" in text, "the always-valid p-value column"
    assert "1000 planned" in text
    assert "Analyzer notes" in parsed.text
    for note in NOTES:
        assert note in text, note


def test_results_html_to_a_file_says_where_on_stderr(
    services: FakeServices, tmp_path: Path
) -> None:
    services.on("analyzer", "GET", "/experiments/exp-1/results", server_results())
    target = tmp_path / "report.html"
    result = CliRunner().invoke(
        build_app(), ["results", "exp-1", "--format", "html", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {target}" in result.stderr
    assert target.read_text().lower().startswith("<!doctype html>")
    assert "<svg" in target.read_text()


def test_results_tables_show_the_server_sections(services: FakeServices) -> None:
    services.on("analyzer", "GET", "/experiments/exp-1/results", server_results())
    result = CliRunner().invoke(build_app(), ["results", "exp-1"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "revenue (mean) - method none" in text
    assert "always-valid p" in text
    assert "0.7431" in text
    assert "guardrail revenue / t1" in text
    assert "400 units, planned 1000" in text
    for note in NOTES:
        assert note in text, note
    assert "…" not in text, "piped tables are not cut at 80 columns"


def test_results_history_renders_a_row_per_snapshot_metric_and_treatment() -> None:
    row = {"metric": "revenue", "variant": "t1", "method": "cuped", "variance_reduction": 0.25,
           "n_control": 200, "n_treatment": 190, "mean_control": 10.0, "mean_treatment": 10.5,
           "effect": 0.5, "ci_lower": 0.1, "ci_upper": 0.9, "p_value": 0.01,
           "cs_lower": -0.2, "cs_upper": 1.2, "always_valid_p_value": 0.2}  # fmt: skip
    snaps = [
        {"taken_at": f"2026-12-05T0{h}:00:00+00:00", "reason": reason, "metrics": [row]}
        for h, reason in ((8, "refresh"), (9, "stop"))
    ]
    console = Console(record=True, width=200)
    console.print(history_table({"experiment_key": "exp-1", "snapshots": snaps}))
    text = console.export_text()
    assert "results history: exp-1" in text
    assert "2026-12-05 08:00:00" in text
    assert "2026-12-05 09:00:00" in text
    assert "25.00%" in text
    assert "[-0.2, 1.2]" in text
    console = Console(record=True, width=200)
    console.print(history_table({"experiment_key": "exp-1", "snapshots": []}))
    assert "no snapshots yet" in console.export_text()

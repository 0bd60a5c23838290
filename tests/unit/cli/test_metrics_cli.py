"""``splitlab features load`` file parsing and ``splitlab results`` rendering (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import splitlab
from splitlab.cli.metrics import feature_rows, results_html, results_tables


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


def test_results_render_as_tables_and_html() -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"variant": rng.choice(["control", "t1"], 400), "revenue": rng.normal(10, 2, 400)}
    )
    body = splitlab.analyze(data, metrics=["revenue"], method="none").to_dict()
    body["guardrails"] = [{"metric": "revenue", "variant": "t1", "margin": 0.05, "harm": 0.01,
                           "harm_lower": -0.02, "always_valid_p_value": 1.0,
                           "violated": False, "status": "ok"}]  # fmt: skip
    console = Console(record=True, width=160)
    for table in results_tables(body):
        console.print(table)
    text = console.export_text()
    assert "revenue (mean) - none" in text
    assert "guardrail revenue / t1" in text
    page = results_html("exp-1", body)
    assert page.startswith("<!DOCTYPE html>")
    assert "SplitLab results: exp-1" in page

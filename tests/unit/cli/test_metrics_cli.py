"""``splitlab features load`` file parsing and ``splitlab results`` rendering (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import splitlab
from splitlab.cli.metrics import feature_rows, history_table, results_html, results_tables


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

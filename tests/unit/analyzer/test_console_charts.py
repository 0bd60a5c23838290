"""The console's SVG charts: one point per snapshot, labels escaped, missing numbers drawn as
such (pure, no server)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from splitlab_analyzer.console.charts import ForestRow, TimePoint, forest_svg, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def points(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # also proves the SVG is well-formed XML
    return [e for e in root.iter(f"{SVG}circle") if e.get("class") == "point"]


def test_the_timeline_has_a_point_per_snapshot_with_an_estimate() -> None:
    t0 = datetime(2026, 12, 5, tzinfo=UTC)
    series = [TimePoint(t0 + timedelta(hours=h), 0.1 * h, 0.1 * h - 1, 0.1 * h + 1)
              for h in range(5)]  # fmt: skip
    assert len(points(timeline_svg(series, "revenue"))) == 5
    series.append(TimePoint(t0 + timedelta(hours=6), None, None, None))
    assert len(points(timeline_svg(series, "revenue"))) == 5
    assert len(points(timeline_svg(series[:1], "revenue"))) == 1
    assert "no snapshots yet" in timeline_svg([], "revenue")


def test_labels_are_escaped_and_the_forest_has_a_point_per_treatment() -> None:
    rows = [
        ForestRow("<script>alert(1)</script>", 0.5, 0.1, 0.9, True),
        ForestRow("t2 & co", -0.2, -0.6, 0.2, False),
        ForestRow("t3", None, None, None, False),
    ]
    svg = forest_svg(rows, 'a "quoted" <title>')
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert len(points(svg)) == 2
    assert "no estimate" in svg
    colors = [p.get("fill") for p in points(svg)]
    assert colors == ["#1f7a3a", "#555555"]  # significant and positive; not significant


def test_the_trained_model_is_named_with_its_age_and_flagged_when_stale() -> None:
    from splitlab_analyzer.console.pages import trained_model_text

    model = {"model_id": 12, "kind": "in-experiment", "family": "boosting",
             "age_seconds": 840.0, "schedule_seconds": 900, "stale": False}  # fmt: skip
    assert trained_model_text(model) == ("version 12 (in-experiment, boosting), trained 14 min ago")
    stale = trained_model_text({**model, "age_seconds": 7200.0, "stale": True})
    assert stale is not None
    assert stale.startswith("version 12 (in-experiment, boosting), trained 2.0 h ago")
    assert "older than its schedule allows (every 900 s)" in stale
    assert trained_model_text(None) is None

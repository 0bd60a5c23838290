"""The holdout impact report says which way the effect goes and why there is none."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from splitlab.core.analysis.holdout import holdout_impact
from splitlab.reports.holdout import holdout_html


def text(units: list[str], values: list[float], held: list[bool]) -> str:
    impact = holdout_impact(units, ["2026-12-01"] * len(units), values, held, metric="m")
    body: dict[str, Any] = {**impact.to_dict(), "holdout_share": 0.05,
                            "since": "2026-11-05T00:00:00+00:00",
                            "until": "2026-12-03T00:00:00+00:00"}  # fmt: skip
    page = re.sub(r"<(style|svg)[^>]*>.*?</\1>", "", holdout_html(body, title="t"), flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_negative_effect_reads_lower_with_its_signed_value() -> None:
    # Holdout 3, 4, 5 against the rest 1, 2, 3: the rest is 2 lower.
    page = text(list("abcdef"), [3, 4, 5, 1, 2, 3], [True] * 3 + [False] * 3)
    assert "m is 2 (50.00%) lower for the 3 units outside the global holdout" in page
    assert "effect -2," in page
    assert "higher" not in page


def test_no_estimate_says_why_in_the_summary_and_the_table() -> None:
    # One unit per group: once "m is 1 (n/a) higher ... CI [n/a, n/a], p = n/a" and no reason.
    page = text(["a", "b"], [1, 2], [True, False])
    assert "no estimate of the effect on m yet (insufficient_data: n < 2 in an arm)" in page
    assert "(n/a) higher" not in page
    assert "status" in page  # the table's column header

"""Each metric's named test and effect sizes in a report: one set of rows for the terminal
table and the HTML page (from the JSON shape, so a file's analysis and the analyzer's results
read the same)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import p_value as _p
from splitlab.reports.numbers import share as _share
from splitlab.reports.numbers import signed_percent as _pct

__all__ = ["TEST_COLUMNS", "test_rows", "test_statuses", "tests_table"]

TEST_COLUMNS = (
    "metric",
    "variant",
    "test",
    "statistic",
    "p_value",
    "test effect",
    "CI",
    "P(treatment > control)",
    "Cohen's d",
    "rel_effect",
)

_EFFECT_NAMES = {
    "welch": "difference in means",
    "z": "difference in proportions",
    "chi2": "difference in proportions",
    "mann_whitney": "Hodges-Lehmann shift",
}


def _effect_name(test: Mapping[str, Any]) -> str:
    name = str(test["test"])
    if name.startswith("bootstrap"):
        method = "BCa" if name.endswith("bca") else "percentile"
        return f"q{test['quantile']:g} difference ({method}, {test['n_resamples']} resamples)"
    return _EFFECT_NAMES.get(name, name)


def test_rows(out: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row of :data:`TEST_COLUMNS` per metric and treatment (empty for results from
    before metrics named their tests)."""
    rows: list[tuple[str, ...]] = []
    for name, metric in out["metrics"].items():
        for variant, c in metric["comparisons"].items():
            test = c.get("test")
            if test is None:
                continue
            rows.append(
                (
                    str(name),
                    str(variant),
                    str(test["test"]),
                    _fmt(test["statistic"]),
                    _p(test["p_value"]),
                    f"{_fmt(test['effect'])} ({_effect_name(test)})",
                    f"[{_fmt(test['ci_lower'])}, {_fmt(test['ci_upper'])}]",
                    _share(test["prob_superiority"]) if test["test"] == "mann_whitney" else "",
                    _fmt(c.get("cohens_d")),
                    _pct(c["rel_effect"]),
                )
            )
    return rows


def tests_table(out: Mapping[str, Any]) -> Table | None:
    """The terminal table of :func:`test_rows` (None when there is no row)."""
    rows = test_rows(out)
    if not rows:
        return None
    level = f"{1 - float(out['alpha']):.0%}"
    table = Table(title="Tests per metric and effect sizes", title_justify="left")
    for column in TEST_COLUMNS:
        header = f"{level} CI" if column == "CI" else column
        table.add_column(header, justify="left" if column in ("metric", "variant") else "right")
    for row in rows:
        table.add_row(*row)
    notes = [
        "the metric's named test (welch unless the metric names another); Cohen's d: "
        "difference in means over the pooled SD; rel_effect: the relative lift",
        *test_statuses(out),
    ]
    table.caption = "; ".join(notes)
    return table


def test_statuses(out: Mapping[str, Any]) -> list[str]:
    """``metric / variant: status`` of every test that gave no number."""
    return [
        f"{name} / {variant}: {c['test']['status']}"
        for name, metric in out["metrics"].items()
        for variant, c in metric["comparisons"].items()
        if c.get("test") is not None and c["test"]["status"] != "ok"
    ]

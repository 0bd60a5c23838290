"""Holdout impact reports: a table per day and a self-contained HTML page with the effect's
curve (inline SVG), from :class:`~splitlab.core.analysis.holdout.HoldoutImpact` or its JSON
(the analyzer's ``GET /holdout/impact``)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape
from rich.table import Table

from splitlab.core.analysis.holdout import HoldoutImpact
from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import p_value as _p
from splitlab.reports.numbers import signed_percent as _pct

__all__ = ["holdout_html", "holdout_section", "holdout_table"]

Impact = HoldoutImpact | Mapping[str, Any]


def _body(impact: Impact) -> Mapping[str, Any]:
    return impact.to_dict() if isinstance(impact, HoldoutImpact) else impact


def _level(body: Mapping[str, Any]) -> str:
    return f"{1 - float(body['alpha']):.0%}"


def _rows(body: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            str(d["day"]),
            f"{d['n_holdout']:,}",
            f"{d['n_exposed']:,}",
            _fmt(d["mean_holdout"]),
            _fmt(d["mean_exposed"]),
            _fmt(d["effect"]),
            f"[{_fmt(d['ci_lower'])}, {_fmt(d['ci_upper'])}]",
            _pct(d["rel_effect"]),
            _p(d["p_value"]),
            str(d["status"]),
        ]
        for d in body["days"]
    ]


HEADERS = ("day", "holdout n", "rest n", "holdout mean", "rest mean", "effect", "CI",
           "relative", "p", "status")  # fmt: skip


def holdout_table(impact: Impact) -> Table:
    body = _body(impact)
    kind = "always-valid" if body["sequential"] else "fixed-horizon"
    table = Table(
        title=f"Holdout impact on {body['metric']} ({body['aggregation']}): everyone else minus "
        f"the holdout, cumulative, {_level(body)} {kind} CI",
        title_justify="left",
    )
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in _rows(body):
        table.add_row(*row)
    return table


def _curve_svg(body: Mapping[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    days = [str(d["day"]) for d in body["days"]]

    def finite(value: float | None) -> float:
        return math.nan if value is None else float(value)

    effect = [finite(d["effect"]) for d in body["days"]]
    lower = [finite(d["ci_lower"]) for d in body["days"]]
    upper = [finite(d["ci_upper"]) for d in body["days"]]
    figure = Figure(figsize=(8, 3.2), dpi=100)
    axes = figure.subplots()
    x = list(range(len(days)))
    axes.fill_between(x, lower, upper, color="#9ecae1", alpha=0.6, label=f"{_level(body)} CI")
    axes.plot(x, effect, "o-", color="#1f4e79", label="effect (rest - holdout)")
    axes.axhline(0, color="#999", linestyle=":")
    step = max(1, len(days) // 10)
    axes.set_xticks(x[::step], days[::step], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(str(body["metric"]))
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _summary(body: Mapping[str, Any], latest: Mapping[str, Any]) -> str:
    """The latest day in words: the effect's direction with its size (a negative effect once
    read "is -0.0149 (-1.52%) higher"), or why there is no estimate (once "is 1 (n/a) higher ...
    CI [n/a, n/a], p = n/a" with no reason)."""
    day, metric = escape(str(latest["day"])), escape(body["metric"])
    groups = (
        f"the {latest['n_exposed']:,} units outside the global holdout than for its "
        f"{latest['n_holdout']:,} units"
    )
    effect = latest["effect"]
    if latest["status"] != "ok" or effect is None:
        return (
            f"As of {day}: no estimate of the effect on {metric} yet "
            f"({escape(str(latest['status']))}), comparing {groups}."
        )
    direction = "lower" if effect < 0 else "higher"
    rel = latest["rel_effect"]
    relative = "n/a" if rel is None else _pct(abs(rel)).lstrip("+")
    return (
        f"As of {day}: {metric} is {escape(_fmt(abs(effect)))} ({escape(relative)}) {direction} "
        f"for {groups}, effect {escape(_fmt(effect))}, {_level(body)} CI "
        f"[{escape(_fmt(latest['ci_lower']))}, {escape(_fmt(latest['ci_upper']))}], "
        f"p = {escape(_p(latest['p_value']))}."
    )


def holdout_section(impact: Impact, heading: bool = False) -> Markup:
    """One metric's part of the page (summary, curve, table per day), for embedding."""
    return Markup(_section(_body(impact), heading))


def _section(body: Mapping[str, Any], heading: bool) -> str:
    latest = body.get("latest")
    summary = _summary(body, latest) if latest else "No units were seen in the window."
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in _rows(body)
    )
    curve = _curve_svg(body) if body["days"] else ""
    kind = "always-valid" if body["sequential"] else "fixed-horizon (pointwise)"
    title = f"<h2>{escape(body['metric'])}</h2>" if heading else ""
    return (
        f"<section>{title}"
        f"<p>The cumulative effect of every launched change on <b>{escape(body['metric'])}</b> "
        f"({escape(body['aggregation'])} per unit, up to each day): everyone outside the global "
        f"holdout minus the holdout, {kind} intervals.</p>"
        f"<p>{summary}</p>{curve}"
        f"<table><tr>{head}</tr>{rows}</table></section>"
    )


def holdout_html(impact: Impact | Sequence[Impact], title: str = "SplitLab holdout impact") -> str:
    """A self-contained page (no external assets): for each metric its summary, curve and
    table per day (a heading per metric when there are several)."""
    impacts = [impact] if isinstance(impact, HoldoutImpact | Mapping) else list(impact)
    sections = "".join(_section(_body(i), heading=len(impacts) > 1) for i in impacts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}</style></head><body>"
        f"<h1>{escape(title)}</h1>{sections}</body></html>\n"
    )

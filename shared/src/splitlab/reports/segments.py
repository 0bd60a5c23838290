"""Reports of the results per segment (the ``segments`` key of an analysis): a rich table per
metric, and the HTML section with a plot of each segment's relative effect and its CI.

Both read the JSON shape (``SegmentsResult.to_dict()``), so ``splitlab analyze`` and
``splitlab results`` show the same section; both render nothing without segments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup
from rich.table import Table

from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import p_value as _p
from splitlab.reports.numbers import share as _share
from splitlab.reports.numbers import signed_percent as _pct

__all__ = ["segment_tables", "segments_html", "segments_svg"]


def _title(segments: Mapping[str, Any]) -> str:
    edges = segments.get("edges")
    spec = segments["attribute"] + (
        f" (edges {', '.join(_fmt(e) for e in edges)})" if edges else ""
    )
    return f"by {spec}"


def segment_tables(out: Mapping[str, Any]) -> list[Table]:
    """One table per metric: a row per segment and treatment, p-values adjusted across
    segments; the caption holds the heterogeneity tests and the warnings."""
    segments = out.get("segments")
    if not segments:
        return []
    level = f"{1 - float(out['alpha']):.0%}"
    tables = []
    for name in out["metrics"]:
        adjusted = f"adjusted across segments ({segments['correction']})"
        table = Table(title=f"{name} {_title(segments)} - {adjusted}", title_justify="left")
        for column in ("segment", "variant", "n", "effect", f"{level} CI", "rel_effect",
                       "p_value", "p adj.", "status"):  # fmt: skip
            table.add_column(
                column, justify="left" if column in ("segment", "variant") else "right"
            )
        for label, seg in segments["segments"].items():
            metric = seg["metrics"].get(name)
            if metric is None:
                continue
            for variant, c in metric["comparisons"].items():
                table.add_row(
                    label,
                    variant,
                    f"{c['n_control']} / {c['n_treatment']}",
                    _fmt(c["effect"]),
                    f"[{_fmt(c['ci_lower'])}, {_fmt(c['ci_upper'])}]",
                    _pct(c["rel_effect"]),
                    _p(c["p_value"]),
                    _p(c["p_value_adjusted"]),
                    c["status"],
                )
        notes = [heterogeneity_note(variant, h)
                 for variant, h in segments["heterogeneity"].get(name, {}).items()]  # fmt: skip
        notes += [w["message"] for w in segments["warnings"]]
        table.caption = "; ".join(notes)
        tables.append(table)
    return tables


def heterogeneity_note(variant: str, h: Mapping[str, Any]) -> str:
    return (
        f"{variant}: Cochran's Q {_fmt(h['q'])} on {h['df']} df, p = {_p(h['p_value'])}, "
        f"I² {_share(h['i_squared'])}"
    )


def segments_svg(out: Mapping[str, Any], metric: str) -> str:
    """Relative effect with its CI per segment and treatment, for one metric."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from splitlab.reports.analysis import _svg

    segments = out["segments"]
    names: list[str] = []
    rows: list[tuple[float, float, float, float]] = []
    for label, seg in segments["segments"].items():
        for variant, c in seg["metrics"].get(metric, {}).get("comparisons", {}).items():
            values = [c["rel_effect"], c["rel_ci_lower"], c["rel_ci_upper"], c["p_value_adjusted"]]
            effect, low, high, p = (math.nan if v is None else float(v) for v in values)
            names.append(f"{label}: {variant}")
            rows.append((effect, low, high, p))
    figure = Figure(figsize=(8, 0.42 * len(rows) + 1.2), dpi=100)
    axes = figure.subplots()
    alpha = float(out["alpha"])
    for i, (effect, low, high, p) in enumerate(rows):
        if not math.isfinite(effect):
            continue
        color = "#1f7a3a" if math.isfinite(p) and p < alpha else "#555555"
        lo = low if math.isfinite(low) else effect
        hi = high if math.isfinite(high) else effect
        axes.plot([lo * 100, hi * 100], [i, i], color=color, linewidth=2)
        axes.plot([effect * 100], [i], "o", color=color)
    axes.axvline(0, color="#999", linestyle=":")
    axes.set_yticks(range(len(rows)), names)
    axes.invert_yaxis()
    axes.set_xlabel(f"{metric}: relative effect (%) with {1 - alpha:.0%} CI per segment")
    axes.grid(alpha=0.3, axis="x")
    return _svg(figure)


def segments_html(out: Mapping[str, Any]) -> Markup:
    """The HTML section of the results per segment (empty without segments)."""
    segments = out.get("segments")
    if not segments:
        return Markup("")
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (resources.files("splitlab.reports") / "templates" / name).read_text(
                encoding="utf-8"
            )
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return Markup(
        environment.get_template("segments.html.j2").render(
            summary=out,
            segments=segments,
            title=_title(segments),
            level=f"{1 - float(out['alpha']):.0%}",
            plots={name: Markup(segments_svg(out, name)) for name in out["metrics"]},
            note=heterogeneity_note,
            fmt=_fmt,
            pct=_pct,
            share=_share,
            p=_p,
        )
    )

"""Reports for ``splitlab.analyze``: rich tables for the terminal and an HTML page with plots
(effect and CI per metric and variant, per-variant distributions), matplotlib inline as SVG."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup
from rich.table import Table

from splitlab.analysis_results import AnalysisResult
from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import p_value as _p
from splitlab.reports.numbers import share as _share
from splitlab.reports.numbers import signed_percent as _pct

__all__ = ["distribution_svg", "effects_svg", "html_report", "summary_tables"]

MAX_DISTRIBUTION_POINTS = 200_000


def summary_tables(result: AnalysisResult) -> list[Table]:
    """One table per metric (a row per treatment), then SRM and decisions."""
    out = result.to_dict()
    level = f"{1 - result.alpha:.0%}"
    tables = []
    for name, metric in out["metrics"].items():
        vr = metric["variance_reduction"]
        title = (
            f"{name} ({metric['kind']}) - method {metric['method']}"
            + (
                f", variance reduction {vr:.1%}"
                if vr is not None and metric["method"] != "none"
                else ""
            )
            + (" - always-valid (sequential)" if result.sequential else "")
        )
        table = Table(title=title, title_justify="left")
        for column in (
            "variant",
            "n",
            "mean control",
            "mean treatment",
            "effect",
            f"{level} CI",
            "rel_effect",
            f"{level} rel CI",
            "p_value",
            "p adj.",
            "P(beat)",
        ):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for variant, c in metric["comparisons"].items():
            table.add_row(
                variant,
                f"{c['n_control']} / {c['n_treatment']}",
                _fmt(c["mean_control"]),
                _fmt(c["mean_treatment"]),
                _fmt(c["effect"]),
                f"[{_fmt(c['ci_lower'])}, {_fmt(c['ci_upper'])}]",
                _pct(c["rel_effect"]),
                f"[{_pct(c['rel_ci_lower'])}, {_pct(c['rel_ci_upper'])}]",
                _p(c["p_value"]),
                _p(c["p_value_adjusted"]),
                _share(c["chance_to_beat_control"]),
            )
        notes = [metric["reason"]] if metric["requested_method"] == "auto" else []
        if metric["dropped_rows"]:
            notes.append(f"{metric['dropped_rows']} rows with a missing value dropped")
        if metric.get("cupac"):
            cupac = metric["cupac"]
            r2 = ", ".join(f"{k} {_fmt(v)}" for k, v in cupac["oof_r2"].items())
            notes.append(f"CUPAC model {cupac['model']} (out-of-fold R^2: {r2})")
            notes.extend(cupac["notes"])
        statuses = {c["status"] for c in metric["comparisons"].values()} - {"ok"}
        notes.extend(sorted(statuses))
        if notes:
            table.caption = "; ".join(notes)
        tables.append(table)
    srm = out["srm"]
    checks = Table(title="Sample ratio and decisions", title_justify="left")
    checks.add_column("check")
    checks.add_column("result")
    observed = ", ".join(f"{k} {v}" for k, v in srm["observed"].items())
    expected = ", ".join(f"{k} {w:.3g}" for k, w in srm["expected_weights"].items())
    checks.add_row(
        "SRM",
        f"{srm['status']} (p = {_p(srm['p_value'])}; observed {observed}; "
        f"expected weights {expected})",
    )
    for period in out.get("periods", []):
        weights = ", ".join(f"{k} {_share(w)}" for k, w in period["weights"].items())
        units = ", ".join(f"{k} {n}" for k, n in period["units"].items())
        start = f" from {period['start']}" if period["start"] else ""
        checks.add_row(
            f"period {period['period']}",
            f"{weights}{start}: {units} (SRM {period['srm_status']}, "
            f"p = {_p(period['srm_p_value'])})",
        )
    for variant, d in out["decisions"].items():
        checks.add_row(f"decision: {variant}", f"{d['action']} - {'; '.join(d['reasons'])}")
    if out["rows"]["missing_variant"]:
        checks.add_row("rows", f"{out['rows']['missing_variant']} rows without a variant dropped")
    tables.append(checks)
    return tables


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def effects_svg(result: AnalysisResult) -> str:
    """Relative effect with its CI, one row per metric and treatment."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = []
    for name, metric in result.metrics.items():
        for variant, c in metric.comparisons.items():
            cmp = c.comparison
            rows.append(
                (
                    f"{name}: {variant}",
                    cmp.rel_effect,
                    cmp.rel_ci_lower,
                    cmp.rel_ci_upper,
                    cmp.p_value,
                )
            )
    figure = Figure(figsize=(8, 0.5 * len(rows) + 1.2), dpi=100)
    axes = figure.subplots()
    for i, (_, effect, low, high, p) in enumerate(rows):
        color = "#1f7a3a" if math.isfinite(p) and p < result.alpha else "#555555"
        lo = low if math.isfinite(low) else effect
        hi = high if math.isfinite(high) else effect
        axes.plot([lo * 100, hi * 100], [i, i], color=color, linewidth=2)
        axes.plot([effect * 100], [i], "o", color=color)
    axes.axvline(0, color="#999", linestyle=":")
    axes.set_yticks(range(len(rows)), [r[0] for r in rows])
    axes.invert_yaxis()
    axes.set_xlabel(f"relative effect (%) with {1 - result.alpha:.0%} CI")
    axes.grid(alpha=0.3, axis="x")
    return _svg(figure)


def distribution_svg(values: Mapping[str, np.ndarray], metric: str) -> str:
    """Overlaid histograms of a metric per variant (clipped to the 0.5-99.5% range)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100)
    axes = figure.subplots()
    pooled = np.concatenate([v for v in values.values() if v.size]) if values else np.array([])
    if pooled.size:
        low, high = np.quantile(pooled, [0.005, 0.995])
        bins: list[float] | int = np.linspace(low, high, 50).tolist() if high > low else 10
        for variant, v in values.items():
            axes.hist(
                np.clip(v, low, high),
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.5,
                label=f"{variant} (n={v.size})",
            )
        axes.legend(fontsize=8)
    axes.set_title(f"{metric}: distribution per variant")
    axes.grid(alpha=0.3)
    return _svg(figure)


def _distributions(
    result: AnalysisResult, data: Mapping[str, Any] | None, variant_col: str, metrics: Sequence[str]
) -> dict[str, str]:
    if data is None:
        return {}
    from splitlab.analysis import variant_labels

    codes, names = variant_labels(data[variant_col])
    rng = np.random.default_rng(0)
    plots = {}
    for name in metrics:
        if name not in data:
            continue
        values = np.asarray(data[name], dtype=np.float64)
        per_variant = {}
        for variant in result.variants:
            v = values[(codes == names.index(variant)) & np.isfinite(values)]
            if v.size > MAX_DISTRIBUTION_POINTS:
                v = rng.choice(v, MAX_DISTRIBUTION_POINTS, replace=False)
            per_variant[variant] = v
        plots[name] = distribution_svg(per_variant, name)
    return plots


def html_report(
    result: AnalysisResult,
    data: Mapping[str, Any] | None = None,
    variant_col: str = "variant",
    title: str = "SplitLab analysis",
) -> str:
    """A self-contained HTML page: summary tables, the effects plot, distributions if ``data``."""
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    summary = result.to_dict()
    mean_metrics = [n for n, m in result.metrics.items() if m.kind != "ratio"]
    return environment.get_template("analysis.html.j2").render(
        title=title,
        summary=summary,
        level=f"{1 - result.alpha:.0%}",
        effects=Markup(effects_svg(result)),
        distributions={
            k: Markup(v) for k, v in _distributions(result, data, variant_col, mean_metrics).items()
        },
        fmt=_fmt,
        pct=_pct,
        share=_share,
        p=_p,
    )


def _template_source(name: str) -> str:
    return (resources.files("splitlab.reports") / "templates" / name).read_text(encoding="utf-8")

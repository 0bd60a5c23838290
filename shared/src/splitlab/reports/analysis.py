"""Reports of an analysis: rich tables for the terminal and an HTML page with plots (effect
and CI per metric and variant, per-variant distributions when the per-unit data is at hand),
matplotlib inline as SVG.

Both render the JSON shape of :meth:`AnalysisResult.to_dict`, so one report serves
``splitlab analyze`` (a file) and ``splitlab results`` (the analyzer's answer, which adds
``experiment``, ``sample``, ``monitoring`` and ``guardrails``: shown when present).
"""

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

from splitlab.core.analysis.results import AnalysisResult
from splitlab.reports.covariates import balance_notes, cluster_note
from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import p_value as _p
from splitlab.reports.numbers import share as _share
from splitlab.reports.numbers import signed_percent as _pct

__all__ = ["analyzer_notes", "distribution_svg", "effects_svg", "html_report", "summary_tables"]

MAX_DISTRIBUTION_POINTS = 200_000

Results = AnalysisResult | Mapping[str, Any]
"""An analysis, or its JSON shape (``to_dict()``, or the analyzer's results body)."""


def _summary(result: Results) -> Mapping[str, Any]:
    return result.to_dict() if isinstance(result, AnalysisResult) else result


def _level(out: Mapping[str, Any]) -> str:
    return f"{1 - float(out['alpha']):.0%}"


def summary_tables(result: Results) -> list[Table]:
    """One table per metric (a row per treatment), then SRM, guardrails, sample and decisions."""
    out = _summary(result)
    level = _level(out)
    monitoring: Mapping[str, Any] = out.get("monitoring") or {}
    always_valid = bool(monitoring) and not out["sequential"]
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
            + (" - always-valid (sequential)" if out["sequential"] else "")
        )
        table = Table(title=title, title_justify="left")
        columns = [
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
        ]
        if always_valid:
            columns.append("always-valid p")
        for column in columns:
            table.add_column(column, justify="left" if column == "variant" else "right")
        for variant, c in metric["comparisons"].items():
            row = [
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
            ]
            if always_valid:
                row.append(
                    _p(monitoring.get(name, {}).get(variant, {}).get("always_valid_p_value"))
                )
            table.add_row(*row)
        notes = [metric["reason"]] if metric["requested_method"] == "auto" else []
        if metric["dropped_rows"]:
            notes.append(f"{metric['dropped_rows']} rows with a missing value dropped")
        if metric.get("cupac"):
            cupac = metric["cupac"]
            r2 = ", ".join(f"{k} {_fmt(v)}" for k, v in cupac["oof_r2"].items())
            notes.append(f"CUPAC model {cupac['model']} (out-of-fold R^2: {r2})")
            notes.extend(cupac["notes"])
        notes.extend(balance_notes(metric))
        statuses = {c["status"] for c in metric["comparisons"].values()} - {"ok"}
        notes.extend(sorted(statuses))
        if notes:
            table.caption = "; ".join(notes)
        tables.append(table)
    from splitlab.reports.metric_tests import tests_table
    from splitlab.reports.segments import segment_tables

    named = tests_table(out)
    if named is not None:
        tables.append(named)
    tables.extend(segment_tables(out))
    tables.append(_checks_table(out))
    return tables


def _checks_table(out: Mapping[str, Any]) -> Table:
    srm = out["srm"]
    checks = Table(title="Sample ratio, guardrails and decisions", title_justify="left")
    checks.add_column("check")
    checks.add_column("result")
    observed = ", ".join(f"{k} {v}" for k, v in srm["observed"].items())
    expected = ", ".join(f"{k} {w:.3g}" for k, w in srm["expected_weights"].items())
    checks.add_row(
        "SRM",
        f"{srm['status']} (p = {_p(srm['p_value'])}; observed {observed}; "
        f"expected weights {expected})",
    )
    sequential = srm.get("sequential")
    if sequential:
        checks.add_row(
            "SRM (always valid)",
            f"{sequential['status']} (p = {_p(sequential['p_value'])}, valid at every look; "
            "Dirichlet mixture over concentrations "
            f"{', '.join(f'{c:,.0f}' for c in sequential['concentrations'])})",
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
    for g in out.get("guardrails") or []:
        checks.add_row(
            f"guardrail {g['metric']} / {g['variant']}",
            f"{g['status']} (harm {_pct(g['harm'])}, margin {g['margin']:.1%}, "
            f"always-valid p {_p(g['always_valid_p_value'])})",
        )
    power = out.get("power_so_far")
    if power is not None:
        primary = next(iter(out["metrics"]))
        checks.add_row(
            f"power so far ({primary}, MDE {_share(out.get('mde'))})",
            ", ".join(f"{v} {_share(x)}" for v, x in power.items()),
        )
    clusters = cluster_note(out)
    if clusters is not None:
        checks.add_row(*clusters)
    for check, result in analyzer_notes(out):
        checks.add_row(check, result)
    for variant, d in out["decisions"].items():
        checks.add_row(f"decision: {variant}", f"{d['action']} - {'; '.join(d['reasons'])}")
    sample = out.get("sample")
    if sample:
        days = sample.get("days_to_planned")
        checks.add_row(
            "sample",
            f"{sample.get('total_units')} units, planned {sample.get('planned_sample_size') or '-'}"
            + (f", {_fmt(days)} days to plan" if days is not None else ""),
        )
    if out["rows"]["missing_variant"]:
        checks.add_row("rows", f"{out['rows']['missing_variant']} rows without a variant dropped")
    return checks


def analyzer_notes(out: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the analyzer's results add that an owner must not miss, as (check, result) rows:
    variants whose predictions fell back to control's model, metrics the requested method
    could not adjust, values excluded beyond the limit, shadow variants. Empty for a file."""
    notes: list[tuple[str, str]] = []
    fallback = out.get("fallback") or {}
    mostly = set(fallback.get("mostly_fell_back") or [])
    for variant, f in (fallback.get("variants") or {}).items():
        if f.get("fallbacks"):
            flag = " - MOSTLY CONTROL'S MODEL" if variant in mostly else ""
            notes.append(
                (
                    f"fallback {variant}",
                    f"{_share(f['share'])} of {f['predictions']} predictions answered by "
                    f"control's model{flag}",
                )
            )
    methods = out.get("methods") or {}
    for name, why in (methods.get("not_applied") or {}).items():
        notes.append((f"method {name}", f"{methods.get('requested')} not applied: {why}"))
    excluded = dict(out.get("excluded_values") or {})
    limit = excluded.pop("limit", None)
    for kind, count in excluded.items():
        if count:
            notes.append((f"excluded {kind}", f"{count} beyond +-{_fmt(limit)}"))
    for variant, shadow in (out.get("shadows") or {}).items():
        means = ", ".join(f"{m} {_fmt(v)}" for m, v in (shadow.get("means") or {}).items())
        notes.append(
            (f"shadow {variant}", f"{shadow.get('units')} units, not compared; means: {means}")
        )
    return notes


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def effects_svg(result: Results) -> str:
    """Relative effect with its CI, one row per metric and treatment."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out = _summary(result)
    alpha = float(out["alpha"])
    rows = []
    for name, metric in out["metrics"].items():
        for variant, c in metric["comparisons"].items():
            rows.append(
                (
                    f"{name}: {variant}",
                    _finite(c["rel_effect"]),
                    _finite(c["rel_ci_lower"]),
                    _finite(c["rel_ci_upper"]),
                    _finite(c["p_value"]),
                )
            )
    figure = Figure(figsize=(8, 0.5 * len(rows) + 1.2), dpi=100)
    axes = figure.subplots()
    for i, (_, effect, low, high, p) in enumerate(rows):
        color = "#1f7a3a" if math.isfinite(p) and p < alpha else "#555555"
        if not math.isfinite(effect):
            continue
        lo = low if math.isfinite(low) else effect
        hi = high if math.isfinite(high) else effect
        axes.plot([lo * 100, hi * 100], [i, i], color=color, linewidth=2)
        axes.plot([effect * 100], [i], "o", color=color)
    axes.axvline(0, color="#999", linestyle=":")
    axes.set_yticks(range(len(rows)), [r[0] for r in rows])
    axes.invert_yaxis()
    axes.set_xlabel(f"relative effect (%) with {1 - alpha:.0%} CI")
    axes.grid(alpha=0.3, axis="x")
    return _svg(figure)


def _finite(value: float | None) -> float:
    """JSON's ``null`` (NaN, an infinite bound) as NaN, for plotting."""
    return math.nan if value is None else float(value)


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
    variants: Sequence[str],
    data: Mapping[str, Any] | None,
    variant_col: str,
    metrics: Sequence[str],
) -> dict[str, str]:
    if data is None:
        return {}
    from splitlab.core.analysis.analyze import variant_labels

    codes, names = variant_labels(data[variant_col])
    rng = np.random.default_rng(0)
    plots = {}
    for name in metrics:
        if name not in data:
            continue
        values = np.asarray(data[name], dtype=np.float64)
        per_variant = {}
        for variant in variants:
            v = values[(codes == names.index(variant)) & np.isfinite(values)]
            if v.size > MAX_DISTRIBUTION_POINTS:
                v = rng.choice(v, MAX_DISTRIBUTION_POINTS, replace=False)
            per_variant[variant] = v
        plots[name] = distribution_svg(per_variant, name)
    return plots


def html_report(
    result: Results,
    data: Mapping[str, Any] | None = None,
    variant_col: str = "variant",
    title: str = "SplitLab analysis",
) -> str:
    """A self-contained HTML page (it starts with ``<!doctype html>``): summary tables, the
    effects plot, per-variant distributions when the per-unit ``data`` is given, and the
    analyzer's sample, guardrail and always-valid columns when ``result`` carries them."""
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    from splitlab.reports.segments import segments_html

    summary = _summary(result)
    mean_metrics = [n for n, m in summary["metrics"].items() if m["kind"] != "ratio"]
    monitoring = summary.get("monitoring") or {}
    from splitlab.reports.metric_tests import TEST_COLUMNS, test_rows, test_statuses

    return environment.get_template("analysis.html.j2").render(
        test_columns=TEST_COLUMNS,
        test_rows=test_rows(summary),
        test_statuses=test_statuses(summary),
        title=title,
        summary=summary,
        level=_level(summary),
        experiment=summary.get("experiment"),
        sample=summary.get("sample"),
        guardrails=summary.get("guardrails") or [],
        power_so_far=summary.get("power_so_far"),
        notes=analyzer_notes(summary),
        monitoring=monitoring if not summary["sequential"] else {},
        computed_at=summary.get("computed_at"),
        effects=Markup(effects_svg(summary)),
        segments=segments_html(summary),
        distributions={
            k: Markup(v)
            for k, v in _distributions(summary["variants"], data, variant_col, mean_metrics).items()
        },
        fmt=_fmt,
        pct=_pct,
        share=_share,
        p=_p,
    )


def _template_source(name: str) -> str:
    return (resources.files("splitlab.reports") / "templates" / name).read_text(encoding="utf-8")

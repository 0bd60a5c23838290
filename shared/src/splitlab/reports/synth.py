"""Reports for ``splitlab.synthetic_control``: a rich table for the terminal and an HTML page
with the actual-against-counterfactual plot and its placebo band (matplotlib, embedded inline)."""

from __future__ import annotations

import base64
import io
import math
import statistics
from importlib import resources
from typing import Any

import jinja2
from rich.table import Table

from splitlab.core.synth.panel import format_time
from splitlab.core.synth.result import SyntheticControlResult
from splitlab.reports.numbers import number as _fmt
from splitlab.reports.numbers import signed_percent as _pct

MAX_WEIGHTS_SHOWN = 10


def top_weights(
    result: SyntheticControlResult, limit: int = MAX_WEIGHTS_SHOWN
) -> list[tuple[str, float]]:
    """Donors by absolute weight, largest first, dropping weights that round to zero."""
    ranked = sorted(result.weights.items(), key=lambda kv: -abs(kv[1]))
    return [(unit, w) for unit, w in ranked if abs(w) >= 5e-4][:limit]


def p_value_explanation(result: SyntheticControlResult) -> str | None:
    """How the placebo p-value was reached, and why another method gives another one.

    The p-value ranks the treated unit's post/pre RMSPE ratio among the donors', each donor
    refit as if treated with the same method; the denominators are pre-period fits, which
    differ from method to method, so the ranking does too.
    """
    ratios = [r.ratio for r in result.placebos if math.isfinite(r.ratio)]
    if not ratios or not math.isfinite(result.p_value):
        return None
    treated_ratio = result.post_rmspe / result.pre_rmspe if result.pre_rmspe > 0 else math.inf
    at_least = sum(1 for r in ratios if r >= treated_ratio)
    placebo_pre = statistics.median(r.pre_rmspe for r in result.placebos)
    n = len(result.placebos)
    return (
        f"p = (1 + {at_least}) / ({n} + 1) = {_fmt(result.p_value)}: {at_least} of {n} donors, "
        f"each refit as if treated with the same method ({result.method}), have a post/pre "
        f"RMSPE ratio at least the treated one's ({_fmt(treated_ratio)}). The ratio's "
        f"denominator is the pre-period fit, and each method fits the placebos' pre-periods "
        f"differently (here a median placebo pre-period RMSPE of {_fmt(placebo_pre)} against "
        f"the treated unit's {_fmt(result.pre_rmspe)}), so the ranking and p differ between "
        "methods on the same panel: a method that fits pre-periods almost exactly gives tiny "
        "denominators and extreme ratios to placebos and treated alike, while a method that "
        "fits the treated unit better than its placebos gives it a small ratio. Compare p "
        "only within one method."
    )


def summary_table(result: SyntheticControlResult) -> Table:
    """The headline numbers, the main donors and the warnings as one rich table."""
    table = Table(title=f"Synthetic control: {', '.join(result.treated)} ({result.method})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("effect (att)", _fmt(result.att)),
        (result.interval_label, f"[{_fmt(result.att_ci_lower)}, {_fmt(result.att_ci_upper)}]"),
        ("relative effect", _pct(result.rel_att)),
        ("placebo p-value", _fmt(result.p_value)),
        ("pre-period RMSPE", _fmt(result.pre_rmspe)),
        ("post-period RMSPE", _fmt(result.post_rmspe)),
        ("intervention", str(format_time(result.intervention_time))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for unit, weight in top_weights(result):
        table.add_row(f"weight: {unit}", _fmt(weight))
    for note in result.warnings:
        table.add_row("note", note)
    explanation = p_value_explanation(result)
    if explanation:
        table.add_row("p-value, how", explanation)
    return table


def plot_png(result: SyntheticControlResult) -> bytes:
    """Actual and counterfactual over time, the placebo band, and the intervention line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    times = [e.time for e in result.effects]
    actual = [e.actual for e in result.effects]
    counterfactual = [e.counterfactual for e in result.effects]
    figure = Figure(figsize=(9, 4.5), dpi=110)
    axes = figure.subplots()
    if result.band_lower is not None and result.band_upper is not None:
        lower = [c + b for c, b in zip(counterfactual, result.band_lower, strict=True)]
        upper = [c + b for c, b in zip(counterfactual, result.band_upper, strict=True)]
        axes.fill_between(
            times,
            lower,
            upper,
            color="#9ab8d8",
            alpha=0.45,
            label=f"placebo band ({1 - result.alpha:.0%})",
        )
    axes.plot(
        times,
        counterfactual,
        color="#1f4e79",
        linestyle="--",
        label=f"counterfactual ({result.method})",
    )
    axes.plot(times, actual, color="#c0392b", label=", ".join(result.treated))
    axes.axvline(result.intervention_time, color="#555", linestyle=":", label="intervention")
    axes.set_title(
        f"effect {_fmt(result.att)} [{_fmt(result.att_ci_lower)}, "
        f"{_fmt(result.att_ci_upper)}], p = {_fmt(result.p_value)}"
    )
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def html_report(result: SyntheticControlResult) -> str:
    """A self-contained HTML page (the plot is an inline PNG)."""
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    in_time: dict[str, Any] | None = None
    if result.in_time_placebo is not None:
        start = result.effects[result.in_time_placebo.start_index].time
        in_time = {"start": format_time(start), "att": result.in_time_placebo.att}
    return environment.get_template("synth.html.j2").render(
        summary=result.to_dict(),
        treated=", ".join(result.treated),
        intervention_time=format_time(result.intervention_time),
        selection=result.selection,
        p_value_explanation=p_value_explanation(result),
        level=f"{1 - result.alpha:.0%}",
        interval_label=result.interval_label,
        weights=top_weights(result, limit=len(result.weights)),
        in_time=in_time,
        plot=base64.b64encode(plot_png(result)).decode("ascii"),
        fmt=_fmt,
        pct=_pct,
    )


def _template_source(name: str) -> str:
    return (resources.files("splitlab.reports") / "templates" / name).read_text(encoding="utf-8")

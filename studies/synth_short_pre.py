"""``auto`` on short pre-periods: is it ever far worse than the best single method?

Simulated panels from ``splitlab.core.synth.simulation.trending_panel``: a strong common upward
trend, units of very different sizes (outcome in the tens of thousands), two AR(1) factors,
noise relatively larger for small units, 5 post-periods and a known effect of 20% of the treated
unit's post-period level. Grid: pre-periods T0 in {5, 8, 12} x donors J in {20, 40, 60} x
noise in {0.01, 0.04} (relative, at unit size 1), ``N_SIM`` panels per cell, plus the
acceptance cell of 200 panels (T0 = 8, J = 50, noise 0.01).

Each panel is fit once per method with the functions ``synthetic_control`` calls (no placebos:
they do not change the estimate), and ``auto``'s estimate is the estimate of the method its
rule selects. Per cell and method: RMSE and median of the relative error of the average effect,
the share of panels within 25% of the truth, the share with an extreme donor coefficient (above
``EXTREME_WEIGHT``). ``auto`` is "far worse" in a cell when its RMSE exceeds ``FAR_WORSE`` times
the best single method's; the script exits non-zero if that happens anywhere.

Writes ``docs/studies/synth_short_pre.{json,md,png}``. Run:
``uv run python studies/synth_short_pre.py`` (8.5 minutes measured at a load average
of about 18 on 2 cores; less on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from splitlab.core.synth.counterfactual import METHODS, fit_counterfactual
from splitlab.core.synth.diagnostics import EXTREME_WEIGHT
from splitlab.core.synth.inference import inputs_for
from splitlab.core.synth.panel import build_panel
from splitlab.core.synth.selection import select_method
from splitlab.core.synth.simulation import trending_panel

OUT = Path(__file__).resolve().parents[1] / "docs" / "studies"
N_POST = 5
FAR_WORSE = 1.5
CELLS = [
    (noise, n_pre, n_donors)
    for noise in (0.01, 0.04)
    for n_pre in (5, 8, 12)
    for n_donors in (20, 40, 60)
]
ACCEPTANCE = (0.01, 8, 50)


def one_panel(noise: float, n_pre: int, n_donors: int, seed: int) -> dict[str, Any]:
    data, truth = trending_panel(n_donors, n_pre, N_POST, noise=noise, seed=seed)
    panel, _ = build_panel(
        data,
        unit_col="unit",
        time_col="time",
        outcome_col="outcome",
        treated="u0",
        intervention_time=n_pre,
        covariates=None,
        drop_incomplete=False,
    )
    inputs = inputs_for(panel, panel.treated, panel.donors)
    actual = panel.treated_outcome()
    errors: dict[str, float] = {}
    extreme: dict[str, bool] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for method in METHODS:
            fit = fit_counterfactual(method, inputs)
            att = float(np.mean(actual[n_pre:] - fit.values[n_pre:]))
            errors[method] = (att - truth) / truth
            extreme[method] = bool(np.max(np.abs(fit.weights)) > EXTREME_WEIGHT)
        chosen = select_method(inputs).method
    errors["auto"] = errors[chosen]
    extreme["auto"] = extreme[chosen]
    return {"errors": errors, "extreme": extreme, "chosen": chosen}


def summarise(noise: float, n_pre: int, n_donors: int, n_sim: int) -> dict[str, Any]:
    started = time.perf_counter()
    runs = [one_panel(noise, n_pre, n_donors, seed) for seed in range(n_sim)]
    methods = [*METHODS, "auto"]
    per_method = {}
    for method in methods:
        rel = np.array([r["errors"][method] for r in runs])
        per_method[method] = {
            "rmse": float(np.sqrt(np.mean(rel**2))),
            "median_abs": float(np.median(np.abs(rel))),
            "within_25pct": float(np.mean(np.abs(rel) <= 0.25)),
            "extreme_weights": float(np.mean([r["extreme"][method] for r in runs])),
        }
    best = min(METHODS, key=lambda m: per_method[m]["rmse"])
    ratio = per_method["auto"]["rmse"] / per_method[best]["rmse"]
    chosen = [r["chosen"] for r in runs]
    return {
        "noise": noise,
        "n_pre": n_pre,
        "n_donors": n_donors,
        "n_sim": n_sim,
        "methods": per_method,
        "best_single": best,
        "auto_rmse_over_best": ratio,
        "far_worse": ratio > FAR_WORSE,
        "chosen": {m: chosen.count(m) for m in METHODS},
        "seconds": round(time.perf_counter() - started, 1),
    }


def write(cells: list[dict[str, Any]], acceptance: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"far_worse_limit": FAR_WORSE, "cells": cells, "acceptance": acceptance}
    (OUT / "synth_short_pre.json").write_text(json.dumps(payload, indent=1) + "\n")
    head = (
        "| noise | T0 | J | RMSE of relative error: classic / augmented / forecast / **auto** "
        "| auto / best | within 25%: classic / augmented / forecast / **auto** "
        "| auto chose (c/a/f) | forecast extreme weights |"
    )
    lines = [
        "# auto on short pre-periods",
        "",
        "Produced by `studies/synth_short_pre.py`; design in its docstring. Relative error = "
        "(estimate - truth) / truth of the average effect; auto is far worse in a cell when its "
        f"RMSE exceeds {FAR_WORSE}x the best single method's.",
        "",
        head,
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in [*cells, acceptance]:
        m = c["methods"]
        rmse = " / ".join(f"{m[k]['rmse']:.3f}" for k in METHODS)
        within = " / ".join(f"{m[k]['within_25pct']:.2f}" for k in METHODS)
        chosen = "/".join(str(c["chosen"][k]) for k in METHODS)
        lines.append(
            f"| {c['noise']} | {c['n_pre']} | {c['n_donors']}"
            f"{' (acceptance, ' + str(c['n_sim']) + ' panels)' if c is acceptance else ''} | "
            f"{rmse} / **{m['auto']['rmse']:.3f}** | {c['auto_rmse_over_best']:.2f} | "
            f"{within} / **{m['auto']['within_25pct']:.2f}** | {chosen} | "
            f"{m['forecast']['extreme_weights']:.2f} |"
        )
    worst = max(cells, key=lambda c: c["auto_rmse_over_best"])
    lines += [
        "",
        f"Worst cell for auto: noise {worst['noise']}, T0 {worst['n_pre']}, J "
        f"{worst['n_donors']}: {worst['auto_rmse_over_best']:.2f}x the best single method "
        f"({worst['best_single']}). Acceptance cell: auto within 25% of the truth in "
        f"{acceptance['methods']['auto']['within_25pct']:.1%} of {acceptance['n_sim']} panels.",
        "",
        "![auto against the single methods](synth_short_pre.png)",
        "",
    ]
    (OUT / "synth_short_pre.md").write_text("\n".join(lines))

    figure = Figure(figsize=(11, 4), dpi=100)
    axes = figure.subplots(1, 2, sharey=True)
    colours = {"classic": "#5b8db8", "augmented": "#8fbc8f", "forecast": "#d9a441"}
    for ax, noise in zip(axes, (0.01, 0.04), strict=True):
        group = [c for c in cells if c["noise"] == noise]
        x = np.arange(len(group))
        for method, colour in colours.items():
            ax.plot(
                x, [c["methods"][method]["rmse"] for c in group], "o", color=colour, label=method
            )
        ax.plot(
            x,
            [c["methods"]["auto"]["rmse"] for c in group],
            "k_",
            markersize=22,
            markeredgewidth=2.5,
            label="auto",
        )
        ax.set_xticks(x, [f"T0={c['n_pre']}\nJ={c['n_donors']}" for c in group], fontsize=7)
        ax.set_title(f"noise {noise}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("RMSE of (estimate - truth) / truth")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(OUT / "synth_short_pre.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-sim", type=int, default=50)
    parser.add_argument("--n-acceptance", type=int, default=200)
    args = parser.parse_args()
    cells = []
    for noise, n_pre, n_donors in CELLS:
        cell = summarise(noise, n_pre, n_donors, args.n_sim)
        print(
            f"noise {noise} T0 {n_pre} J {n_donors}: auto/best "
            f"{cell['auto_rmse_over_best']:.2f}, {cell['seconds']} s",
            flush=True,
        )
        cells.append(cell)
    acceptance = summarise(*ACCEPTANCE, args.n_acceptance)
    print(f"acceptance: within 25% {acceptance['methods']['auto']['within_25pct']:.3f}")
    write(cells, acceptance)
    return 1 if any(c["far_worse"] for c in cells) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The classic method against an independent implementation (pysyncon) on two public panels.

For Proposition 99 (causalpy's data file) and the Texas prison panel (causaldata's), the
treated unit and every donor in turn (placebo, pool = the other donors) are fit twice with the
same estimator, outcome-only classic synthetic control (``V = I`` on the pre-period outcomes):

- SplitLab: ``synthetic_control(method="classic")``, non-negative least squares with the
  sum-to-one row (``splitlab.core.synth.weights.simplex_weights``);
- pysyncon 1.x: its quadratic-programming step ``Synth.w_optimize`` (SciPy SLSQP from equal
  weights), on the same objective scaled by the root mean square of the donor matrix, with
  ``ftol=1e-14`` (with its default tolerance SLSQP stops early on the small states of the
  Texas panel: a pre-period RMSPE of 8.0 for Idaho where the optimum is 2.9).

Compared: donor weights, the treated unit's post/pre RMSPE ratio, its rank among all units and
the resulting placebo p-value, and the agreement of every unit's ratio (Spearman). Writes
``docs/studies/synth_reference.{json,md}``. Run: ``uv run python studies/synth_reference.py``
(a few minutes: SLSQP at that tolerance takes about a second per fit).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pysyncon import Synth
from scipy import stats

from splitlab.core.synth import synthetic_control

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "synth"))
from public_panels import PublicPanel, load_prop99, load_texas  # noqa: E402

OUT = ROOT / "docs" / "studies"


def reference_weights(donors_pre: np.ndarray, treated_pre: np.ndarray) -> np.ndarray:
    """pysyncon's QP step on ``min ||x1 - X0 w||^2`` over the simplex (periods x donors)."""
    scale = float(np.sqrt(np.mean(donors_pre**2)))
    weights, _ = Synth.w_optimize(
        V_mat=np.eye(donors_pre.shape[0]),
        X0=donors_pre / scale,
        X1=treated_pre / scale,
        qp_options={"maxiter": 10_000, "ftol": 1e-14},
    )
    return np.asarray(weights, dtype=np.float64)


def ratio(series: np.ndarray, fitted: np.ndarray, n_pre: int) -> tuple[float, float]:
    gap = series - fitted
    pre = float(np.sqrt(np.mean(gap[:n_pre] ** 2)))
    post = float(np.sqrt(np.mean(gap[n_pre:] ** 2)))
    return pre, post / pre


def rank_of(ratios: dict[str, float], unit: str) -> int:
    return 1 + sum(1 for u, r in ratios.items() if u != unit and r >= ratios[unit])


def compare(panel: PublicPanel) -> dict[str, Any]:
    started = time.perf_counter()
    wide = panel.data.pivot(index="unit", columns="time", values="outcome")
    n_pre = int((wide.columns < panel.intervention_time).sum())
    donors = [u for u in wide.index if u != panel.treated]
    ours = synthetic_control(
        panel.data,
        unit_col="unit",
        time_col="time",
        outcome_col="outcome",
        treated=panel.treated,
        intervention_time=panel.intervention_time,
        method="classic",
    )
    w_ours = np.array([ours.weights[u] for u in donors])
    outcomes = wide.to_numpy(dtype=np.float64)
    index = {u: i for i, u in enumerate(wide.index)}

    def fit(unit: str, pool: list[str]) -> tuple[np.ndarray, float, float]:
        Y0 = outcomes[[index[u] for u in pool]].T
        y = outcomes[index[unit]]
        w = reference_weights(Y0[:n_pre], y[:n_pre])
        pre, r = ratio(y, Y0 @ w, n_pre)
        return w, pre, r

    w_ref, pre_ref, ratio_ref_treated = fit(panel.treated, donors)
    ratios_ours = {r.unit: r.ratio for r in ours.placebos}
    ratios_ours[panel.treated] = ours.post_rmspe / ours.pre_rmspe
    pre_ours = {r.unit: r.pre_rmspe for r in ours.placebos}
    ratios_ref = {panel.treated: ratio_ref_treated}
    pre_placebo_ref = {}
    for unit in donors:
        _, pre_placebo_ref[unit], ratios_ref[unit] = fit(unit, [d for d in donors if d != unit])
    units = list(ratios_ref)
    a = np.array([ratios_ours[u] for u in units])
    b = np.array([ratios_ref[u] for u in units])

    def top(weights: np.ndarray) -> dict[str, float]:
        order = np.argsort(-weights)[:5]
        return {donors[i]: round(float(weights[i]), 4) for i in order}

    rank_ours, rank_ref = rank_of(ratios_ours, panel.treated), rank_of(ratios_ref, panel.treated)
    worst = max(donors, key=lambda u: abs(ratios_ours[u] - ratios_ref[u]) / ratios_ref[u])
    return {
        "panel": panel.name,
        "treated": panel.treated,
        "n_donors": len(donors),
        "n_pre": n_pre,
        "max_abs_weight_difference": float(np.max(np.abs(w_ours - w_ref))),
        "top_weights_splitlab": top(w_ours),
        "top_weights_pysyncon": top(w_ref),
        "pre_rmspe_splitlab": ours.pre_rmspe,
        "pre_rmspe_pysyncon": pre_ref,
        "ratio_splitlab": ratios_ours[panel.treated],
        "ratio_pysyncon": ratio_ref_treated,
        "rank_splitlab": rank_ours,
        "rank_pysyncon": rank_ref,
        "p_value_splitlab": ours.p_value,
        "p_value_pysyncon": rank_ref / (len(donors) + 1),
        "ratio_spearman": float(stats.spearmanr(a, b).statistic),
        "max_relative_ratio_difference": float(np.max(np.abs(a - b) / b)),
        "largest_difference": {
            "unit": worst,
            "ratio_splitlab": ratios_ours[worst],
            "ratio_pysyncon": ratios_ref[worst],
            "pre_rmspe_splitlab": pre_ours[worst],
            "pre_rmspe_pysyncon": pre_placebo_ref[worst],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def write(results: list[dict[str, Any]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    import pysyncon  # noqa: F401  (only for its version)

    payload = {"pysyncon": version("pysyncon"), "results": results}
    (OUT / "synth_reference.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Classic synthetic control against pysyncon",
        "",
        f"Produced by `studies/synth_reference.py` (pysyncon {payload['pysyncon']}); same "
        "estimator (outcome-only, `V = I`), independent solvers; every unit refit as treated.",
        "",
        "| panel | donors x pre-periods | max abs weight difference | treated pre-RMSPE "
        "(SplitLab / pysyncon) | post/pre ratio | rank of treated | p-value | Spearman of all "
        "ratios | max relative ratio difference |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['panel']} | {r['n_donors']} x {r['n_pre']} | "
            f"{r['max_abs_weight_difference']:.2g} | {r['pre_rmspe_splitlab']:.4g} / "
            f"{r['pre_rmspe_pysyncon']:.4g} | {r['ratio_splitlab']:.4g} / "
            f"{r['ratio_pysyncon']:.4g} | {r['rank_splitlab']} / {r['rank_pysyncon']} | "
            f"{r['p_value_splitlab']:.3f} / {r['p_value_pysyncon']:.3f} | "
            f"{r['ratio_spearman']:.4f} | {r['max_relative_ratio_difference']:.2%} |"
        )
    lines += [
        "",
        "Largest difference in a placebo's ratio (the smaller pre-period RMSPE is the "
        "better solution of the same problem):",
        "",
    ]
    for r in results:
        d = r["largest_difference"]
        lines.append(
            f"- {r['panel']}: {d['unit']}, ratio {d['ratio_splitlab']:.4g} / "
            f"{d['ratio_pysyncon']:.4g}, pre-period RMSPE {d['pre_rmspe_splitlab']:.4g} / "
            f"{d['pre_rmspe_pysyncon']:.4g}"
        )
    lines += ["", "Main donors:", ""]
    for r in results:
        lines.append(f"- {r['panel']}, SplitLab: {r['top_weights_splitlab']}")
        lines.append(f"- {r['panel']}, pysyncon: {r['top_weights_pysyncon']}")
    (OUT / "synth_reference.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    results = []
    for load in (load_prop99, load_texas):
        result = compare(load())
        print(json.dumps(result), flush=True)
        results.append(result)
    write(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibration study for ``splitlab.synthetic_control`` (issue 7's acceptance).

Simulated factor-model panels (unit and time effects, two AR(1) factors, 40 units = 1 treated
+ 39 donors, 40 periods of which 30 before the intervention). For each method:

- coverage: the share of 300 panels with a known effect (+2, noise sd 1) whose interval for
  the average effect contains 2; acceptance band [0.90, 0.98];
- null p-values: 300 panels with no effect; the share of placebo p-values below 0.05,
  acceptance band [0.02, 0.08] (with 39 donors p is a multiple of 1/40, so P(p < 0.05) = 0.05
  exactly under uniformity).

Writes ``docs/studies/synth_calibration.{json,md,png}``. Run:
``uv run python studies/synth_calibration.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from splitlab.core.synth import synthetic_control
from splitlab.core.synth.simulation import factor_panel

OUT = Path(__file__).resolve().parents[1] / "docs" / "studies"
N_DONORS, N_PERIODS, N_PRE, EFFECT = 39, 40, 30, 2.0
COVERAGE_BAND, NULL_BAND = (0.90, 0.98), (0.02, 0.08)


def run_method(method: str, n_sim: int) -> dict[str, Any]:
    args = {
        "unit_col": "unit",
        "time_col": "time",
        "outcome_col": "outcome",
        "treated": "u0",
        "intervention_time": N_PRE,
        "method": method,
    }
    covered, widths, errors, p_values, chosen = [], [], [], [], []
    started = time.perf_counter()
    for seed in range(n_sim):
        res = synthetic_control(
            factor_panel(N_DONORS + 1, N_PERIODS, N_PRE, effect=EFFECT, seed=seed), **args
        )
        covered.append(bool(res.att_ci_lower <= EFFECT <= res.att_ci_upper))
        widths.append(res.att_ci_upper - res.att_ci_lower)
        errors.append(res.att - EFFECT)
        null = synthetic_control(
            factor_panel(N_DONORS + 1, N_PERIODS, N_PRE, effect=0.0, seed=1_000_000 + seed),
            **args,
        )
        p_values.append(null.p_value)
        chosen.append(null.method)
    coverage = float(np.mean(covered))
    share = float(np.mean(np.array(p_values) < 0.05))
    return {
        "method": method,
        "n_sim": n_sim,
        "coverage": coverage,
        "coverage_band": COVERAGE_BAND,
        "coverage_ok": COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1],
        "null_share_p_below_0.05": share,
        "null_band": NULL_BAND,
        "null_ok": NULL_BAND[0] <= share <= NULL_BAND[1],
        "null_mean_p": float(np.mean(p_values)),
        "median_ci_width": float(np.median(widths)),
        "att_bias": float(np.mean(errors)),
        "att_rmse": float(np.sqrt(np.mean(np.square(errors)))),
        "methods_chosen_under_null": {m: chosen.count(m) for m in sorted(set(chosen))},
        "seconds": round(time.perf_counter() - started, 1),
        "null_p_values": p_values,
    }


def write_outputs(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    OUT.mkdir(parents=True, exist_ok=True)
    design = {
        "n_donors": N_DONORS,
        "n_periods": N_PERIODS,
        "n_pre": N_PRE,
        "effect": EFFECT,
        "model": "y_it = a_i + d_t + 2 l_i'f_t + e_it, f AR(1) rho=0.7, e ~ N(0,1)",
    }
    payload = {"design": design, "results": results}
    (OUT / "synth_calibration.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Synthetic control calibration study",
        "",
        f"Design: {design['model']}; {N_DONORS} donors + 1 treated, {N_PERIODS} periods, "
        f"intervention after {N_PRE}; known effect {EFFECT}. Produced by "
        "`studies/synth_calibration.py`.",
        "",
        "| method | sims | CI coverage (band 0.90-0.98) | null share p<0.05 (band 0.02-0.08) "
        "| null mean p | median CI width | ATT RMSE | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['n_sim']} | {r['coverage']:.3f} "
            f"{'ok' if r['coverage_ok'] else 'MISS'} | {r['null_share_p_below_0.05']:.3f} "
            f"{'ok' if r['null_ok'] else 'MISS'} | {r['null_mean_p']:.3f} | "
            f"{r['median_ci_width']:.2f} | {r['att_rmse']:.2f} | {r['seconds']} |"
        )
    lines += ["", "![null p-value histograms](synth_calibration.png)", ""]
    (OUT / "synth_calibration.md").write_text("\n".join(lines))
    figure = Figure(figsize=(3.2 * len(results), 3), dpi=100)
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for ax, r in zip(axes, results, strict=True):
        ax.hist(r["null_p_values"], bins=np.linspace(0, 1, 11), color="#5b8db8")
        ax.axhline(r["n_sim"] / 10, color="k", linestyle=":")
        ax.set_title(f"{r['method']}: coverage {r['coverage']:.2f}")
        ax.set_xlabel("placebo p-value under no effect")
    figure.tight_layout()
    figure.savefig(OUT / "synth_calibration.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-sim", type=int, default=300)
    parser.add_argument(
        "--methods", nargs="*", default=["classic", "augmented", "forecast", "auto"]
    )
    args = parser.parse_args()
    results = []
    for method in args.methods:
        result = run_method(method, args.n_sim)
        print(
            f"{method}: coverage {result['coverage']:.3f}, null share p<0.05 "
            f"{result['null_share_p_below_0.05']:.3f}, {result['seconds']} s",
            flush=True,
        )
        results.append(result)
    write_outputs(results)
    return 0 if all(r["coverage_ok"] and r["null_ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Simulation study of ratio CUPED (issue 20): a click-through ratio adjusted by the delta method
with pre-period covariates on its numerator and denominator.

``make study`` runs it; results go to ``docs/studies/ratio_cuped.{md,json,png}``.

Each dataset has ``--units`` users, half in treatment. A user has an activity level and a
click propensity; sessions in the experiment and in the pre-period are Poisson of the same
activity, clicks are binomial of the sessions with the user's propensity, times ``1 + LIFT`` in
treatment. The metric is clicks / sessions (a ratio of per-arm sums), so the true effect is
``LIFT`` times the population ratio E[sessions p] / E[sessions], computed once from a population
of 4,000,000 users. For every dataset ``splitlab.analyze(..., ratio_metrics={"ctr": ("clicks",
"sessions")}, covariates=["clicks_pre", "sessions_pre"])`` runs with ``method="none"`` (the delta
method alone) and ``method="cuped"`` (ratio CUPED). Checks: ratio CUPED's A/A false-positive
rate in [0.035, 0.065], its coverage under the lift in [0.935, 0.965], its CI narrower than the
unadjusted one. Monte-Carlo SEs are printed beside every rate. One process, one thread.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from montecarlo import checks_table, rate, study_main

from splitlab.core.analysis.analyze import analyze

LIFT = 0.08
"""Relative lift of every user's click propensity in treatment."""
COVARIATES = ["clicks_pre", "sessions_pre"]
COVERAGE_BAND = (0.935, 0.965)
FPR_BAND = (0.035, 0.065)
ALPHA = 0.05


def _users(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    activity = rng.gamma(2.0, 10.0, n)
    propensity = rng.beta(2.0, 12.0, n)
    return activity, propensity


def simulate(rng: np.random.Generator, units: int, lift: float) -> pd.DataFrame:
    """One experiment: a row per user with the experiment's and the pre-period's counts."""
    activity, propensity = _users(rng, units)
    treated = rng.random(units) < 0.5
    sessions = rng.poisson(activity) + 1
    sessions_pre = rng.poisson(activity) + 1
    clicks = rng.binomial(sessions, np.clip(propensity * (1 + lift * treated), 0, 1))
    clicks_pre = rng.binomial(sessions_pre, propensity)
    return pd.DataFrame(
        {
            "variant": np.where(treated, "treatment", "control"),
            "clicks": clicks.astype(float),
            "sessions": sessions.astype(float),
            "clicks_pre": clicks_pre.astype(float),
            "sessions_pre": sessions_pre.astype(float),
        }
    )


def true_effect(seed: int) -> float:
    """``LIFT`` x E[sessions p] / E[sessions] over a population of 4,000,000 users."""
    rng = np.random.default_rng(seed + 10_000)
    activity, propensity = _users(rng, 4_000_000)
    expected_sessions = activity + 1  # E[Poisson(a) + 1]
    return float(LIFT * (expected_sessions * propensity).sum() / expected_sessions.sum())


def run(replications: int, units: int, seed: int) -> dict[str, Any]:
    truth = true_effect(seed)
    rows: dict[str, dict[str, dict[str, list[float]]]] = {
        scenario: {m: {"effect": [], "lower": [], "upper": [], "p": [], "vr": []}
                   for m in ("none", "cuped")}
        for scenario in ("aa", "effect")
    }  # fmt: skip
    rng = np.random.default_rng(seed)
    for scenario, lift in (("aa", 0.0), ("effect", LIFT)):
        for _ in range(replications):
            frame = simulate(rng, units, lift)
            for method in ("none", "cuped"):
                result = analyze(
                    frame,
                    ratio_metrics={"ctr": ("clicks", "sessions")},
                    covariates=COVARIATES,
                    method=method,
                ).to_dict()
                metric = result["metrics"]["ctr"]
                comparison = metric["comparisons"]["treatment"]
                out = rows[scenario][method]
                out["effect"].append(comparison["effect"])
                out["lower"].append(comparison["ci_lower"])
                out["upper"].append(comparison["ci_upper"])
                out["p"].append(comparison["p_value"])
                out["vr"].append(comparison.get("variance_reduction") or 0.0)
    summary: dict[str, Any] = {"truth": truth, "scenarios": {}}
    for scenario, target in (("aa", 0.0), ("effect", truth)):
        summary["scenarios"][scenario] = {}
        for method, values in rows[scenario].items():
            effect = np.array(values["effect"])
            lower, upper = np.array(values["lower"]), np.array(values["upper"])
            summary["scenarios"][scenario][method] = {
                "truth": target,
                "coverage": rate((lower <= target) & (target <= upper)),
                "rejection": rate(np.array(values["p"]) < ALPHA),
                "bias": float(effect.mean() - target),
                "bias_mc_se": float(effect.std(ddof=1) / np.sqrt(effect.size)),
                "empirical_sd": float(effect.std(ddof=1)),
                "mean_ci_width": float((upper - lower).mean()),
                "variance_reduction": float(np.mean(values["vr"])),
            }
    return summary


def checks(summary: dict[str, Any]) -> dict[str, bool]:
    aa = summary["scenarios"]["aa"]["cuped"]
    effect = summary["scenarios"]["effect"]
    return {
        "ratio CUPED A/A false-positive rate in [0.035, 0.065]": FPR_BAND[0]
        <= aa["rejection"]["rate"]
        <= FPR_BAND[1],
        "ratio CUPED coverage under the lift in [0.935, 0.965]": COVERAGE_BAND[0]
        <= effect["cuped"]["coverage"]["rate"]
        <= COVERAGE_BAND[1],
        "ratio CUPED's CI narrower than the unadjusted delta method's": effect["cuped"][
            "mean_ci_width"
        ]
        < effect["none"]["mean_ci_width"],
    }


def write(
    summary: dict[str, Any], out_dir: Path, replications: int, units: int, cpu: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passed = checks(summary)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (out_dir / "ratio_cuped.json").write_text(
        json.dumps(
            {"generated_at": stamp, "replications": replications, "units": units,
             "cpu_s": cpu, "python": platform.python_version(), **summary, "checks": passed},
            indent=2,
        ) + "\n"
    )  # fmt: skip
    lines = [
        "# Ratio CUPED: a click-through ratio with pre-period covariates on both parts",
        "",
        f"Generated by `studies/ratio_cuped.py` on {stamp} ({cpu:.0f} s CPU, one process, one "
        "thread). Method: [statistics.md](../statistics.md). Raw numbers: `ratio_cuped.json`; "
        "plot: `ratio_cuped.png`.",
        "",
        "![coverage and interval width](ratio_cuped.png)",
        "",
        f"{replications} datasets per scenario of {units} users (half treated). The metric is "
        "clicks / sessions over each arm's users; covariates: the user's pre-period clicks and "
        f"sessions. Under the effect every user's click propensity is {1 + LIFT:g} times its "
        f"control value, a true effect on the ratio of {summary['truth']:.5f}. `none`: the "
        "delta method alone; `cuped`: ratio CUPED (the linearised ratio regressed on the "
        "covariates, one slope per covariate pooled across arms).",
        "",
        "| scenario | method | truth | coverage of the 95% CI (MC SE) | rejection at 0.05 "
        "(MC SE) | bias (MC SE) | empirical SD | mean CI width | variance reduction |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, methods in summary["scenarios"].items():
        for method, s in methods.items():
            lines.append(
                f"| {scenario} | {method} | {s['truth']:.5f} | {s['coverage']['rate']:.3f} "
                f"({s['coverage']['mc_se']:.3f}) | {s['rejection']['rate']:.3f} "
                f"({s['rejection']['mc_se']:.3f}) | {s['bias']:+.5f} ({s['bias_mc_se']:.5f}) | "
                f"{s['empirical_sd']:.5f} | {s['mean_ci_width']:.5f} | "
                f"{100 * s['variance_reduction']:.1f}% |"
            )
    lines += ["", *checks_table(passed)]
    (out_dir / "ratio_cuped.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    methods = ["none", "cuped"]
    effect = summary["scenarios"]["effect"]
    aa = summary["scenarios"]["aa"]
    axes[0].bar(methods, [effect[m]["coverage"]["rate"] for m in methods], color="#4c72b0")
    axes[0].bar(methods, [aa[m]["rejection"]["rate"] for m in methods], color="#dd8452")
    axes[0].axhspan(*COVERAGE_BAND, color="#4c72b0", alpha=0.15)
    axes[0].axhspan(*FPR_BAND, color="#dd8452", alpha=0.15)
    axes[0].set_title("coverage (blue) and A/A false positives (orange)")
    axes[1].bar(methods, [effect[m]["mean_ci_width"] for m in methods], color="#55a868")
    axes[1].set_title("mean width of the 95% CI")
    fig.tight_layout()
    fig.savefig(out_dir / "ratio_cuped.png", dpi=110)


if __name__ == "__main__":
    raise SystemExit(study_main(__doc__, run, write, checks, seed=20))

"""Simulation study of allocation periods (issue 14): a ramp from 50/50 to 10/90 mid-way through
an experiment whose baseline drifts. ``make study`` runs it; results go to ``docs/studies/``.

Scenarios (every dataset is simulated afresh from its own seed):

1. Effects: ``--replications`` experiments of ``--n`` units arriving uniformly over time; the
   metric's baseline rises linearly with the arrival time (``DRIFT`` from first to last unit), a
   pre-period covariate explains part of it, the true effect is ``EFFECT``. Units arriving in
   the first half get treatment with probability 0.5, in the second half 0.9 (period 1). For
   none, cuped and regression: the per-period (stratified) estimator's 95% CI must cover the
   true effect in [0.935, 0.965] of the datasets and be unbiased (|bias| < 3 Monte-Carlo SE);
   the pooled estimator (periods ignored, as before) is shown beside it with its bias.
2. SRM under the null with ramps: ``--srm-replications`` experiments whose three periods
   (50/50, 30/70, 10/90; 1,000, 2,000 and 4,000 new units) follow their splits exactly. The
   combined per-period test's false-positive rate must match its level (|rate - alpha| < 3
   binomial SE at alpha = 0.05, 0.01 and the alert's 0.001); the pooled counts tested against
   the current (last) split, as before, are shown beside it.
3. SRM power: the same ramp where 10% of the treatment's units of the last period are lost:
   the detection rate at the alert's threshold (0.001).

Everything runs in this one process with one thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from splitlab.core.analysis.analyze import analyze_statistics, compute_statistics, count_by_period
from splitlab.core.stats.periods import period_srm_test
from splitlab.core.stats.srm import srm_test

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("none", "cuped", "regression")
COVERAGE_BAND = (0.935, 0.965)
ALPHA = 0.05
EFFECT = 0.2
DRIFT = 3.0
"""Rise of the baseline from the first to the last unit (in noise standard deviations)."""
RAMP = {0: {"control": 0.5, "treatment": 0.5}, 1: {"control": 0.1, "treatment": 0.9}}
SRM_SPLITS = ((0.5, 0.5), (0.3, 0.7), (0.1, 0.9))
SRM_UNITS = (1000, 2000, 4000)
SRM_LEVELS = (0.05, 0.01, 0.001)
VARIANTS = ["control", "treatment"]


def simulate(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One ramped experiment with a drifting baseline (units in arrival order)."""
    arrival = np.sort(rng.random(n))
    period = (arrival >= 0.5).astype(int)
    treated = rng.random(n) < np.where(period == 0, 0.5, 0.9)
    pre = rng.normal(size=n)
    y = DRIFT * arrival + pre + rng.normal(size=n) + EFFECT * treated
    return pd.DataFrame(
        {
            "variant": np.where(treated, "treatment", "control"),
            "period": period,
            "y": y,
            "y_pre": pre + 0.5 * rng.normal(size=n),
        }
    )


def effects(replications: int, n: int, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    estimates: dict[str, dict[str, list[float]]] = {
        f"{kind}_{m}": {"effect": [], "lower": [], "upper": []}
        for kind in ("periods", "pooled")
        for m in METHODS
    }
    for r in range(replications):
        data = simulate(np.random.default_rng(seed + r), n)
        # What splitlab.analyze(period_col=..., period_weights=...) runs, with the per-unit
        # reduction shared by the six analyses of a dataset.
        stats, counts, _ = compute_statistics(
            data, metrics=["y"], covariates=["y_pre"], period_col="period"
        )
        by_period = count_by_period(data, "variant", "control", "period")
        for method in METHODS:
            for kind, options in (
                ("periods", {"period_counts": by_period, "period_weights": RAMP}),
                ("pooled", {}),
            ):
                result = analyze_statistics(
                    stats,
                    counts,
                    method=method,
                    alpha=ALPHA,
                    **options,  # type: ignore[arg-type]
                )
                c = result.metrics["y"].comparisons["treatment"].comparison
                row = estimates[f"{kind}_{method}"]
                row["effect"].append(c.effect)
                row["lower"].append(c.ci_lower)
                row["upper"].append(c.ci_upper)
        if (r + 1) % 250 == 0:
            log(f"  effects: {r + 1}/{replications}")
    out: dict[str, Any] = {}
    for name, row in estimates.items():
        effect = np.asarray(row["effect"])
        covered = (np.asarray(row["lower"]) <= EFFECT) & (np.asarray(row["upper"]) >= EFFECT)
        mc_se = float(effect.std(ddof=1) / np.sqrt(effect.size))
        out[name] = {
            "coverage": float(covered.mean()),
            "bias": float(effect.mean() - EFFECT),
            "bias_z": float((effect.mean() - EFFECT) / mc_se),
            "empirical_sd": float(effect.std(ddof=1)),
            "mean_ci_half_width": float(
                np.mean((np.asarray(row["upper"]) - np.asarray(row["lower"])) / 2)
            ),
            "effects": [round(float(e), 5) for e in effect],
        }
    return out


def srm(replications: int, seed: int, loss: float) -> dict[str, Any]:
    """Combined per-period SRM test vs the pooled test against the last split."""
    rng = np.random.default_rng(seed)
    weights = {p: dict(zip(VARIANTS, s, strict=True)) for p, s in enumerate(SRM_SPLITS)}
    combined, pooled, last_period = [], [], []
    for _ in range(replications):
        counts = {}
        for p, (split, units) in enumerate(zip(SRM_SPLITS, SRM_UNITS, strict=True)):
            control, treatment = rng.multinomial(units, split)
            if p == len(SRM_SPLITS) - 1 and loss:
                treatment -= rng.binomial(treatment, loss)
            counts[p] = {"control": int(control), "treatment": int(treatment)}
        checked = period_srm_test(counts, weights, VARIANTS)
        combined.append(checked.combined.p_value)
        last_period.append(checked.periods[-1].srm.p_value)
        total = {v: sum(c[v] for c in counts.values()) for v in VARIANTS}
        pooled.append(srm_test(total, weights[len(SRM_SPLITS) - 1]).p_value)
    rates = {}
    for name, values in (
        ("combined", combined),
        ("last_period", last_period),
        ("pooled_against_current_split", pooled),
    ):
        array = np.asarray(values)
        rates[name] = {str(level): float((array < level).mean()) for level in SRM_LEVELS}
    return {"replications": replications, "loss": loss, "rejection_rates": rates}


def checks(results: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for m in METHODS:
        e = results["effects"][f"periods_{m}"]
        out[f"coverage_periods_{m}"] = COVERAGE_BAND[0] <= e["coverage"] <= COVERAGE_BAND[1]
        out[f"unbiased_periods_{m}"] = abs(e["bias_z"]) < 3
    null = results["srm_null"]
    for level in SRM_LEVELS:
        rate = null["rejection_rates"]["combined"][str(level)]
        se = (level * (1 - level) / null["replications"]) ** 0.5
        out[f"srm_fpr_at_{level}"] = abs(rate - level) < 3 * se
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = np.linspace(
        min(min(results["effects"][f"{k}_none"]["effects"]) for k in ("periods", "pooled")),
        max(max(results["effects"][f"{k}_none"]["effects"]) for k in ("periods", "pooled")),
        60,
    )
    for kind, color in (("periods", "#1f4e79"), ("pooled", "#b03a2e")):
        e = results["effects"][f"{kind}_none"]
        label = f"{kind}: coverage {e['coverage']:.3f}, bias {e['bias']:+.3f}"
        a.hist(e["effects"], bins=bins, alpha=0.6, color=color, label=label)
    a.axvline(EFFECT, color="#333", linestyle=":", label=f"true effect {EFFECT}")
    a.set_xlabel("estimated effect (method none)")
    a.set_ylabel("datasets")
    a.set_title("Ramp 50/50 -> 10/90 mid-way, drifting baseline")
    a.legend(fontsize=8)
    null = results["srm_null"]["rejection_rates"]
    x = np.arange(len(SRM_LEVELS))
    for i, (name, color) in enumerate(
        (("combined", "#1f4e79"), ("pooled_against_current_split", "#b03a2e"))
    ):
        rates = [max(null[name][str(level)], 1e-5) for level in SRM_LEVELS]
        b.bar(x + (i - 0.5) * 0.35, rates, 0.35, color=color, label=name.replace("_", " "))
    b.scatter(x, SRM_LEVELS, color="#333", marker="_", s=400, zorder=3, label="nominal level")
    b.set_yscale("log")
    b.set_xticks(x, [str(level) for level in SRM_LEVELS])
    b.set_xlabel("SRM threshold")
    b.set_ylabel("A/A false-positive rate")
    b.set_title("SRM with ramps (50/50, 30/70, 10/90), no real mismatch")
    b.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


def markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        "# Allocation periods: a ramp with a drifting baseline",
        "",
        f"Generated by `studies/allocation_periods.py` on {results['finished_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). Estimator and variance: "
        "[statistics.md](../statistics.md#allocation-periods-srm-and-effects-across-ramps). "
        "Raw numbers: `allocation_periods.json`; plot: `allocation_periods.png`.",
        "",
        "![effects and SRM](allocation_periods.png)",
        "",
        f"## Effects ({cfg['replications']} datasets of {cfg['n']} units)",
        "",
        f"Units arrive uniformly; the baseline rises by {DRIFT} noise SDs from the first to the "
        "last unit; the split is 50/50 for the first half (period 0) and 10/90 for the second "
        f"(period 1); the true effect is {EFFECT}; `y_pre` is a noisy pre-period covariate. "
        "`periods` passes `period_col` and the periods' splits; `pooled` ignores them (what "
        "the analyzer did before).",
        "",
        "| estimator | method | coverage of the 95% CI | bias | bias / MC SE | empirical SD |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("periods", "pooled"):
        for m in METHODS:
            e = results["effects"][f"{kind}_{m}"]
            lines.append(
                f"| {kind} | {m} | {e['coverage']:.3f} | {e['bias']:+.4f} | "
                f"{e['bias_z']:+.1f} | {e['empirical_sd']:.4f} |"
            )
    null, power = results["srm_null"], results["srm_power"]
    lines += [
        "",
        f"Band: coverage in [{COVERAGE_BAND[0]}, {COVERAGE_BAND[1]}], |bias| < 3 Monte-Carlo SE "
        "for the per-period estimator. The pooled estimator credits treatment with the drift: "
        "90% of the later (higher-baseline) units are treated against 50% of the earlier ones.",
        "",
        f"## SRM with ramps ({null['replications']} A/A experiments)",
        "",
        f"Three periods: splits {', '.join(f'{a:g}/{b:g}' for a, b in SRM_SPLITS)} with "
        f"{', '.join(str(u) for u in SRM_UNITS)} new units; counts drawn from each period's "
        "split (no mismatch).",
        "",
        "| test | " + " | ".join(f"FPR at {level}" for level in SRM_LEVELS) + " |",
        "| --- | " + " | ".join("---" for _ in SRM_LEVELS) + " |",
    ]
    for name, rates in null["rejection_rates"].items():
        lines.append(
            f"| {name} | " + " | ".join(f"{rates[str(level)]:.4f}" for level in SRM_LEVELS) + " |"
        )
    lines += [
        "",
        f"## SRM power: {power['loss']:.0%} of the last period's treatment units lost "
        f"({power['replications']} experiments)",
        "",
        "| test | " + " | ".join(f"detected at {level}" for level in SRM_LEVELS) + " |",
        "| --- | " + " | ".join("---" for _ in SRM_LEVELS) + " |",
    ]
    for name, rates in power["rejection_rates"].items():
        lines.append(
            f"| {name} | " + " | ".join(f"{rates[str(level)]:.3f}" for level in SRM_LEVELS) + " |"
        )
    lines += ["", "## Checks", "", "| check | passed |", "| --- | --- |"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in results["checks"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--n", type=int, default=2000, help="units per dataset")
    parser.add_argument("--srm-replications", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    log = lambda message: print(message, flush=True)  # noqa: E731
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "replications": args.replications,
            "n": args.n,
            "srm_replications": args.srm_replications,
            "alpha": ALPHA,
            "effect": EFFECT,
            "drift": DRIFT,
            "ramp": RAMP,
            "srm_splits": SRM_SPLITS,
            "srm_units": SRM_UNITS,
            "python": platform.python_version(),
        }
    }
    with threadpool_limits(1):
        log("effects")
        results["effects"] = effects(args.replications, args.n, 14_000_000, log)
        log("SRM under the null")
        results["srm_null"] = srm(args.srm_replications, 14_100_000, 0.0)
        log("SRM power")
        results["srm_power"] = srm(min(args.srm_replications, 5000), 14_200_000, 0.1)
    results["checks"] = checks(results)
    results["cpu_s"] = time.process_time() - cpu0
    results["wall_s"] = time.perf_counter() - wall0
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "allocation_periods.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "allocation_periods.md").write_text(markdown(results))
    plot(results, args.out / "allocation_periods.png")
    failed = [k for k, v in results["checks"].items() if not v]
    log(f"done in {results['wall_s']:.0f} s; failed checks: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

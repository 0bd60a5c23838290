"""Simulation study of cluster-level analysis (issue 20): randomised by user, analysed per row.

``make study`` runs it; results go to ``docs/studies/clustered.{md,json,png}``.

Each dataset has ``--users`` users, half in treatment; a user has ``1 + Poisson(3 e^{0.4 z})``
rows (sessions), heavier users more, and a level ``z`` shared by all their rows, so rows of one
user are correlated (intra-user correlation ``ICC``). Two per-row metrics:

- ``latency``: ``z + noise``, the treatment adds ``EFFECT`` to every row;
- ``clicked``: 0/1 with a per-user click probability (a logistic of ``z``), untouched.

The per-row estimand is the ratio of expected sums, so the true effect on ``latency`` is
``EFFECT`` and on ``clicked`` 0. For every dataset ``splitlab.analyze(..., cluster_col=
"user_id")`` (the delta method over users) and the naive per-row analysis (each row a unit) are
run. Checks: the cluster CI's coverage of the true effect in [0.93, 0.97] on ``latency``; its
A/A false-positive rate (``clicked``, and ``latency`` without the effect) in [0.035, 0.065]; the
naive per-row CI's coverage below 0.93 (too narrow). Monte-Carlo SEs are printed beside every
rate. One process, one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from montecarlo import checks_table, rate
from threadpoolctl import threadpool_limits

from splitlab.core.analysis.analyze import analyze

ROOT = Path(__file__).resolve().parents[1]
EFFECT = 0.2
ICC = 0.5
"""Share of a row's latency variance that is the user's level."""
COVERAGE_BAND = (0.93, 0.97)
FPR_BAND = (0.035, 0.065)
ALPHA = 0.05


def simulate(rng: np.random.Generator, users: int, effect: float) -> pd.DataFrame:
    """One experiment: a row per session, the variant and level per user (vectorised)."""
    z = rng.normal(size=users)
    treated = rng.random(users) < 0.5
    rows = 1 + rng.poisson(3.0 * np.exp(0.4 * z))
    user = np.repeat(np.arange(users), rows)
    zu = z[user]
    noise = rng.normal(size=user.size) * np.sqrt((1 - ICC) / ICC)
    latency = zu + noise + effect * treated[user]
    p_click = 1 / (1 + np.exp(-(-2.0 + 0.8 * zu)))
    clicked = (rng.random(user.size) < p_click).astype(float)
    return pd.DataFrame(
        {
            "user_id": user,
            "variant": np.where(treated[user], "treatment", "control"),
            "latency": latency,
            "clicked": clicked,
        }
    )


def run(replications: int, users: int, seed: int) -> dict[str, Any]:
    metrics = ["latency", "clicked"]
    views = ("cluster", "naive")
    out: dict[str, dict[str, dict[str, list[float]]]] = {
        scenario: {f"{v}_{m}": {"effect": [], "lower": [], "upper": [], "p": []}
                   for v in views for m in metrics}
        for scenario in ("effect", "aa")
    }  # fmt: skip
    rows_per_user = []
    for r in range(replications):
        for scenario, effect in (("effect", EFFECT), ("aa", 0.0)):
            data = simulate(np.random.default_rng(seed + 2 * r + (scenario == "aa")), users, effect)
            if scenario == "effect":
                rows_per_user.append(len(data) / users)
            for view in views:
                result = analyze(
                    data,
                    metrics=metrics,
                    method="none",
                    correction="none",
                    cluster_col="user_id" if view == "cluster" else None,
                )
                for m in metrics:
                    c = result.metrics[m].comparisons["treatment"].comparison
                    e = out[scenario][f"{view}_{m}"]
                    e["effect"].append(c.effect)
                    e["lower"].append(c.ci_lower)
                    e["upper"].append(c.ci_upper)
                    e["p"].append(c.p_value)
    summary: dict[str, Any] = {"rows_per_user": float(np.mean(rows_per_user))}
    for scenario, effect in (("effect", EFFECT), ("aa", 0.0)):
        for key, e in out[scenario].items():
            truth = effect if key.endswith("latency") else 0.0
            lower, upper = np.array(e["lower"]), np.array(e["upper"])
            est = np.array(e["effect"])
            summary[f"{scenario}_{key}"] = {
                "truth": truth,
                "coverage": rate((lower <= truth) & (truth <= upper)),
                "rejection": rate(np.array(e["p"]) < ALPHA),
                "bias": float(est.mean() - truth),
                "bias_mc_se": float(est.std(ddof=1) / np.sqrt(est.size)),
                "empirical_sd": float(est.std(ddof=1)),
                "mean_ci_half_width": float(np.mean((upper - lower) / 2)),
                "effects": [float(x) for x in est],
            }
    return summary


def checks(results: dict[str, Any]) -> dict[str, bool]:
    s = results["summary"]
    cover = s["effect_cluster_latency"]["coverage"]["rate"]
    return {
        "cluster_coverage_latency": COVERAGE_BAND[0] <= cover <= COVERAGE_BAND[1],
        "cluster_aa_fpr_latency": FPR_BAND[0]
        <= s["aa_cluster_latency"]["rejection"]["rate"]
        <= FPR_BAND[1],
        "cluster_aa_fpr_clicked": FPR_BAND[0]
        <= s["aa_cluster_clicked"]["rejection"]["rate"]
        <= FPR_BAND[1],
        "naive_coverage_too_low": s["effect_naive_latency"]["coverage"]["rate"] < COVERAGE_BAND[0],
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["summary"]
    figure, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    cluster, naive = s["effect_cluster_latency"], s["effect_naive_latency"]
    bins = np.linspace(min(cluster["effects"]), max(cluster["effects"]), 50)
    a.hist(cluster["effects"], bins=bins, color="#1f4e79", alpha=0.7, label="estimates")
    a.axvline(EFFECT, color="#333", linestyle=":", label=f"true effect {EFFECT}")
    for name, e, color in (("cluster", cluster, "#1f4e79"), ("naive", naive, "#b03a2e")):
        half = e["mean_ci_half_width"]
        a.errorbar(EFFECT, a.get_ylim()[1] * (0.9 if name == "cluster" else 0.8), xerr=half,
                   color=color, capsize=4,
                   label=f"{name} mean 95% CI half-width {half:.3f}")  # fmt: skip
    a.set_xlabel("estimated effect on latency per row")
    a.set_ylabel("datasets")
    a.set_title("Rows per user, randomised by user")
    a.legend(fontsize=8)
    labels = ["coverage\n(latency, effect)", "A/A FPR\n(latency)", "A/A FPR\n(clicked)"]
    values = {
        name: [
            s[f"effect_{name}_latency"]["coverage"]["rate"],
            s[f"aa_{name}_latency"]["rejection"]["rate"],
            s[f"aa_{name}_clicked"]["rejection"]["rate"],
        ]
        for name in ("cluster", "naive")
    }
    x = np.arange(len(labels))
    for i, (name, color) in enumerate((("cluster", "#1f4e79"), ("naive", "#b03a2e"))):
        b.bar(x + (i - 0.5) * 0.35, values[name], 0.35, color=color, label=name)
    b.axhline(0.95, color="#333", linestyle=":", linewidth=1)
    b.axhline(ALPHA, color="#333", linestyle=":", linewidth=1)
    b.set_xticks(x, labels)
    b.set_ylim(0, 1)
    b.set_title("Cluster delta method vs naive per-row test")
    b.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


def markdown(results: dict[str, Any]) -> str:
    cfg, s = results["config"], results["summary"]
    lines = [
        "# Cluster-level analysis: rows per user, randomised by user",
        "",
        f"Generated by `studies/clustered.py` on {results['finished_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). Method: "
        "[statistics.md](../statistics.md#cluster-level-analysis). Raw numbers: "
        "`clustered.json`; plot: `clustered.png`.",
        "",
        "![coverage and false positives](clustered.png)",
        "",
        f"{cfg['replications']} datasets per scenario of {cfg['users']} users (half treated), "
        f"{s['rows_per_user']:.2f} rows per user on average (heavier users more); a user's "
        f"level is shared by its rows (intra-user correlation {ICC} on latency). The treatment "
        f"adds {EFFECT} to every row's latency and leaves `clicked` alone. `cluster` is "
        '`splitlab.analyze(..., cluster_col="user_id")` (rows summed per user, delta method); '
        "`naive` treats each row as a unit (Welch / two-proportion z over rows).",
        "",
        "| scenario | view | metric | truth | coverage of the 95% CI (MC SE) | "
        "rejection rate at 0.05 (MC SE) | bias (MC SE) | empirical SD | mean CI half-width |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in ("effect", "aa"):
        for view in ("cluster", "naive"):
            for metric in ("latency", "clicked"):
                e = s[f"{scenario}_{view}_{metric}"]
                lines.append(
                    f"| {scenario} | {view} | {metric} | {e['truth']:g} | "
                    f"{e['coverage']['rate']:.3f} ({e['coverage']['mc_se']:.3f}) | "
                    f"{e['rejection']['rate']:.3f} ({e['rejection']['mc_se']:.3f}) | "
                    f"{e['bias']:+.4f} ({e['bias_mc_se']:.4f}) | {e['empirical_sd']:.4f} | "
                    f"{e['mean_ci_half_width']:.4f} |"
                )
    lines += [
        "",
        f"Bands: the cluster CI's coverage in [{COVERAGE_BAND[0]}, {COVERAGE_BAND[1]}], its A/A "
        f"false-positive rate in [{FPR_BAND[0]}, {FPR_BAND[1]}]; the naive per-row CI is "
        "expected below the coverage band: it counts each row as independent, so its "
        "variance misses the covariance of a user's rows.",
        "",
    ]
    lines += checks_table(results["checks"])
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replications", type=int, default=1500)
    parser.add_argument("--users", type=int, default=600, help="users per dataset")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "replications": args.replications,
            "users": args.users,
            "effect": EFFECT,
            "icc": ICC,
            "alpha": ALPHA,
            "python": platform.python_version(),
        }
    }
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results["summary"] = run(args.replications, args.users, 20_200_000)
    results["checks"] = checks(results)
    results["cpu_s"] = time.process_time() - cpu0
    results["wall_s"] = time.perf_counter() - wall0
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clustered.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "clustered.md").write_text(markdown(results))
    plot(results, args.out / "clustered.png")
    for key, e in results["summary"].items():
        if isinstance(e, dict):
            print(
                f"{key}: coverage {e['coverage']['rate']:.3f} +- {e['coverage']['mc_se']:.3f}, "
                f"rejection {e['rejection']['rate']:.3f} +- {e['rejection']['mc_se']:.3f}"
            )
    failed = [k for k, v in results["checks"].items() if not v]
    print(f"done in {results['cpu_s']:.0f} s CPU; failed checks: {failed or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

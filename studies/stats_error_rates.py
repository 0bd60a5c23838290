"""Simulation study of SplitLab's statistics: error rates, coverage, bias, sequential monitoring
and CUPAC on nonlinear features. ``make study`` runs it; results go to ``docs/studies/``.

Scenarios (every dataset is simulated afresh from its own seed):

1. A/A: ``--replications`` datasets of ``--n`` units, no effect. For each method (none, cuped,
   regression, cupac, auto) the false-positive rate at alpha = 0.05 must lie in [0.035, 0.065].
2. Effect: the same design with a true effect. Coverage of the 95% CI must lie in
   [0.935, 0.965] and the mean estimate must be unbiased (|bias| < 3 Monte-Carlo SE). The
   contrast: the same gradient-boosting model fit on the same units *without* cross-fitting.
3. Sequential: A/A streams observed at 20 equally spaced looks; the always-valid test keeps the
   false-positive rate <= 0.05 while testing at every look with the fixed-horizon test does not.
4. Nonlinear features: a metric that depends nonlinearly on five pre-exposure features (and a
   noisy pre-period metric). CUPAC's CI must be >= 20% narrower than CUPED's with the single
   best pre-period covariate, and its realized variance reduction >= 80% of the oracle's (the
   true conditional mean used as the covariate).

All model fitting runs in this one process with one thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from splitlab.core.analysis.analyze import MetricStatistics, analyze, analyze_statistics
from splitlab.core.stats.comparison import Comparison
from splitlab.core.stats.cupac import DEFAULT_BOOSTING
from splitlab.core.stats.sufficient import Moments

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("none", "cuped", "regression", "cupac", "auto")
FPR_BAND = (0.035, 0.065)
COVERAGE_BAND = (0.935, 0.965)
ALPHA = 0.05
EFFECT = 0.3
COVARIATES = ["pre", "x0", "x1", "x2", "x3", "x4"]
STUDY_BOOSTING = {"max_iter": 60}
"""Smaller boosting models for the 2,000 small datasets; the nonlinear study uses defaults."""


def conditional_mean(x: np.ndarray) -> np.ndarray:
    """The true E[y | features] (nonlinear, with an interaction)."""
    return 2.0 * np.sin(2.0 * x[:, 0]) + x[:, 1] ** 2 + x[:, 0] * x[:, 2] + 0.5 * x[:, 3]


def simulate(rng: np.random.Generator, n: int, effect: float) -> dict[str, np.ndarray]:
    """One experiment: 50/50 split, five features (x4 is noise), a noisy pre-period metric."""
    x = rng.normal(size=(n, 5))
    treated = rng.random(n) < 0.5
    mean = conditional_mean(x)
    y = mean + rng.normal(size=n) + effect * treated
    pre = mean + 2.0 * rng.normal(size=n)  # last month's metric: the same signal, more noise
    data = {
        "variant": np.where(treated, "treatment", "control"),
        "y": y,
        "pre": pre,
        "oracle": mean,
    }
    data.update({f"x{i}": x[:, i] for i in range(5)})
    return data


def _in_sample_prediction(data: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """The mistake this study guards against: the CUPAC model without cross-fitting."""
    features = np.column_stack([data[c] for c in COVARIATES])
    model = HistGradientBoostingRegressor(
        random_state=seed, **{**DEFAULT_BOOSTING, **STUDY_BOOSTING}
    )
    return np.asarray(model.fit(features, data["y"]).predict(features))


def _comparison_with_covariate(data: dict[str, np.ndarray], covariate: np.ndarray) -> Comparison:
    """Lin regression on a given per-unit covariate, through the sufficient-statistics engine."""
    treated = data["variant"] == "treatment"
    matrix = np.column_stack([data["y"], covariate])
    moments = {
        "control": Moments.from_arrays(matrix[~treated]),
        "treatment": Moments.from_arrays(matrix[treated]),
    }
    stats = MetricStatistics("y", "mean", moments, ("y", "covariate"), ("covariate",))
    counts = {k: m.n for k, m in moments.items()}
    return (
        analyze_statistics([stats], counts, method="regression")
        .metrics["y"]
        .comparisons["treatment"]
        .comparison
    )


def one_dataset(seed: int, n: int, effect: float) -> dict[str, Comparison]:
    rng = np.random.default_rng(seed)
    data = simulate(rng, n, effect)
    result = analyze(
        data,
        metrics=["y"],
        covariates=COVARIATES,
        method="auto",
        alpha=ALPHA,
        cupac_params=STUDY_BOOSTING,
        random_state=seed,
    )
    metric = result.metrics["y"]
    out = {m: metric.candidates[m].comparisons["treatment"] for m in METHODS if m != "auto"}
    out["auto"] = metric.comparisons["treatment"].comparison
    out["no_cross_fit"] = _comparison_with_covariate(data, _in_sample_prediction(data, seed))
    return out


def error_rates(
    replications: int, n: int, effect: float, seed0: int, log: Callable[[str], None]
) -> dict[str, Any]:
    names = [*METHODS, "no_cross_fit"]
    rejected = dict.fromkeys(names, 0)
    covered = dict.fromkeys(names, 0)
    estimates: dict[str, list[float]] = {m: [] for m in names}
    reductions: dict[str, list[float]] = {m: [] for m in names}
    started = time.perf_counter()
    for r in range(replications):
        comparisons = one_dataset(seed0 + r, n, effect)
        for name, c in comparisons.items():
            rejected[name] += int(c.p_value < ALPHA)
            covered[name] += int(c.ci_lower <= effect <= c.ci_upper)
            estimates[name].append(c.effect)
            reductions[name].append(c.variance_reduction)
        if (r + 1) % 100 == 0:
            spent = time.perf_counter() - started
            log(f"  effect={effect}: {r + 1}/{replications} datasets, {spent:.0f} s")
    out: dict[str, Any] = {}
    for name in names:
        values = np.asarray(estimates[name])
        mc_se = float(values.std(ddof=1) / math.sqrt(values.size))
        out[name] = {
            "rejection_rate": rejected[name] / replications,
            "coverage": covered[name] / replications,
            "mean_estimate": float(values.mean()),
            "bias": float(values.mean() - effect),
            "bias_mc_se": mc_se,
            "bias_z": float((values.mean() - effect) / mc_se) if mc_se > 0 else math.nan,
            "sd_estimate": float(values.std(ddof=1)),
            "mean_variance_reduction": float(np.nanmean(reductions[name])),
        }
    return out


def sequential(replications: int, n_per_look: int, looks: int, seed0: int) -> dict[str, Any]:
    """A/A streams: batches of units merge into running sufficient statistics at each look."""
    always = np.zeros(looks)
    naive = np.zeros(looks)
    for r in range(replications):
        rng = np.random.default_rng(seed0 + r)
        running = {"control": Moments.empty(1), "treatment": Moments.empty(1)}
        hit_always = hit_naive = False
        for look in range(looks):
            treated = rng.random(n_per_look) < 0.5
            y = rng.lognormal(0.0, 1.0, n_per_look)  # skewed, like revenue
            running["control"] = running["control"] + Moments.from_arrays(y[~treated])
            running["treatment"] = running["treatment"] + Moments.from_arrays(y[treated])
            counts = {k: m.n for k, m in running.items()}
            stats = MetricStatistics("y", "mean", dict(running), ("y",))
            fixed = analyze_statistics([stats], counts, method="none", alpha=ALPHA)
            valid = analyze_statistics(
                [stats],
                counts,
                method="none",
                alpha=ALPHA,
                sequential=True,
                tuning_n=n_per_look * looks,
            )
            hit_naive |= fixed.metrics["y"].comparisons["treatment"].comparison.p_value < ALPHA
            hit_always |= valid.metrics["y"].comparisons["treatment"].comparison.p_value < ALPHA
            naive[look] += hit_naive
            always[look] += hit_always
    return {
        "looks": looks,
        "units_per_look": n_per_look,
        "always_valid_fpr": float(always[-1] / replications),
        "naive_fpr": float(naive[-1] / replications),
        "always_valid_cumulative": (always / replications).tolist(),
        "naive_cumulative": (naive / replications).tolist(),
    }


def nonlinear(replications: int, n: int, seed0: int) -> dict[str, Any]:
    """CUPAC against CUPED (best single covariate) and the oracle on nonlinear features."""
    rows = []
    for r in range(replications):
        rng = np.random.default_rng(seed0 + r)
        data = simulate(rng, n, EFFECT)
        result = analyze(data, metrics=["y"], covariates=COVARIATES, method="auto", random_state=r)
        metric = result.metrics["y"]
        cuped = metric.candidates["cuped"].comparisons["treatment"]
        cupac = metric.candidates["cupac"].comparisons["treatment"]
        oracle = _comparison_with_covariate(data, data["oracle"])
        rows.append(
            {
                "cuped_covariate": metric.candidates["cuped"].detail,
                "cuped_ci_width": cuped.ci_upper - cuped.ci_lower,
                "cupac_ci_width": cupac.ci_upper - cupac.ci_lower,
                "cuped_variance_reduction": cuped.variance_reduction,
                "cupac_variance_reduction": cupac.variance_reduction,
                "oracle_variance_reduction": oracle.variance_reduction,
                "cupac_model": metric.cupac.model if metric.cupac else None,
                "auto_method": metric.method,
            }
        )

    def mean(key: str) -> float:
        return float(np.mean([row[key] for row in rows]))

    narrower = 1.0 - mean("cupac_ci_width") / mean("cuped_ci_width")
    share = mean("cupac_variance_reduction") / mean("oracle_variance_reduction")
    return {
        "n": n,
        "replications": replications,
        "cuped_covariate": rows[0]["cuped_covariate"],
        "mean_cuped_ci_width": mean("cuped_ci_width"),
        "mean_cupac_ci_width": mean("cupac_ci_width"),
        "cupac_ci_narrower_than_cuped": narrower,
        "min_cupac_ci_narrower_than_cuped": float(
            min(1 - r["cupac_ci_width"] / r["cuped_ci_width"] for r in rows)
        ),
        "mean_cuped_variance_reduction": mean("cuped_variance_reduction"),
        "mean_cupac_variance_reduction": mean("cupac_variance_reduction"),
        "mean_oracle_variance_reduction": mean("oracle_variance_reduction"),
        "cupac_share_of_oracle": share,
        "min_cupac_share_of_oracle": float(
            min(r["cupac_variance_reduction"] / r["oracle_variance_reduction"] for r in rows)
        ),
        "auto_methods": sorted({r["auto_method"] for r in rows}),
        "cupac_models": sorted({str(r["cupac_model"]) for r in rows}),
    }


def checks(results: dict[str, Any]) -> dict[str, bool]:
    aa, eff, seq, nl = results["aa"], results["effect"], results["sequential"], results["nonlinear"]
    out = {}
    for m in METHODS:
        out[f"aa_fpr_{m}"] = FPR_BAND[0] <= aa[m]["rejection_rate"] <= FPR_BAND[1]
        out[f"coverage_{m}"] = COVERAGE_BAND[0] <= eff[m]["coverage"] <= COVERAGE_BAND[1]
        out[f"unbiased_{m}"] = abs(eff[m]["bias_z"]) < 3.0
    naive = eff["no_cross_fit"]
    out["no_cross_fit_fails_coverage_or_bias"] = (
        not COVERAGE_BAND[0] <= naive["coverage"] <= COVERAGE_BAND[1] or abs(naive["bias_z"]) >= 3.0
    )
    out["sequential_always_valid_fpr_le_alpha"] = seq["always_valid_fpr"] <= ALPHA
    out["sequential_naive_fpr_gt_alpha"] = seq["naive_fpr"] > ALPHA
    out["nonlinear_cupac_ci_20pct_narrower"] = nl["cupac_ci_narrower_than_cuped"] >= 0.20
    out["nonlinear_cupac_80pct_of_oracle"] = nl["cupac_share_of_oracle"] >= 0.80
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 8), dpi=100)
    (a, b), (c, d) = figure.subplots(2, 2)
    names = [*METHODS, "no_cross_fit"]
    aa = [results["aa"][m]["rejection_rate"] for m in names]
    a.bar(names, aa, color=["#1f4e79"] * len(METHODS) + ["#b03a2e"])
    a.axhspan(*FPR_BAND, color="#9ab8d8", alpha=0.4, label="acceptance band")
    a.axhline(ALPHA, color="#333", linestyle=":")
    a.set_title(f"A/A false-positive rate ({results['config']['replications']} datasets)")
    a.tick_params(axis="x", rotation=20)
    a.legend(fontsize=8)
    cov = [results["effect"][m]["coverage"] for m in names]
    b.bar(names, cov, color=["#1f4e79"] * len(METHODS) + ["#b03a2e"])
    b.axhspan(*COVERAGE_BAND, color="#9ab8d8", alpha=0.4)
    b.set_ylim(0, 1)
    b.set_title(f"95% CI coverage, true effect {EFFECT} (red: no cross-fitting)")
    b.tick_params(axis="x", rotation=20)
    seq = results["sequential"]
    looks = np.arange(1, seq["looks"] + 1)
    c.plot(
        looks,
        seq["naive_cumulative"],
        marker="o",
        color="#b03a2e",
        label="fixed-horizon test at every look",
    )
    c.plot(
        looks,
        seq["always_valid_cumulative"],
        marker="o",
        color="#1f7a3a",
        label="always-valid (confidence sequence)",
    )
    c.axhline(ALPHA, color="#333", linestyle=":")
    c.set_xlabel("look")
    c.set_ylabel("cumulative false-positive rate")
    c.set_title("Sequential monitoring, A/A")
    c.legend(fontsize=8)
    nl = results["nonlinear"]
    labels = ["CUPED (best single)", "CUPAC", "oracle"]
    values = [
        nl["mean_cuped_variance_reduction"],
        nl["mean_cupac_variance_reduction"],
        nl["mean_oracle_variance_reduction"],
    ]
    d.bar(labels, values, color=["#7f8c8d", "#1f4e79", "#1f7a3a"])
    d.set_ylim(0, 1)
    d.set_title(f"Nonlinear features: variance reduction (n={nl['n']})")
    figure.tight_layout()
    figure.savefig(path, format="png")


def markdown(results: dict[str, Any]) -> str:
    cfg, seq, nl = results["config"], results["sequential"], results["nonlinear"]
    lines = [
        "# Statistics simulation study",
        "",
        f"Generated by `studies/stats_error_rates.py` on {results['finished_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). Design and methods: "
        "[statistics.md](../statistics.md). Raw numbers: `stats_error_rates.json`; "
        "plot: `stats_error_rates.png`.",
        "",
        f"Datasets: {cfg['replications']} per scenario, {cfg['n']} units each, 50/50 split; "
        "the metric is `y = 2 sin(2 x0) + x1^2 + x0 x2 + 0.5 x3 + N(0, 1)` (plus the effect in "
        "treatment); covariates: a noisy pre-period metric and five features (one pure noise). "
        "alpha = 0.05.",
        "",
        f"## A/A false-positive rate and coverage (true effect {EFFECT})",
        "",
        "| method | FPR (A/A) | coverage | bias | bias / MC SE | mean variance reduction |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in [*METHODS, "no_cross_fit"]:
        aa, eff = results["aa"][m], results["effect"][m]
        lines.append(
            f"| {m} | {aa['rejection_rate']:.3f} | {eff['coverage']:.3f} | {eff['bias']:+.4f} | "
            f"{eff['bias_z']:+.1f} | {eff['mean_variance_reduction']:.1%} |"
        )
    narrower = nl["cupac_ci_narrower_than_cuped"]
    share = nl["cupac_share_of_oracle"]
    lines += [
        "",
        f"Bands: FPR in [{FPR_BAND[0]}, {FPR_BAND[1]}], coverage in "
        f"[{COVERAGE_BAND[0]}, {COVERAGE_BAND[1]}], |bias| < 3 Monte-Carlo SE. `no_cross_fit` is "
        "the same gradient-boosting model fit on all units and predicting the same units: it "
        "absorbs part of each unit's outcome, treatment effect included, so the effect is biased "
        "towards zero and the CI is too narrow.",
        "",
        f"## Sequential monitoring ({seq['looks']} looks, {seq['units_per_look']} units per "
        f"look, {cfg['replications']} A/A streams)",
        "",
        f"- always-valid confidence sequence: FPR {seq['always_valid_fpr']:.3f} (must be <= 0.05)",
        f"- fixed-horizon test at every look: FPR {seq['naive_fpr']:.3f} (must exceed 0.05)",
        "",
        f"## Nonlinear features ({nl['replications']} datasets of {nl['n']} units, "
        "library defaults)",
        "",
        f"- CUPED uses the single best covariate ({nl['cuped_covariate']}): mean variance "
        f"reduction {nl['mean_cuped_variance_reduction']:.1%}, mean CI width "
        f"{nl['mean_cuped_ci_width']:.4f}",
        f"- CUPAC ({', '.join(nl['cupac_models'])}): mean variance reduction "
        f"{nl['mean_cupac_variance_reduction']:.1%}, mean CI width "
        f"{nl['mean_cupac_ci_width']:.4f}: **{narrower:.1%} narrower** (worst dataset "
        f"{nl['min_cupac_ci_narrower_than_cuped']:.1%}; target >= 20%)",
        f"- oracle (true conditional mean as covariate): "
        f"{nl['mean_oracle_variance_reduction']:.1%}; CUPAC reaches **{share:.1%} of the "
        f"oracle** (worst dataset {nl['min_cupac_share_of_oracle']:.1%}; target >= 80%)",
        f"- `auto` chose: {', '.join(nl['auto_methods'])}",
        "",
        "## Checks",
        "",
        "| check | passed |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in results["checks"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--n", type=int, default=1000, help="units per dataset")
    parser.add_argument("--nonlinear-replications", type=int, default=20)
    parser.add_argument("--nonlinear-n", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    log = lambda message: print(message, flush=True)  # noqa: E731
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "replications": args.replications,
            "n": args.n,
            "alpha": ALPHA,
            "effect": EFFECT,
            "covariates": COVARIATES,
            "study_boosting": STUDY_BOOSTING,
            "nonlinear_replications": args.nonlinear_replications,
            "nonlinear_n": args.nonlinear_n,
            "python": platform.python_version(),
        }
    }
    with threadpool_limits(1):
        log("A/A datasets")
        results["aa"] = error_rates(args.replications, args.n, 0.0, 1_000_000, log)
        log("datasets with a true effect")
        results["effect"] = error_rates(args.replications, args.n, EFFECT, 2_000_000, log)
        log("sequential monitoring")
        results["sequential"] = sequential(args.replications, 100, 20, 3_000_000)
        log("nonlinear features")
        results["nonlinear"] = nonlinear(args.nonlinear_replications, args.nonlinear_n, 4_000_000)
    results["checks"] = checks(results)
    results["cpu_s"] = time.process_time() - cpu0
    results["wall_s"] = time.perf_counter() - wall0
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stats_error_rates.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "stats_error_rates.md").write_text(markdown(results))
    plot(results, args.out / "stats_error_rates.png")
    failed = [k for k, v in results["checks"].items() if not v]
    log(f"done in {results['wall_s']:.0f} s; failed checks: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

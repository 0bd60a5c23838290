"""Simulation study of the tests a metric can name (issue 20): A/A false-positive rate and
coverage under a true effect of welch, z, chi2, mann_whitney, bootstrap_bca and
bootstrap_percentile, as ``splitlab.analyze`` runs them. ``make study`` runs it; results go to
``docs/studies/metric_tests.{md,json,png}``.

Datasets (each from its own seed, ``--replications`` per test and scenario):

- proportions (z, chi2): ``--n-proportion`` units per arm, control rate 0.10; A/A, and a true
  difference of +0.02 (treatment 0.12). Coverage: the Wald CI of the difference covers 0.02.
- continuous (welch, mann_whitney, bootstraps): ``--n`` units per arm from a lognormal(0, 1)
  (skewed, as revenue is); A/A, and a shift of every treatment value by ``SHIFT`` (the
  location-shift model, where the Hodges-Lehmann shift, the difference of means and the
  difference of medians all equal ``SHIFT``). Coverage: the test's CI of its effect covers
  ``SHIFT``.

A rejection is ``p < 0.05`` (welch, z, chi2, mann_whitney) or a 95% CI that excludes 0 (the
bootstraps, whose decision the interval carries). The Monte Carlo standard error of a rate r
over R datasets is ``sqrt(r (1 - r) / R)``. The bootstraps draw ``--resamples`` resamples per
dataset (1,000 by default: the interval's end points move by a few percent of its width
against 2,000, which the coverage over 2,000 datasets does not resolve; the CPU bound of 4
minutes does not allow more). One process, one thread.
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
from threadpoolctl import threadpool_limits

from splitlab.core.stats.metric_tests import (
    MetricTestResult,
    bootstrap_quantile,
    chi_square,
    mann_whitney_test,
    welch_test,
    z_test,
)
from splitlab.core.stats.sufficient import Moments

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05
FPR_BAND = (0.035, 0.065)
COVERAGE_BAND = (0.935, 0.965)
RATE, RATE_EFFECT = 0.10, 0.02
SHIFT = 0.3
TESTS = ("welch", "z", "chi2", "mann_whitney", "bootstrap_bca", "bootstrap_percentile")

Runner = Callable[[np.ndarray, np.ndarray, int], MetricTestResult]


def _moments(values: np.ndarray) -> Moments:
    return Moments.from_arrays(values.reshape(-1, 1))


def _runner(test: str, resamples: int) -> Runner:
    if test == "welch":
        return lambda c, t, _: welch_test(_moments(c), _moments(t), ALPHA)
    if test == "z":
        return lambda c, t, _: z_test(_moments(c), _moments(t), ALPHA)
    if test == "chi2":
        return lambda c, t, _: chi_square(_moments(c), _moments(t), ALPHA)
    if test == "mann_whitney":
        return lambda c, t, _: mann_whitney_test(c, t, ALPHA)
    method = "bca" if test == "bootstrap_bca" else "percentile"
    return lambda c, t, seed: bootstrap_quantile(
        c,
        t,
        0.5,
        method,
        resamples,
        ALPHA,
        random_state=seed,  # type: ignore[arg-type]
    )


def _data(
    test: str, rng: np.random.Generator, n: int, n_prop: int, effect: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """Control, treatment and the true effect of one dataset."""
    if test in ("z", "chi2"):
        c = (rng.random(n_prop) < RATE).astype(np.float64)
        p = RATE + (RATE_EFFECT if effect else 0.0)
        t = (rng.random(n_prop) < p).astype(np.float64)
        return c, t, (RATE_EFFECT if effect else 0.0)
    c = rng.lognormal(0.0, 1.0, n)
    t = rng.lognormal(0.0, 1.0, n) + (SHIFT if effect else 0.0)
    return c, t, (SHIFT if effect else 0.0)


def _rejected(test: str, r: MetricTestResult) -> bool:
    if test.startswith("bootstrap"):
        return bool(r.ci_lower > 0 or r.ci_upper < 0)
    return bool(r.p_value < ALPHA)


def _rate(hits: int, total: int) -> dict[str, float]:
    rate = hits / total
    return {"rate": rate, "mc_se": math.sqrt(rate * (1 - rate) / total)}


def run_test(test: str, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    runner = _runner(test, args.resamples)
    out: dict[str, Any] = {}
    started = time.process_time()
    for scenario, effect in (("aa", False), ("effect", True)):
        rejections = covered = failed = 0
        widths = []
        offset = 0 if scenario == "aa" else 1_000_000
        for r in range(args.replications):
            rng = np.random.default_rng(args.seed + offset + r)
            c, t, truth = _data(test, rng, args.n, args.n_proportion, effect)
            result = runner(c, t, r)
            if result.status != "ok" or not math.isfinite(result.ci_lower):
                failed += 1
                continue
            rejections += _rejected(test, result)
            covered += result.ci_lower <= truth <= result.ci_upper
            widths.append(result.ci_upper - result.ci_lower)
        done = args.replications - failed
        out[scenario] = {
            "rejection": _rate(rejections, done),
            "coverage": _rate(covered, done),
            "mean_ci_width": float(np.mean(widths)),
            "failed": failed,
            "datasets": done,
        }
    out["cpu_s"] = round(time.process_time() - started, 1)
    log(
        f"{test}: A/A FPR {out['aa']['rejection']['rate']:.4f} "
        f"(MC SE {out['aa']['rejection']['mc_se']:.4f}), coverage under effect "
        f"{out['effect']['coverage']['rate']:.4f} (MC SE {out['effect']['coverage']['mc_se']:.4f}),"
        f" power {out['effect']['rejection']['rate']:.3f}, {out['cpu_s']} s CPU"
    )
    return out


def checks(results: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for test, r in results["tests"].items():
        fpr = r["aa"]["rejection"]["rate"]
        coverage = r["effect"]["coverage"]["rate"]
        out[f"{test}_fpr_in_band"] = FPR_BAND[0] <= fpr <= FPR_BAND[1]
        out[f"{test}_coverage_in_band"] = COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1]
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    tests = list(results["tests"])
    figure = Figure(figsize=(10, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    for axes, scenario, key, band, title in (
        (left, "aa", "rejection", FPR_BAND, "A/A false-positive rate (alpha 0.05)"),
        (right, "effect", "coverage", COVERAGE_BAND, "Coverage of the 95% CI, true effect"),
    ):
        rates = [results["tests"][t][scenario][key]["rate"] for t in tests]
        errors = [2 * results["tests"][t][scenario][key]["mc_se"] for t in tests]
        axes.errorbar(rates, range(len(tests)), xerr=errors, fmt="o", color="#1f4e79")
        axes.axvspan(*band, color="#2e7d32", alpha=0.15, label="acceptance band")
        axes.set_yticks(range(len(tests)), tests)
        axes.invert_yaxis()
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3, axis="x")
        axes.legend(fontsize=8, loc="upper right")
    right.set_yticks(range(len(tests)), [""] * len(tests))
    figure.suptitle("Tests per metric: error rates (bars: +-2 Monte Carlo SE)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, format="png")


def markdown(results: dict[str, Any]) -> str:
    a = results["arguments"]
    lines = [
        "# Tests per metric: A/A false-positive rates and coverage",
        "",
        f"Generated by `studies/metric_tests.py` on {results['generated_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). The tests and their "
        "decisions: [statistics.md](../statistics.md#tests-per-metric). Raw numbers: "
        "`metric_tests.json`; plot: `metric_tests.png`.",
        "",
        "![error rates](metric_tests.png)",
        "",
        f"{a['replications']} datasets per test and scenario. Proportions (z, chi2): "
        f"{a['n_proportion']} units per arm, control rate {RATE}, true difference "
        f"+{RATE_EFFECT} under the effect. Continuous (welch, mann_whitney, bootstraps): "
        f"{a['n']} units per arm from a lognormal(0, 1), every treatment value shifted by "
        f"{SHIFT} under the effect (so the difference in means, the Hodges-Lehmann shift and "
        f"the difference of medians all equal {SHIFT}). Bootstraps: median, {a['resamples']} "
        "resamples per dataset, seeded by the dataset's index. A rejection is p < 0.05, or for "
        "a bootstrap a 95% CI that excludes 0. MC SE: sqrt(r (1 - r) / R).",
        "",
        "| test | A/A FPR | MC SE | coverage (effect) | MC SE | power (effect) | mean CI width "
        "(effect) | CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for test, r in results["tests"].items():
        aa, eff = r["aa"], r["effect"]
        lines.append(
            f"| {test} | {aa['rejection']['rate']:.4f} | {aa['rejection']['mc_se']:.4f} | "
            f"{eff['coverage']['rate']:.4f} | {eff['coverage']['mc_se']:.4f} | "
            f"{eff['rejection']['rate']:.3f} | {eff['mean_ci_width']:.4f} | {r['cpu_s']} |"
        )
    failed = [c for c, ok in results["checks"].items() if not ok]
    lines += [
        "",
        f"Bands: A/A false-positive rate in [{FPR_BAND[0]}, {FPR_BAND[1]}], coverage in "
        f"[{COVERAGE_BAND[0]}, {COVERAGE_BAND[1]}]. "
        + ("Every test is inside both bands." if not failed else f"Outside: {failed}."),
        "",
        "chi2 shares the z test's Wald interval (its coverage is the z test's) and, two-sided "
        "on a 2x2 table, its statistic is the square of the pooled z: the two rows agree "
        "dataset by dataset. Mann-Whitney's A/A rate is the level of the rank test; its "
        "coverage is the Moses/Lehmann interval's for the shift.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--n", type=int, default=200, help="units per arm (continuous)")
    parser.add_argument("--n-proportion", type=int, default=2000, help="units per arm (0/1)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--tests", nargs="*", default=list(TESTS), choices=TESTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    started = time.process_time()
    results: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "python": platform.python_version(),
        "tests": {},
    }
    with threadpool_limits(1):
        for test in args.tests:
            results["tests"][test] = run_test(test, args, print)
    results["cpu_s"] = round(time.process_time() - started, 1)
    results["checks"] = checks(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metric_tests.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "metric_tests.md").write_text(markdown(results))
    plot(results, args.out / "metric_tests.png")
    print(f"total {results['cpu_s']} s CPU; checks: {results['checks']}")
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

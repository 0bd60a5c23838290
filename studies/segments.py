"""Simulation study of results by segment (issue 20): ``splitlab.analyze(..., segment=...)``
on simulated experiments with 5 segments. ``make study`` runs it; results go to
``docs/studies/``.

Every dataset: ``--n`` units, 50/50 control/treatment, 5 segments with shares 30/25/20/15/10%
and different baselines, a pre-period covariate ``x`` (correlation 0.7 with the metric),
normal noise; method ``cuped`` (each segment with the overall method). Scenarios, each
simulated afresh from its own seeds:

1. A/A (``--replications`` datasets): the family-wise false-positive rate across the 5
   segments (any segment's adjusted p < alpha) with Holm, which must lie in [0.035, 0.065];
   beside it the unadjusted rate (any raw p < alpha: about 1 - 0.95^5 = 0.23) and
   Benjamini-Hochberg's (its false discovery rate equals the family-wise rate when every
   null is true); Cochran's Q false-positive rate.
2. One true effect in every segment (``EFFECT``): coverage of each segment's 95% CI, which
   must lie in [0.935, 0.965]; Cochran's Q false-positive rate (the effect is homogeneous).
3. Heterogeneous effects (``HETEROGENEOUS``, ``--power-replications`` datasets): how often
   Cochran's Q detects it.

Monte-Carlo standard errors are printed beside every rate. One process, one thread.
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

import splitlab
from splitlab.core.stats.multiple import adjust_p_values

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05
FPR_BAND = (0.035, 0.065)
COVERAGE_BAND = (0.935, 0.965)
SHARES = (0.30, 0.25, 0.20, 0.15, 0.10)
LABELS = ("s1", "s2", "s3", "s4", "s5")
BASELINES = (10.0, 11.0, 9.0, 12.0, 10.5)
EFFECT = 0.2
HETEROGENEOUS = (0.0, 0.0, 0.05, 0.10, 0.15)
RHO = 0.7


def simulate(rng: np.random.Generator, n: int, effects: tuple[float, ...]) -> pd.DataFrame:
    segment = rng.choice(len(SHARES), n, p=SHARES)
    treated = rng.random(n) < 0.5
    x = rng.normal(size=n)
    noise = rng.normal(size=n)
    y = (
        np.asarray(BASELINES)[segment]
        + RHO * x
        + np.sqrt(1 - RHO**2) * noise
        + treated * np.asarray(effects)[segment]
    )
    return pd.DataFrame(
        {
            "variant": np.where(treated, "treatment", "control"),
            "segment": np.asarray(LABELS, dtype=object)[segment],
            "x": x,
            "y": y,
        }
    )


def scenario(
    replications: int, n: int, effects: tuple[float, ...], seed: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Per dataset: each segment's raw and adjusted p-value, CI, and Cochran's Q."""
    raw, holm, lower, upper, q_p, i2 = [], [], [], [], [], []
    warnings = 0
    for r in range(replications):
        data = simulate(np.random.default_rng([seed, r]), n, effects)
        result = splitlab.analyze(
            data, metrics=["y"], covariates=["x"], method="cuped", segment="segment"
        )
        assert result.segments is not None
        comps = [result.segments.segments[s].metrics["y"].comparisons["treatment"] for s in LABELS]
        raw.append([c.comparison.p_value for c in comps])
        holm.append([c.p_value_adjusted for c in comps])
        lower.append([c.comparison.ci_lower for c in comps])
        upper.append([c.comparison.ci_upper for c in comps])
        h = result.segments.heterogeneity["y"]["treatment"]
        q_p.append(h.p_value)
        i2.append(h.i_squared)
        warnings += len(result.segments.warnings)
        if (r + 1) % 500 == 0:
            log(f"  {r + 1}/{replications}")
    raw_a = np.asarray(raw)
    truth = np.asarray(effects)
    covered = (np.asarray(lower) <= truth) & (truth <= np.asarray(upper))
    bh = np.asarray([adjust_p_values(p, "benjamini-hochberg") for p in raw_a])
    return {
        "replications": replications,
        "effects": list(effects),
        "any_rejected": {
            "unadjusted": rate(np.any(raw_a < ALPHA, axis=1)),
            "holm": rate(np.any(np.asarray(holm) < ALPHA, axis=1)),
            "benjamini-hochberg": rate(np.any(bh < ALPHA, axis=1)),
        },
        "coverage": rate(covered.ravel()),
        "coverage_per_segment": {s: rate(covered[:, j]) for j, s in enumerate(LABELS)},
        "heterogeneity_rejected": rate(np.asarray(q_p) < ALPHA),
        "mean_i_squared": float(np.mean(i2)),
        "segment_warnings": warnings,
    }


def rate(hits: np.ndarray) -> dict[str, float]:
    """A proportion with its Monte-Carlo (binomial) standard error."""
    p = float(np.mean(hits))
    return {"rate": p, "mc_se": float(np.sqrt(p * (1 - p) / hits.size)), "trials": int(hits.size)}


def checks(results: dict[str, Any]) -> dict[str, bool]:
    aa, eff = results["aa"], results["effect"]

    def inside(value: float, band: tuple[float, float]) -> bool:
        return band[0] <= value <= band[1]

    return {
        "aa_fwer_holm_in_band": inside(aa["any_rejected"]["holm"]["rate"], FPR_BAND),
        "aa_unadjusted_above_band": aa["any_rejected"]["unadjusted"]["rate"] > FPR_BAND[1],
        "coverage_in_band": inside(eff["coverage"]["rate"], COVERAGE_BAND),
        "heterogeneity_fpr_aa_in_band": inside(aa["heterogeneity_rejected"]["rate"], FPR_BAND),
        "heterogeneity_fpr_homogeneous_effect_in_band": inside(
            eff["heterogeneity_rejected"]["rate"], FPR_BAND
        ),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    aa = results["aa"]
    names = ["unadjusted", "holm", "benjamini-hochberg"]
    rates = [aa["any_rejected"][k]["rate"] for k in names]
    errors = [2 * aa["any_rejected"][k]["mc_se"] for k in names]
    names.append("Cochran's Q")
    rates.append(aa["heterogeneity_rejected"]["rate"])
    errors.append(2 * aa["heterogeneity_rejected"]["mc_se"])
    a.bar(names, rates, yerr=errors, color=["#b03a2e", "#1f4e79", "#1f4e79", "#555555"])
    a.axhspan(*FPR_BAND, color="#1f7a3a", alpha=0.15, label=f"band {FPR_BAND}")
    a.set_ylabel("share of A/A experiments with any rejection")
    a.set_title(f"A/A, 5 segments ({aa['replications']} experiments), +-2 MC SE")
    a.legend(fontsize=8)
    eff = results["effect"]
    per = eff["coverage_per_segment"]
    b.bar(list(per), [per[s]["rate"] for s in per],
          yerr=[2 * per[s]["mc_se"] for s in per], color="#1f4e79")  # fmt: skip
    b.axhspan(*COVERAGE_BAND, color="#1f7a3a", alpha=0.15, label=f"band {COVERAGE_BAND}")
    b.set_ylim(0.9, 1.0)
    b.set_xlabel("segment (shares 30/25/20/15/10%)")
    b.set_ylabel("coverage of the 95% CI")
    b.set_title(f"True effect {EFFECT} in every segment: overall {eff['coverage']['rate']:.3f}")
    b.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


def _r(x: dict[str, float]) -> str:
    return f"{x['rate']:.4f} ± {x['mc_se']:.4f}"


def markdown(results: dict[str, Any]) -> str:
    cfg, aa, eff, het = results["config"], results["aa"], results["effect"], results["power"]
    lines = [
        "# Segments: Holm across segments, per-segment coverage, Cochran's Q",
        "",
        f"Generated by `studies/segments.py` on {results['finished_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). Method: "
        "[statistics.md](../statistics.md#segments). Raw numbers: `segments.json`; plot: "
        "`segments.png`. Rates are given ± their Monte-Carlo standard error.",
        "",
        "![A/A family-wise rate and coverage](segments.png)",
        "",
        f"Each experiment: {cfg['n']} units, 50/50, 5 segments (shares "
        f"{'/'.join(f'{s:.0%}' for s in SHARES)}, baselines {BASELINES}), a pre-period "
        f"covariate with correlation {RHO}, `splitlab.analyze(..., method='cuped', "
        "segment='segment')`: each segment with CUPED, p-values adjusted across segments.",
        "",
        f"## A/A ({aa['replications']} experiments)",
        "",
        "| any segment rejected at 0.05 | rate |",
        "| --- | --- |",
        f"| unadjusted p-values | {_r(aa['any_rejected']['unadjusted'])} |",
        f"| Holm (default) | **{_r(aa['any_rejected']['holm'])}** |",
        f"| Benjamini-Hochberg | {_r(aa['any_rejected']['benjamini-hochberg'])} |",
        f"| Cochran's Q (heterogeneity) | {_r(aa['heterogeneity_rejected'])} |",
        "",
        f"Band for Holm and Q: {FPR_BAND}. Unadjusted, one in "
        f"{1 / aa['any_rejected']['unadjusted']['rate']:.1f} A/A experiments shows a "
        "'significant' segment (1 - 0.95^5 = 0.226 expected).",
        "",
        f"## One true effect {EFFECT} in every segment ({eff['replications']} experiments)",
        "",
        f"Coverage of the per-segment 95% CI over {eff['coverage']['trials']} intervals: "
        f"**{_r(eff['coverage'])}** (band {COVERAGE_BAND}).",
        "",
        "| segment | share | coverage |",
        "| --- | --- | --- |",
    ]
    for s, share in zip(LABELS, SHARES, strict=True):
        lines.append(f"| {s} | {share:.0%} | {_r(eff['coverage_per_segment'][s])} |")
    lines += [
        "",
        f"Cochran's Q rejects (false positive: the effect is the same everywhere) in "
        f"{_r(eff['heterogeneity_rejected'])}; mean I² {eff['mean_i_squared']:.3f}.",
        "",
        f"## Heterogeneous effects {HETEROGENEOUS} ({het['replications']} experiments)",
        "",
        f"Cochran's Q detects the heterogeneity in {_r(het['heterogeneity_rejected'])}; "
        f"mean I² {het['mean_i_squared']:.3f}.",
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
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--power-replications", type=int, default=500)
    parser.add_argument("--n", type=int, default=5000, help="units per experiment")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    log = lambda message: print(message, flush=True)  # noqa: E731
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "replications": args.replications,
            "power_replications": args.power_replications,
            "n": args.n,
            "alpha": ALPHA,
            "shares": SHARES,
            "baselines": BASELINES,
            "effect": EFFECT,
            "heterogeneous": HETEROGENEOUS,
            "rho": RHO,
            "python": platform.python_version(),
        }
    }
    zero = (0.0,) * len(SHARES)
    with threadpool_limits(1):
        log("A/A")
        results["aa"] = scenario(args.replications, args.n, zero, 20_000_000, log)
        log("one true effect")
        results["effect"] = scenario(
            args.replications, args.n, (EFFECT,) * len(SHARES), 20_100_000, log
        )
        log("heterogeneous effects")
        results["power"] = scenario(args.power_replications, args.n, HETEROGENEOUS, 20_200_000, log)
    results["checks"] = checks(results)
    results["cpu_s"] = time.process_time() - cpu0
    results["wall_s"] = time.perf_counter() - wall0
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "segments.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "segments.md").write_text(markdown(results))
    plot(results, args.out / "segments.png")
    for name in ("aa", "effect", "power"):
        r = results[name]
        rejected = ", ".join(f"{k} {_r(v)}" for k, v in r["any_rejected"].items())
        log(
            f"{name}: any rejected: {rejected}; coverage {_r(r['coverage'])}; "
            f"Q rejected {_r(r['heterogeneity_rejected'])}"
        )
    failed = [k for k, v in results["checks"].items() if not v]
    log(f"done in {results['cpu_s']:.0f} s CPU; failed checks: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

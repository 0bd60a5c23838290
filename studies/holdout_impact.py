"""Simulation study of the holdout impact (issue 20): the global holdout against everyone else,
read every day.

``make study`` runs it; results go to ``docs/studies/holdout_impact.{md,json,png}``.

Each dataset has ``--units`` users arriving uniformly over ``DAYS`` days, a share ``HOLDOUT``
of them in the global holdout. From its arrival on, a user is seen every day with a value that
is Poisson of its own rate (Gamma, mean 1) times ``1 + EFFECT`` outside the holdout (the
launched changes). ``splitlab.core.analysis.holdout.holdout_impact`` (aggregation ``sum``) gives
the cumulative effect per day; on the last day the true effect is ``EFFECT x E[rate] x E[days
seen]`` = ``EFFECT x (DAYS + 1) / 2``. Checks: the fixed-horizon test's A/A false-positive rate
on the last day in [0.035, 0.065] and its coverage under the effect in [0.935, 0.965]; the
always-valid (``sequential=True``) curve's chance of ever rejecting over the ``DAYS`` daily looks
under A/A at most 0.05 + 2 MC SE, while the fixed test read every day is shown above it. Monte
Carlo SEs are printed beside every rate. One process, one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from montecarlo import checks_table, rate
from threadpoolctl import threadpool_limits

from splitlab.core.analysis.holdout import holdout_impact

ROOT = Path(__file__).resolve().parents[1]
DAYS = 14
HOLDOUT = 0.10
EFFECT = 0.05
COVERAGE_BAND = (0.935, 0.965)
FPR_BAND = (0.035, 0.065)
ALPHA = 0.05


def simulate(
    rng: np.random.Generator, units: int, effect: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One dataset: a row per (user, day seen) with the day's value and the holdout flag."""
    rate = rng.gamma(2.0, 0.5, units)
    arrival = rng.integers(0, DAYS, units)
    held = rng.random(units) < HOLDOUT
    seen = DAYS - arrival
    unit = np.repeat(np.arange(units), seen)
    day = np.concatenate([np.arange(a, DAYS) for a in arrival])
    value = rng.poisson(rate[unit] * (1 + effect * ~held[unit])).astype(float)
    return unit, day, value, held[unit]


def run(replications: int, units: int, seed: int) -> dict[str, Any]:
    truth = EFFECT * (DAYS + 1) / 2
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"truth": truth, "scenarios": {}}
    for scenario, effect, target in (("aa", 0.0, 0.0), ("effect", EFFECT, truth)):
        last_covered, last_rejected, fixed_ever, sequential_ever = [], [], [], []
        for _ in range(replications):
            data = simulate(rng, units, effect)
            fixed = holdout_impact(*data, alpha=ALPHA)
            sequential = holdout_impact(*data, alpha=ALPHA, sequential=True)
            last = fixed.days[-1].comparison
            last_covered.append(last.ci_lower <= target <= last.ci_upper)
            last_rejected.append(last.p_value < ALPHA)
            fixed_ever.append(any(d.comparison.p_value < ALPHA for d in fixed.days))
            sequential_ever.append(any(d.comparison.p_value < ALPHA for d in sequential.days))
        out["scenarios"][scenario] = {
            "truth": target,
            "last_day_coverage": rate(np.array(last_covered)),
            "last_day_rejection": rate(np.array(last_rejected)),
            "fixed_any_day_rejection": rate(np.array(fixed_ever)),
            "sequential_any_day_rejection": rate(np.array(sequential_ever)),
        }
    return out


def checks(summary: dict[str, Any]) -> dict[str, bool]:
    aa, effect = summary["scenarios"]["aa"], summary["scenarios"]["effect"]
    ever = aa["sequential_any_day_rejection"]
    return {
        "last day, A/A false-positive rate in [0.035, 0.065]": FPR_BAND[0]
        <= aa["last_day_rejection"]["rate"]
        <= FPR_BAND[1],
        "last day, coverage under the effect in [0.935, 0.965]": COVERAGE_BAND[0]
        <= effect["last_day_coverage"]["rate"]
        <= COVERAGE_BAND[1],
        "always-valid curve, A/A rejection on any day <= 0.05 + 2 MC SE": ever["rate"]
        <= ALPHA + 2 * ever["mc_se"],
        "fixed test read every day rejects more often than once": aa["fixed_any_day_rejection"][
            "rate"
        ]
        > aa["last_day_rejection"]["rate"],
    }


def write(
    summary: dict[str, Any], out_dir: Path, replications: int, units: int, cpu: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passed = checks(summary)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (out_dir / "holdout_impact.json").write_text(
        json.dumps(
            {"generated_at": stamp, "replications": replications, "units": units,
             "days": DAYS, "holdout_share": HOLDOUT, "cpu_s": cpu,
             "python": platform.python_version(), **summary, "checks": passed},
            indent=2,
        ) + "\n"
    )  # fmt: skip
    lines = [
        "# Holdout impact: the global holdout against everyone else, read every day",
        "",
        f"Generated by `studies/holdout_impact.py` on {stamp} ({cpu:.0f} s CPU, one process, "
        "one thread). Method: [statistics.md](../statistics.md). Raw numbers: "
        "`holdout_impact.json`; plot: `holdout_impact.png`.",
        "",
        "![rejection rates](holdout_impact.png)",
        "",
        f"{replications} datasets per scenario of {units} users arriving over {DAYS} days, "
        f"{HOLDOUT:.0%} in the global holdout; a user seen every day from its arrival, its "
        f"value Poisson of its own rate (mean 1), times {1 + EFFECT:g} outside the holdout under "
        f"the effect: the cumulative sum's true effect on the last day is "
        f"{summary['truth']:.3f}. Fixed: Welch on each day's cumulative values; always-valid: "
        "`sequential=True`.",
        "",
        "| scenario | truth (last day) | last-day coverage (MC SE) | last-day rejection "
        "(MC SE) | fixed, rejected on any of the days (MC SE) | always-valid, rejected on any "
        "day (MC SE) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, s in summary["scenarios"].items():
        cells = [
            f"{s[k]['rate']:.3f} ({s[k]['mc_se']:.3f})"
            for k in (
                "last_day_coverage",
                "last_day_rejection",
                "fixed_any_day_rejection",
                "sequential_any_day_rejection",
            )
        ]
        lines.append(f"| {scenario} | {s['truth']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", *checks_table(passed)]
    (out_dir / "holdout_impact.md").write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    keys = ["last_day_rejection", "fixed_any_day_rejection", "sequential_any_day_rejection"]
    labels = ["fixed, last day", f"fixed, any of {DAYS} days", "always-valid, any day"]
    x = np.arange(len(keys))
    for offset, scenario, color in ((-0.2, "aa", "#dd8452"), (0.2, "effect", "#4c72b0")):
        rates = [summary["scenarios"][scenario][k]["rate"] for k in keys]
        ax.bar(x + offset, rates, width=0.4, color=color, label=scenario)
    ax.axhline(ALPHA, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, labels)
    ax.set_ylabel("share of datasets rejected")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "holdout_impact.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    start = time.process_time()
    with threadpool_limits(1):
        summary = run(args.replications, args.units, args.seed)
    cpu = time.process_time() - start
    write(summary, args.out, args.replications, args.units, cpu)
    for name, ok in checks(summary).items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"written to {args.out} ({cpu:.0f} s CPU)")


if __name__ == "__main__":
    main()

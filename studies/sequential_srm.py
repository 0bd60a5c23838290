"""Simulation study of the sequential SRM test (issue 20). ``make study`` runs it; results go
to ``docs/studies/``.

The analyzer re-tests SRM at every refresh: hundreds of looks per experiment. This study
compares, on the same simulated streams of exposures:

- ``sequential``: the always-valid Dirichlet-multinomial mixture test
  (:mod:`splitlab.core.stats.sequential_srm`, the default mixture over concentrations 100 to
  100,000), its running p-value;
- ``chi-square, every look``: Pearson's chi-square read at every look (what the analyzer did,
  with its gate of 100 units);
- ``chi-square, once``: the chi-square read once at the last look (the fixed horizon it is
  valid for).

Scenarios (every stream is simulated afresh from its own seed):

1. No mismatch: ``--null-replications`` experiments, ``LOOKS`` looks, one after every
   ``BATCH`` exposures, for 50/50, 50/25/25 and a ramp (50/50 for the first half, 20/80 after,
   each half tested against its own split). The sequential test's false-alarm rate over all
   looks must stay <= alpha (it is conservative: an always-valid test need not reach alpha;
   the rate by 1,000, 10,000 and 100,000 units shows it growing towards alpha as the stream
   lengthens); the repeated chi-square is shown inflated.
2. A 1% mismatch (1% of the treatment's exposures lost at 50/50): ``--power-replications``
   streams of up to ``POWER_UNITS`` units, a look every ``POWER_BATCH``: the share detected by
   each number of units and the median units to detection, for the default mixture and single
   concentrations 1,000, 10,000 (the authors' default) and 100,000, and a 5% loss for scale.
3. Gross mismatches (no randomness: the counts at exactly the mismatched shares): the first
   number of units at which each test flags an arm that gets nothing, 60/40, 55/45 and 52/48
   where 50/50 was configured.

Everything is vectorised over the replicates and runs with one thread (the machine is shared).
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
from montecarlo import checks_table, table
from scipy import special
from threadpoolctl import threadpool_limits

from splitlab.core.stats.sequential_srm import (
    DEFAULT_CONCENTRATIONS,
    log_bayes_factor,
    mix_log_bayes_factors,
    sequential_srm_test,
)

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.05, 0.01, 0.001)
LOOKS = 500
BATCH = 200
NULL_SPLITS: dict[str, list[tuple[float, ...]]] = {
    "50/50": [(0.5, 0.5)],
    "50/25/25": [(0.5, 0.25, 0.25)],
    "ramp 50/50 -> 20/80": [(0.5, 0.5), (0.2, 0.8)],
}
POWER_UNITS = 3_000_000
POWER_BATCH = 10_000
DEFAULT = "sequential, default mixture"
TESTS: dict[str, float | tuple[float, ...]] = {
    DEFAULT: DEFAULT_CONCENTRATIONS,
    "sequential c=1000": 1_000.0,
    "sequential c=10000": 10_000.0,
    "sequential c=100000": 100_000.0,
}
NULL_CHECKPOINTS = (1_000, 10_000, 100_000)
GROSS_SHARES = (1.0, 0.6, 0.55, 0.52)
LOSSES = (0.01, 0.05)
CHUNK = 1000
MIN_COUNT = 100


def chi_square_p(counts: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Pearson's chi-square p-value of ``counts`` (..., k) against shares ``null``."""
    n = counts.sum(axis=-1, keepdims=True)
    expected = n * null
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = np.where(expected > 0, (counts - expected) ** 2 / expected, 0.0).sum(axis=-1)
    p = special.chdtrc(null.size - 1, stat)
    return np.where(n[..., 0] >= MIN_COUNT, p, 1.0)


def streams(
    rng: np.random.Generator, reps: int, looks: int, batch: int, shares: np.ndarray
) -> np.ndarray:
    """Cumulative counts per look, shape (reps, looks, k): multinomial batches."""
    draws = rng.multinomial(batch, shares, size=(reps, looks))
    return np.asarray(draws.cumsum(axis=1), dtype=np.float64)


def null_scenario(
    name: str, splits: list[tuple[float, ...]], reps: int, seed: int
) -> dict[str, Any]:
    """False alarms over ``LOOKS`` looks when every period follows its split exactly."""
    rng = np.random.default_rng(seed)
    per_period = LOOKS // len(splits)
    ever_seq = dict.fromkeys(LEVELS, 0)
    ever_chi = dict.fromkeys(LEVELS, 0)
    once_chi = dict.fromkeys(LEVELS, 0)
    by_units = dict.fromkeys(NULL_CHECKPOINTS, 0)
    final_seq = []
    for start in range(0, reps, CHUNK):
        size = min(CHUNK, reps - start)
        # One log Bayes factor per concentration: each multiplies across the periods, then
        # the products are mixed (what period_sequential_srm_test computes).
        log_bf = np.zeros((len(DEFAULT_CONCENTRATIONS), size, LOOKS))
        chi_p = np.ones((size, LOOKS))
        carried = np.zeros((len(DEFAULT_CONCENTRATIONS), size, 1))
        pooled_counts = np.zeros((size, LOOKS, len(splits[0])))
        pooled_expected = np.zeros((size, LOOKS, len(splits[0])))
        offset = np.zeros((size, len(splits[0])))
        offset_expected = np.zeros((size, len(splits[0])))
        for i, split in enumerate(splits):
            shares = np.asarray(split)
            cumulative = streams(rng, size, per_period, BATCH, shares)
            lo, hi = i * per_period, (i + 1) * per_period
            for j, c in enumerate(DEFAULT_CONCENTRATIONS):
                log_bf[j, :, lo:hi] = carried[j] + log_bayes_factor(cumulative, shares, c)
            carried = log_bf[:, :, hi - 1 : hi]
            pooled_counts[:, lo:hi] = offset[:, None, :] + cumulative
            n = cumulative.sum(axis=-1, keepdims=True)
            pooled_expected[:, lo:hi] = offset_expected[:, None, :] + n * shares
            offset = pooled_counts[:, hi - 1]
            offset_expected = pooled_expected[:, hi - 1]
        if len(splits) == 1:
            chi_p = chi_square_p(pooled_counts, np.asarray(splits[0]))
        else:
            # The chi-square against the periods' pooled expected counts (Pearson's statistic
            # with E = sum_p N_p w_p): conservative, the analyzer uses the exact covariance.
            stat = ((pooled_counts - pooled_expected) ** 2 / pooled_expected).sum(axis=-1)
            chi_p = special.chdtrc(len(splits[0]) - 1, stat)
        mixed = mix_log_bayes_factors(log_bf)
        seq_p = np.minimum.accumulate(np.minimum(1.0, np.exp(-mixed)), axis=1)
        final_seq.append(seq_p[:, -1])
        for units in NULL_CHECKPOINTS:
            by_units[units] += int((seq_p[:, units // BATCH - 1] < 0.05).sum())
        for level in LEVELS:
            ever_seq[level] += int((seq_p[:, -1] < level).sum())
            ever_chi[level] += int((chi_p < level).any(axis=1).sum())
            once_chi[level] += int((chi_p[:, -1] < level).sum())
    return {
        "splits": [list(s) for s in splits],
        "replications": reps,
        "looks": LOOKS,
        "batch": BATCH,
        "units": LOOKS * BATCH,
        "sequential_any_look": {str(k): v / reps for k, v in ever_seq.items()},
        "sequential_0.05_by_units": {str(k): v / reps for k, v in by_units.items()},
        "chi_square_any_look": {str(k): v / reps for k, v in ever_chi.items()},
        "chi_square_once": {str(k): v / reps for k, v in once_chi.items()},
        "median_final_sequential_p": float(np.median(np.concatenate(final_seq))),
        "name": name,
    }


def power_scenario(loss: float, reps: int, seed: int) -> dict[str, Any]:
    """Detection of a loss of ``loss`` of the treatment's exposures at 50/50."""
    rng = np.random.default_rng(seed)
    looks = POWER_UNITS // POWER_BATCH
    null = np.array([0.5, 0.5])
    treatment = 0.5 * (1 - loss) / (0.5 + 0.5 * (1 - loss))
    shares = np.array([1 - treatment, treatment])
    units = (np.arange(looks) + 1) * POWER_BATCH
    first: dict[str, list[np.ndarray]] = {name: [] for name in TESTS}
    first["chi-square, every look"] = []
    for start in range(0, reps, CHUNK):
        size = min(CHUNK, reps - start)
        cumulative = streams(rng, size, looks, POWER_BATCH, shares)
        for name, concentrations in TESTS.items():
            log_bf = log_bayes_factor(cumulative, null, concentrations)
            hit = log_bf > -np.log(0.001)
            first[name].append(np.where(hit.any(1), hit.argmax(1), looks))
        hit = chi_square_p(cumulative, null) < 0.001
        first["chi-square, every look"].append(np.where(hit.any(1), hit.argmax(1), looks))
    out: dict[str, Any] = {
        "loss": loss,
        "treatment_share": treatment,
        "replications": reps,
        "max_units": POWER_UNITS,
        "look_every": POWER_BATCH,
        "tests": {},
    }
    checkpoints = [100_000, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000]
    for name, parts in first.items():
        index = np.concatenate(parts)
        detected_units = np.where(index < looks, units[np.minimum(index, looks - 1)], np.inf)
        out["tests"][name] = {
            "detected_by": {str(u): float((detected_units <= u).mean()) for u in checkpoints},
            "median_units_to_detect": float(np.median(detected_units)),
            "curve": [float((detected_units <= u).mean()) for u in units],
        }
    out["units"] = units.tolist()
    # The fixed-horizon chi-square read once at each checkpoint (its power, valid only once).
    z = 3.2905267314918945  # two-sided 0.001
    delta = treatment - 0.5
    out["chi_square_once_power"] = {
        str(u): float(special.ndtr(abs(delta) * np.sqrt(u) / 0.5 - z)) for u in checkpoints
    }
    return out


def gross_scenario() -> dict[str, Any]:
    """The first number of units flagged at 0.001 when the counts sit exactly at a mismatched
    share of the first arm (50/50 configured), by the default test and by one concentration."""
    out: dict[str, Any] = {}
    for share in GROSS_SHARES:
        row = {}
        for name in (DEFAULT, "sequential c=10000"):
            for n in range(MIN_COUNT, 1_000_000):
                first = round(share * n)
                observed = {"control": first, "treatment": n - first}
                if sequential_srm_test(observed, concentrations=TESTS[name]).mismatch:
                    row[name] = n
                    break
        out[str(share)] = row
    return out


def checks(results: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for name, r in results["null"].items():
        reps = r["replications"]
        for level in LEVELS:
            rate = r["sequential_any_look"][str(level)]
            se = np.sqrt(level * (1 - level) / reps)
            out[f"{name}: sequential false alarms over {LOOKS} looks <= {level}"] = bool(
                rate <= level + 2 * se
            )
        out[f"{name}: chi-square every look inflated above 0.05 at level 0.05"] = bool(
            r["chi_square_any_look"]["0.05"] > 0.05
        )
    detected = results["power"]["0.01"]["tests"][DEFAULT]
    out["1% loss: the default sequential test detects it in >= 80% by 3,000,000 units"] = bool(
        detected["detected_by"]["3000000"] >= 0.8
    )
    gross = results["gross"]
    out["an arm that gets nothing is flagged at the 100-unit gate"] = bool(
        gross["1.0"][DEFAULT] == MIN_COUNT
    )
    out["every gross mismatch is flagged sooner by the default than by c=10000 alone"] = all(
        row[DEFAULT] < row["sequential c=10000"] for row in gross.values()
    )
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    null = results["null"]["50/50"]
    x = np.arange(len(LEVELS))
    bars = (
        ("sequential_any_look", "sequential, any of 500 looks", "#1f4e79"),
        ("chi_square_any_look", "chi-square, any of 500 looks", "#b03a2e"),
        ("chi_square_once", "chi-square, once", "#7f7f7f"),
    )
    for i, (key, label, color) in enumerate(bars):
        rates = [max(null[key][str(level)], 1e-5) for level in LEVELS]
        a.bar(x + (i - 1) * 0.27, rates, 0.27, color=color, label=label)
    a.scatter(x, LEVELS, color="#333", marker="_", s=500, zorder=3, label="nominal level")
    a.set_yscale("log")
    a.set_xticks(x, [str(level) for level in LEVELS])
    a.set_xlabel("threshold")
    a.set_ylabel("false-alarm rate per experiment")
    a.set_title(f"50/50, no mismatch, {null['replications']} experiments")
    a.legend(fontsize=8)
    power = results["power"]["0.01"]
    units = np.asarray(power["units"]) / 1e6
    for name, test in power["tests"].items():
        b.plot(units, test["curve"], label=name)
    b.set_xlabel("units (millions), a look every 10,000")
    b.set_ylabel("share of experiments flagged at 0.001")
    b.set_title("1% of the treatment's exposures lost (50/50)")
    b.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


def markdown(results: dict[str, Any]) -> str:
    levels = [f"at {level}" for level in LEVELS]
    null_rows = [
        [name, str(r["replications"]), label, *(f"{r[key][str(lv)]:.4f}" for lv in LEVELS)]
        for name, r in results["null"].items()
        for key, label in (
            ("sequential_any_look", "sequential, any look"),
            ("chi_square_any_look", "chi-square, any look"),
            ("chi_square_once", "chi-square, once"),
        )
    ]
    growth_rows = [
        [name, *(f"{v:.4f}" for v in r["sequential_0.05_by_units"].values())]
        for name, r in results["null"].items()
    ]
    lines = [
        "# Sequential SRM: always-valid against the repeatedly read chi-square",
        "",
        f"Generated by `studies/sequential_srm.py` on {results['finished_at']} "
        f"({results['cpu_s']:.0f} s CPU, one process, one thread). Test: "
        "[statistics.md](../statistics.md#sequential-srm). Raw numbers: `sequential_srm.json`; "
        "plot: `sequential_srm.png`.",
        "",
        "![false alarms and detection](sequential_srm.png)",
        "",
        f"## No mismatch: false alarms over {LOOKS} looks (a look every {BATCH} exposures)",
        "",
        "Rate of experiments flagged at least once (sequential, chi-square at every look) or at "
        "the last look (chi-square once). The ramp tests each half against its own split.",
        "",
        *table(["split", "experiments", "test", *levels], null_rows),
        "",
        "The always-valid test stays below its level at every threshold (it is conservative: "
        "Ville's inequality bounds the chance of ever crossing, and most null paths never come "
        "close). The chi-square read at every look exceeds its level several times over; at "
        "the alert's 0.001 it is the analyzer's former false-alarm rate per experiment.",
        "",
        "How the always-valid test's false alarms at 0.05 grow with the stream (the same "
        "experiments, read at every look up to that many units): Ville's inequality bounds the "
        "rate over an endless stream, and a finite one uses only part of it.",
        "",
        *table(["split", *(f"by {u:,} units" for u in NULL_CHECKPOINTS)], growth_rows),
    ]
    for loss, power in results["power"].items():
        checkpoints = next(iter(power["tests"].values()))["detected_by"]
        rows = []
        for name, test in power["tests"].items():
            median = test["median_units_to_detect"]
            shown = f"{median:,.0f}" if np.isfinite(median) else f"> {power['max_units']:,}"
            rows.append([name, *(f"{v:.3f}" for v in test["detected_by"].values()), shown])
        once = [f"{v:.3f}" for v in power["chi_square_once_power"].values()]
        rows.append(["chi-square once at that size (normal approximation)", *once, ""])
        lines += [
            "",
            f"## Detection: {float(loss):.0%} of the treatment's exposures lost at 50/50 "
            f"({power['replications']} streams, a look every {power['look_every']:,} units, "
            "threshold 0.001)",
            "",
            *table(
                ["test", *(f"by {int(u):,}" for u in checkpoints), "median units to detect"],
                rows,
            ),
        ]
    gross = results["gross"]
    lines += [
        "",
        "## Gross mismatches: units until the first flag (threshold 0.001, 50/50 configured)",
        "",
        "The counts at exactly the mismatched share, from the 100-unit gate on. One "
        "concentration (10,000) is tuned to a one-point mismatch and gives a gross one little "
        "prior weight; the mixture finds each sooner.",
        "",
        *table(
            ["first arm's share", *gross["1.0"]],
            [[f"{float(s):.0%}", *(f"{n:,}" for n in row.values())] for s, row in gross.items()],
        ),
        "",
        *checks_table(results["checks"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--null-replications", type=int, default=50_000)
    parser.add_argument("--power-replications", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    log: Callable[[str], None] = lambda message: print(message, flush=True)  # noqa: E731
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "null_replications": args.null_replications,
            "power_replications": args.power_replications,
            "looks": LOOKS,
            "batch": BATCH,
            "concentrations": DEFAULT_CONCENTRATIONS,
            "levels": LEVELS,
            "python": platform.python_version(),
        },
        "null": {},
        "power": {},
    }
    with threadpool_limits(1):
        for i, (name, splits) in enumerate(NULL_SPLITS.items()):
            log(f"null {name}")
            results["null"][name] = null_scenario(
                name, splits, args.null_replications, 20_000_000 + i
            )
        for i, loss in enumerate(LOSSES):
            log(f"power, loss {loss}")
            results["power"][str(loss)] = power_scenario(
                loss, args.power_replications, 20_100_000 + i
            )
    results["gross"] = gross_scenario()
    results["checks"] = checks(results)
    results["cpu_s"] = time.process_time() - cpu0
    results["wall_s"] = time.perf_counter() - wall0
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sequential_srm.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "sequential_srm.md").write_text(markdown(results))
    plot(results, args.out / "sequential_srm.png")
    failed = [k for k, v in results["checks"].items() if not v]
    log(f"done in {results['wall_s']:.0f} s; failed checks: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the studies share: a Monte Carlo rate with its standard error, markdown tables, and
the command line of a study of ``--replications`` datasets of ``--units`` units."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]


def rate(hits: np.ndarray) -> dict[str, float]:
    """The share of true values in ``hits`` and its Monte Carlo SE, sqrt(p (1 - p) / R)."""
    p = float(np.mean(hits))
    return {"rate": p, "mc_se": float(np.sqrt(p * (1 - p) / hits.size))}


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """The markdown lines of a table: the header, its rule, a line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def checks_table(checks: dict[str, bool]) -> list[str]:
    """The markdown lines of a study's checks, one row per check."""
    rows = [[name, "yes" if ok else "**no**"] for name, ok in checks.items()]
    return ["## Checks", "", *table(["check", "passed"], rows)]


def study_main(
    description: str | None,
    run: Callable[[int, int, int], dict[str, Any]],
    write: Callable[[dict[str, Any], Path, int, int, float], None],
    checks: Callable[[dict[str, Any]], dict[str, bool]],
    seed: int,
) -> int:
    """Parse ``--replications --units --seed --out``, run on one thread, write the results,
    print each check; 1 when a check failed (``make study`` stops on it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    args = parser.parse_args()
    start = time.process_time()
    with threadpool_limits(1):
        summary = run(args.replications, args.units, args.seed)
    cpu = time.process_time() - start
    args.out.mkdir(parents=True, exist_ok=True)
    write(summary, args.out, args.replications, args.units, cpu)
    passed = checks(summary)
    for name, ok in passed.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"written to {args.out} ({cpu:.0f} s CPU)")
    return 0 if all(passed.values()) else 1

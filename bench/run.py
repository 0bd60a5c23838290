"""Run SplitLab's benchmarks: ``make bench`` (all) or ``make bench ONLY=stats`` (a subset).

Each ``bench/bench_<name>.py`` returns a list of ``BenchResult``; this script writes them to
``bench/results/<name>.json`` (machine-readable, committed as the measured record) and prints a
table. The exit code is 0 even when a target is missed: a benchmark reports, a test asserts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def discover(only: list[str]) -> list[str]:
    names = sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; available: {names}")
        names = [n for n in names if n in only]
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="benchmark names (the part after bench_)")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    RESULTS_DIR.mkdir(exist_ok=True)
    console = Console()
    table = Table(title="SplitLab benchmarks")
    for column in ("benchmark", "figures", "target", "met"):
        table.add_column(column, overflow="fold")
    failures = 0
    for name in discover(args.only):
        console.print(f"[bold]running bench_{name}[/bold]")
        started = time.time()
        try:
            results = importlib.import_module(f"bench_{name}").run()
        except Exception:
            failures += 1
            console.print(f"[red]bench_{name} failed[/red]\n{traceback.format_exc()}")
            continue
        payload = {
            "benchmark_module": f"bench_{name}",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 3),
            "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
            "results": [r.to_dict() for r in results],
        }
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        for r in results:
            figures = ", ".join(f"{k}={v:.4g}" for k, v in r.figures.items())
            met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[r.met]
            table.add_row(r.benchmark, figures, r.target, met)
    console.print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

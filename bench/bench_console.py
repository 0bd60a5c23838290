"""The console's upload-to-report time (issue 19): a CSV of N units (variant, a metric, a
pre-period covariate and three more features) uploaded and analysed with ``auto`` (CUPED,
regression and cross-fitted CUPAC compete), for 100,000 and 1,000,000 rows.

Timed: what the analyzer does with the upload (``UploadStore.save``: copy with the size cap,
read and check) plus what the trainer's worker does (``splitlab.console.analysis``: read and
check again, ``splitlab.analyze``, the HTML report with its plots, write report and JSON), the
same functions in one process; not timed: writing the CSV, the HTTP transfer of the file and
the Celery hop (milliseconds on loopback, see tests/integration/browser).

Goal: 1,000,000 rows within 180 s; limit 600 s.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import BenchResult

from splitlab.core.analysis.files import VarianceReductionSpec, check_frame, read_upload
from splitlab.reports.files import run_analysis
from splitlab_analyzer.console.uploads import UploadStore

SIZES = (100_000, 1_000_000)
GOAL_S = 180.0
LIMIT_S = 600.0


def make_csv(path: Path, n: int, seed: int = 19) -> None:
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 1, (n, 3))
    pre = rng.gamma(2.0, 5.0, n)
    variant = rng.choice(["control", "treatment"], n)
    signal = 0.7 * pre + 2.0 * np.tanh(features[:, 0]) + features[:, 1] ** 2
    revenue = signal + rng.normal(0, 2, n) + 0.1 * (variant == "treatment")
    columns = {"variant": variant, "revenue": revenue.round(3), "revenue_pre": pre.round(3)}
    columns.update({f"f{i + 1}": features[:, i].round(4) for i in range(3)})
    frame = pd.DataFrame(columns)
    frame.to_csv(path, index=False)


def upload_to_report(path: Path, root: Path) -> tuple[float, dict[str, float], str]:
    spec = VarianceReductionSpec(
        variant_col="variant", control="control", metrics=["revenue"],
        covariates=["revenue_pre", "f1", "f2", "f3"], method="auto",
    )  # fmt: skip
    store = UploadStore(root, max_bytes=1 << 30, retention_seconds=3600)
    started = time.perf_counter()
    with path.open("rb") as source:
        saved = store.save(source, path.name, spec)
    saved_s = time.perf_counter() - started
    folder = root / saved.id
    frame = check_frame(read_upload(folder / "data"), spec)
    read_s = time.perf_counter() - started - saved_s
    page, summary = run_analysis(frame, spec)
    (folder / "result.json").write_text(json.dumps(summary), encoding="utf-8")
    (folder / "report.html").write_text(page, encoding="utf-8")
    total = time.perf_counter() - started
    method = summary["metrics"]["revenue"]["method"]
    vr = summary["metrics"]["revenue"]["variance_reduction"] or 0.0
    return total, {"upload_and_check_s": saved_s, "worker_read_s": read_s,
                   "variance_reduction_ratio": vr}, method  # fmt: skip


def run() -> list[BenchResult]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in SIZES:
            path = root / f"units_{n}.csv"
            make_csv(path, n)
            size = path.stat().st_size
            total, parts, method = upload_to_report(path, root / "uploads")
            results.append(
                BenchResult(
                    benchmark=f"console.upload_to_report_auto_{n}_rows",
                    figures={"total_s": total, **parts, "file_mb": size / 1e6},
                    target=f"total_s < {GOAL_S:g} (goal; limit {LIMIT_S:g})",
                    met=total < GOAL_S,
                    notes=f"method chosen by auto: {method}",
                    context={"rows": n, "covariates": 4},
                )
            )
            path.unlink()
    return results


if __name__ == "__main__":
    for r in run():
        print(r.benchmark, {k: round(v, 3) for k, v in r.figures.items()}, r.notes)

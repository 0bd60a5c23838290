"""The web console's analyses of uploaded files, run on the trainer's worker.

The analyzer stores the upload in a folder of its own (``request.json`` beside the file; see
``splitlab_analyzer.console.uploads``) and sends ``splitlab.console.analysis`` with that
folder's path. The task reports its progress as Celery state ``PROGRESS`` (``step``, ``done``,
``total``), writes ``report.html`` and ``result.json`` into the folder and returns how long it
took. It is idempotent: a redelivered task (the worker died) redoes the same files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from splitlab.core.analysis.files import check_frame, read_upload, spec_from_dict
from splitlab.reports.files import run_analysis

TASK_NAME = "splitlab.console.analysis"
REPORT = "report.html"
RESULT = "result.json"


@shared_task(name=TASK_NAME, bind=True)
def analyse_upload(self: Task, folder: str) -> dict[str, Any]:
    """Analyse the upload in ``folder`` as its ``request.json`` asks."""
    started = time.perf_counter()
    root = Path(folder)
    request = json.loads((root / "request.json").read_text(encoding="utf-8"))
    spec = spec_from_dict(request["spec"])

    def progress(step: str, done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"step": step, "done": done, "total": total})

    progress("reading the file", 0, 1)
    frame = check_frame(read_upload(root / request["file"]), spec)
    read_s = time.perf_counter() - started
    page, summary = run_analysis(frame, spec, progress, title=request.get("title", ""))
    (root / RESULT).write_text(json.dumps(summary, allow_nan=False), encoding="utf-8")
    (root / REPORT).write_text(page, encoding="utf-8")
    return {
        "report": REPORT,
        "rows": len(frame),
        "read_s": round(read_s, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }

"""Uploaded files of the console: stored with a size cap, checked, queued, deleted later.

Each upload is a folder ``<upload_dir>/<id>/`` (id: 32 hex digits) holding the file as it came
(``data``), ``request.json`` (the analysis asked for, the Celery task id, when) and, once the
trainer's worker has run ``splitlab.console.analysis``, ``report.html`` and ``result.json``.
Folders older than the retention period are deleted by the analyzer's purge job.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from splitlab.core.analysis.files import (
    AnalysisSpec,
    FileCheckError,
    check_frame,
    read_upload,
    spec_from_dict,
    spec_to_dict,
)
from splitlab.platform.errors import InvalidInputError, NotFoundError, PayloadTooLargeError

TASK_NAME = "splitlab.console.analysis"
DATA = "data"
REQUEST = "request.json"
REPORT = "report.html"
RESULT = "result.json"
CHUNK = 1024 * 1024
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Upload:
    id: str
    filename: str
    size: int
    spec: AnalysisSpec
    task_id: str | None
    created_at: float


@dataclass(frozen=True)
class Progress:
    """What the page shows: ``state`` is queued, running, done or failed."""

    state: str
    step: str
    done: int
    total: int
    error: str | None = None
    seconds: float | None = None


class UploadStore:
    def __init__(self, root: Path, max_bytes: int, retention_seconds: float) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.retention_seconds = retention_seconds

    def folder(self, upload_id: str) -> Path:
        if not _ID.match(upload_id):
            raise NotFoundError(f"no upload {upload_id!r}", field="upload_id")
        path = self.root / upload_id
        if not (path / REQUEST).is_file():
            raise NotFoundError(
                f"no upload {upload_id!r} (uploads are deleted after the retention period)",
                field="upload_id",
            )
        return path

    def save(self, source: BinaryIO, filename: str, spec: AnalysisSpec) -> Upload:
        """Copy the file in (at most ``max_bytes``), check it against ``spec``; the upload
        (not yet queued). A file too large or failing its checks leaves nothing behind."""
        upload_id = uuid.uuid4().hex
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        size = 0
        try:
            with (folder / DATA).open("wb") as target:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLargeError(
                            f"the file is larger than the limit of {self.max_bytes} bytes "
                            "(SPLITLAB_CONSOLE_UPLOAD_MAX_BYTES)",
                            field="file",
                        )
                    target.write(chunk)
            try:
                check_frame(read_upload(folder / DATA), spec)
            except FileCheckError as exc:
                raise InvalidFileError(exc) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        upload = Upload(upload_id, filename[:200], size, spec, None, time.time())
        self._write(folder, upload)
        return upload

    def queued(self, upload: Upload, task_id: str) -> Upload:
        queued = Upload(upload.id, upload.filename, upload.size, upload.spec, task_id,
                        upload.created_at)  # fmt: skip
        self._write(self.root / upload.id, queued)
        return queued

    def _write(self, folder: Path, upload: Upload) -> None:
        request = {
            "file": DATA,
            "filename": upload.filename,
            "size": upload.size,
            "spec": spec_to_dict(upload.spec),
            "task_id": upload.task_id,
            "created_at": upload.created_at,
            "title": f"SplitLab analysis of {upload.filename}",
        }
        (folder / REQUEST).write_text(json.dumps(request), encoding="utf-8")

    def get(self, upload_id: str) -> Upload:
        request = json.loads((self.folder(upload_id) / REQUEST).read_text(encoding="utf-8"))
        return Upload(upload_id, request["filename"], int(request["size"]),
                      spec_from_dict(request["spec"]), request["task_id"],
                      float(request["created_at"]))  # fmt: skip

    def report(self, upload_id: str) -> str | None:
        path = self.folder(upload_id) / REPORT
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def result(self, upload_id: str) -> dict[str, Any] | None:
        path = self.folder(upload_id) / RESULT
        if not path.is_file():
            return None
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def purge(self, now: float | None = None) -> int:
        """Delete uploads older than the retention period; returns how many."""
        now = time.time() if now is None else now
        if not self.root.is_dir():
            return 0
        deleted = 0
        for folder in self.root.iterdir():
            if not (folder.is_dir() and _ID.match(folder.name)):
                continue
            try:
                created = json.loads((folder / REQUEST).read_text(encoding="utf-8"))["created_at"]
            except (OSError, ValueError, KeyError):
                created = folder.stat().st_mtime  # an upload that never finished saving
            if now - float(created) > self.retention_seconds:
                shutil.rmtree(folder, ignore_errors=True)
                deleted += 1
        return deleted


class InvalidFileError(InvalidInputError):
    """The file failed its checks; ``column`` and ``row`` say where."""

    def __init__(self, error: FileCheckError) -> None:
        super().__init__(str(error), field="file")
        self.column = error.column
        self.row = error.row


def progress_of(state: str, info: Any, has_report: bool) -> Progress:
    """The page's view of a Celery task's state and ``info``."""
    if has_report:
        seconds = info.get("total_s") if isinstance(info, dict) else None
        return Progress("done", "report ready", 1, 1, seconds=seconds)
    if state in ("PENDING", "RECEIVED"):
        return Progress("queued", "waiting for a worker", 0, 1)
    if state == "PROGRESS" and isinstance(info, dict):
        return Progress("running", str(info.get("step", "")), int(info.get("done", 0)),
                        max(int(info.get("total", 1)), 1))  # fmt: skip
    if state in ("STARTED", "RETRY", "PROGRESS"):
        return Progress("running", "started", 0, 1)
    if state == "SUCCESS":  # the worker finished but the report is not visible here
        return Progress("failed", "", 0, 1, error="the report file is missing; the upload "
                        "folder must be shared with the trainer's worker")  # fmt: skip
    return Progress("failed", "", 0, 1, error=str(info)[:2000] if info else state)

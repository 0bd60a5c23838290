"""The console's upload store: the size cap, nothing kept of a refused file, and the purge of
uploads past their retention period (a real folder, no server)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from splitlab.core.analysis.files import VarianceReductionSpec
from splitlab.platform.errors import NotFoundError, PayloadTooLargeError
from splitlab_analyzer.console.uploads import InvalidFileError, UploadStore

SPEC = VarianceReductionSpec("variant", "control", ["revenue"])
GOOD = b"variant,revenue\ncontrol,1\ntreatment,2\n"


def test_a_file_past_the_cap_or_failing_its_checks_leaves_nothing(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=len(GOOD), retention_seconds=60)
    with pytest.raises(PayloadTooLargeError, match="SPLITLAB_CONSOLE_UPLOAD_MAX_BYTES"):
        store.save(io.BytesIO(GOOD + b"control,3\n"), "big.csv", SPEC)
    with pytest.raises(InvalidFileError) as refused:
        store.save(io.BytesIO(b"variant,revenue\ncontrol,x\n"), "bad.csv", SPEC)
    assert (refused.value.column, refused.value.row) == ("revenue", 1)
    assert list(tmp_path.iterdir()) == []
    saved = store.save(io.BytesIO(GOOD), "ok.csv", SPEC)
    assert store.get(saved.id).spec == SPEC
    assert store.get(saved.id).size == len(GOOD)


def test_uploads_past_their_retention_are_purged(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=10_000, retention_seconds=3600)
    old = store.save(io.BytesIO(GOOD), "old.csv", SPEC)
    (tmp_path / old.id / "report.html").write_text("<html></html>")
    new = store.save(io.BytesIO(GOOD), "new.csv", SPEC)
    assert store.purge(now=time.time() + 60) == 0
    request = tmp_path / old.id / "request.json"  # uploaded two hours ago
    request.write_text(request.read_text().replace(str(old.created_at), str(old.created_at - 7200)))
    assert store.purge() == 1
    assert not (tmp_path / old.id).exists()
    assert (tmp_path / new.id).exists()
    with pytest.raises(NotFoundError, match="deleted after the retention period"):
        store.get(old.id)
    assert store.purge(now=new.created_at + 3601 + 1) == 1
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NotFoundError):
        store.get("../../etc")

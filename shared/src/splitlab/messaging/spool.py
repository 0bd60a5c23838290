"""A durable local spool for events that could not reach Kafka.

Events are appended, one JSON line each, to numbered segment files in a folder the process
holds an exclusive lock on (so two replicas never share one). Writes are flushed at once and
fsync'd in batches (``sync()``, called by the publisher at most every few milliseconds).
Replay reads sealed segments oldest first and deletes a segment only after every event in it
was acknowledged by Kafka, so a crash during replay sends some events twice, never zero times;
downstream sinks drop the duplicates by event id.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".jsonl"


class SpoolLockedError(RuntimeError):
    pass


class Spool:
    def __init__(self, folder: Path, *, segment_bytes: int = 16 * 1024 * 1024) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = (folder / ".lock").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise SpoolLockedError(f"{folder} is in use by another process") from None
        self._mutex = threading.Lock()
        self._active: IO[bytes] | None = None
        self._active_path: Path | None = None
        self._active_size = 0
        self._dirty = False
        self._pending_events = sum(self._count_lines(p) for p in self.segments())
        self._closed = False

    # ------------------------------------------------------------------ writing
    def append(self, line: bytes) -> None:
        """Append one event (a JSON document without newlines)."""
        with self._mutex:
            if self._closed:
                raise RuntimeError("spool is closed")
            if self._active is None or self._active_size >= self.segment_bytes:
                self._open_new_segment()
            assert self._active is not None
            self._active.write(line + b"\n")
            self._active.flush()
            self._active_size += len(line) + 1
            self._pending_events += 1
            self._dirty = True

    def sync(self) -> None:
        """fsync what was appended since the last call (cheap when nothing was)."""
        with self._mutex:
            if self._active is not None and self._dirty:
                os.fsync(self._active.fileno())
                self._dirty = False

    def _open_new_segment(self) -> None:
        self._seal_active()
        start = len(SEGMENT_PREFIX)
        number = 1 + max((int(p.name[start : start + 12]) for p in self.segments()), default=0)
        self._active_path = self.folder / f"{SEGMENT_PREFIX}{number:012d}{SEGMENT_SUFFIX}"
        self._active = self._active_path.open("ab")
        self._active_size = 0

    def _seal_active(self) -> None:
        if self._active is not None:
            self._active.flush()
            os.fsync(self._active.fileno())
            self._active.close()
            self._active = None
            self._active_path = None
            self._dirty = False

    # ------------------------------------------------------------------ reading
    def segments(self) -> list[Path]:
        return sorted(self.folder.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))

    def seal(self) -> None:
        """Close the segment being written, so replay can take it; new events open a new one."""
        with self._mutex:
            self._seal_active()

    def sealed_segments(self) -> list[Path]:
        with self._mutex:
            return [p for p in self.segments() if p != self._active_path]

    def read(self, segment: Path) -> Iterator[bytes]:
        with segment.open("rb") as handle:
            for line in handle:
                line = line.rstrip(b"\n")
                if line:  # a torn last line after a crash has no newline but may be whole
                    yield line

    def remove(self, segment: Path, events: int) -> None:
        """Delete a replayed segment (all ``events`` in it were acknowledged)."""
        with self._mutex:
            segment.unlink(missing_ok=True)
            self._pending_events = max(0, self._pending_events - events)

    # ------------------------------------------------------------------ state
    @property
    def pending_events(self) -> int:
        return self._pending_events

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def is_empty(self) -> bool:
        return self._pending_events == 0

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._seal_active()
            self._closed = True
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    @staticmethod
    def _count_lines(path: Path) -> int:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())


def open_spool(root: Path, name: str) -> Spool:
    """Open ``root/name``, or ``root/name-1``, ``-2``... when another process holds it.

    Folders of the same name left by processes that died are adopted: their segments move into
    the opened folder (ahead of anything new), so nothing spooled before a crash is stranded.
    """
    root.mkdir(parents=True, exist_ok=True)
    spool: Spool | None = None
    for index in range(0, 64):
        folder = root / (name if index == 0 else f"{name}-{index}")
        try:
            spool = Spool(folder)
            break
        except SpoolLockedError:
            continue
    if spool is None:
        raise SpoolLockedError(f"no free spool folder for {name!r} under {root}")
    for other in [*sorted(root.glob(f"{name}-*")), root / name]:
        if other == spool.folder or not other.is_dir():
            continue
        try:
            orphan = Spool(other)
        except SpoolLockedError:
            continue  # a live replica owns it
        try:
            _adopt(orphan, spool)
        finally:
            orphan.close()
    return spool


def _adopt(orphan: Spool, into: Spool) -> None:
    for segment in orphan.sealed_segments():
        with into._mutex:
            # Orphaned events are older than anything the new owner holds: number them first.
            target = into.folder / f"{SEGMENT_PREFIX}{0:012d}-{segment.name}"
            os.replace(segment, target)
            into._pending_events += Spool._count_lines(target)

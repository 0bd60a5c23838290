"""The event log every SplitLab process writes before Kafka sees an event.

A spool is a folder of numbered segment files, one JSON event per line. The writer (the service
process) appends and flushes each event at once; the shipper's process fsyncs what was appended
every few tens of milliseconds (``SpoolSyncer``); the shipper
(``splitlab.platform.messaging.shipper``) reads complete lines behind a cursor, sends them to Kafka,
and moves the cursor (written atomically) only after Kafka acknowledged them. Segments wholly behind
the cursor are deleted. A crash of either side loses nothing that was flushed: the shipper
resumes from the cursor, so at worst it sends some events twice, which sinks drop by event id.

One process owns a folder at a time (``flock``); ``open_spools`` finds a free folder for a new
process and hands over the folders of processes that died, so nothing is stranded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".jsonl"
CURSOR_FILE = "cursor"
LOCK_FILE = ".lock"
_NUMBER_WIDTH = 12


class SpoolLockedError(RuntimeError):
    pass


def segment_name(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:0{_NUMBER_WIDTH}d}{SEGMENT_SUFFIX}"


def segment_number(path: Path) -> int:
    return int(path.name[len(SEGMENT_PREFIX) : len(SEGMENT_PREFIX) + _NUMBER_WIDTH])


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))


class FolderLock:
    """An exclusive, non-blocking ``flock`` on a spool folder, held while the object lives."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._handle = (folder / LOCK_FILE).open("a")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise SpoolLockedError(f"{folder} is in use by another process") from None

    def release(self) -> None:
        if not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


class SpoolWriter:
    """Appends events to the newest segment; thread-safe; never reads."""

    def __init__(self, folder: Path, *, segment_bytes: int = 16 * 1024 * 1024) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self._mutex = threading.Lock()
        existing = segments(folder)
        # Always start a fresh segment: a torn last line of a crashed writer stays in its own file.
        self._number = segment_number(existing[-1]) + 1 if existing else 1
        self._file: IO[bytes] = (folder / segment_name(self._number)).open("ab")
        self._size = 0
        self.written = 0

    def append(self, line: bytes) -> None:
        """Append one event (JSON without newlines) and flush it to the OS."""
        with self._mutex:
            if self._size >= self.segment_bytes:
                self._rotate()
            self._file.write(line + b"\n")
            self._file.flush()
            self._size += len(line) + 1
            self.written += 1

    def _rotate(self) -> None:
        # No fsync here (on the request path): the syncer also syncs segments no longer written.
        self._file.close()
        self._number += 1
        self._file = (self.folder / segment_name(self._number)).open("ab")
        self._size = 0

    def close(self) -> None:
        with self._mutex:
            if not self._file.closed:
                os.fsync(self._file.fileno())
                self._file.close()


class SpoolSyncer:
    """fsyncs every segment of some spool folders that grew since its last pass.

    Runs in the shipper's process, not the writer's: fsync from any descriptor flushes the
    file's pages, and a thread in the service process waking every few tens of milliseconds
    cost the event loop its interpreter lock each time (``/assign``'s p99 at half its maximum
    rate: 75 ms with the syncer in process, 7.8 ms without, same session). The folder is
    fsynced too when segments appear, so a new segment's name is durable with its contents."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = list(folders)
        self._synced: dict[Path, int] = {}

    def sync(self) -> int:
        """One pass; returns how many files were fsynced."""
        synced = 0
        seen: set[Path] = set()
        for folder in self.folders:
            new_segment = False
            for path in segments(folder):
                seen.add(path)
                try:
                    size = path.stat().st_size
                    if self._synced.get(path) == size:
                        continue
                    new_segment = new_segment or path not in self._synced
                    with path.open("rb") as handle:
                        os.fsync(handle.fileno())
                except FileNotFoundError:  # shipped and deleted meanwhile
                    continue
                self._synced[path] = size
                synced += 1
            if new_segment:
                _fsync_folder(folder)
        for gone in set(self._synced) - seen:
            del self._synced[gone]
        return synced

    def run(self, stop: threading.Event, interval_seconds: float) -> None:
        """Pass every ``interval_seconds`` until ``stop``, then once more."""
        while not stop.wait(interval_seconds):
            self.sync()
        self.sync()


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Position:
    """How far a folder has been shipped: whole segments before ``segment``, and ``offset``
    bytes of it."""

    segment: int
    offset: int


class SpoolReader:
    """Reads complete events behind the cursor, oldest first, and advances the cursor."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.position = self._load_cursor()

    def _load_cursor(self) -> Position:
        path = self.folder / CURSOR_FILE
        with contextlib.suppress(FileNotFoundError, ValueError):
            number, offset = path.read_text().split()
            return Position(int(number), int(offset))
        first = segments(self.folder)
        return Position(segment_number(first[0]) if first else 1, 0)

    def read(
        self, max_events: int, max_bytes: int = 4 * 1024 * 1024
    ) -> tuple[list[bytes], Position]:
        """Up to ``max_events`` complete lines after the cursor, and where they end."""
        lines: list[bytes] = []
        position = self.position
        size = 0
        found = segments(self.folder)
        for path in found:
            number = segment_number(path)
            if number < position.segment:
                continue
            offset = position.offset if number == position.segment else 0
            with path.open("rb") as handle:
                handle.seek(offset)
                while len(lines) < max_events and size < max_bytes:
                    line = handle.readline()
                    if not line.endswith(b"\n"):
                        if line and path != found[-1]:
                            # A crashed writer's torn last line: never complete, never sent.
                            offset += len(line)
                        break  # else: the writer's unfinished line, complete on a later read
                    offset += len(line)
                    size += len(line)
                    if line.strip():
                        lines.append(line.rstrip(b"\n"))
            position = Position(number, offset)
            if len(lines) >= max_events or size >= max_bytes:
                break
        return lines, position

    def commit(self, position: Position) -> None:
        """Record that everything before ``position`` reached Kafka; drop finished segments.

        The cursor is replaced atomically but not fsync'd: after a power loss it may point
        back a little, and those events are sent again (duplicates, which sinks drop), never lost.
        """
        path = self.folder / CURSOR_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f"{position.segment} {position.offset}\n")
        os.replace(temporary, path)
        self.position = position
        newest = segments(self.folder)
        for old in newest[:-1]:  # never the newest: the writer may still append to it
            if segment_number(old) < position.segment:
                old.unlink(missing_ok=True)

    def backlog(self) -> int:
        """Complete events after the cursor (counted by reading: for start-up and tests)."""
        saved = self.position
        count = 0
        try:
            while True:
                lines, position = self.read(10_000)
                if position == self.position:
                    return count
                count += len(lines)
                self.position = position
        finally:
            self.position = saved

    def drop_if_finished(self) -> bool:
        """Delete an orphaned folder once every event in it was shipped."""
        if self.read(1)[0]:
            return False
        for path in self.folder.iterdir():
            if path.name != LOCK_FILE:
                path.unlink(missing_ok=True)
        return True


@dataclass
class OpenedSpools:
    """What ``open_spools`` returns: this process's folder (written and shipped) and the
    folders of dead processes (only shipped, then deleted), with the locks that guard them."""

    own: Path
    orphans: list[Path]
    locks: list[FolderLock]

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


def open_spools(root: Path, name: str) -> OpenedSpools:
    """Lock ``root/name`` (or ``name-1``, ``name-2``... when a live process holds it) and every
    unlocked sibling folder left by a process that died."""
    root.mkdir(parents=True, exist_ok=True)
    locks: list[FolderLock] = []
    own: Path | None = None
    for index in range(64):
        folder = root / (name if index == 0 else f"{name}-{index}")
        try:
            locks.append(FolderLock(folder))
        except SpoolLockedError:
            continue
        own = folder
        break
    if own is None:
        raise SpoolLockedError(f"no free spool folder for {name!r} under {root}")
    orphans = []
    for folder in [*sorted(root.glob(f"{name}-*")), root / name]:
        if folder == own or not folder.is_dir() or not segments(folder):
            continue
        try:
            locks.append(FolderLock(folder))
        except SpoolLockedError:
            continue  # a live replica owns it
        orphans.append(folder)
    return OpenedSpools(own, orphans, locks)

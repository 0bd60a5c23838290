from __future__ import annotations

from pathlib import Path

import pytest

from splitlab.platform.messaging.spool import (
    FolderLock,
    SpoolLockedError,
    SpoolReader,
    SpoolSyncer,
    SpoolWriter,
    open_spools,
    segments,
)


def lines(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"n": {i}}}'.encode() for i in range(start, start + n)]


def test_reader_sees_what_the_writer_appended_across_segments(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=100)
    written = lines(30)
    for line in written:
        writer.append(line)
    assert len(segments(tmp_path)) > 1
    reader = SpoolReader(tmp_path)
    read, position = reader.read(1000)
    assert read == written
    assert reader.backlog() == 30
    reader.commit(position)
    assert reader.backlog() == 0
    assert len(segments(tmp_path)) == 1, "finished segments are deleted, the newest kept"
    writer.append(b'{"n": 30}')
    assert SpoolReader(tmp_path).read(10)[0] == [b'{"n": 30}'], "the cursor survives a reopen"
    writer.close()


def test_reading_in_batches_moves_through_every_event_once(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=64)
    for line in lines(25):
        writer.append(line)
    reader = SpoolReader(tmp_path)
    seen: list[bytes] = []
    while True:
        batch, position = reader.read(7)
        if not batch:
            break
        seen.extend(batch)
        reader.commit(position)
    assert seen == lines(25)
    writer.close()


def test_an_unfinished_last_line_waits_and_a_torn_old_one_is_skipped(tmp_path: Path) -> None:
    crashed = SpoolWriter(tmp_path)
    crashed.append(b'{"n": 0}')
    crashed.close()
    with segments(tmp_path)[-1].open("ab") as handle:
        handle.write(b'{"n": torn')  # the crash interrupted this write
    reader = SpoolReader(tmp_path)
    assert reader.read(10)[0] == [b'{"n": 0}'], "the newest segment's partial line waits"

    writer = SpoolWriter(tmp_path)  # the next process writes a new segment
    writer.append(b'{"n": 1}')
    assert reader.read(10)[0] == [b'{"n": 0}', b'{"n": 1}']
    writer.close()


def test_a_spool_folder_has_one_owner(tmp_path: Path) -> None:
    owner = FolderLock(tmp_path / "s")
    with pytest.raises(SpoolLockedError):
        FolderLock(tmp_path / "s")
    owner.release()
    FolderLock(tmp_path / "s").release()


def test_folders_of_dead_processes_are_handed_to_the_next_one(tmp_path: Path) -> None:
    live = open_spools(tmp_path, "router")
    second = open_spools(tmp_path, "router")
    assert second.own.name == "router-1"
    writer = SpoolWriter(second.own)
    writer.append(b'{"left": "behind"}')
    writer.close()
    second.release()  # that process died with an event unshipped

    third = open_spools(tmp_path, "router")
    assert third.own.name == "router-1"
    assert third.orphans == []
    third.release()
    live.release()

    adopter = open_spools(tmp_path, "router")
    assert adopter.own.name == "router"
    assert adopter.orphans == [tmp_path / "router-1"]
    adopter.release()


def test_the_syncer_fsyncs_segments_that_grew_and_forgets_deleted_ones(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=64)
    syncer = SpoolSyncer([tmp_path])
    assert syncer.sync() == 1  # the fresh, empty segment (and the folder, for its name)
    writer.append(b'{"n": 1}')
    assert syncer.sync() == 1
    assert syncer.sync() == 0, "nothing appended since: nothing to fsync"
    for n in range(20):  # past segment_bytes: new segments
        writer.append(b'{"n": %d}' % n)
    assert syncer.sync() == len(segments(tmp_path))
    oldest = segments(tmp_path)[0]
    oldest.unlink()  # shipped and deleted
    assert syncer.sync() == 0
    writer.close()

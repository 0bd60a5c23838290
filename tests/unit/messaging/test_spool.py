from __future__ import annotations

from pathlib import Path

import pytest

from splitlab.messaging.spool import Spool, SpoolLockedError, open_spool


def test_segments_roll_over_and_read_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", segment_bytes=100)
    lines = [f'{{"n": {i}}}'.encode() for i in range(30)]
    for line in lines:
        spool.append(line)
    spool.sync()
    spool.seal()
    segments = spool.sealed_segments()
    assert len(segments) > 1
    assert [line for s in segments for line in spool.read(s)] == lines
    assert spool.pending_events == 30
    for segment in segments:
        spool.remove(segment, sum(1 for _ in spool.read(segment)))
    assert spool.is_empty()
    spool.close()


def test_a_spool_folder_has_one_owner(tmp_path: Path) -> None:
    owner = Spool(tmp_path / "s")
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path / "s")
    owner.close()
    Spool(tmp_path / "s").close()


def test_orphaned_folders_are_adopted_ahead_of_new_events(tmp_path: Path) -> None:
    first = open_spool(tmp_path, "router")
    second = open_spool(tmp_path, "router")
    assert second.folder.name == "router-1"
    second.append(b'{"old": 1}')
    second.close()  # its process died with one event spooled
    first.close()

    adopter = open_spool(tmp_path, "router")
    adopter.append(b'{"new": 2}')
    adopter.seal()
    lines = [line for s in adopter.sealed_segments() for line in adopter.read(s)]
    assert lines == [b'{"old": 1}', b'{"new": 2}']
    assert adopter.pending_events == 2
    adopter.close()


def test_pending_count_survives_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    for _ in range(7):
        spool.append(b"{}")
    spool.close()
    reopened = Spool(tmp_path / "s")
    assert reopened.pending_events == 7
    reopened.close()

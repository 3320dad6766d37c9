"""Snapshot transfer against log compaction (hsmnode/raft/rules.py hold_compaction,
hsmnode/raft/snapshots.py): a member that needs the leader's snapshot gets it under sustained
writes, however long the leader takes to write its next one."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from pysyncobj import pickle
from pysyncobj.serializer import Serializer

from hsmnode.raft.rules import CompactionHold, hold_compaction
from hsmnode.raft.snapshots import serve_snapshots_while_compacting

FIRST = 100  # the leader's first log index (its last snapshot's)


@pytest.mark.parametrize(
    ("is_leader", "next_indexes", "expected"),
    [
        (True, [FIRST + 50, FIRST + 50], CompactionHold(False, None)),  # everyone served from the log
        (True, [FIRST + 50, FIRST], CompactionHold(True, 10.0)),  # one needs the snapshot
        (True, [FIRST - 40], CompactionHold(True, 10.0)),  # far behind (lost its journal)
        (True, [], CompactionHold(False, None)),  # nobody connected
        (False, [FIRST - 40], CompactionHold(False, None)),  # followers send no snapshots
    ],
)
def test_the_leader_holds_compaction_while_a_connected_member_needs_its_snapshot(
    is_leader: bool, next_indexes: list[int], expected: CompactionHold
) -> None:
    assert hold_compaction(is_leader, FIRST, next_indexes, None, now=10.0, max_hold=60.0) == expected


def test_a_hold_keeps_its_start_and_ends_after_max_hold_then_may_begin_again() -> None:
    assert hold_compaction(True, FIRST, [FIRST], 10.0, now=69.9, max_hold=60.0) == CompactionHold(True, 10.0)
    assert hold_compaction(True, FIRST, [FIRST], 10.0, now=70.0, max_hold=60.0) == CompactionHold(False, None)
    assert hold_compaction(True, FIRST, [FIRST], None, now=70.1, max_hold=60.0) == CompactionHold(True, 70.1)


def test_a_hold_ends_when_the_member_has_the_snapshot() -> None:
    assert hold_compaction(True, FIRST, [FIRST + 2], 10.0, now=11.0, max_hold=60.0) == CompactionHold(
        False, None
    )


def dump(path: Path, payload: bytes) -> None:
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb") as g:
        pickle.dump(payload, g)


def received(serializer: Serializer, node: str) -> bytes:
    chunks = []
    while True:
        data = serializer.getTransmissionData(node)
        assert data is not None, "the transfer stalled"
        chunk, _first, last = data
        chunks.append(chunk)
        if last:
            return b"".join(chunks)


def test_the_leader_sends_its_last_snapshot_while_a_child_writes_the_next(tmp_path: Path) -> None:
    path = tmp_path / "raft.dump"
    dump(path, b"snapshot at index 100" * 5000)
    expected = path.read_bytes()
    serializer = Serializer(str(path), 4096, True, None, None, None)
    serializer._Serializer__pid = 999_999  # a child is writing the next snapshot
    # pysyncobj 0.3.17 alone sends nothing meanwhile (serializer.py:117-119)
    assert serializer.getTransmissionData("member") is None

    serve_snapshots_while_compacting(serializer, str(path))
    first = serializer.getTransmissionData("member")
    assert first is not None and first[1] is True  # isFirst
    # the child renames its new dump over the file mid-transfer: the transfer keeps the file it opened
    dump(tmp_path / "raft.dump.tmp", b"snapshot at index 300" * 5000)
    (tmp_path / "raft.dump.tmp").replace(path)
    assert first[0] + received(serializer, "member") == expected
    assert serializer._Serializer__pid == 999_999  # the child is still reaped by pysyncobj


def test_without_a_dump_file_the_wrapper_changes_nothing(tmp_path: Path) -> None:
    serializer = Serializer(str(tmp_path / "raft.dump"), 4096, True, None, None, None)
    serializer._Serializer__pid = 999_999
    serve_snapshots_while_compacting(serializer, str(tmp_path / "raft.dump"))
    assert serializer.getTransmissionData("member") is None

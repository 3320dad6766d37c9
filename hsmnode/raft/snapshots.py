"""Snapshot transfer: the leader sends its last snapshot while it writes the next one.

pysyncobj 0.3.17's `Serializer.getTransmissionData` returns None while a forked child
writes a dump (serializer.py:117-119, `if self.__pid != 0: return None`), and
`SyncObj.__sendAppendEntries` then loops for a whole appendEntriesPeriod sending
`serialized: None` to the member that needs the snapshot (syncobj.py:1267-1337: its next
index never moves), instead of a byte of the snapshot. Under sustained writes and a large
state the leader writes a snapshot most of the time, so the member waits, flooded with
empty messages (88,549 in one reproduction), and every snapshot the leader installs drops
the transfers in progress (serializer.py:53-57, syncobj.py:1423-1428).

Reading the dump while the child writes the next one is safe: the child writes
`<dump>.tmp` and renames it over the dump (serializer.py:84-93), and a transfer reads the
file it opened. The transfer stays consistent with the leader's log because the engine
starts no new snapshot while a member needs one (`rules.hold_compaction`,
`HsmSyncObj._SyncObj__tryLogCompaction`); a snapshot already being written is still installed
when done (never left uninstalled: a restart would then discard the journal), which restarts
the transfer once, from the new dump.

Writing a snapshot (`dump_in_child`, pysyncobj's forked file case with two changes, issue 16):

- the state's objects leave the garbage collector's view first (`freeze_long_lived`). A full
  collection walks every tracked object while holding the GIL: at 10,000 keys (~100,000 objects:
  keys, audit records, request-id results) 30-120 ms of CPU, 50-270 ms of wall time on a busy
  2-core machine, measured in members under writes, about every 4,000 writes on each member, on
  whichever thread allocated (apply on the tick thread, holding the state lock, or a status call).
  Frozen objects are never walked again; refcounting still frees them. Python's own advice for a
  process that forks (gc.freeze docs) is the same: freeze right before fork. The engine also
  freezes every `engine.FREEZE_EVERY` applied entries, so between snapshots too a full collection
  walks only the objects of the last ~1,000 commands;
- the child writes at a lower CPU priority (`SNAPSHOT_NICE`) and gzip level 6, not 9. At 10,000
  keys the child spent 0.77 s pickling and 1.73 s compressing at level 9 (0.47 s at level 6, the
  same 3.07 MB to 0.02%), and every member snapshots at about the same index: three children at
  once on 2 cores took CPU from the members' requests and Raft for seconds. The file is the same
  gzip of a pickle, read by pysyncobj's deserializer and sent to joiners unchanged.
"""

from __future__ import annotations

import gc
import gzip
import logging
import os
from collections.abc import Callable
from typing import Any

import pysyncobj.serializer as _serializer
from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.monotonic import monotonic
from pysyncobj.serializer import Serializer

from hsmnode.raft.rules import hold_compaction

log = logging.getLogger(__name__)
_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER
SNAPSHOT_NICE = 10  # added to the snapshot child's nice value: the member's own threads come first
SNAPSHOT_GZIP_LEVEL = 6  # pysyncobj writes level 9: 3.7x the CPU for the same size (module docstring)

if not hasattr(Serializer, "getTransmissionData"):  # pragma: no cover - guards the pin
    raise ImportError("pysyncobj Serializer has no getTransmissionData: hsmnode.raft needs pysyncobj==0.3.17")


def serve_snapshots_while_compacting(serializer: Any, dump_file: str | None) -> None:
    """Wrap `serializer.getTransmissionData` (a pysyncobj Serializer writing `dump_file`) so that
    it reads the current dump also while a child writes the next one. Only the tick thread uses
    the serializer, so the child's pid is hidden for the duration of the call and restored."""
    if dump_file is None:
        return
    original = serializer.getTransmissionData

    def get_transmission_data(transmission_id: Any) -> Any:
        pid = serializer._Serializer__pid
        if pid == 0 or not os.path.isfile(dump_file):
            return original(transmission_id)
        serializer._Serializer__pid = 0
        try:
            return original(transmission_id)
        finally:
            serializer._Serializer__pid = pid

    serializer.getTransmissionData = get_transmission_data


def freeze_long_lived() -> None:
    """Collect the young generations, then move every object the garbage collector tracks to its
    permanent generation (gc.freeze), so later collections no longer walk the replicated state.

    Cyclic garbage already in the oldest generation at that moment is kept for good (gc.freeze
    docs); the state holds no cycles, and the young collection first frees the recent ones."""
    gc.collect(1)
    gc.freeze()


def dump_in_child(serializer: Any, dump_file: str, data: Any, entry_id: Any) -> bool:
    """pysyncobj's `Serializer.serialize` for a dump file written by a forked child (serializer.py:
    62-101, same states and file), after `freeze_long_lived`, with the child at `SNAPSHOT_NICE` and
    gzip level `SNAPSHOT_GZIP_LEVEL`. The tick thread calls it; it returns at once in the parent.
    The child exits 0 once the dump is renamed into place, nonzero on any error (pysyncobj then logs
    "Failed to store full dump" and tries again later). True when it started a child, False while one
    still writes."""
    if serializer._Serializer__pid != 0:
        return False
    serializer._Serializer__currentID = entry_id
    freeze_long_lived()
    pid = os.fork()
    if pid != 0:
        serializer._Serializer__pid = pid
        return True
    try:  # the child: no locks, no logging (another thread may have held them at fork time)
        os.nice(SNAPSHOT_NICE)
        tmp = dump_file + ".tmp"
        with (
            open(tmp, "wb") as f,
            gzip.GzipFile(fileobj=f, mode="wb", compresslevel=SNAPSHOT_GZIP_LEVEL) as g,
        ):
            pysyncobj_pickle.dump(data, g)
        _serializer.atomicReplace(tmp, dump_file)  # looked up now: durable mode fsyncs (durable.py)
    except BaseException:  # noqa: BLE001 - the child reports through its exit status only
        os._exit(1)
    os._exit(0)


class CompactionHold:
    """pysyncobj's log compaction, held on the leader while a connected member needs a snapshot
    (`rules.hold_compaction`), with the serializer reading the last dump while the next is written.
    A mixin of `HsmSyncObj` (listed before SyncObj): it reads SyncObj's private state and defers to
    its `__tryLogCompaction`."""

    _compaction_held_since: float | None = None
    _hold_snapshot_start = False

    def _install_snapshot_transfer(self, dump_file: str | None) -> None:
        """Called once SyncObj is built: wrap its serializer (`serve_snapshots_while_compacting`), write
        dumps with `dump_in_child` (counted as `gc_freezes`) and let a held compaction start no snapshot."""
        serializer = self._SyncObj__serializer  # type: ignore[attr-defined]
        serve_snapshots_while_compacting(serializer, dump_file)
        start: Callable[[Any, Any], None] = serializer.serialize
        if dump_file is not None and serializer._Serializer__useFork:
            dump_path = dump_file

            def dump(data: Any, entry_id: Any) -> None:
                if dump_in_child(serializer, dump_path, data, entry_id):
                    self.counters["gc_freezes"] += 1  # type: ignore[attr-defined]

            start = dump
        serializer.serialize = lambda data, entry_id: self._serialize_unless_held(start, data, entry_id)

    def _SyncObj__tryLogCompaction(self) -> None:  # noqa: N802 - pysyncobj's private name
        """pysyncobj's compaction step (reap a finished snapshot and install it, maybe start the next),
        with no new snapshot started while a connected member needs one (rules.hold_compaction). A
        finished snapshot is always reaped and installed at once: on a restart pysyncobj discards a
        journal that does not start at the dump's index (syncobj.py:1489-1495), so a dump left
        uninstalled would cost the member every entry after it if it crashed meanwhile."""
        now = monotonic()
        node: Any = self  # pysyncobj is untyped: its attributes, read through Any
        connected = node._SyncObj__connectedNodes
        next_index = node._SyncObj__raftNextIndex
        held_since = self._compaction_held_since
        decision = hold_compaction(
            node._SyncObj__raftState == _LEADER,
            int(node._SyncObj__raftLog[0][1]),
            [next_index[n] for n in list(node._SyncObj__otherNodes) if n in connected and n in next_index],
            held_since,
            now,
            node.options.snapshot_hold,
        )
        if decision.hold and held_since is None:
            node.counters["compaction_holds"] += 1
            log.info("%s: log compaction held while a member receives a snapshot", node.selfNode)
        elif held_since is not None and not decision.hold and now - held_since >= node.options.snapshot_hold:
            log.warning(
                "%s: a member has not completed its snapshot transfer in %.0fs; compacting anyway",
                node.selfNode,
                node.options.snapshot_hold,
            )
        self._compaction_held_since = decision.since
        forced = node._SyncObj__forceLogCompaction
        self._hold_snapshot_start = decision.hold
        try:
            super()._SyncObj__tryLogCompaction()  # type: ignore[misc]
        finally:
            self._hold_snapshot_start = False
        if decision.hold and forced:
            self._SyncObj__forceLogCompaction = True  # a forced compaction waits for the hold, not lost

    def _serialize_unless_held(self, start: Any, data: Any, entry_id: Any) -> None:
        if not self._hold_snapshot_start:
            start(data, entry_id)

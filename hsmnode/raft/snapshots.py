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
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pysyncobj.monotonic import monotonic
from pysyncobj.serializer import Serializer

from hsmnode.raft.rules import hold_compaction

log = logging.getLogger(__name__)
_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER

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


class CompactionHold:
    """pysyncobj's log compaction, held on the leader while a connected member needs a snapshot
    (`rules.hold_compaction`), with the serializer reading the last dump while the next is written.
    A mixin of `HsmSyncObj` (listed before SyncObj): it reads SyncObj's private state and defers to
    its `__tryLogCompaction`."""

    _compaction_held_since: float | None = None
    _hold_snapshot_start = False

    def _install_snapshot_transfer(self, dump_file: str | None) -> None:
        """Called once SyncObj is built: wrap its serializer (`serve_snapshots_while_compacting`) and
        let a held compaction start no snapshot."""
        serializer = self._SyncObj__serializer  # type: ignore[attr-defined]
        serve_snapshots_while_compacting(serializer, dump_file)
        start = serializer.serialize
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

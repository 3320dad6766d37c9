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

import os
from typing import Any

from pysyncobj.serializer import Serializer

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

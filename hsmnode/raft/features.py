"""What each voter says it can read, so the leader proposes a new entry format only once every voter
reads it (a rolling upgrade: members of the previous version stay in the cluster for a while).

A member of this version adds `"reads": READS` to every acknowledgement (next_node_idx) it sends; a
member of an older version sends none (pysyncobj ignores fields it does not know). The leader keeps,
per follower, what its latest acknowledgement said: an acknowledgement without the field (an older
process at that address, e.g. after a downgrade) withdraws it at once. `reads_everywhere(feature)`
is true on a leader whose every voter's latest acknowledgement named `feature`. A mixin of
HsmSyncObj (listed before SyncObj); `_init_features` runs before SyncObj.__init__ (pysyncobj pickles
attributes set after its constructor into snapshots).

    feature "batch"   batch entries (hsmnode/domain/batch.py): several commands in one log entry

What the gate cannot cover: an entry already in the log reaches any member that later replays it
(a member downgraded, or one of an older version added, before those entries were compacted away).
So downgrading a member, or adding one of an older version, is not supported once batch entries
were proposed (bench/findings/writes-batches.md, "Writes as one Raft entry per batch").
"""

from __future__ import annotations

from typing import Any

READS = ("batch",)  # what this version reads beyond the original command entries
_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER


class PeerFeatures:
    """The leader's view of what each follower reads (module docstring)."""

    _reads: dict[Any, frozenset[str]]

    def _init_features(self) -> None:
        """Before SyncObj.__init__ (see the module docstring)."""
        self._reads = {}

    def _advertise(self, message: dict[str, Any]) -> None:
        """Say what this member reads, in an acknowledgement it sends."""
        message["reads"] = READS

    def _heard_reads(self, node: Any, message: dict[str, Any]) -> None:
        """Record what `node`'s acknowledgement says it reads (nothing when the field is absent)."""
        said = message.get("reads")
        self._reads[node] = frozenset(str(f) for f in said) if isinstance(said, list | tuple) else frozenset()

    def reads_everywhere(self, feature: str) -> bool:
        """Is this member the leader, and does every voter of its configuration read `feature`?
        (A single-member cluster: yes.) Any thread: reads a dict the tick thread replaces values of."""
        if self._SyncObj__raftState != _LEADER:
            return False
        reads = self._reads
        try:
            voters = list(self._SyncObj__otherNodes)
        except RuntimeError:  # a membership change on the tick thread, this very moment: ask again later
            return False
        return all(feature in reads.get(node, ()) for node in voters)

    # SyncObj's private state, read above (set by SyncObj.__init__)
    _SyncObj__raftState: int
    _SyncObj__otherNodes: set[Any]

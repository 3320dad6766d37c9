"""Group commit: how the leader batches the log entries it sends, so Raft messages per write fall
as writes arrive faster. A mixin of `HsmSyncObj` (listed before SyncObj); it reads SyncObj's private
state and shadows its private `__sendAppendEntries` (an instance attribute: only the tick thread
sends appends).

pysyncobj 0.3.17 with `appendEntriesUseBatch=False` sends AppendEntries to every follower after
each command it appends, again after applying (the new commit index) and on the heartbeat timer:
16 concurrent writes cost 16 pickled, Fernet-sealed messages per follower, then as many again,
each acknowledged, all on the tick thread. Four rules cut that, none of which changes an entry,
its order, the commit rule or durability (bench/findings/writes.md, "Where a write's time goes"):

1. the drain (`_checkCommandsToApply`) appends every queued command, then sends once;
2. a send after apply or on the heartbeat timer waits for the same tick's drain when commands
   are queued: one AppendEntries per follower carries the commit index and the new entries, and
   one acknowledgement comes back (`_send_unless_drain_follows`);
3. while every connected follower has entries in flight (sent, not acknowledged), new entries
   wait in the log instead of going out as another round: the next acknowledgement commits, the
   apply after it sends them with the new commit index (or the next drain does), and the heartbeat
   timer sends them in any case. A round carries one round trip's worth of writes, not one tick's;
   a lone write (nothing in flight) goes out at once;
4. an entry goes to each follower once: pysyncobj sets a follower's next index to what a
   *successful* acknowledgement says (syncobj.py:1079-1082), so an acknowledgement of one round,
   arriving while the next is in flight, moved it back and the next AppendEntries carried the entries
   again (at 16 threads 10.4 entries sent per write for 2 followers; the followers skip the
   duplicates, after decrypting and unpickling them). As in Raft, a success now only moves the next
   index forward (`_keep_next_index`); a refusal (`reset`) still sets it, which is how a follower
   that lost entries in flight (a dropped connection) gets them again.

Every deferred send is made before the tick ends. Counters: `group_commits` (rounds that carried
new entries), `group_commit_entries` (entries drained), `entries_held` (rule 3), `appends_deferred`
(rule 2), `next_index_kept` (rule 4); the engine counts `entries_sent`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER


class GroupCommit:
    """The leader's batching of AppendEntries (module docstring).

    pysyncobj pickles every instance attribute set after `SyncObj.__init__` into its snapshots, so
    `_init_group_commit` runs before it, and the send shadow is off while a snapshot is started
    (`_SyncObj__tryLogCompaction`): a bound method in a dump fails it."""

    counters: Counter[str]
    _append_due: bool  # a send deferred to this tick's drain (rule 2)
    _entries_unsent: bool  # entries appended since the last AppendEntries (rule 3)

    def _init_group_commit(self) -> None:
        """Before SyncObj.__init__ (see the class docstring)."""
        self._append_due = False
        self._entries_unsent = False

    def _group_commit_tick(self, tick: Callable[[], None], leading: bool) -> None:
        """Run pysyncobj's tick (`tick`) with rule 2 in force on a leader; a send deferred and not
        made by the drain is made at the tick's end."""
        self._append_due = False
        if leading:
            self._SyncObj__sendAppendEntries = self._send_unless_drain_follows
        try:
            tick()
        finally:
            self.__dict__.pop("_SyncObj__sendAppendEntries", None)
            if self._append_due:
                self._send_appends()

    def _SyncObj__tryLogCompaction(self) -> None:  # noqa: N802 - pysyncobj's private name
        """pysyncobj's compaction step without the tick's send shadow in `__dict__` (it would be
        pickled into the snapshot, and a bound method of the SyncObj cannot be)."""
        shadow = self.__dict__.pop("_SyncObj__sendAppendEntries", None)
        try:
            super()._SyncObj__tryLogCompaction()  # type: ignore[misc]
        finally:
            if shadow is not None:
                self._SyncObj__sendAppendEntries = shadow

    def _checkCommandsToApply(self) -> None:  # noqa: N802 - pysyncobj's name
        """Rule 1 (and 3): drain the command queue with pysyncobj's per-command send held back, then
        send once, unless every follower still has a round in flight."""
        wanted: list[bool] = []
        outer = self.__dict__.get("_SyncObj__sendAppendEntries")
        self._SyncObj__sendAppendEntries = lambda: wanted.append(True)
        try:
            super()._checkCommandsToApply()  # type: ignore[misc]
        finally:
            if outer is None:
                del self._SyncObj__sendAppendEntries
            else:
                self._SyncObj__sendAppendEntries = outer
        if wanted:
            self.counters["group_commit_entries"] += len(wanted)
            self._entries_unsent = True
        if self._append_due or (self._entries_unsent and not self._rounds_in_flight()):
            self._send_appends()
        elif wanted:
            self.counters["entries_held"] += len(wanted)

    def _send_unless_drain_follows(self) -> None:
        """Rule 2: with commands queued, leave this send to the drain later in the tick."""
        if self._SyncObj__raftState == _LEADER and len(self._SyncObj__commandsQueue._FastQueue__queue):
            self._append_due = True
            self.counters["appends_deferred"] += 1
        else:
            self._send_appends()

    def _rounds_in_flight(self) -> bool:
        """Has every connected follower been sent entries it has not acknowledged? (False with
        none connected: nothing to wait for.)"""
        connected = self._SyncObj__connectedNodes
        match, sent_to = self._SyncObj__raftMatchIndex, self._SyncObj__raftNextIndex
        followers = [node for node in self._SyncObj__otherNodes if node in connected]
        return bool(followers) and all(match.get(n, 0) < sent_to.get(n, 0) - 1 for n in followers)

    def _sent_ahead(self, node: Any, message: Any) -> int | None:
        """The leader's next index for `node` before a successful acknowledgement from it is
        processed (None for any other message)."""
        if (
            self._SyncObj__raftState != _LEADER
            or not isinstance(message, dict)
            or message.get("type") != "next_node_idx"
            or not message.get("success")
            or message.get("reset")
        ):
            return None
        return self._SyncObj__raftNextIndex.get(node)

    def _keep_next_index(self, node: Any, sent_to: int) -> None:
        """Rule 4: the acknowledgement just processed may not move the next index back."""
        next_index = self._SyncObj__raftNextIndex
        if node in next_index and next_index[node] < sent_to:
            next_index[node] = sent_to
            self.counters["next_index_kept"] += 1

    def _send_appends(self) -> None:
        """pysyncobj's AppendEntries to every follower (what is due: entries from its next index,
        the commit index), on a leader; a member that stepped down meanwhile sends nothing."""
        unsent, self._append_due, self._entries_unsent = self._entries_unsent, False, False
        if self._SyncObj__raftState != _LEADER:
            return
        if unsent:
            self.counters["group_commits"] += 1  # entries per round: group_commit_entries / group_commits
        super()._SyncObj__sendAppendEntries()  # type: ignore[misc]

    # SyncObj's private state, read and shadowed above (set by SyncObj.__init__)
    _SyncObj__raftState: int
    _SyncObj__commandsQueue: Any
    _SyncObj__connectedNodes: set[Any]
    _SyncObj__otherNodes: set[Any]
    _SyncObj__raftMatchIndex: dict[Any, int]
    _SyncObj__raftNextIndex: dict[Any, int]
    _SyncObj__sendAppendEntries: Callable[[], None]

"""A member whose Raft configuration is older than the cluster's learns the leader from the
members it still knows.

A member's configuration is the last one in its log. pysyncobj 0.3.17 restores the dump's
topology on start-up (syncobj.py:1506-1507, `__updateClusterConfiguration(data[3])`) and the
journal after the dump brings it up to date. A member that lost that journal (or all of its
Raft files, starting from a node.toml written before a membership change) starts with an older
configuration; when the leader joined the cluster after it, the member can never hear it:
pysyncobj refuses every Raft connection from an address outside the configuration
(transport.py:353-358) and dials only addresses inside it (transport.py:429-435). It stays
without a leader for good, never ready, though the members it knows are fine (issue 12: "a
member that lost its journal catches up", which failed whenever the newest member led).

Raft expects a follower to accept the leader's appends and learn the newer configuration from
them (the log, or the snapshot's topology). So:

    a member answering a pre_vote      names the leader it follows ("leader": Raft address)
    a member reading a pre_vote answer  contacts a named leader its configuration does not
                                        list (rules.leader_to_learn): HsmTransport.learn dials
                                        it or accepts its connection
    the configuration catches up        and lists it: the connection stays, an ordinary member's
                                        (HsmTransport.addNode)
    a learned address that is neither   is forgotten after LEARNED_LEADER_GRACE seconds
    leader nor configured               (rules.learned_to_forget)

A member asks for pre-votes only when it hears no leader, so a member with an up-to-date
configuration never learns anything. Only a member of its configuration (authenticated by the
Raft secret) can name an address, and only as the leader it follows.
"""

from __future__ import annotations

import logging
from typing import Any

from hsmnode.raft.rules import leader_to_learn, learned_to_forget

log = logging.getLogger("hsmnode.raft")

LEARNED_LEADER_GRACE = 5.0  # seconds: enough to dial, identify and receive the first append


class LeaderLearning:
    """A mixin of HsmSyncObj (listed before SyncObj): reads SyncObj's leader, configuration and
    transport. `_init_leader_learning` runs before SyncObj.__init__, so that nothing here is
    pickled into a dump (pysyncobj dumps the attributes set after its constructor)."""

    counters: Any
    selfNode: Any

    def _init_leader_learning(self) -> None:
        self._learned: dict[str, float] = {}  # learned leader address -> when (monotonic seconds)

    def _leader_named(self) -> str | None:
        """The leader this member follows, as a pre-vote answer names it."""
        leader = self._SyncObj__raftLeader  # type: ignore[attr-defined]
        return None if leader is None else str(leader)

    def _on_named_leader(self, node: Any, named: Any, now: float) -> None:
        """A member of the configuration (`node`) answered a pre-vote naming `named` as its leader."""
        transport = self._SyncObj__transport  # type: ignore[attr-defined]
        address = leader_to_learn(named, str(self.selfNode), transport.known_addresses())
        if address is None:
            return
        self._learned[address] = now
        self.counters["leaders_learned"] += 1
        log.warning(
            "%s: member %s follows leader %s, which this member's Raft configuration does not list (it "
            "is older than the cluster's: restarted from a dump or node.toml from before a membership "
            "change); contacting it to catch up",
            self.selfNode,
            node,
            address,
        )
        transport.learn(address)

    def _forget_stale_learned(self, now: float) -> None:
        """Each tick while something is learned: drop what the configuration lists now (an ordinary
        member) and stop contacting what is neither leader nor configured after the grace."""
        if not self._learned:
            return
        transport = self._SyncObj__transport  # type: ignore[attr-defined]
        for address in [a for a in self._learned if a not in transport.learned]:
            del self._learned[address]
        configured = {str(n) for n in self._SyncObj__otherNodes}  # type: ignore[attr-defined]
        stale = learned_to_forget(self._learned, configured, self._leader_named(), now, LEARNED_LEADER_GRACE)
        for address in stale:
            del self._learned[address]
            transport.forget(address)
            log.info("%s: no longer contacting %s (not the leader, not configured)", self.selfNode, address)

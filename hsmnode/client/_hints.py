"""What the members' answers tell the SDK beyond the answer: how far the cluster applied (the
highest applied Raft index seen: read-your-writes) and where the SDK sends a write first (the
leader, as the answers name it).

Every answer to a write carries `x-hsm-leader`, the client address of the leader the answering
member knows (server/rpc.py). A write sent to the leader is proposed there; sent to a follower,
it costs two more hops (the follower forwards it to the leader, then waits for the leader's
commit index to apply it itself). So the transport tries the named leader first and keeps the
rest of its order for failover: a hint that went stale (the leader changed or died) costs one
attempt that the old leader, now a follower, still serves or refuses as UNAVAILABLE, and its
answer names the new leader.

Only an address among the client's endpoints is taken: a hint never adds a member (discovery
does that), so a client whose endpoints name the members otherwise keeps its order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

LEADER_KEY = "x-hsm-leader"


class IndexTracker:
    """The highest applied Raft index seen: what read-your-writes asks members to have applied.

    One client keeps its own; clients that must see each other's writes share one:

        admin = HsmClient(endpoints, admin_tls)
        app = HsmClient(endpoints, app_tls, index_from=admin)   # reads what admin wrote
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index = 0

    @property
    def index(self) -> int:
        return self._index

    def note(self, index: int) -> None:
        with self._lock:
            if index > self._index:
                self._index = index


class LeaderHint:
    """The endpoint the last answer to a write named as leader ("" until one did)."""

    def __init__(self) -> None:
        self.endpoint = ""

    def note(self, metadata: Any, endpoints: Sequence[str]) -> None:
        """Take the leader a member's trailing metadata names, if it is one of `endpoints`."""
        for key, value in metadata or ():
            if key == LEADER_KEY:
                named = str(value)
                if named in endpoints:
                    self.endpoint = named
                return

    def first(self, order: list[str]) -> list[str]:
        """`order` with the hinted leader moved to the front (unchanged without a hint in it)."""
        leader = self.endpoint
        if not leader or not order or order[0] == leader or leader not in order:
            return order
        return [leader, *(e for e in order if e != leader)]

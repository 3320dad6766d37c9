"""Await conditions on a running cluster (never fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hsmnode.client import HsmError, NodeStatus
from hsmnode.devcluster import DevCluster

T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll `fn` until it returns something truthy; SDK errors count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except HsmError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(0.05)


def node_status(cluster: DevCluster, member_id: str) -> NodeStatus:
    with cluster.client(member_id, timeout=2.0) as client:
        return client.node_status()


def converged(cluster: DevCluster, member_ids: list[str], timeout: float = 20.0) -> str:
    """Wait until the members have applied the same index and hold identical state; return the digest."""

    def check() -> str | None:
        statuses = [node_status(cluster, m) for m in member_ids]
        applied = {s.applied_index for s in statuses}
        digests = {s.state_digest for s in statuses}
        if len(applied) == 1 and len(digests) == 1:
            return digests.pop()
        return None

    return eventually(check, timeout, f"identical state on {', '.join(member_ids)}")


def leader_of(cluster: DevCluster, among: list[str] | None = None) -> str:
    ids = among or [m.id for m in cluster.members]

    def find() -> str | None:
        leaders = [m for m in ids if node_status(cluster, m).role == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    return eventually(find, 20.0, "a single leader")


def notes_on(cluster: DevCluster, member_id: str) -> list[str]:
    with cluster.client(member_id, timeout=2.0) as client:
        texts: list[str] = []
        after = 0
        while True:
            records, _total = client.audit_list(after_seq=after, limit=1000)
            if not records:
                return texts
            texts += [r.detail for r in records if r.command == "audit.note" and r.outcome == "ok"]
            after = records[-1].seq

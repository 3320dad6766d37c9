"""HsmSyncObj in-process: fsync before every acknowledgement (durable mode), PreVote keeps a
restarted member from deposing the leader, the lease follows proof. Real engine and sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pysyncobj.transport import TCPTransport

from hsmnode.raft import durable
from tests.replication.raft_harness import EventLog, cluster, wait_for

# pysyncobj's journal leaves its .meta file to the garbage collector (journal.py getMeta)
pytestmark = [pytest.mark.cluster, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def settled(c: Any) -> Any:
    """The leader once every member has agreed on it and its term for a second (start-up is over)."""

    def agreed_once() -> Any:
        leader = next((m for m in c.members.values() if m.is_leader()), None)
        if leader is None:
            return None
        term = leader.status()["raft_term"]
        ok = all(
            m.status()["raft_term"] == term and str(m.status()["leader"]) == leader.address
            for m in c.members.values()
        )
        return leader if ok else None

    def agreed() -> Any:
        first = agreed_once()
        if first is None:
            return None
        term = first.status()["raft_term"]
        stable = wait_for(lambda: agreed_once() is not first or first.status()["raft_term"] != term, 1.0)
        return None if stable else first

    leader = wait_for(agreed, 20)
    assert leader is not None, "the members never agreed on a leader"
    return leader


def test_durable_mode_fsyncs_every_entry_before_it_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leader: its journal is fsynced through an entry before the client hears the answer.
    Followers: through an entry before they acknowledge it (next_node_idx). One fsync covers a batch."""
    events = EventLog()
    journals: dict[int, str] = {}
    real_sync = durable.sync_journal
    real_send = TCPTransport.send

    def sync(journal: Any) -> bool:
        done = real_sync(journal)
        events.add("fsync", journals.get(id(journal), "?"), journal[-1][1])
        return done

    def send(transport: Any, node: Any, message: Any) -> bool:
        if isinstance(message, dict) and message.get("type") == "next_node_idx" and message.get("success"):
            events.add("ack", transport._selfNode.address, message["next_node_idx"] - 1)
        sent: bool = real_send(transport, node, message)
        return sent

    monkeypatch.setattr(durable, "sync_journal", sync)
    monkeypatch.setattr(TCPTransport, "send", send)
    with cluster(tmp_path, 3, durable=True) as c:
        for address, member in c.members.items():
            journals[id(member.obj._SyncObj__raftLog)] = address
        leader = c.leader()
        answers: list[tuple[int, int]] = []
        for i in range(40):
            idx = leader.register.put(f"k{i}", i, sync=True, timeout=5)
            events.add("answer", leader.address, idx)
            answers.append(idx)
        # a concurrent burst: one fsync covers several entries (group commit)
        done = EventLog()
        for i in range(60):
            leader.register.put(f"b{i}", i, callback=lambda res, err: done.add(res, err))
        assert wait_for(lambda: len(done.events) == 60, 10)
        counters = [m.obj.counters["fsyncs"] for m in c.members.values()]
    synced: dict[str, int] = {}
    checked_acks = checked_answers = 0
    for kind, who, index in list(events.events):
        if kind == "fsync":
            synced[who] = max(synced.get(who, 0), index)
        elif kind == "ack":
            assert synced.get(who, 0) >= index, f"{who} acknowledged index {index} before fsyncing it"
            checked_acks += 1
        elif kind == "answer":
            assert synced.get(who, 0) >= index, f"leader answered index {index} before fsyncing it"
            checked_answers += 1
    assert checked_answers == 40 and checked_acks >= 40
    assert min(counters) > 0
    assert sum(counters) < 3 * 100, "one fsync per entry per member: no group commit"


@pytest.mark.serial
def test_a_restarted_follower_does_not_raise_the_term(tmp_path: Path) -> None:
    with cluster(tmp_path, 3) as c:
        leader = settled(c)
        leader.register.put("a", 1, sync=True, timeout=5)
        term = leader.status()["raft_term"]
        follower = next(a for a in c.addresses if a != leader.address)
        for _ in range(3):
            c.stop(follower)
            leader.register.put("b", 2, sync=True, timeout=5)
            # down for longer than several election timeouts, then back with its old journal
            wait_for(lambda: False, 0.8)
            restarted = c.start(follower)
            assert wait_for(lambda r=restarted: r.register.data.get("b") == 2, 10)
        assert leader.is_leader()
        terms = {a: m.status()["raft_term"] for a, m in c.members.items()}
        assert set(terms.values()) == {term}, f"term was {term} on the leader, now {terms}"


@pytest.mark.serial
def test_the_leaders_lease_needs_acknowledgements_and_lapses_without_them(tmp_path: Path) -> None:
    with cluster(tmp_path, 3, lease=0.6) as c:
        leader = c.leader()
        assert wait_for(lambda: leader.obj.lease_left() > 0.5, 5)
        for address in [a for a in c.addresses if a != leader.address]:
            c.stop(address)
        assert wait_for(lambda: leader.obj.lease_left() == 0, 2)
        assert leader.obj.lease_left() == 0


@pytest.mark.serial
def test_followers_keep_their_lease_through_an_election(tmp_path: Path) -> None:
    """Crypto on the followers does not stop while they elect a new leader: the last proof holds."""
    with cluster(tmp_path, 3, lease=1.0) as c:
        leader = settled(c)
        followers = [m for a, m in c.members.items() if a != leader.address]
        assert wait_for(lambda: all(f.obj.lease_left() > 0.8 for f in followers), 5)
        c.stop(leader.address)
        lowest: list[float] = []

        def elected() -> Any:
            lowest.append(min(f.obj.lease_left() for f in followers))
            return next((f for f in followers if f.is_leader()), None)

        new = wait_for(elected, 10, period=0.005)
        assert new is not None
        assert min(lowest) > 0, "a follower lapsed during the election"
        assert wait_for(lambda: new.obj.lease_left() > 0.8, 5)  # proven by its new majority

"""raft/features.py: the leader proposes a new entry format only while every voter's latest
acknowledgement says it reads it (a member of an older version says nothing)."""

from __future__ import annotations

from typing import Any

from hsmnode.raft.features import READS, PeerFeatures

LEADER, FOLLOWER = 2, 0


class Member(PeerFeatures):
    def __init__(self, others: set[str], state: int = LEADER) -> None:
        self._init_features()
        self._SyncObj__otherNodes = others
        self._SyncObj__raftState = state


def ack(**fields: Any) -> dict[str, Any]:
    return {"type": "next_node_idx", "success": True, **fields}


def test_acknowledgements_of_this_version_say_it_reads_batch_entries() -> None:
    message = ack()
    Member(set())._advertise(message)
    assert "batch" in message["reads"] and message["reads"] == READS


def test_batch_entries_only_once_every_voter_said_it_reads_them() -> None:
    leader = Member({"b", "c"})
    assert not leader.reads_everywhere("batch")  # heard nobody yet
    leader._heard_reads("b", ack(reads=READS))
    assert not leader.reads_everywhere("batch")  # c not heard
    leader._heard_reads("c", ack())  # c runs the previous version
    assert not leader.reads_everywhere("batch")
    leader._heard_reads("c", ack(reads=list(READS)))  # upgraded (a list after any round trip: fine)
    assert leader.reads_everywhere("batch")
    leader._heard_reads("b", ack())  # b downgraded: withdrawn at its first acknowledgement
    assert not leader.reads_everywhere("batch")


def test_a_follower_never_batches_and_a_lone_leader_does() -> None:
    assert not Member({"b"}, state=FOLLOWER).reads_everywhere("batch")
    assert Member(set()).reads_everywhere("batch")

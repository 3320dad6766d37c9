"""Cluster membership through real processes: remove and add members (3 -> 2 -> 3), and a removed
member restarted with its old config disturbs nothing (issue 6, first steps)."""

from __future__ import annotations

import pytest

from hsmnode.devcluster import DevCluster
from tests.integration.helpers import converged, eventually, leader_of, node_status, note, notes_on

pytestmark = pytest.mark.cluster


def test_remove_then_add_a_member_keeps_the_cluster_writable_and_identical(cluster: DevCluster) -> None:
    leader = leader_of(cluster)
    leaving = next(m for m in cluster.members if m.id != leader)
    note(cluster, "three members")
    cluster.remove_member(leaving.id)
    remaining = [m.id for m in cluster.members]
    assert leaving.id not in remaining and len(remaining) == 2
    note(cluster, "two members")
    with cluster.client() as client:
        status = client.cluster_status()
    assert sorted(m.id for m in status.members) == sorted(remaining)
    joined = cluster.add_member()
    note(cluster, "three again")
    members = [m.id for m in cluster.members]
    assert joined.id in members and len(members) == 3
    eventually(lambda: "three again" in notes_on(cluster, joined.id), 30.0, f"{joined.id} caught up")
    digest = converged(cluster, members, timeout=30.0)
    assert node_status(cluster, joined.id).state_digest == digest

    # the removed member comes back with its old config: it is refused by the others and changes nothing
    cluster.members.append(leaving)
    try:
        cluster.start(leaving.id)
        eventually(
            lambda: node_status(cluster, leaving.id).role in ("candidate", "follower"),
            20.0,
            "the old member up",
        )
        note(cluster, "after the old member came back")
        digest = converged(cluster, members, timeout=30.0)
        leaders = [m for m in members if node_status(cluster, m).role == "leader"]
        assert len(leaders) == 1
        old = node_status(cluster, leaving.id)
        assert old.role != "leader" and old.state_digest != digest
    finally:
        cluster.stop(leaving.id)
        cluster.members.remove(leaving)


def test_removing_the_leader_hands_leadership_over_first(cluster: DevCluster) -> None:
    leader = leader_of(cluster)
    cluster.remove_member(leader)
    survivors = [m.id for m in cluster.members]
    new_leader = leader_of(cluster, survivors)
    assert new_leader != leader
    note(cluster, "after the leader left")
    converged(cluster, survivors, timeout=30.0)

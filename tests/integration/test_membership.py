"""Cluster membership through real processes: remove and add members (3 -> 2 -> 3), and a removed
member restarted with its old config disturbs nothing, and a leader leaves through the CLI (issue 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hsmnode.client import FailedPrecondition, HsmClient, HsmError
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import converged, eventually, leader_of, node_status, note, notes_on

pytestmark = [pytest.mark.cluster, pytest.mark.processes]


def test_remove_then_add_a_member_keeps_the_cluster_writable_and_identical(cluster: DevCluster) -> None:
    leader = leader_of(cluster)
    leaving = next(m for m in cluster.members if m.id != leader)
    note(cluster, "three members")
    cluster.remove_member(leaving.id)
    remaining = [m.id for m in cluster.members]
    assert leaving.id not in remaining and len(remaining) == 2
    note(cluster, "two members")

    def listed() -> list[str]:
        with cluster.client() as client:
            return sorted(m.id for m in client.cluster_status().members)

    eventually(
        lambda: listed() == sorted(remaining), 15.0, "every member's directory without the removed one"
    )
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
        with (
            HsmClient([leaving.grpc], cluster.tls(), discover=False, timeout=3.0) as on_old,
            pytest.raises(FailedPrecondition, match="was removed from cluster"),
        ):
            on_old.login("admin", "whatever")
    finally:
        cluster.stop(leaving.id)
        cluster.members.remove(leaving)


def test_the_leader_leaves_through_the_cli_hands_leadership_over_and_then_refuses_clients(
    cluster: DevCluster,
) -> None:
    leader = leader_of(cluster)
    leaving = cluster.member(leader)
    demo = cluster.demo()
    assert demo is not None
    try:
        left = subprocess.run(
            [
                sys.executable,
                "-m",
                "hsmnode",
                "cluster",
                "leave",
                leader,
                "--password",
                demo["users"]["admin"],
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, HSMNODE_PROFILE=str(cluster.profile_path)),
        )
        assert left.returncode == 0, left.stderr
        answer = json.loads(left.stdout)
        survivors = [m.id for m in cluster.members if m.id != leader]
        assert answer["left"] == leader and sorted(answer["members"]) == sorted(survivors)
        new_leader = leader_of(cluster, survivors)
        assert new_leader != leader

        def listed() -> list[str]:
            with cluster.client() as client:
                return sorted(m.id for m in client.cluster_status().members)

        eventually(lambda: listed() == sorted(survivors), 15.0, "every member's directory without the leaver")

        # still running, the member that left refuses clients with a clear error
        def refused() -> bool:
            with HsmClient([leaving.grpc], cluster.tls(), discover=False, timeout=3.0) as on_old:
                try:
                    on_old.login("admin", demo["users"]["admin"])
                except FailedPrecondition as exc:
                    return "was removed from cluster" in str(exc)
                except HsmError:
                    return False
                return False

        eventually(refused, 15.0, f"{leader} refuses clients")
        cluster.members.remove(leaving)
        note(cluster, "after the leader left")
        converged(cluster, survivors, timeout=30.0)
    finally:
        if leaving not in cluster.members:
            cluster.members.append(leaving)
        cluster.stop(leaving.id)
        cluster.members.remove(leaving)

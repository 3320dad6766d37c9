"""Membership changes as one recoverable operation, and an SDK that follows them (issue 10).

Real member processes: the README's maintenance cycle (remove, work, rejoin) run as written; any
member removed through the default profile, the one it talks to first and the leader included; a
removed member that keeps running costs an application nothing; a removal left half done is
completed by the leader's reconciler (audited) or by `cluster remove`; bad input changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.client import (
    AlreadyExists,
    FailedPrecondition,
    HsmClient,
    NotFound,
    OutcomeUnknown,
    Unauthenticated,
    new_request_id,
    remove_member,
)
from hsmnode.ops.devcluster import DevCluster
from hsmnode.ops.joining import join
from hsmnode.service.membership import HALF_DONE_PREFIX
from tests.integration.conftest import start_cluster
from tests.integration.helpers import audit_records, converged, eventually, leader_of, node_status

pytestmark = [pytest.mark.cluster, pytest.mark.processes]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One 3-member cluster for the module (fault injection on); every test leaves all three members in."""
    c = start_cluster(Path(tmp_path_factory.mktemp("membership")) / "cluster", compaction=40)
    try:
        yield c
    finally:
        c.stop()


def rejoin(cluster: DevCluster, member_id: str) -> None:
    """Bring a removed member back (cluster join), and wait until every member agrees on all three."""
    demo = cluster.demo()
    assert demo is not None
    helper = next(m for m in cluster.members if m.id != member_id)
    join(
        cluster.member(member_id).grpc,
        helper.grpc,
        cluster.tls(),
        node_admin=None,
        cluster_admin=("admin", demo["users"]["admin"]),
    )
    eventually(lambda: agreeing(cluster, [m.id for m in cluster.members]), 30.0, f"{member_id} back")


def cli(cluster: DevCluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hsmnode", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=dict(os.environ, HSMNODE_PROFILE=str(cluster.profile_path), **env),
    )


def agreeing(cluster: DevCluster, member_ids: list[str]) -> bool:
    """Every member's directory and Raft configuration name exactly `member_ids`."""
    wanted = {cluster.member(m).raft for m in member_ids}
    for member in member_ids:
        status = node_status(cluster, member)
        if set(status.directory) != wanted or set(status.raft_configuration) != wanted:
            return False
    return True


def refuses_as_removed(cluster: DevCluster, member_id: str) -> bool:
    with HsmClient([cluster.member(member_id).grpc], cluster.tls(), discover=False, timeout=3.0) as one:
        try:
            one.login("admin", "whatever")
        except FailedPrecondition as exc:
            return exc.reason == "removed"
    return False


def readme_cycle() -> list[str]:
    """The maintenance cycle's lines, as the README shows them."""
    text = README.read_text()
    block = text.split("<!-- maintenance-cycle:", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_maintenance_cycle_runs_as_written(cluster: DevCluster) -> None:
    demo = cluster.demo()
    assert demo is not None
    node1, node3 = cluster.member("node1"), cluster.member("node3")
    env = {"ADMIN_PASSWORD": demo["users"]["admin"]}
    everyone = [m.id for m in cluster.members]
    for line in readme_cycle():
        if line.startswith("export HSMNODE_PROFILE="):
            continue  # cli() sets it to this cluster's profile
        if line.startswith("#"):
            # the maintenance: node3's process stops and starts again; it still refuses clients
            cluster.stop("node3")
            cluster.start("node3")
            eventually(lambda: refuses_as_removed(cluster, "node3"), 30.0, "node3 refusing after its restart")
            continue
        command = (
            line.split("  #")[0].replace("127.0.0.1:7402", node3.grpc).replace("127.0.0.1:7400", node1.grpc)
        )
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, HSMNODE_PROFILE=str(cluster.profile_path), **env),
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if "cluster remove" in command:
            others = [m for m in everyone if m != "node3"]
            eventually(
                lambda others=others: agreeing(cluster, others), 15.0, "directory and Raft without node3"
            )
            assert eventually(lambda: refuses_as_removed(cluster, "node3"), 15.0, "node3 refusing clients")
    eventually(lambda: agreeing(cluster, everyone), 30.0, "directory and Raft with node3 again")
    digest = converged(cluster, everyone, timeout=30.0)
    assert (
        node_status(cluster, "node3").state_digest == digest
        and not node_status(cluster, "node3").removed_from
    )


def test_cluster_remove_takes_out_every_member_through_the_default_profile(cluster: DevCluster) -> None:
    """`cluster remove --member X` through the default profile for every X — the first endpoint (which
    the CLI talks to first) and the leader among them; each comes back with `cluster join`."""
    demo = cluster.demo()
    assert demo is not None
    everyone = [m.id for m in cluster.members]
    assert cli(cluster, "login", "admin", "--password", demo["users"]["admin"]).returncode == 0
    roles = []
    for target in [*everyone, "leader"]:
        if target == "leader" and "leader" in roles:
            break  # the leader was one of them already
        member = leader_of(cluster) if target == "leader" else target
        roles.append(node_status(cluster, member).role)
        removed = cli(cluster, "cluster", "remove", "--member", member, "--json")
        assert removed.returncode == 0, removed.stderr
        others = [m for m in everyone if m != member]
        assert sorted(json.loads(removed.stdout)["members"]) == sorted(others)
        eventually(lambda others=others: agreeing(cluster, others), 15.0, f"agreement without {member}")
        shown = json.loads(cli(cluster, "cluster", "status", "--json").stdout)
        assert sorted(m["id"] for m in shown["members"]) == sorted(others), shown
        helper = next(m for m in others)
        back = cli(
            cluster,
            "cluster",
            "join",
            "--node",
            cluster.member(member).grpc,
            "--cluster",
            cluster.member(helper).grpc,
            "--cluster-password",
            demo["users"]["admin"],
            "--json",
        )
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["rejoin"] is True
        eventually(lambda: agreeing(cluster, everyone), 30.0, f"agreement with {member} back")
    assert "leader" in roles
    converged(cluster, everyone, timeout=30.0)


def test_a_removed_member_still_running_and_in_the_profile_costs_the_application_nothing(
    cluster: DevCluster,
) -> None:
    demo = cluster.demo()
    assert demo is not None
    leaving = next(m.id for m in cluster.members if m.id != leader_of(cluster))
    others = [m.id for m in cluster.members if m.id != leaving]
    remove_member(
        [m.grpc for m in cluster.members], cluster.tls(), leaving, ("admin", demo["users"]["admin"])
    )
    assert cluster.running(leaving) and eventually(lambda: refuses_as_removed(cluster, leaving), 15.0)
    assert node_status(cluster, leaving).removed_from == cluster.cluster_id  # its own status says so
    # cluster status through the profile that still names it: the true membership
    with HsmClient.from_profile(cluster.profile_path) as admin:
        status = admin.cluster_status()
    assert sorted(m.id for m in status.members) == sorted(others) and status.leader in others
    shown = cli(cluster, "cluster", "status", "--json")
    assert sorted(m["id"] for m in json.loads(shown.stdout)["members"]) == sorted(others)
    # the removed member's own view says it is stale (a new user saw it listed as a follower, no hint)
    stale = cli(cluster, "cluster", "status", "--endpoint", cluster.member(leaving).grpc)
    assert f"this member was removed from cluster {cluster.cluster_id}" in stale.stdout
    # one client, built from the profile that still names the removed member
    with HsmClient.from_profile(cluster.profile_path, identity="client") as app:
        assert cluster.member(leaving).grpc in app.endpoints
        session = app.open_session("demo", demo["partition"]["co_password"], role="CO")
        session.keep = True
        key = session.generate_key("after-removal", "EC", "P-256", usage=["sign"])
        for _ in range(200):
            assert session.sign(key.id, b"payload", mechanism="ECDSA-SHA256")
        for _ in range(50):
            opened = app.open_session("demo", demo["partition"]["cu_password"], role="CU")
            opened.keep = True
        assert cluster.member(leaving).grpc not in app.endpoints
        assert cluster.member(leaving).grpc in app.dropped
        # back in the cluster, back among the client's endpoints at its next look at the membership
        rejoin(cluster, leaving)
        app.refresh_members()
        assert (
            cluster.member(leaving).grpc in app.endpoints and cluster.member(leaving).grpc not in app.dropped
        )
        assert session.sign(key.id, b"payload", mechanism="ECDSA-SHA256")


def half_removed(cluster: DevCluster, member_id: str) -> None:
    """A removal that stops after its directory step, as when the member running it dies there
    (fault injection: the request id asks the member to stop at that point)."""
    demo = cluster.demo()
    assert demo is not None
    via = next(m for m in cluster.members if m.id != member_id)
    with HsmClient([via.grpc], cluster.tls(), discover=False, timeout=0.5) as client:
        session = client.login("admin", demo["users"]["admin"])
        session.keep = True
        with pytest.raises(OutcomeUnknown):
            session.remove_member(member_id, request_id=f"{HALF_DONE_PREFIX}{member_id}-{new_request_id()}")


def test_a_half_done_removal_is_completed_by_the_leader_and_audited(cluster: DevCluster) -> None:
    target = next(m.id for m in cluster.members if m.id != leader_of(cluster))
    others = [m.id for m in cluster.members if m.id != target]
    half_removed(cluster, target)
    eventually(lambda: agreeing(cluster, others), 20.0, "the leader completing the removal")
    records = audit_records(cluster, others[0])
    completed = [r for r in records if r.command == "audit.event" and "membership.reconcile" in r.detail]
    assert any(f"completing the removal of {target}" in r.detail for r in completed), [
        r.detail for r in completed
    ]
    rejoin(cluster, target)


def test_cluster_remove_completes_a_half_done_removal_and_answers_success_when_it_took_effect(
    cluster: DevCluster,
) -> None:
    demo = cluster.demo()
    assert demo is not None
    target = next(m.id for m in cluster.members if m.id != leader_of(cluster))
    others = [m.id for m in cluster.members if m.id != target]
    assert cli(cluster, "login", "admin", "--password", demo["users"]["admin"]).returncode == 0
    half_removed(cluster, target)
    with HsmClient.from_profile(cluster.profile_path) as admin:
        half = {m.id: m for m in admin.cluster_status().members}
    # out of the directory; still a voter until this command (or, 3 s on, the leader) completes it
    assert target not in half or not half[target].listed
    for _ in range(2):  # completing it, then again once it took effect: success both times
        done = cli(cluster, "cluster", "remove", "--member", target, "--json")
        assert done.returncode == 0, done.stderr
        assert sorted(json.loads(done.stdout)["members"]) == sorted(others)
    eventually(lambda: agreeing(cluster, others), 15.0, "agreement without the removed member")
    rejoin(cluster, target)


def test_membership_bad_input_is_refused_clearly_and_changes_nothing(cluster: DevCluster) -> None:
    demo = cluster.demo()
    assert demo is not None
    endpoints = [m.grpc for m in cluster.members]
    admin = ("admin", demo["users"]["admin"])
    before = node_status(cluster, "node1")
    with pytest.raises(NotFound, match=r"no member 'node9' \(members: node1, node2, node3\)"):
        remove_member(endpoints, cluster.tls(), "node9", admin, timeout=10.0)
    with HsmClient(endpoints, cluster.tls()) as client:
        session = client.login(*admin)
        session.keep = True
        with pytest.raises(AlreadyExists, match="remove it first"):
            session.add_member("node2", raft_address="127.0.0.1:1", address="127.0.0.1:2")
        with pytest.raises(AlreadyExists, match="already uses"):
            session.add_member("node7", raft_address=cluster.member("node2").raft, address="127.0.0.1:2")
    # a rejoin with the wrong cluster admin password: refused before anything changes
    remove_member(endpoints, cluster.tls(), "node3", admin)
    with pytest.raises(Unauthenticated):
        join(
            cluster.member("node3").grpc,
            cluster.member("node1").grpc,
            cluster.tls(),
            node_admin=None,
            cluster_admin=("admin", "Wrong-pass-1"),
        )
    assert node_status(cluster, "node3").removed_from
    after = node_status(cluster, "node1")
    assert set(after.directory) == set(before.directory) - {cluster.member("node3").raft}
    # joining a member of the cluster that was never removed: nothing to join
    with pytest.raises(FailedPrecondition, match="already a member"):
        join(
            cluster.member("node2").grpc,
            cluster.member("node1").grpc,
            cluster.tls(),
            node_admin=None,
            cluster_admin=admin,
        )
    rejoin(cluster, "node3")

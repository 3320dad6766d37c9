"""A standalone node joins a cluster, and the cluster overwrites it (issue 6; DOMAIN.md §2).

The joiner is a member process (a join re-executes it); the cluster it joins runs in-process unless
HSMNODE_TEST_CLUSTERS=processes."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.client import (
    FailedPrecondition,
    HsmClient,
    InvalidArgument,
    Tls,
    Unauthenticated,
    Unavailable,
    new_request_id,
)
from hsmnode.ops.demo import bootstrap
from hsmnode.ops.devcluster import DevCluster, DevMember
from hsmnode.ops.joining import join
from tests.integration.conftest import free_base_port
from tests.integration.helpers import converged, eventually, node_status

pytestmark = pytest.mark.cluster

JOINER_PW = "Joiner-admin-1"


@pytest.fixture
def joiner(cluster: DevCluster) -> Iterator[DevMember]:
    base = free_base_port(1)
    member = cluster.make_standalone("node4", base, base + 100)
    try:
        yield member
    finally:
        cluster.stop_process(member)


def customize(cluster: DevCluster, member: DevMember) -> None:
    """The joiner's own appliance state: a custom role and two custom users."""
    with HsmClient([member.grpc], cluster.tls(), discover=False) as client:
        admin = client.login("admin", "PASSWORD", new_password=JOINER_PW)
        admin.keep = True
        admin.add_role("joiner-role", ["user.list"])
        admin.add_user("jalice", role="joiner-role", password="Alice-pw-12")
        admin.add_user("jbob", role="monitor", password="Bob-pw-1234")


def own_setup(cluster: DevCluster, member: DevMember) -> tuple[dict, Tls]:  # type: ignore[type-arg]
    """The joiner's own demo (HSM, partition, keyring, client demo-client) and that client's TLS."""
    own_demo = bootstrap(member.dir, [member.grpc], cluster.tls())
    own = Tls(
        cluster.tls().ca_pem,
        (member.dir / "demo-client.pem").read_bytes(),
        (member.dir / "demo-client.key").read_bytes(),
    )
    return own_demo, own


def do_join(cluster: DevCluster, member: DevMember, node_password: str = JOINER_PW, **kwargs: bool):  # type: ignore[no-untyped-def]
    demo = cluster.demo()
    assert demo is not None
    return join(
        member.grpc,
        cluster.members[0].grpc,
        cluster.tls(),
        node_admin=("admin", node_password),
        cluster_admin=("admin", demo["users"]["admin"]),
        **kwargs,
    )


def test_standalone_node_joins_and_the_cluster_overwrites_its_users_and_roles(
    cluster: DevCluster, joiner: DevMember
) -> None:
    demo = cluster.demo()
    assert demo is not None
    customize(cluster, joiner)
    with (
        cluster.app_client() as app,
        app.open_session("demo", demo["partition"]["co_password"], role="CO") as co,
    ):
        co.generate_key("before-join", "EC", "P-256", usage=["sign"])
        token = co.token
        co.keep = True

    dry = do_join(cluster, joiner, dry_run=True)
    assert not dry.joined and sorted(dry.users) == ["jalice", "jbob"] and dry.roles == ["joiner-role"]
    report = do_join(cluster, joiner)
    assert report.joined and sorted(report.users) == ["jalice", "jbob"] and report.roles == ["joiner-role"]
    assert Path(report.archive).exists() and Path(report.archive).parent == joiner.data_dir

    members = [m.id for m in cluster.members] + [joiner.id]
    cluster.members.append(joiner)
    try:
        digest = converged(cluster, members, timeout=30.0)
        assert node_status(cluster, joiner.id).state_digest == digest
        with HsmClient([joiner.grpc], cluster.tls(), discover=False) as on_joiner:
            with pytest.raises(Unauthenticated):
                on_joiner.login("jalice", "Alice-pw-12")
            for user in ("admin", "operator", "monitor", "audit"):
                on_joiner.login(user, demo["users"][user]).keep = True
            names = {u.name for u in on_joiner.login("admin", demo["users"]["admin"]).list_users()}
            assert not {"jalice", "jbob"} & names
        # a key created on the old members signs on the new one
        with HsmClient([joiner.grpc], cluster.client_tls(), discover=False) as app4:
            session = app4.resume_partition(token, "demo", "CO")
            assert eventually(lambda: len(session.sign("before-join", b"m", mechanism="ECDSA-SHA256")) > 0)
        auditor_seen = report.summary()
        assert "jalice" in auditor_seen and "joiner-role" in auditor_seen
    finally:
        cluster.members.remove(joiner)


def test_a_joiner_holding_keys_is_refused_unless_forced_and_its_archive_keeps_them(
    cluster: DevCluster, joiner: DevMember
) -> None:
    own_demo, own = own_setup(cluster, joiner)
    password = own_demo["users"]["admin"]
    with (
        HsmClient([joiner.grpc], own, discover=False) as app,
        app.open_session("demo", own_demo["partition"]["co_password"], role="CO") as co,
    ):
        key = co.generate_key("joiner-key", "EC", "P-256", usage=["sign"])
    with pytest.raises(FailedPrecondition, match="holds 1 key"):
        do_join(cluster, joiner, password)
    assert node_status(cluster, cluster.members[0].id).members == 3
    report = do_join(cluster, joiner, password, force=True)
    assert report.joined and report.keys == 1
    with tarfile.open(report.archive) as archive:
        names = archive.getnames()
        assert "smk.key" in names and any(n.startswith("raft.") for n in names)
        journal = b"".join(archive.extractfile(n).read() for n in names if n.startswith("raft."))  # type: ignore[union-attr]
    assert key.id.encode() in journal  # the discarded key is still in the archive, wrapped under the old SMK


def test_bad_joins_change_nothing(cluster: DevCluster, joiner: DevMember) -> None:
    customize(cluster, joiner)
    demo = cluster.demo()
    assert demo is not None
    with pytest.raises(InvalidArgument, match="cannot join itself"):
        join(
            joiner.grpc,
            joiner.grpc,
            cluster.tls(),
            node_admin=("admin", JOINER_PW),
            cluster_admin=("admin", "x"),
        )
    with pytest.raises(Unauthenticated):
        join(
            joiner.grpc,
            cluster.members[0].grpc,
            cluster.tls(),
            node_admin=("admin", JOINER_PW),
            cluster_admin=("admin", "Wrong-pass-1"),
        )
    with pytest.raises(FailedPrecondition, match="already a member"):
        join(
            cluster.members[1].grpc,
            cluster.members[0].grpc,
            cluster.tls(),
            node_admin=("admin", demo["users"]["admin"]),
            cluster_admin=("admin", demo["users"]["admin"]),
        )
    with pytest.raises(Unavailable):
        join(
            joiner.grpc,
            "127.0.0.1:1",
            cluster.tls(),
            node_admin=("admin", JOINER_PW),
            cluster_admin=("admin", "x"),
            timeout=2.0,
        )
    assert node_status(cluster, cluster.members[0].id).members == 3
    with HsmClient([joiner.grpc], cluster.tls(), discover=False) as client:
        assert "jalice" in {u.name for u in client.login("admin", JOINER_PW).list_users()}


def test_two_joins_at_once_one_waits_or_is_refused_and_nothing_is_corrupted(cluster: DevCluster) -> None:
    import threading

    from hsmnode.client import HsmError

    nodes = []
    for name in ("node5", "node6"):
        base = free_base_port(1)
        member = cluster.make_standalone(name, base, base + 100)
        customize(cluster, member)
        nodes.append(member)
    outcomes: dict[str, object] = {}

    def attempt(member: DevMember) -> None:
        try:
            outcomes[member.id] = do_join(cluster, member)
        except HsmError as exc:
            outcomes[member.id] = exc

    try:
        threads = [threading.Thread(target=attempt, args=(m,)) for m in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        joined = [m for m in nodes if getattr(outcomes[m.id], "joined", False)]
        refused = [outcomes[m.id] for m in nodes if m not in joined]
        assert joined, outcomes
        for error in refused:
            assert isinstance(error, HsmError) and "membership change" in error.message, error
        cluster.members.extend(joined)
        try:
            converged(cluster, [m.id for m in cluster.members], timeout=30.0)
            with cluster.client() as client:
                assert sorted(m.id for m in client.cluster_status().members) == sorted(
                    m.id for m in cluster.members
                )
        finally:
            for m in joined:
                cluster.members.remove(m)
    finally:
        for m in nodes:
            cluster.stop_process(m)


def test_cli_join_dry_run_reports_and_changes_nothing(cluster: DevCluster, joiner: DevMember) -> None:
    import json
    import subprocess
    import sys

    customize(cluster, joiner)
    demo = cluster.demo()
    assert demo is not None
    result = subprocess.run(
        [
            sys.executable, "-m", "hsmnode", "cluster", "join", "--node", joiner.grpc, "--cluster", cluster.members[0].grpc,
            "--node-password", JOINER_PW, "--cluster-password", demo["users"]["admin"], "--dry-run", "--json",
            "--profile", str(cluster.profile_path),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["joined"] is False and sorted(report["overwritten"]["users"]) == ["jalice", "jbob"]
    assert node_status(cluster, cluster.members[0].id).members == 3


def test_a_joiner_holding_keyring_keys_is_refused_and_its_report_lists_its_keyrings(
    cluster: DevCluster, joiner: DevMember
) -> None:
    own_demo, own = own_setup(cluster, joiner)  # its own keyring demo-ring
    with (
        HsmClient([joiner.grpc], own, discover=False) as app,
        app.open_session("demo-ring", own_demo["keyring"]["krco_password"], role="KRCO") as krco,
    ):
        krco.generate_key("ring-key", "AES", "256", usage=["encrypt", "decrypt"])
    password = own_demo["users"]["admin"]
    dry = do_join(cluster, joiner, password, dry_run=True)
    assert dry.keyrings == {"demo-ring": 1} and dry.partition_keys == {"cluster": 0, "demo": 0}
    assert dry.keys == 1 and not dry.joined
    with pytest.raises(FailedPrecondition, match=r"holds 1 key\(s\) in keyring demo-ring \(1\).*--force"):
        do_join(cluster, joiner, password)
    assert node_status(cluster, cluster.members[0].id).members == 3  # nothing changed


def test_a_repeated_adoption_answers_the_first_before_and_after_the_restart_and_adopts_once(
    cluster: DevCluster, joiner: DevMember
) -> None:
    # A new user's join under load: archiving took 8.6 s, the call's attempt gave up at 5 s and its
    # retry started a second adoption (a second, truncated archive), then found the node restarting;
    # the join took the node back out and stranded it. Now every attempt carries one request id: the
    # node adopts once and answers the same archive to every repeat, also from its next incarnation.
    demo = cluster.demo()
    assert demo is not None
    customize(cluster, joiner)
    tls = cluster.tls()
    with HsmClient([joiner.grpc], tls, discover=False, timeout=30.0) as node, cluster.client() as on_cluster:
        before = node.node_status()
        admin = on_cluster.login("admin", demo["users"]["admin"])
        node_admin = node.login("admin", JOINER_PW)
        admin.keep = node_admin.keep = True
        admin.add_member(before.id, raft_address=before.raft_address, address=before.address)
        bundle = admin.join_bundle(before.node_certificate)
        request_id = new_request_id()
        answers: list[str] = []
        attempts = [
            threading.Thread(
                target=lambda: answers.append(node_admin.adopt_cluster(bundle, request_id=request_id))
            )
            for _ in range(2)
        ]
        for t in attempts:
            t.start()
        for t in attempts:
            t.join(60)
        assert len(answers) == 2 and answers[0] == answers[1], answers
    cluster.members.append(joiner)
    try:
        eventually(
            lambda: node_status(cluster, joiner.id).incarnation != before.incarnation,
            60.0,
            "the node restarted",
        )
        with HsmClient([joiner.grpc], tls, discover=False, timeout=30.0) as restarted:
            assert (
                restarted.resume(node_admin.token).adopt_cluster(bundle, request_id=request_id) == answers[0]
            )
        assert sorted(joiner.data_dir.glob("archive-*")) == [Path(answers[0])]  # adopted once
        with tarfile.open(answers[0]) as archive:
            assert archive.getnames()  # whole: every member of it reads
        converged(cluster, [m.id for m in cluster.members], timeout=60.0)
    finally:
        cluster.members.remove(joiner)

"""Access rules through a real cluster (DOMAIN.md §1 who may do what, §3 the client handshake)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from hsmnode import crypto
from hsmnode.client import (
    FailedPrecondition,
    HsmClient,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Tls,
    Unauthenticated,
)
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, eventually

pytestmark = pytest.mark.cluster

NODES = ("node1", "node2", "node3")


def demo_of(cluster: DevCluster) -> dict[str, dict[str, str]]:
    demo = cluster.demo()
    assert demo is not None
    return demo


def refused(fn: Callable[[], object]) -> bool:
    """True when `fn` is refused with Unauthenticated; any other error propagates as 'not yet'."""
    try:
        fn()
    except Unauthenticated:
        return True
    return False


def own_client(cluster: DevCluster, pair: crypto.PemPair, member_id: str | None = None) -> HsmClient:
    """A client presenting its own (self-signed) certificate, to one member or all."""
    endpoints = [cluster.member(member_id).grpc] if member_id else [m.grpc for m in cluster.members]
    tls = Tls((cluster.root / "ca.pem").read_bytes(), pair.cert_pem, pair.key_pem)
    return HsmClient(endpoints, tls, timeout=5.0)


def slot_names(client: HsmClient) -> set[str]:
    slots = client.list_slots().slots
    return {s.partition for s in slots}


# --- §1: appliance users are synchronized; initial passwords expire --------------------------


def test_user_created_on_one_member_logs_in_on_another_at_once(cluster: DevCluster) -> None:
    """How soon another member has the user is a replication figure (bench/, never timed in a test);
    what a test can hold: through a client that reads the admin's writes, node3's first answer
    already knows the user, and the login rules hold there."""
    admin = as_admin(cluster, "node1")
    initial, final = dev_password(), dev_password()
    with (
        admin.client,
        HsmClient([cluster.member("node3").grpc], cluster.tls(), index_from=admin.client) as third,
    ):
        admin.add_user("bob", role="operator", password=initial)
        with pytest.raises(FailedPrecondition) as first:
            third.login("bob", initial)
        assert "initial password" in first.value.message and "expired" in first.value.message
        with third.login("bob", initial, new_password=final) as bob:
            assert bob.role == "operator"
            assert {u.name for u in bob.list_users()} >= {"admin", "bob"}


# --- §3: the client handshake -------------------------------------------------------------


def test_unregistered_client_certificate_fails_the_handshake_and_learns_no_partition(
    cluster: DevCluster,
) -> None:
    stranger = own_client(cluster, crypto.self_signed_client_certificate("stranger"))
    with stranger, pytest.raises(Unauthenticated) as info:
        stranger.list_slots()
    assert "refused this client certificate" in info.value.message
    assert "demo" not in str(info.value)


def test_client_lists_only_its_partitions_and_cannot_tell_unassigned_from_missing(
    cluster: DevCluster,
) -> None:
    demo = demo_of(cluster)
    admin = as_admin(cluster)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition("pay")
            so.create_partition("hidden")
        admin.assign_client("demo-client", "pay")
    with cluster.app_client() as app:
        names = eventually(lambda: (n := slot_names(app)) and "pay" in n and n, 5.0, "'pay' in the slots")
        assert names == {"demo", "pay", "demo-ring"}  # its partitions and its keyring, nothing else
        messages = {}
        for name in ("hidden", "nosuch"):
            with pytest.raises(NotFound) as info:
                app.open_session(name, demo["partition"]["co_password"], role="CO")
            messages[name] = info.value.message.replace(name, "<name>")
    assert messages["hidden"] == messages["nosuch"], messages
    assert not any(other in messages["hidden"] for other in ("demo", "pay", "nosuch"))


def test_failed_partition_logins_count_cluster_wide_and_lock_out_until_the_co_resets(
    cluster: DevCluster,
) -> None:
    part = demo_of(cluster)["partition"]
    with cluster.app_client() as app, app.open_session("demo", part["po_password"], role="PO") as po:
        po.set_policy("max_failed_logins", 3)
    wrong = dev_password()
    for attempt, node in enumerate(NODES, start=1):
        with cluster.app_client(node) as app:
            if attempt < 3:
                with pytest.raises(
                    Unauthenticated, match=rf"wrong password .*\({3 - attempt} attempts? left"
                ):
                    app.open_session("demo", wrong, role="CU")
            else:
                with pytest.raises(ResourceExhausted, match="locked after 3 failed logins") as info:
                    app.open_session("demo", wrong, role="CU")
                assert "CO must reset" in info.value.message
    for node in NODES:  # now even the right password is refused, on every member
        with cluster.app_client(node) as app, pytest.raises(ResourceExhausted, match="CO must reset"):
            app.open_session("demo", part["cu_password"], role="CU")
    reset, final = dev_password(), dev_password()
    with cluster.app_client("node2") as app:
        with app.open_session("demo", part["co_password"], role="CO") as co:
            co.init_role("CU", reset)
        with pytest.raises(FailedPrecondition, match="initial password"):
            app.open_session("demo", reset, role="CU")
        app.change_partition_password("demo", "CU", reset, final)
        with app.open_session("demo", final, role="CU") as cu:
            assert cu.info().role == "CU"


# --- §1: read-only monitor, custom roles ------------------------------------------------------


def test_monitor_reads_status_and_lists_but_changes_nothing(cluster: DevCluster) -> None:
    demo = demo_of(cluster)
    cert = crypto.self_signed_client_certificate("m-client").cert_pem.decode()
    with cluster.client() as client, client.login("monitor", demo["users"]["monitor"]) as monitor:
        assert client.cluster_status().leader
        assert monitor.show_hsm().initialized
        assert {u.name for u in monitor.list_users()} >= {"admin", "operator", "monitor", "audit"}
        assert "demo" in {p.name for p in monitor.list_partitions()}
        assert "demo-client" in {c.name for c in monitor.list_clients()}
        changes: dict[str, Callable[[], object]] = {
            "user.add": lambda: monitor.add_user("eve", role="admin", password=dev_password()),
            "user.disable": lambda: monitor.set_user_enabled("operator", False),
            "user.passwd": lambda: monitor.set_user_password("operator", dev_password()),
            "user.delete": lambda: monitor.delete_user("operator"),
            "role.add": lambda: monitor.add_role("sneaky", ["user.add"]),
            "client.register": lambda: monitor.register_client("m-client", cert),
            "client.revoke": lambda: monitor.revoke_client("demo-client"),
            "audit.note": lambda: monitor.audit_note("monitor was here"),
            "hsm.login": lambda: monitor.hsm_login(demo["hsm"]["so_password"]),
        }
        for op, change in changes.items():
            with pytest.raises(PermissionDenied, match=f"may not run {op}"):
                change()
        assert {u.name for u in monitor.list_users()} == {"admin", "operator", "monitor", "audit"}
        assert [c.name for c in monitor.list_clients()] == ["cluster-so", "demo-client"]


def test_custom_role_allows_exactly_its_commands(cluster: DevCluster) -> None:
    admin = as_admin(cluster)
    initial, final = dev_password(), dev_password()
    with admin.client:
        admin.add_role("useradmin", ["user.list", "user.add"])
        admin.add_user("ua", role="useradmin", password=initial)
        with cluster.client() as client:
            with pytest.raises(FailedPrecondition):
                client.login("ua", initial)
            with client.login("ua", initial, new_password=final) as ua:
                assert "ua" in {u.name for u in ua.list_users()}
                ua.add_user("carol", role="monitor", password=dev_password())
                with pytest.raises(PermissionDenied, match="may not run user.disable"):
                    ua.set_user_enabled("carol", False)
                with pytest.raises(PermissionDenied, match="may not run client.list"):
                    ua.list_clients()
        carol = next(u for u in admin.list_users() if u.name == "carol")
        assert carol.enabled and carol.role == "monitor" and carol.must_change_password


# --- tokens are cluster-wide capabilities -----------------------------------------------------


def test_partition_session_token_works_on_every_member_until_logout(cluster: DevCluster) -> None:
    cu_password = demo_of(cluster)["partition"]["cu_password"]
    first = cluster.app_client("node1")
    others = {n: cluster.app_client(n) for n in NODES}
    try:
        session = first.open_session("demo", cu_password, role="CU")
        info = eventually(lambda: others["node2"].resume_partition(session.token).info(), 2.0)
        assert (info.partition, info.role) == ("demo", "CU")
        session.logout()
        with pytest.raises(Unauthenticated, match="session has ended"):
            first.resume_partition(session.token).info()
        for node, client in others.items():
            info_there = client.resume_partition(session.token).info
            eventually(partial(refused, info_there), 2.0, f"logout on {node}")
    finally:
        first.close()
        for client in others.values():
            client.close()


def test_client_registration_and_revocation_take_effect_on_every_member(cluster: DevCluster) -> None:
    pair = crypto.self_signed_client_certificate("newcomer")

    def lists_slots(member_id: str) -> set[str]:
        with own_client(cluster, pair, member_id) as client:
            return slot_names(client)

    with own_client(cluster, pair) as newcomer, pytest.raises(Unauthenticated):
        newcomer.list_slots()
    admin = as_admin(cluster, "node1")
    with admin.client:
        admin.register_client("newcomer", pair.cert_pem.decode())
        admin.assign_client("newcomer", "demo")
        assert eventually(lambda: lists_slots("node3"), 5.0, "newcomer's slots on node3") == {"demo"}
        for node in NODES:
            assert eventually(partial(lists_slots, node), 5.0, f"newcomer's slots on {node}") == {"demo"}
        admin.revoke_client("newcomer")
    for node in NODES:

        def refused_on(member_id: str = node) -> bool:
            with own_client(cluster, pair, member_id) as client:
                return refused(client.list_slots)

        eventually(refused_on, 5.0, f"newcomer refused by {node}")


def test_forged_foreign_or_malformed_tokens_are_unauthenticated(
    cluster: DevCluster, single: DevCluster
) -> None:
    with cluster.client() as client, client.login("admin", demo_of(cluster)["users"]["admin"]) as admin:
        body, signature = admin.token.rsplit(".", 1)
        i = len(signature) // 2  # a middle character: all 6 of its bits are signature bits
        forged = f"{body}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1 :]}"
        with single.client() as other:
            foreign = other.login("admin", demo_of(single)["users"]["admin"])
            foreign.keep = True
        cases = {
            "forged": (forged, "signature is invalid"),
            "foreign": (foreign.token, "signature is invalid"),
            "garbage": ("garbage", "malformed"),
        }
        for token, problem in cases.values():
            with pytest.raises(Unauthenticated, match=problem):
                client.resume(token).list_users()
        assert admin.list_users()  # the genuine token still works


def test_appliance_user_locked_after_five_failures_until_admin_resets(cluster: DevCluster) -> None:
    wrong, reset, final = dev_password(), dev_password(), dev_password()
    with cluster.client() as client:
        for _ in range(6):  # the answer to a wrong password never reveals the lockout
            with pytest.raises(Unauthenticated, match="wrong user name or password"):
                client.login("operator", wrong)
        with pytest.raises(ResourceExhausted) as info:  # the right password learns of it
            client.login("operator", demo_of(cluster)["users"]["operator"])
        assert "locked" in info.value.message and "admin reset" in info.value.message
        admin = as_admin(cluster)
        with admin.client:
            admin.set_user_password("operator", reset)
        with pytest.raises(FailedPrecondition, match="expired"):
            client.login("operator", reset)
        with client.login("operator", reset, new_password=final) as operator:
            assert operator.role == "operator"
            assert not next(u for u in operator.list_users() if u.name == "operator").locked

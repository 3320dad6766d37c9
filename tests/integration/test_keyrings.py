"""Keyrings through a real cluster (DOMAIN.md §1 "Keyring level"): the KRSO and KRCO use a
keyring's keys, the initial KRSO credential must be changed first, the cluster security officer
(the PO of the cluster partition) manages keyrings but is kept apart from their roles and contents,
keyring roles do no cluster administration, and a keyring locks after 10 failed logins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hsmnode.client import (
    FailedPrecondition,
    HsmClient,
    NotFound,
    PartitionSession,
    PermissionDenied,
    ResourceExhausted,
    Tls,
    Unauthenticated,
)
from hsmnode.ops.demo import CLUSTER_SO_CLIENT, dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, eventually

pytestmark = pytest.mark.cluster

NODES = ("node1", "node2", "node3")
RING = "demo-ring"
DATA = b"keyring payload"


def demo_of(cluster: DevCluster) -> dict[str, Any]:
    demo = cluster.demo()
    assert demo is not None
    return demo


def so_client(cluster: DevCluster, member_id: str | None = None) -> HsmClient:
    """A client presenting the `cluster-so` certificate: the client that holds the cluster partition."""
    endpoints = [cluster.member(member_id).grpc] if member_id else [m.grpc for m in cluster.members]
    tls = Tls.from_files(
        cluster.root / "ca.pem",
        cluster.root / f"{CLUSTER_SO_CLIENT}.pem",
        cluster.root / f"{CLUSTER_SO_CLIENT}.key",
    )
    return HsmClient(endpoints, tls, timeout=5.0)


def cluster_so(client: HsmClient, cluster: DevCluster) -> PartitionSession:
    """The cluster security officer: a PO session on the cluster partition."""
    return client.open_session("cluster", demo_of(cluster)["cluster_partition"]["po_password"], role="PO")


def keyring_session(client: HsmClient, cluster: DevCluster, role: str) -> PartitionSession:
    password = demo_of(cluster)["keyring"][f"{role.lower()}_password"]
    return client.open_session(RING, password, role=role)


def slot_names(client: HsmClient) -> set[str]:
    return {s.partition for s in client.list_slots().slots}


def verify_outside(public_der: bytes, signature: bytes) -> None:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, DATA, ec.ECDSA(hashes.SHA256()))


# --- the keyring roles use the keyring ------------------------------------------------------------


def test_krso_and_krco_both_use_the_keyring_keys_but_only_the_krso_sets_the_krco(cluster: DevCluster) -> None:
    # two members, one application: each client reads what the other wrote (a shared applied index)
    with cluster.app_client("node1") as first, cluster.app_client("node2", index_from=first) as second:
        with keyring_session(first, cluster, "KRSO") as krso:
            assert krso.info().role == "KRSO"
            key = krso.generate_key("ring-ec", "EC", "P-256", usage=["sign", "verify"])
            assert key.container == f"keyring:{RING}"
            verify_outside(key.public_der, krso.sign("ring-ec", DATA, mechanism="ECDSA-SHA256"))
            with keyring_session(second, cluster, "KRCO") as krco:
                assert krco.info().role == "KRCO"
                found = eventually(lambda: krco.list_keys(label="ring-ec"), 5.0, "ring-ec on node2")
                assert [k.public_der for k in found] == [key.public_der]
                verify_outside(key.public_der, krco.sign("ring-ec", DATA, mechanism="ECDSA-SHA256"))
                krco.generate_key("krco-aes", "AES", 256, usage=["encrypt", "decrypt"])
                sealed = krco.encrypt("krco-aes", DATA, mechanism="AES-GCM")
                assert krso.decrypt("krco-aes", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv) == DATA
                with pytest.raises(PermissionDenied, match=f"the KRCO of keyring '{RING}' may not"):
                    krco.set_krco(dev_password())
                with keyring_session(first, cluster, "KRCO") as again:  # the refusal changed nothing
                    assert again.list_keys(label="ring-ec")
            new_krco = dev_password()
            krso.set_krco(new_krco)
            with pytest.raises(Unauthenticated, match="wrong password"):
                keyring_session(second, cluster, "KRCO")
            with second.open_session(RING, new_krco, role="KRCO") as krco:
                assert {k.label for k in krco.list_keys()} == {"ring-ec", "krco-aes"}
        # keyring objects live in the keyring only: the demo partition's CO does not see them
        with first.open_session("demo", demo_of(cluster)["partition"]["co_password"], role="CO") as co:
            assert not co.list_keys()
            with pytest.raises(NotFound):
                co.sign("ring-ec", DATA, mechanism="ECDSA-SHA256")


# --- the initial KRSO credential ---------------------------------------------------------------------


def test_initial_krso_credential_serves_only_to_change_itself(cluster: DevCluster) -> None:
    initial, final = dev_password(), dev_password()
    with so_client(cluster) as so_app, cluster_so(so_app, cluster) as so:
        so.create_keyring("r2", initial)
        so.assign_keyring("r2", "demo-client")
        with cluster.app_client() as app:
            eventually(lambda: "r2" in slot_names(app), 5.0, "'r2' in demo-client's slots")
            for node in NODES:
                with cluster.app_client(node) as one, pytest.raises(FailedPrecondition) as info:
                    one.open_session("r2", initial, role="KRSO")
                assert "initial password" in info.value.message and "expired" in info.value.message
            with pytest.raises(FailedPrecondition, match="KRCO of keyring 'r2' is not set"):
                app.open_session("r2", initial, role="KRCO")
            ring = next(r for r in so.list_keyrings() if r.label == "r2")
            assert not ring.krso_initialized and ring.clients == ("demo-client",)

            app.change_partition_password("r2", "KRSO", initial, final)
            with pytest.raises(Unauthenticated, match="wrong password"):
                app.open_session("r2", initial, role="KRSO")  # the cluster SO's password is gone
            with app.open_session("r2", final, role="KRSO") as krso:
                assert (krso.info().partition, krso.info().role) == ("r2", "KRSO")
                krso.generate_key("r2-ec", "EC", "P-256", usage=["sign"])
                krso.set_krco(dev_password())
            ring = next(r for r in so.list_keyrings() if r.label == "r2")
            assert ring.krso_initialized and ring.krco_set and ring.objects == 1


# --- separation between the cluster SO and the keyring roles ----------------------------------------


def test_cluster_so_holds_no_keyring_role_and_cannot_reach_keyring_contents(cluster: DevCluster) -> None:
    demo = demo_of(cluster)
    with cluster.app_client() as app, keyring_session(app, cluster, "KRSO") as krso:
        krso.keep = True
        krso.generate_key("ring-ec", "EC", "P-256", usage=["sign", "verify"])
    with so_client(cluster) as so_app, cluster_so(so_app, cluster) as so:
        assert slot_names(so_app) == {"cluster"}
        for role in ("KRSO", "KRCO"):
            with pytest.raises(NotFound, match=f"no keyring '{RING}' is assigned to this client"):
                so_app.open_session(RING, demo["keyring"][f"{role.lower()}_password"], role=role)
        # its PO session is on the cluster partition: it can neither list nor use keys, let alone a keyring's
        with pytest.raises(PermissionDenied, match="the PO of partition 'cluster' may not object.list"):
            so.list_keys()
        with pytest.raises(PermissionDenied, match="the PO of partition 'cluster' may not crypto.use"):
            so.sign("ring-ec", DATA, mechanism="ECDSA-SHA256")
        # a keyring token is bound to the certificate it was issued to
        with pytest.raises(Unauthenticated, match="another client certificate"):
            so_app.resume_partition(krso.token).list_keys()
        with pytest.raises(FailedPrecondition, match="apart"):
            so.assign_keyring(RING, CLUSTER_SO_CLIENT)
        ring = next(r for r in so.list_keyrings() if r.label == RING)
        assert ring.clients == ("demo-client",) and ring.objects == 1  # a count, never the contents
    admin = as_admin(cluster)
    with admin.client:
        with pytest.raises(FailedPrecondition, match="apart"):
            admin.assign_client("demo-client", "cluster")
        assert admin.show_client("demo-client").partitions == ("demo",)
    with cluster.app_client() as app:
        assert slot_names(app) == {"demo", RING}


def test_keyring_roles_perform_no_cluster_administration(cluster: DevCluster) -> None:
    with cluster.app_client() as app, keyring_session(app, cluster, "KRSO") as krso:
        admin_tries: dict[str, Callable[[HsmClient], object]] = {
            "user.add": lambda c: c.resume(krso.token).add_user(
                "mallory", role="admin", password=dev_password()
            ),
            "user.list": lambda c: c.resume(krso.token).list_users(),
            "client.assign": lambda c: c.resume(krso.token).assign_client("demo-client", "cluster"),
            "hsm.login": lambda c: c.resume(krso.token).hsm_login(demo_of(cluster)["hsm"]["so_password"]),
        }
        with cluster.client() as admin_cert:
            for attempt in admin_tries.values():
                for client in (admin_cert, app):  # the token under the admin certificate, and its own
                    with pytest.raises((Unauthenticated, PermissionDenied)):
                        attempt(client)
        with pytest.raises((Unauthenticated, PermissionDenied)):
            krso.create_keyring("r3", dev_password())
        assert krso.list_keys() == []  # the session itself is still good
    admin = as_admin(cluster)
    with admin.client:
        assert "mallory" not in {u.name for u in admin.list_users()}
        assert admin.show_client("demo-client").partitions == ("demo",)
    with so_client(cluster) as so_app, cluster_so(so_app, cluster) as so:
        assert [r.label for r in so.list_keyrings()] == [RING]


def test_keyring_session_asking_to_manage_keyrings_is_denied_permission(cluster: DevCluster) -> None:
    with cluster.app_client() as app, keyring_session(app, cluster, "KRSO") as krso:
        with pytest.raises(PermissionDenied):
            krso.create_keyring("r3", dev_password())
        with pytest.raises(PermissionDenied):
            krso.list_keyrings()


def test_only_the_cluster_security_officer_manages_keyrings(cluster: DevCluster) -> None:
    part = demo_of(cluster)["partition"]
    with cluster.app_client() as app, app.open_session("demo", part["po_password"], role="PO") as po:
        attempts: dict[str, Callable[[], object]] = {
            "create": lambda: po.create_keyring("r4", dev_password()),
            "assign": lambda: po.assign_keyring(RING, CLUSTER_SO_CLIENT),
            "unassign": lambda: po.unassign_keyring(RING, "demo-client"),
            "unlock": lambda: po.unlock_keyring(RING),
            "delete": lambda: po.delete_keyring(RING),
            "list": po.list_keyrings,
        }
        for attempt in attempts.values():
            with pytest.raises(PermissionDenied, match="cluster security officer"):
                attempt()
        with (
            app.open_session("demo", part["co_password"], role="CO") as co,
            pytest.raises(PermissionDenied, match="the CO of partition 'demo' may not keyring.manage"),
        ):
            co.create_keyring("r4", dev_password())
    with so_client(cluster) as so_app, cluster_so(so_app, cluster) as so:
        rings = so.list_keyrings()
        assert [(r.label, r.clients) for r in rings] == [(RING, ("demo-client",))]
    with cluster.app_client() as app:
        assert slot_names(app) == {"demo", RING}


# --- lockout ---------------------------------------------------------------------------------------------


def test_keyring_locks_after_ten_failed_logins_until_the_cluster_so_unlocks_it(cluster: DevCluster) -> None:
    wrong = dev_password()
    with cluster.app_client() as app:
        before = keyring_session(app, cluster, "KRSO")
        before.keep = True
        before.generate_key("ring-ec", "EC", "P-256", usage=["sign"])
    for attempt in range(1, 11):
        with cluster.app_client(NODES[attempt % 3]) as app:
            if attempt < 10:
                with pytest.raises(
                    Unauthenticated, match=rf"wrong password .*\({10 - attempt} attempts? left"
                ):
                    app.open_session(RING, wrong, role="KRCO")
            else:
                with pytest.raises(ResourceExhausted, match="locked after 10 failed logins") as info:
                    app.open_session(RING, wrong, role="KRCO")
                assert "unlock" in info.value.message and "cluster security officer" in info.value.message
    for node in NODES:  # the whole keyring is locked, on every member: the KRSO too
        with cluster.app_client(node) as app:
            for role in ("KRSO", "KRCO"):
                with pytest.raises(ResourceExhausted, match="unlock"):
                    keyring_session(app, cluster, role)
    with cluster.app_client() as app:
        with pytest.raises((Unauthenticated, ResourceExhausted)):
            app.resume_partition(before.token).sign("ring-ec", DATA, mechanism="ECDSA-SHA256")
        with so_client(cluster) as so_app, cluster_so(so_app, cluster) as so:
            assert next(r for r in so.list_keyrings() if r.label == RING).locked
            so.unlock_keyring(RING)
            assert not next(r for r in so.list_keyrings() if r.label == RING).locked
        for role in ("KRSO", "KRCO"):
            with keyring_session(app, cluster, role) as session:
                assert session.sign("ring-ec", DATA, mechanism="ECDSA-SHA256")

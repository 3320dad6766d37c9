"""Partition permissions between users through real members (DOMAIN.md §4)."""

from __future__ import annotations

import pytest

from hsmnode.client import Grant, PermissionDenied
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, eventually

pytestmark = pytest.mark.cluster

B_PO, B_CO0, B_CO = "Bee-po-123", "Bee-co-000", "Bee-co-111"


def second_owner(cluster: DevCluster) -> None:
    """Partition `bee` beside the demo's `demo`, with its own CO, held by the same client."""
    demo = cluster.demo()
    assert demo is not None
    admin = as_admin(cluster)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition("bee")
            so.create_partition("third")
        admin.assign_client("demo-client", "bee")
    with cluster.app_client() as app:
        eventually(lambda: "bee" in {s.partition for s in app.list_slots().slots}, 5.0, "bee assigned")
        app.init_partition("bee", label="bee", cloning_domain="d", po_password=B_PO)
        with app.open_session("bee", B_PO, role="PO") as po:
            po.init_role("CO", B_CO0)
        app.change_partition_password("bee", "CO", B_CO0, B_CO)


def test_grants_read_is_used_across_members_not_passed_on_not_symmetric_and_revoked_everywhere(
    cluster: DevCluster,
) -> None:
    demo = cluster.demo()
    assert demo is not None
    second_owner(cluster)
    with cluster.app_client("node1") as one:
        a = one.open_session("demo", demo["partition"]["co_password"], role="CO")
        b = one.open_session("bee", B_CO, role="CO")
        a.keep = b.keep = True
        a.generate_key("a-sig", "EC", "P-256", usage=["sign"])
        b.generate_key("b-sig", "EC", "P-256", usage=["sign"])
        with pytest.raises(PermissionDenied, match="has not granted 'bee' the permission to read"):
            b.sign("partition:demo/a-sig", b"m", mechanism="ECDSA-SHA256")
        assert a.grant("bee", ["read"]) == ("read",)
        # not transitive: a grant bee makes is always on bee's own partition, never on demo's
        b.grant("third", ["read"])
        assert Grant("bee", "third", ("read",)) in b.list_grants()
        assert all(g.owner != "demo" or g.grantee != "third" for g in a.list_grants())
        # not symmetric: demo gained nothing on bee
        with pytest.raises(PermissionDenied, match="'bee' has not granted 'demo'"):
            a.sign("partition:bee/b-sig", b"m", mechanism="ECDSA-SHA256")
        assert [k.label for k in b.list_keys(partition="demo")] == ["a-sig"]
        with pytest.raises(PermissionDenied, match="permission to remove"):
            b.destroy_key("partition:demo/a-sig")
        token_b = b.token
    # the grant holds on every member, for the same session
    for member in ("node2", "node3"):
        with cluster.app_client(member) as other:
            session = other.resume_partition(token_b, "bee", "CO")
            assert eventually(
                lambda s=session: len(s.sign("partition:demo/a-sig", b"m", mechanism="ECDSA-SHA256")) > 0
            )
    with cluster.app_client("node1") as one:
        one.resume_partition(a.token, "demo", "CO").revoke_grant("bee")
    for member in ("node1", "node2", "node3"):
        with cluster.app_client(member) as other:
            session = other.resume_partition(token_b, "bee", "CO")

            def refused(s=session) -> bool:  # type: ignore[no-untyped-def]
                try:
                    s.sign("partition:demo/a-sig", b"m", mechanism="ECDSA-SHA256")
                except PermissionDenied:
                    return True
                return False

            eventually(refused, 2.0, f"the revoked grant refused on {member}")

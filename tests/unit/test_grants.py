"""Partition permissions between users (DOMAIN.md §4): reflexive, non-transitive, not symmetric."""

from __future__ import annotations

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from tests.unit.world import World, with_partition


def two_owners() -> World:
    """Partitions `pay` (owner A) and `ops` (owner B), both held by client `app` with CO sessions."""
    w = with_partition("pay")
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name="ops")
    w.ok(c.ClientAssign, w.user("admin"), name="app", partition="ops")
    w.ok(c.PartitionInit, w.client(), name="ops", label="ops", cloning_domain="d", po_password_hash="hash:po")
    w.ok(
        c.PartitionRoleInit, w.partition_session("ops", "PO"), name="ops", role="CO", password_hash="hash:co"
    )
    w.set_own_password(w.client(), "partition:ops:CO")
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name="third")
    return w


def test_owner_grants_read_and_the_grantee_uses_the_owners_keys() -> None:
    w = two_owners()
    b = w.partition_session("ops", "CO")
    with pytest.raises(DomainError, match="has not granted 'ops' the permission to read"):
        authorize(w.state, b, "crypto.use", w.now, "partition:pay")
    w.ok(c.GrantSet, w.partition_session("pay", "CO"), owner="pay", grantee="ops", permissions=("read",))
    authorize(w.state, b, "crypto.use", w.now, "partition:pay")
    with pytest.raises(DomainError, match="permission to remove"):
        authorize(w.state, b, "object.destroy", w.now, "partition:pay")


def test_the_owner_always_holds_everything_and_cannot_grant_itself() -> None:
    w = two_owners()
    result = w.apply(
        c.GrantSet, w.partition_session("pay", "CO"), owner="pay", grantee="pay", permissions=("read",)
    )
    assert result.code is ErrorCode.INVALID_ARGUMENT and "always holds every permission" in result.message
    for operation in ("crypto.use", "object.create", "object.destroy", "object.modify"):
        authorize(w.state, w.partition_session("pay", "CO"), operation, w.now, "partition:pay")


def test_grants_are_not_transitive() -> None:
    w = two_owners()
    w.ok(
        c.GrantSet,
        w.partition_session("pay", "CO"),
        owner="pay",
        grantee="ops",
        permissions=("read", "create"),
    )
    passed_on = w.apply(
        c.GrantSet, w.partition_session("ops", "CO"), owner="pay", grantee="third", permissions=("read",)
    )
    assert passed_on.code is ErrorCode.PERMISSION_DENIED
    assert "third" not in w.state.partitions["pay"].grants


def test_grants_are_not_symmetric() -> None:
    w = two_owners()
    w.ok(c.GrantSet, w.partition_session("pay", "CO"), owner="pay", grantee="ops", permissions=("read",))
    with pytest.raises(DomainError, match="'ops' has not granted 'pay'"):
        authorize(w.state, w.partition_session("pay", "CO"), "crypto.use", w.now, "partition:ops")


def test_revoking_ends_the_grant_and_bad_grants_are_refused() -> None:
    w = two_owners()
    a = w.partition_session("pay", "CO")
    w.ok(c.GrantSet, a, owner="pay", grantee="ops", permissions=("read",))
    w.ok(c.GrantSet, a, owner="pay", grantee="ops", permissions=())
    with pytest.raises(DomainError):
        authorize(w.state, w.partition_session("ops", "CO"), "crypto.use", w.now, "partition:pay")
    assert (
        w.apply(c.GrantSet, a, owner="pay", grantee="nobody", permissions=("read",)).code
        is ErrorCode.NOT_FOUND
    )
    bad = w.apply(c.GrantSet, a, owner="pay", grantee="ops", permissions=("rule",))
    assert bad.code is ErrorCode.INVALID_ARGUMENT and "unknown permission(s) rule" in bad.message
    assert w.state.audit_records()[-3].detail == "partition 'pay' revokes every grant to 'ops'"


def test_a_grant_does_not_lift_the_grantees_role_limits() -> None:
    w = two_owners()
    w.ok(c.GrantSet, w.partition_session("pay", "CO"), owner="pay", grantee="ops", permissions=("create",))
    w.ok(
        c.PartitionRoleInit, w.partition_session("ops", "CO"), name="ops", role="CU", password_hash="hash:cu"
    )
    w.set_own_password(w.client(), "partition:ops:CU")
    with pytest.raises(DomainError, match="may not object.create"):
        authorize(w.state, w.partition_session("ops", "CU"), "object.create", w.now, "partition:pay")

"""The access rules of DOMAIN.md §1 and §3, decided inside apply from replicated state (logins and
lockout: test_access_logins.py)."""

from __future__ import annotations

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain import permissions as perm
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from tests.unit.world import (
    FP_ADMIN_CERT,
    FP_CLIENT,
    FP_OTHER,
    PEM,
    World,
    booted,
    with_partition,
    with_users,
)

CERT = f"cert:{FP_ADMIN_CERT}"


# --- appliance level --------------------------------------------------------------


def test_default_accounts_exist_and_only_admin_starts_enabled() -> None:
    w = World()
    w.ok(c.InitCluster, "node:n1", cluster_id="c", default_password_hashes=("a", "b", "c", "d"))
    assert {u: (x.enabled, x.credential.must_change) for u, x in w.state.users.items()} == {
        "admin": (True, True),
        "operator": (False, True),
        "monitor": (False, True),
        "audit": (False, True),
    }


def test_initial_admin_password_must_change_before_anything_else() -> None:
    w = World()
    w.ok(c.InitCluster, "node:n1", cluster_id="c", default_password_hashes=("a", "b", "c", "d"))
    login = w.apply(c.RecordLogin, CERT, target="user:admin", success=True, verified_epoch=1)
    assert login.code is ErrorCode.FAILED_PRECONDITION and "has expired" in login.message
    assert w.apply(c.AuditNote, "user:admin#1", text="x").code is ErrorCode.FAILED_PRECONDITION


def test_admin_adds_enables_disables_deletes_and_resets_users() -> None:
    w = booted()
    w.ok(c.UserAdd, w.user("admin"), name="bob", role="monitor", password_hash="h")
    assert w.state.users["bob"].credential.must_change
    w.ok(c.UserSetEnabled, w.user("admin"), name="bob", enabled=False)
    assert not w.state.users["bob"].enabled
    w.ok(c.UserSetPassword, w.user("admin"), name="bob", password_hash="h2")
    w.ok(c.UserDelete, w.user("admin"), name="bob")
    assert "bob" not in w.state.users


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (c.UserAdd, {"name": "eve", "role": "admin", "password_hash": "h"}),
        (c.UserSetEnabled, {"name": "admin", "enabled": False}),
        (c.UserSetPassword, {"name": "admin", "password_hash": "h"}),
        (c.UserDelete, {"name": "admin"}),
        (c.RoleAdd, {"name": "r", "commands": ("user.list",)}),
        (c.ClientRegister, {"name": "x", "cert_pem": PEM, "fingerprint": FP_OTHER}),
        (c.HsmInit, {"label": "h", "so_password_hash": "h"}),
    ],
)
@pytest.mark.parametrize("role", ["operator", "monitor", "audit"])
def test_only_admin_changes_users_roles_clients_and_the_hsm(
    role: str, cls: type[c.Command], fields: dict[str, object]
) -> None:
    w = with_users()
    before = w.state.digest()
    result = w.apply(cls, w.user(role), **fields)
    assert result.code is ErrorCode.PERMISSION_DENIED, result
    assert f"role {role}" in result.message
    assert len(w.state.users) == 4 and w.state.users["admin"].enabled  # nothing half-done
    assert w.state.digest() != before  # only the audit record of the refusal


def test_monitor_changes_nothing_but_reads() -> None:
    w = with_users()
    authorize(w.state, w.user("monitor"), "user.list", w.now)
    authorize(w.state, w.user("monitor"), "partition.list", w.now)
    assert w.apply(c.AuditNote, w.user("monitor"), text="hi").code is ErrorCode.PERMISSION_DENIED


def test_custom_role_allows_exactly_its_commands() -> None:
    w = booted()
    w.ok(c.RoleAdd, w.user("admin"), name="helpdesk", commands=("user.add", "user.list"))
    w.ok(c.UserAdd, w.user("admin"), name="hd", role="helpdesk", password_hash="h")
    w.set_own_password(CERT, "user:hd")
    assert w.apply(c.UserAdd, w.user("hd"), name="newbie", role="monitor", password_hash="h").ok
    assert (
        w.apply(c.UserSetEnabled, w.user("hd"), name="newbie", enabled=False).code
        is ErrorCode.PERMISSION_DENIED
    )
    with pytest.raises(DomainError, match="may not run client.list"):
        authorize(w.state, w.user("hd"), "client.list", w.now)


def test_custom_role_refuses_unknown_or_undelegable_commands() -> None:
    w = booted()
    result = w.apply(c.RoleAdd, w.user("admin"), name="bad", commands=("user.list", "auditor.init", "rm -rf"))
    assert result.code is ErrorCode.INVALID_ARGUMENT and "auditor.init, rm -rf" in result.message
    assert "bad" not in w.state.roles


def test_role_in_use_cannot_be_deleted_and_default_roles_never() -> None:
    w = booted()
    w.ok(c.RoleAdd, w.user("admin"), name="r", commands=("user.list",))
    w.ok(c.UserAdd, w.user("admin"), name="u", role="r", password_hash="h")
    assert "held by u" in w.apply(c.RoleDelete, w.user("admin"), name="r").message
    assert w.apply(c.RoleDelete, w.user("admin"), name="monitor").code is ErrorCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("cls", "fields", "code"),
    [
        (c.UserAdd, {"name": "admin", "role": "monitor", "password_hash": "h"}, ErrorCode.ALREADY_EXISTS),
        (c.UserAdd, {"name": "1bad", "role": "monitor", "password_hash": "h"}, ErrorCode.INVALID_ARGUMENT),
        (c.UserAdd, {"name": "bob", "role": "nosuch", "password_hash": "h"}, ErrorCode.NOT_FOUND),
        (c.UserDelete, {"name": "nosuch"}, ErrorCode.NOT_FOUND),
        (c.UserDelete, {"name": "monitor"}, ErrorCode.FAILED_PRECONDITION),
        (c.UserSetEnabled, {"name": "admin", "enabled": False}, ErrorCode.FAILED_PRECONDITION),
        (c.ClientAssign, {"name": "nosuch", "partition": "p"}, ErrorCode.NOT_FOUND),
        (
            c.ClientRegister,
            {"name": "x", "cert_pem": "nope", "fingerprint": FP_OTHER},
            ErrorCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_admin_input_is_refused_and_nothing_is_half_created(
    cls: type[c.Command], fields: dict[str, object], code: ErrorCode
) -> None:
    w = booted()
    users = {k: v.to_data() for k, v in w.state.users.items()}
    assert w.apply(cls, w.user("admin"), **fields).code is code
    assert {k: v.to_data() for k, v in w.state.users.items()} == users
    assert not w.state.clients


# --- HSM and partition levels -----------------------------------------------------------


def test_partition_create_needs_the_so_role_and_an_admin_or_operator_login() -> None:
    w = with_partition()
    assert w.apply(c.PartitionCreate, w.user("admin"), name="x").code is ErrorCode.PERMISSION_DENIED
    assert w.apply(c.PartitionCreate, w.hsm_role("admin", "SO"), name="x").ok
    # operator + SO: basic HSM administration creates and deletes partitions (DOMAIN.md §1) ...
    epoch = w.state.hsm.so.epoch if w.state.hsm.so else 0
    assert w.apply(c.RecordLogin, w.user("operator"), target="hsm:SO", success=True, verified_epoch=epoch).ok
    assert w.apply(c.PartitionCreate, w.hsm_role("operator", "SO"), name="y").ok
    assert w.apply(c.PartitionDelete, w.hsm_role("operator", "SO"), name="y").ok
    # ... but sets no HSM policy
    refused = w.apply(c.HsmPolicySet, w.hsm_role("operator", "SO"), name="po_can_reset_co", value=False)
    assert refused.code is ErrorCode.PERMISSION_DENIED


def test_auditor_needs_the_audit_user_and_admin_cannot_read_the_audit_log() -> None:
    w = with_partition()
    with pytest.raises(DomainError, match="may not run audit.list"):
        authorize(w.state, w.user("admin"), "audit.list", w.now)
    authorize(w.state, w.hsm_role("audit", "AU"), "audit.list", w.now)
    epoch = w.state.hsm.auditor.epoch if w.state.hsm.auditor else 0
    login = w.apply(c.RecordLogin, w.user("admin"), target="hsm:AU", success=True, verified_epoch=epoch)
    assert login.code is ErrorCode.PERMISSION_DENIED


def test_the_auditor_sets_audit_categories_and_they_survive_an_hsm_reinit() -> None:
    w = with_partition()
    refused = w.apply(c.AuditConfigSet, w.hsm_role("admin", "SO"), category="key_usage", level="none")
    assert refused.code is ErrorCode.PERMISSION_DENIED
    w.ok(c.AuditConfigSet, w.hsm_role("audit", "AU"), category="key_usage", level="failure")
    assert w.state.hsm.audit_config == {"key_usage": "failure"}
    assert w.apply(c.AuditConfigSet, w.hsm_role("audit", "AU"), category="x", level="all").code is (
        ErrorCode.INVALID_ARGUMENT
    )
    w.ok(c.HsmInit, w.hsm_role("admin", "SO"), label="again", so_password_hash="h2")
    assert w.state.hsm.audit_config == {"key_usage": "failure"}


def test_a_key_audit_event_is_a_cluster_record_naming_the_member_and_its_own_outcome() -> None:
    w = with_partition()
    co = w.partition_session("pay", "CO")
    event = {
        "event": "key.wrap",
        "container": "partition:pay",
        "object_id": "k1",
        "label": "kek",
        "detail": "d",
    }
    w.ok(c.KeyAuditEvent, co, outcome="PERMISSION_DENIED", member="node2", **event)
    record = w.state.audit_records()[-1]
    assert (record.command, record.outcome, record.member, record.key, record.container, record.category) == (
        "key.wrap",
        "PERMISSION_DENIED",
        "node2",
        "k1",
        "partition:pay",
        "key_management",
    )
    bad = w.apply(c.KeyAuditEvent, co, outcome="maybe", member="node2", **event)
    assert bad.code is ErrorCode.INVALID_ARGUMENT
    assert w.apply(c.KeyAuditEvent, co, outcome="ok", member="n", **{**event, "event": "rm -rf"}).code is (
        ErrorCode.INVALID_ARGUMENT
    )


def test_hsm_roles_perform_no_crypto() -> None:
    w = with_partition()
    with pytest.raises(DomainError, match="needs a partition session"):
        authorize(w.state, w.hsm_role("admin", "SO"), "crypto.use", w.now)


def test_po_initializes_co_co_initializes_cu_and_cu_creates_public_objects_only() -> None:
    w = with_partition()
    po, co, cu = (w.partition_session("pay", r) for r in ("PO", "CO", "CU"))
    assert (
        w.apply(c.PartitionRoleInit, po, name="pay", role="CU", password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )
    assert (
        w.apply(c.PartitionRoleInit, cu, name="pay", role="CU", password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )
    assert (
        w.apply(c.PartitionPolicySet, co, name="pay", policy="auto_activation", value=1).code
        is ErrorCode.PERMISSION_DENIED
    )
    authorize(w.state, cu, "object.create.public", w.now)
    with pytest.raises(DomainError, match="may not object.create"):
        authorize(w.state, cu, "object.create", w.now)
    with pytest.raises(DomainError, match="may not crypto.use"):
        authorize(w.state, po, "crypto.use", w.now)


def test_new_co_must_change_its_initial_password() -> None:
    w = with_partition()
    w.ok(c.PartitionRoleInit, w.partition_session("pay", "PO"), name="pay", role="CO", password_hash="reset")
    epoch = w.state.partitions["pay"].roles["CO"].epoch
    login = w.apply(c.RecordLogin, w.client(), target="partition:pay:CO", success=True, verified_epoch=epoch)
    assert login.code is ErrorCode.FAILED_PRECONDITION and "initial password" in login.message


def test_partition_policy_values_are_checked() -> None:
    w = with_partition()
    po = w.partition_session("pay", "PO")
    assert (
        w.apply(c.PartitionPolicySet, po, name="pay", policy="max_failed_logins", value=11).code
        is ErrorCode.INVALID_ARGUMENT
    )
    assert (
        w.apply(c.PartitionPolicySet, po, name="pay", policy="colour", value=1).code
        is ErrorCode.INVALID_ARGUMENT
    )
    assert (
        w.apply(c.PartitionPolicySet, po, name="pay", policy="auto_activation", value=2).code
        is ErrorCode.INVALID_ARGUMENT
    )


# --- the handshake (DOMAIN §3) ------------------------------------------------------------------


def test_unassigned_and_missing_partitions_get_the_same_answer() -> None:
    w = with_partition()
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name="hidden")
    hidden = w.apply(c.RecordLogin, w.client(), target="partition:hidden:CO", success=True, verified_epoch=1)
    missing = w.apply(c.RecordLogin, w.client(), target="partition:nosuch:CO", success=True, verified_epoch=1)
    assert hidden.code is missing.code is ErrorCode.NOT_FOUND
    assert hidden.message.replace("hidden", "X") == missing.message.replace("nosuch", "X")


def test_unregistered_client_cannot_log_in_to_a_partition() -> None:
    w = with_partition()
    result = w.apply(
        c.RecordLogin, f"client:{FP_OTHER}#1", target="partition:pay:CO", success=True, verified_epoch=1
    )
    assert result.code is ErrorCode.UNAUTHENTICATED and "not registered" in result.message


def test_activation_required_refuses_a_correct_password_until_the_co_activates() -> None:
    w = with_partition()
    w.ok(
        c.PartitionPolicySet,
        w.partition_session("pay", "PO"),
        name="pay",
        policy="activation_required",
        value=1,
    )
    cu_epoch = w.state.partitions["pay"].roles["CU"].epoch
    co_epoch = w.state.partitions["pay"].roles["CO"].epoch
    refused = w.apply(
        c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=cu_epoch
    )
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "requires activation" in refused.message
    w.ok(c.PartitionActivate, w.client(), name="pay", active=True, verified_epoch=co_epoch)
    assert w.apply(
        c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=cu_epoch
    ).ok
    w.ok(c.PartitionActivate, w.client(), name="pay", active=False, verified_epoch=co_epoch)
    assert (
        w.apply(
            c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=cu_epoch
        ).code
        is ErrorCode.FAILED_PRECONDITION
    )


def test_auto_activation_still_needs_a_first_activation_and_then_survives_restarts() -> None:
    """DOMAIN.md §3: activation is lost when a member restarts unless auto_activation is on;
    auto-activation keeps an activation, it does not replace the first one."""
    from hsmnode.domain.access import check_activated

    w = with_partition()
    po = w.partition_session("pay", "PO")
    w.ok(c.PartitionPolicySet, po, name="pay", policy="activation_required", value=1)
    w.ok(c.PartitionPolicySet, po, name="pay", policy="auto_activation", value=1)
    epoch = w.state.partitions["pay"].roles["CU"].epoch
    refused = w.apply(
        c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=epoch
    )
    assert (
        refused.code is ErrorCode.FAILED_PRECONDITION and "does not replace the first one" in refused.message
    )
    co_epoch = w.state.partitions["pay"].roles["CO"].epoch
    w.ok(c.PartitionActivate, w.client(), name="pay", active=True, verified_epoch=co_epoch)
    assert w.apply(
        c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=epoch
    ).ok
    part = w.state.partitions["pay"]
    check_activated(part, member_started_ms=w.now + 10_000)  # a member restarted since: kept (auto)
    w.ok(c.PartitionPolicySet, po, name="pay", policy="auto_activation", value=0)
    check_activated(part, member_started_ms=part.activated_at)  # a member up since the activation
    with pytest.raises(DomainError, match="lost it when it restarted"):
        check_activated(part, member_started_ms=part.activated_at + 1)


def test_partition_is_initialized_once_by_an_assigned_client() -> None:
    w = with_partition()
    again = w.apply(
        c.PartitionInit, w.client(), name="pay", label="x", cloning_domain="d", po_password_hash="h"
    )
    assert again.code is ErrorCode.FAILED_PRECONDITION
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name="other")
    stranger = w.apply(
        c.PartitionInit, w.client(), name="other", label="x", cloning_domain="d", po_password_hash="h"
    )
    assert stranger.code is ErrorCode.NOT_FOUND


def test_client_registration_is_unique_by_name_and_certificate() -> None:
    w = with_partition()
    assert (
        w.apply(c.ClientRegister, w.user("admin"), name="app", cert_pem=PEM, fingerprint=FP_OTHER).code
        is ErrorCode.ALREADY_EXISTS
    )
    dup = w.apply(c.ClientRegister, w.user("admin"), name="app2", cert_pem=PEM, fingerprint=FP_CLIENT)
    assert dup.code is ErrorCode.ALREADY_EXISTS and "already registered as client 'app'" in dup.message


def _user_admin(w: World, commands: tuple[str, ...]) -> str:
    """A custom role `uadm` holding `commands`, and a user 'mallory' of it, logged in."""
    w.ok(c.RoleAdd, w.user("admin"), name="uadm", commands=commands)
    w.ok(c.UserAdd, w.user("admin"), name="mallory", role="uadm", password_hash="h")
    w.set_own_password(CERT, "user:mallory")
    return w.user("mallory")


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_a_custom_role_gives_no_role_that_grants_more_than_it_holds(role: str) -> None:
    """A user-administration role may not mint an admin (the escalation a new user found)."""
    w = booted()
    mallory = _user_admin(w, ("user.add", "user.passwd"))
    result = w.apply(c.UserAdd, mallory, name="evil", role=role, password_hash="h")
    assert result.code is ErrorCode.PERMISSION_DENIED, result
    assert f"may not give role '{role}'" in result.message and "hsm.login" in result.message
    assert "evil" not in w.state.users


def test_a_custom_role_may_add_users_of_a_role_within_its_own() -> None:
    w = booted()
    mallory = _user_admin(w, ("user.add", "user.passwd", "audit.note"))
    w.ok(c.RoleAdd, w.user("admin"), name="notes", commands=("audit.note",))
    assert w.apply(c.UserAdd, mallory, name="noter", role="notes", password_hash="h").ok
    assert w.apply(c.UserAdd, mallory, name="watcher", role="monitor", password_hash="h").ok


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (c.UserSetPassword, {"name": "admin", "password_hash": "h2"}),
        (c.UserSetEnabled, {"name": "admin", "enabled": False}),
        (c.UserSetPassword, {"name": "operator", "password_hash": "h2"}),
        (c.UserDelete, {"name": "boss"}),
        (c.UserSetEnabled, {"name": "boss", "enabled": False}),
    ],
)
def test_a_custom_role_manages_no_user_whose_role_grants_more(cls: type[c.Command], fields: dict) -> None:
    w = booted()
    w.ok(c.UserAdd, w.user("admin"), name="boss", role="admin", password_hash="h")
    mallory = _user_admin(w, ("user.passwd", "user.delete", "user.enable", "user.disable"))
    before = w.state.users[fields["name"]].credential.password_hash
    result = w.apply(cls, mallory, **fields)
    assert result.code is ErrorCode.PERMISSION_DENIED, result
    assert f"user '{fields['name']}'" in result.message
    assert (
        fields["name"] in w.state.users and w.state.users[fields["name"]].credential.password_hash == before
    )


def test_even_a_role_holding_every_delegable_command_does_not_manage_admins() -> None:
    w = booted()
    mallory = _user_admin(w, tuple(sorted(perm.CUSTOM_ROLE_COMMANDS)))
    result = w.apply(c.UserSetPassword, mallory, name="admin", password_hash="h2")
    assert result.code is ErrorCode.PERMISSION_DENIED and "only an admin manages admins" in result.message


def test_a_custom_role_creates_no_role_with_commands_it_lacks() -> None:
    w = booted()
    mallory = _user_admin(w, ("role.add", "user.add"))
    result = w.apply(c.RoleAdd, mallory, name="wide", commands=("user.add", "cluster.member"))
    assert result.code is ErrorCode.PERMISSION_DENIED and "cluster.member" in result.message
    assert w.apply(c.RoleAdd, mallory, name="narrow", commands=("user.add",)).ok

"""The login rules of DOMAIN.md §1 and §3 decided inside apply: failed-login counting, lockout and
its way out, session and credential epochs (split from test_access_rules.py)."""

from __future__ import annotations

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.apply import apply
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.result import Result
from tests.unit.world import FP_ADMIN_CERT, World, with_partition, with_users

CERT = f"cert:{FP_ADMIN_CERT}"


def fail(w: World, actor: str, target: str) -> ErrorCode | None:
    epoch = w.login_target_epoch(target)
    return w.apply(c.RecordLogin, actor, target=target, success=False, verified_epoch=epoch).code


def test_appliance_user_locks_after_5_failures_for_5_minutes_and_admin_reset_unlocks() -> None:
    w = with_users()
    codes = [fail(w, CERT, "user:operator") for _ in range(5)]
    # a wrong password never tells whether the user exists or is locked (the audit log does)
    assert codes == [ErrorCode.UNAUTHENTICATED] * 5
    assert w.state.users["operator"].credential.locked
    assert "locked after 5 failed logins" in w.state.audit_records()[-1].detail
    assert fail(w, CERT, "user:operator") is ErrorCode.UNAUTHENTICATED
    epoch = w.state.users["operator"].credential.epoch
    right = w.apply(c.RecordLogin, CERT, target="user:operator", success=True, verified_epoch=epoch)
    assert right.code is ErrorCode.RESOURCE_EXHAUSTED and "admin reset its password" in right.message
    w.now += 301_000  # the timed lockout runs out (command timestamps, not a clock)
    assert w.apply(c.RecordLogin, CERT, target="user:operator", success=True, verified_epoch=epoch).ok
    for _ in range(5):
        fail(w, CERT, "user:operator")
    w.ok(c.UserSetPassword, w.user("admin"), name="operator", password_hash="new")
    assert not w.state.users["operator"].credential.locked


def test_hsm_so_locks_after_3_failures_and_admin_reinit_zeroizes() -> None:
    w = with_partition()
    codes = [fail(w, w.user("admin"), "hsm:SO") for _ in range(3)]
    assert codes == [ErrorCode.UNAUTHENTICATED] * 2 + [ErrorCode.RESOURCE_EXHAUSTED]
    assert (
        w.apply(c.PartitionCreate, w.hsm_role("admin", "SO"), name="x").code is ErrorCode.RESOURCE_EXHAUSTED
    )
    result = w.ok(c.HsmInit, w.user("admin"), label="fresh", so_password_hash="h")
    assert result.value["destroyed"] == 1 and not w.state.partitions
    assert not w.state.clients["app"].partitions


def test_reinitializing_a_working_hsm_needs_its_so() -> None:
    w = with_partition()
    assert (
        w.apply(c.HsmInit, w.user("admin"), label="x", so_password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )
    assert w.state.partitions
    assert w.ok(c.HsmInit, w.hsm_role("admin", "SO"), label="x", so_password_hash="h").value["destroyed"] == 1


def test_co_lockout_at_policy_threshold_locks_co_and_cu_and_po_reset_unlocks_co() -> None:
    w = with_partition()
    w.ok(
        c.PartitionPolicySet,
        w.partition_session("pay", "PO"),
        name="pay",
        policy="max_failed_logins",
        value=3,
    )
    codes = [fail(w, w.client(), "partition:pay:CO") for _ in range(3)]
    assert codes == [ErrorCode.UNAUTHENTICATED] * 2 + [ErrorCode.RESOURCE_EXHAUSTED]
    roles = w.state.partitions["pay"].roles
    assert roles["CO"].locked and roles["CU"].locked
    locked = w.apply(
        c.RecordLogin, w.client(), target="partition:pay:CO", success=True, verified_epoch=roles["CO"].epoch
    )
    assert (
        locked.code is ErrorCode.RESOURCE_EXHAUSTED
        and "the PO must reset the CO credential" in locked.message
    )
    w.ok(c.PartitionRoleInit, w.partition_session("pay", "PO"), name="pay", role="CO", password_hash="h")
    assert not roles["CO"].locked


def attempt(w: World, target: str, success: bool) -> Result:
    """A client's login to `target`, right or wrong, against the credential's current epoch."""
    epoch = w.login_target_epoch(target)
    return w.apply(c.RecordLogin, w.client(), target=target, success=success, verified_epoch=epoch)


def test_lockout_messages_name_the_locked_role_and_the_way_out() -> None:
    w = with_partition()
    w.ok(
        c.PartitionPolicySet,
        w.partition_session("pay", "PO"),
        name="pay",
        policy="max_failed_logins",
        value=3,
    )
    assert fail(w, w.client(), "partition:pay:CO") is ErrorCode.UNAUTHENTICATED
    last_try = attempt(w, "partition:pay:CO", success=False)
    assert "(1 attempt left before lockout)" in last_try.message
    fail(w, w.client(), "partition:pay:CO")
    # the CU had no failed login: it is locked because the CO was, and says so
    cu = attempt(w, "partition:pay:CU", success=True)
    assert cu.code is ErrorCode.RESOURCE_EXHAUSTED
    assert "the CU of partition 'pay' is locked because its CO was locked out" in cu.message
    assert "locked after" not in cu.message
    assert "the CO must reset the CU credential (hsmnode partition role-init pay --role cu)" in cu.message


def test_an_expired_partition_password_names_the_partition_command_only() -> None:
    w = with_partition()
    w.ok(
        c.PartitionRoleInit, w.partition_session("pay", "CO"), name="pay", role="CU", password_hash="hash:cu1"
    )
    expired = attempt(w, "partition:pay:CU", success=True)
    assert expired.code is ErrorCode.FAILED_PRECONDITION
    assert "(hsmnode session passwd pay --role cu)" in expired.message
    assert "login --new-password" not in expired.message


def test_deleting_a_default_account_says_what_can_be_done() -> None:
    w = with_users()
    admin = w.apply(c.UserDelete, w.user("admin"), name="admin")
    assert admin.code is ErrorCode.FAILED_PRECONDITION
    assert "nor disabled; change its password instead (hsmnode user passwd admin)" in admin.message
    assert "disable it" not in admin.message
    monitor = w.apply(c.UserDelete, w.user("admin"), name="monitor")
    assert "disable it instead (hsmnode user disable monitor)" in monitor.message


def test_po_may_not_reset_co_when_hsm_policy_forbids() -> None:
    w = with_partition()
    w.ok(c.HsmPolicySet, w.hsm_role("admin", "SO"), name="po_can_reset_co", value=False)
    result = w.apply(
        c.PartitionRoleInit, w.partition_session("pay", "PO"), name="pay", role="CO", password_hash="h"
    )
    assert result.code is ErrorCode.PERMISSION_DENIED and "po_can_reset_co" in result.message


def test_failed_login_counter_resets_on_success() -> None:
    w = with_partition()
    fail(w, w.client(), "partition:pay:CU")
    epoch = w.state.partitions["pay"].roles["CU"].epoch
    w.ok(c.RecordLogin, w.client(), target="partition:pay:CU", success=True, verified_epoch=epoch)
    assert w.state.partitions["pay"].roles["CU"].failed == 0


def test_logout_ends_the_session_everywhere() -> None:
    w = with_partition()
    session = w.partition_session("pay", "CU")
    authorize(w.state, session, "crypto.use", w.now)
    w.ok(c.Logout, session, target="partition:pay:CU")
    with pytest.raises(DomainError, match="session has ended"):
        authorize(w.state, session, "crypto.use", w.now)
    # another client's CU sessions are unaffected: logout is per client, partition and role
    assert w.state.partitions["pay"].roles["CU"].epoch == 2


def test_password_change_lockout_and_revocation_end_sessions() -> None:
    w = with_partition()
    admin = w.user("admin")
    w.set_own_password(CERT, "user:admin")
    with pytest.raises(DomainError, match="session has ended"):
        authorize(w.state, admin, "user.list", w.now)
    cu = w.partition_session("pay", "CU")
    w.ok(c.ClientRevoke, w.user("admin"), name="app", partition="pay")
    with pytest.raises(DomainError):
        authorize(w.state, cu, "crypto.use", w.now)


def test_stale_credential_epoch_at_login_is_refused() -> None:
    w = with_users()
    result = w.apply(c.RecordLogin, CERT, target="user:monitor", success=True, verified_epoch=0)
    assert result.code is ErrorCode.UNAVAILABLE and "changed during the login" in result.message


def test_failure_judged_against_a_stale_credential_is_not_counted_and_can_be_retried() -> None:
    """A member that was behind may reject the right password: that verdict must not count."""
    w = with_users()
    stale = c.RecordLogin(
        actor=CERT,
        request_id="login-1",
        timestamp=w.now + 1,
        target="user:monitor",
        success=False,
        verified_epoch=0,
    )
    assert apply(w.state, stale).code is ErrorCode.UNAVAILABLE
    assert w.state.users["monitor"].credential.failed == 0
    epoch = w.state.users["monitor"].credential.epoch
    retry = c.RecordLogin(
        actor=CERT,
        request_id="login-1",
        timestamp=w.now + 2,
        target="user:monitor",
        success=True,
        verified_epoch=epoch,
    )
    assert apply(w.state, retry).ok  # the transient refusal was not remembered under the request id

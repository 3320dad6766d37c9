"""`apply(state, command) -> Result`: the one entry point that changes replicated state.

Rules this package keeps (DESIGN.md §3):
- apply is a pure function of (state, command): no clock, no randomness, no I/O;
- it validates before it mutates and returns a `Result`, never raises;
- authorization is decided inside apply, from `command.actor` and replicated state
  (handlers call `access.authorize`);
- every applied command, allowed or refused, appends one audit record;
- a request_id seen before returns the first result and changes nothing.

This module dedups by request id, dispatches through `HANDLERS` (the explicit table
below) and writes the audit record. The handlers live by area, one module each; a
handler module imports the rules modules of `domain/` and never another handler module.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from typing import Any

from hsmnode.domain import commands as c
from hsmnode.domain.apply import (
    appliance,
    backup,
    grants,
    hsm,
    keyrings,
    keys,
    login,
    membership,
    mofn,
)
from hsmnode.domain.audit import AuditCategory, AuditRecord
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.result import Result, refusal
from hsmnode.domain.state import HsmState, Seen

DEDUP_CAPACITY = 10_000  # request ids remembered (and snapshotted) with their first result

Handler = Callable[[HsmState, Any], Result]

HANDLERS: dict[type[c.Command], Handler] = {
    # cluster bootstrap, appliance users and roles, NTLS clients, audit (appliance.py)
    c.InitCluster: appliance.init_cluster,
    c.UserAdd: appliance.user_add,
    c.UserDelete: appliance.user_delete,
    c.UserSetEnabled: appliance.user_set_enabled,
    c.UserSetPassword: appliance.user_set_password,
    c.RoleAdd: appliance.role_add,
    c.RoleDelete: appliance.role_delete,
    c.ClientRegister: appliance.client_register,
    c.ClientAssign: appliance.client_assign,
    c.ClientRevoke: appliance.client_revoke,
    c.AuditNote: appliance.audit_note,
    c.AuditEvent: appliance.audit_event,
    c.AuditConfigSet: appliance.audit_config_set,
    c.KeyAuditEvent: appliance.key_audit_event,
    c.DebugFail: appliance.debug_fail,
    # logins, password changes, logouts (login.py)
    c.RecordLogin: login.record_login,
    c.ChangePassword: login.change_password,
    c.Logout: login.logout,
    # the HSM and its partitions (hsm.py)
    c.HsmInit: hsm.hsm_init,
    c.AuditorInit: hsm.auditor_init,
    c.HsmPolicySet: hsm.hsm_policy_set,
    c.PartitionCreate: hsm.partition_create,
    c.PartitionDelete: hsm.partition_delete,
    c.PartitionInit: hsm.partition_init,
    c.PartitionRoleInit: hsm.partition_role_init,
    c.PartitionPolicySet: hsm.partition_policy_set,
    c.PartitionActivate: hsm.partition_activate,
    # key objects (keys.py)
    c.KeyCreate: keys.key_create,
    c.KeyDestroy: keys.key_destroy,
    c.KeyRestore: keys.key_restore,
    c.KeyBlock: keys.key_block,
    # keyrings (keyrings.py)
    c.KeyringCreate: keyrings.keyring_create,
    c.KeyringDelete: keyrings.keyring_delete,
    c.KeyringAssign: keyrings.keyring_assign,
    c.KeyringUnlock: keyrings.keyring_unlock,
    c.KeyringSetKrco: keyrings.keyring_set_krco,
    # M-of-N partition authorization (mofn.py)
    c.AuthChange: mofn.auth_change,
    c.AuthSetPermissions: mofn.auth_set_permissions,
    c.AuthSessionRevoke: mofn.auth_session_revoke,
    # partition grants (grants.py)
    c.GrantSet: grants.grant_set,
    # the member directory (membership.py)
    c.MemberAdd: membership.member_add,
    c.MemberRemove: membership.member_remove,
    # cluster backup and restore (backup.py)
    c.ClusterBackup: backup.cluster_backup,
    c.ClusterRestore: backup.cluster_restore,
}


def apply(state: HsmState, cmd: c.Command) -> Result:
    """Apply one committed command to `state`; the same outcome on every member. Never raises.

    A request id seen before with the same command type and actor returns its first result
    and changes nothing; with another command it is refused (INVALID_ARGUMENT, recorded)."""
    seen = state.seen.get(cmd.request_id)
    if seen is not None:
        if seen.command_type == cmd.TYPE and seen.actor == cmd.actor:
            return seen.result
        result = Result.error(
            ErrorCode.INVALID_ARGUMENT,
            f"request_id {cmd.request_id!r} was already used for another command ({seen.command_type}); "
            "use a fresh request_id for a new command",
        )
        _record(state, cmd, result)
        return result
    handler = HANDLERS.get(type(cmd))
    try:
        if handler is None:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"command {cmd.TYPE!r} is not supported")
        result = handler(state, cmd)
    except DomainError as exc:
        result = refusal(exc.code, exc.message, exc.audit_detail, exc.hidden_code)
    except Exception as exc:  # deterministic code fails the same way on every member
        result = Result(
            ok=False,
            code=ErrorCode.INTERNAL,
            message=f"internal error while applying {cmd.TYPE}: {type(exc).__name__}: {exc}",
            internal_trace=traceback.format_exc(),
        )
    _record(state, cmd, result)
    _remember(state, cmd, result)
    return result


_CATEGORY = {"key": AuditCategory.KEY_MANAGEMENT.value, "login": AuditCategory.ACCESS.value}


def _record(state: HsmState, cmd: c.Command, result: Result) -> AuditRecord:
    kind = cmd.TYPE
    if result.ok:
        value = result.value
        outcome, detail = "ok", str(value.get("audit", ""))
        own = value.get("audit_record")
    else:
        outcome, detail, own = str(result.code), result.audit_detail or result.message, None
    category = _CATEGORY.get(kind.partition(".")[0], "")
    container, key = _container_of(cmd), str(getattr(cmd, "object_id", ""))
    if own:  # an event recorded on behalf of a member (audit.key) names its own command
        fields = {"command": kind, "outcome": outcome, "category": category, "container": container}
        fields.update({"key": key, "member": "", **own})
        return state.audit.append(
            timestamp=cmd.timestamp, actor=cmd.actor, request_id=cmd.request_id, detail=detail, **fields
        )
    return state.audit.append(
        timestamp=cmd.timestamp,
        actor=cmd.actor,
        request_id=cmd.request_id,
        command=kind,
        outcome=outcome,
        detail=detail,
        category=category,
        container=container,
        key=key,
    )


def _remember(state: HsmState, cmd: c.Command, result: Result) -> None:
    if result.code is ErrorCode.UNAVAILABLE:
        return  # transient by definition: a retry with the same request_id is evaluated anew
    stored = dataclasses.replace(result, internal_trace="") if result.internal_trace else result
    state.seen[cmd.request_id] = Seen(cmd.TYPE, cmd.actor, stored)  # 3 fields: __init__ is as cheap as maker
    while len(state.seen) > DEDUP_CAPACITY:
        state.seen.popitem(last=False)


def _container_of(cmd: c.Command) -> str:
    """The partition or keyring a command is about, for the audit record."""
    container = getattr(cmd, "container", "")
    if container:
        return str(container)
    for field in ("partition", "owner"):
        name = getattr(cmd, field, "")
        if isinstance(name, str) and name:
            return f"partition:{name}"
    return ""

"""Apply handlers for the appliance level: cluster bootstrap, logins, users, custom roles,
NTLS client registration, audit notes (DOMAIN.md §1 appliance level, §3)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hsmnode.domain import commands as c
from hsmnode.domain import permissions as perm
from hsmnode.domain import rules
from hsmnode.domain.access import (
    assigned_keyring,
    assigned_partition,
    authorize,
    client_of,
    is_locked,
    login_target,
    session_key,
)
from hsmnode.domain.audit import CATEGORIES, DEFAULT_LEVEL, LEVELS
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.hsm import check_activated
from hsmnode.domain.model import ApplianceUser, Client, Credential, CustomRole
from hsmnode.domain.principals import parse

if TYPE_CHECKING:
    from hsmnode.domain.state import Handler, HsmState, Result

AUDIT_NOTE_MAX = 1000
MAX_CLIENTS = 1000
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
DEFAULT_ACCOUNTS = ("admin", "operator", "monitor", "audit")


def _ok(**value: object) -> Result:
    from hsmnode.domain.state import Result

    return Result.success(**value)


def _err(code: ErrorCode, message: str) -> DomainError:
    return DomainError(code, message)


def _hidden(hide: bool, code: ErrorCode, message: str) -> DomainError:
    """`message` with `code`, or (hide) the answer of a wrong password, with `message` kept for the audit log."""
    if hide:
        return DomainError(ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD, audit_detail=message)
    return DomainError(code, message)


# --- cluster bootstrap --------------------------------------------------------------


def init_cluster(state: HsmState, cmd: c.InitCluster) -> Result:
    if parse(cmd.actor).kind != "node":
        raise _err(ErrorCode.PERMISSION_DENIED, "only a member node may bootstrap the cluster identity")
    if not cmd.cluster_id:
        raise _err(ErrorCode.INVALID_ARGUMENT, "cluster_id must not be empty")
    if state.cluster_id is not None:
        if state.cluster_id == cmd.cluster_id:
            return _ok(cluster_id=state.cluster_id, audit="already bootstrapped")
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"this state belongs to cluster {state.cluster_id}, not {cmd.cluster_id}",
        )
    if len(cmd.default_password_hashes) != len(DEFAULT_ACCOUNTS) or not all(cmd.default_password_hashes):
        raise _err(ErrorCode.INVALID_ARGUMENT, f"need {len(DEFAULT_ACCOUNTS)} default password hashes")
    state.cluster_id = cmd.cluster_id
    state.cluster_created_at = cmd.timestamp
    state.smk_check = cmd.smk_check
    for entry in cmd.members:
        member_id, _, rest = entry.partition("|")
        raft, _, grpc_address = rest.partition("|")
        if member_id and raft and grpc_address:
            state.members[member_id] = (raft, grpc_address)
    for name, digest in zip(DEFAULT_ACCOUNTS, cmd.default_password_hashes, strict=True):
        state.users[name] = ApplianceUser(
            name=name,
            role=name,
            enabled=name == "admin",
            credential=Credential(password_hash=digest, must_change=True),
            builtin=True,
        )
    return _ok(cluster_id=cmd.cluster_id, audit=f"cluster {cmd.cluster_id} bootstrapped")


# --- logins -------------------------------------------------------------------------


def _check_login_actor(state: HsmState, actor: str, target: str, now: int) -> None:
    """Who may attempt a login to `target`: anyone with a TLS connection for appliance users,
    an appliance session allowed to take the HSM role for SO/AU, an assigned client for partitions."""
    kind = target.partition(":")[0]
    if kind == "user":
        if parse(actor).kind not in ("cert", "client"):
            raise _err(
                ErrorCode.INVALID_ARGUMENT, "appliance logins are proposed for the connecting certificate"
            )
    elif target == "hsm:SO":
        authorize(state, actor, "hsm.login", now)
    elif target == "hsm:AU":
        authorize(state, actor, "auditor.login", now)
    elif kind == "partition" and parse(actor).kind == "console":
        return  # the local console presents a partition's password with its cards (DOMAIN.md §5)
    elif kind in ("partition", "keyring"):
        principal = parse(actor)
        if principal.kind != "client":
            raise _err(ErrorCode.UNAUTHENTICATED, f"{kind} logins need a registered client certificate")
        name = target[len(kind) + 1 :].rpartition(":")[0]
        client = client_of(state, principal)
        if kind == "partition":
            assigned_partition(state, client, name)
        else:
            assigned_keyring(state, client, name)
    else:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"unknown login target {target!r}")


WRONG_USER_OR_PASSWORD = "wrong user name or password"


def record_login(state: HsmState, cmd: c.RecordLogin) -> Result:
    _check_login_actor(state, cmd.actor, cmd.target, cmd.timestamp)
    # An appliance login with a wrong password gets one answer whether the user exists, is
    # disabled, locked or just mistyped: only someone who knows the password learns more. The
    # audit record keeps the real reason.
    user_target = cmd.target.startswith("user:")
    hide = user_target and not cmd.success
    if user_target and cmd.target[5:] not in state.users:
        raise _err(ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD)
    t = login_target(state, cmd.target)
    cred = t.credential
    if user_target and not state.users[cmd.target[5:]].enabled:
        raise _hidden(hide, ErrorCode.UNAUTHENTICATED, f"user '{cmd.target[5:]}' is disabled")
    if cred.locked and not is_locked(cred, cmd.timestamp):  # a timed lockout ran out
        cred.locked, cred.locked_until, cred.failed = False, 0, 0
    if cred.locked:
        raise _hidden(hide, ErrorCode.RESOURCE_EXHAUSTED, t.lock_message(cmd.timestamp))
    if cmd.verified_epoch != cred.epoch:
        # The proposer checked the password against another version of the credential (its
        # state was behind, or the credential changed meanwhile): the verdict, success or
        # failure, says nothing about this credential, so nothing is counted.
        raise _err(ErrorCode.UNAVAILABLE, f"the credential of {t.what} changed during the login: try again")
    if not cmd.success:
        cred.failed += 1
        if cred.failed >= t.threshold:
            cred.locked = True
            cred.locked_until = cmd.timestamp + t.lock_ms if t.lock_ms else 0
            cred.epoch += 1
            if t.partition is not None and t.role == "CO" and "CU" in t.partition.roles:
                # Luna: failed CO logins lock out the CO and the CU
                cu = t.partition.roles["CU"]
                cu.locked, cu.locked_until = True, 0
                cu.epoch += 1
            if t.keyring is not None:
                # the keyring locks: both of its roles, until the cluster SO unlocks it
                for other in t.keyring.roles.values():
                    if other is not cred:
                        other.locked, other.locked_until = True, 0
                        other.epoch += 1
            raise _hidden(hide, ErrorCode.RESOURCE_EXHAUSTED, t.lock_message(cmd.timestamp))
        if user_target:
            raise _err(ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD)
        left = t.threshold - cred.failed
        raise _err(
            ErrorCode.UNAUTHENTICATED, f"wrong password for {t.what} ({left} attempts left before lockout)"
        )
    cred.failed = 0
    if cred.must_change:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"the initial password of {t.what} has expired: set a new one first "
            "(hsmnode login --new-password, or hsmnode session passwd)",
        )
    session_epoch = 0
    if t.partition is not None:
        if t.role in ("CO", "CU"):
            check_activated(t.partition)
        if parse(cmd.actor).kind == "client":
            client = client_of(state, parse(cmd.actor))
            session_epoch = client.sessions.get(f"{t.partition.name}:{t.role}", 0)
    if t.keyring is not None:
        client = client_of(state, parse(cmd.actor))
        session_epoch = client.sessions.get(f"keyring:{t.keyring.label}:{t.role}", 0)
    # issued_at and role make the session the member answers with a function of this result alone,
    # so a repeat of the request gets the very same token (DESIGN.md §3.5)
    return _ok(
        epoch=cred.epoch,
        session_epoch=session_epoch,
        issued_at=cmd.timestamp,
        target=cmd.target,
        role=_user_role(state, cmd.actor, cmd.target),
        audit=f"login of {t.what}",
    )


def _user_role(state: HsmState, actor: str, target: str) -> str:
    """The appliance role of the user a login or logout concerns ("" for partitions and keyrings)."""
    kind, _, name = target.partition(":")
    if kind != "user":
        principal = parse(actor)
        if principal.kind != "user":
            return ""
        name = principal.name
    user = state.users.get(name)
    return user.role if user else ""


def change_password(state: HsmState, cmd: c.ChangePassword) -> Result:
    _check_login_actor(state, cmd.actor, cmd.target, cmd.timestamp)
    t = login_target(state, cmd.target)
    cred = t.credential
    if is_locked(cred, cmd.timestamp):
        raise _err(ErrorCode.RESOURCE_EXHAUSTED, t.lock_message(cmd.timestamp))
    if cmd.verified_epoch != cred.epoch:
        raise _err(ErrorCode.UNAVAILABLE, f"the credential of {t.what} changed meanwhile: try again")
    if not cmd.password_hash:
        raise _err(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    cred.password_hash = cmd.password_hash
    cred.must_change = False
    cred.failed = 0
    cred.locked, cred.locked_until = False, 0
    cred.epoch += 1
    return _ok(epoch=cred.epoch, target=cmd.target, audit=f"password of {t.what} changed")


def logout(state: HsmState, cmd: c.Logout) -> Result:
    principal = parse(cmd.actor)
    kind, _, rest = cmd.target.partition(":")
    if kind == "user":
        if principal.kind != "user" or principal.name != rest:
            raise _err(ErrorCode.PERMISSION_DENIED, "an appliance user can only log itself out")
        user = state.users.get(rest)
        if user is None or user.credential.epoch != principal.epoch:
            return _ok(audit=f"user '{rest}' was already logged out")
        user.credential.epoch += 1
        return _ok(audit=f"user '{rest}' logged out")
    if cmd.target in ("hsm:SO", "hsm:AU"):
        role = cmd.target[4:]
        cred = state.hsm.so if role == "SO" else state.hsm.auditor
        if principal.hsm_role != role or cred is None or cred.epoch != principal.hsm_epoch:
            return _ok(
                role=_user_role(state, cmd.actor, cmd.target), audit=f"HSM {role} was already logged out"
            )
        cred.epoch += 1
        return _ok(role=_user_role(state, cmd.actor, cmd.target), audit=f"HSM {role} logged out")
    if kind in ("partition", "keyring"):
        if principal.kind != "client" or f"{principal.container}:{principal.partition_role}" != cmd.target:
            raise _err(ErrorCode.PERMISSION_DENIED, f"a client can only close its own {kind} sessions")
        client = client_of(state, principal)
        key = session_key(principal)
        if client.sessions.get(key, 0) != principal.session_epoch:
            return _ok(audit=f"sessions of {key} were already closed")
        client.sessions[key] = principal.session_epoch + 1
        return _ok(
            audit=f"client '{client.name}' closed its {principal.partition_role} sessions on '{principal.partition}'"
        )
    raise _err(ErrorCode.INVALID_ARGUMENT, f"unknown logout target {cmd.target!r}")


# --- users and roles ------------------------------------------------------------------


def _role_exists(state: HsmState, role: str) -> bool:
    return role in perm.APPLIANCE_ROLES or role in state.roles


def user_add(state: HsmState, cmd: c.UserAdd) -> Result:
    authorize(state, cmd.actor, "user.add", cmd.timestamp)
    rules.check_user_name(cmd.name)
    if cmd.name in state.users:
        raise _err(ErrorCode.ALREADY_EXISTS, f"user '{cmd.name}' already exists")
    if not _role_exists(state, cmd.role):
        raise _err(ErrorCode.NOT_FOUND, f"no role '{cmd.role}' (roles: {', '.join(_all_roles(state))})")
    if not cmd.password_hash:
        raise _err(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    state.users[cmd.name] = ApplianceUser(
        cmd.name, cmd.role, True, Credential(cmd.password_hash, must_change=True)
    )
    return _ok(audit=f"user '{cmd.name}' added with role {cmd.role}")


def _all_roles(state: HsmState) -> list[str]:
    return list(perm.APPLIANCE_ROLES) + sorted(state.roles)


def _existing_user(state: HsmState, name: str) -> ApplianceUser:
    user = state.users.get(name)
    if user is None:
        raise _err(ErrorCode.NOT_FOUND, f"no user '{name}'")
    return user


def user_delete(state: HsmState, cmd: c.UserDelete) -> Result:
    actor = authorize(state, cmd.actor, "user.delete", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    if user.builtin:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"'{cmd.name}' is a default account and cannot be deleted (disable it)",
        )
    if user.name == actor.name:
        raise _err(ErrorCode.FAILED_PRECONDITION, "a user cannot delete itself")
    del state.users[cmd.name]
    return _ok(audit=f"user '{cmd.name}' deleted")


def user_set_enabled(state: HsmState, cmd: c.UserSetEnabled) -> Result:
    actor = authorize(state, cmd.actor, "user.enable" if cmd.enabled else "user.disable", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    if not cmd.enabled and (user.name == "admin" or user.name == actor.name):
        raise _err(
            ErrorCode.FAILED_PRECONDITION, f"'{user.name}' cannot be disabled (it is admin or yourself)"
        )
    if user.enabled != cmd.enabled:
        user.enabled = cmd.enabled
        user.credential.epoch += 1
    return _ok(audit=f"user '{cmd.name}' {'enabled' if cmd.enabled else 'disabled'}")


def user_set_password(state: HsmState, cmd: c.UserSetPassword) -> Result:
    authorize(state, cmd.actor, "user.passwd", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    if not cmd.password_hash:
        raise _err(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    cred = user.credential
    cred.password_hash, cred.must_change, cred.failed = cmd.password_hash, True, 0
    cred.locked, cred.locked_until = False, 0
    cred.epoch += 1
    return _ok(audit=f"password of user '{cmd.name}' reset (must change at next login; unlocked)")


def role_add(state: HsmState, cmd: c.RoleAdd) -> Result:
    authorize(state, cmd.actor, "role.add", cmd.timestamp)
    rules.check_role_name(cmd.name)
    if cmd.name in perm.APPLIANCE_ROLES or cmd.name in state.roles:
        raise _err(ErrorCode.ALREADY_EXISTS, f"role '{cmd.name}' already exists")
    if not cmd.commands:
        raise _err(ErrorCode.INVALID_ARGUMENT, "a custom role needs at least one command")
    unknown = sorted(set(cmd.commands) - perm.CUSTOM_ROLE_COMMANDS)
    if unknown:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown or non-delegable command(s) {', '.join(unknown)}; allowed: {', '.join(sorted(perm.CUSTOM_ROLE_COMMANDS))}",
        )
    state.roles[cmd.name] = CustomRole(cmd.name, tuple(sorted(set(cmd.commands))))
    return _ok(audit=f"role '{cmd.name}' added: {', '.join(sorted(set(cmd.commands)))}")


def role_delete(state: HsmState, cmd: c.RoleDelete) -> Result:
    authorize(state, cmd.actor, "role.delete", cmd.timestamp)
    if cmd.name in perm.APPLIANCE_ROLES:
        raise _err(ErrorCode.FAILED_PRECONDITION, f"'{cmd.name}' is a default role and cannot be deleted")
    if cmd.name not in state.roles:
        raise _err(ErrorCode.NOT_FOUND, f"no role '{cmd.name}'")
    holders = sorted(u.name for u in state.users.values() if u.role == cmd.name)
    if holders:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"role '{cmd.name}' is held by {', '.join(holders)}: change their role first",
        )
    del state.roles[cmd.name]
    return _ok(audit=f"role '{cmd.name}' deleted")


# --- NTLS clients ---------------------------------------------------------------------


def _existing_client(state: HsmState, name: str) -> Client:
    client = state.clients.get(name)
    if client is None:
        raise _err(ErrorCode.NOT_FOUND, f"no registered client '{name}'")
    return client


def client_register(state: HsmState, cmd: c.ClientRegister) -> Result:
    authorize(state, cmd.actor, "client.register", cmd.timestamp)
    rules.check_object_name("client", cmd.name)
    if not _FINGERPRINT.fullmatch(cmd.fingerprint) or "BEGIN CERTIFICATE" not in cmd.cert_pem:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            "a client is registered with a PEM certificate and its sha256 fingerprint",
        )
    if cmd.name in state.clients:
        raise _err(ErrorCode.ALREADY_EXISTS, f"client '{cmd.name}' is already registered")
    holder = state.client_by_fingerprint(cmd.fingerprint)
    if holder is not None:
        raise _err(
            ErrorCode.ALREADY_EXISTS, f"this certificate is already registered as client '{holder.name}'"
        )
    if len(state.clients) >= MAX_CLIENTS:
        raise _err(ErrorCode.RESOURCE_EXHAUSTED, f"at most {MAX_CLIENTS} clients may be registered")
    state.clients[cmd.name] = Client(cmd.name, cmd.fingerprint, cmd.cert_pem)
    return _ok(audit=f"client '{cmd.name}' registered ({cmd.fingerprint[:16]}...)")


def client_assign(state: HsmState, cmd: c.ClientAssign) -> Result:
    authorize(state, cmd.actor, "client.assign", cmd.timestamp)
    client = _existing_client(state, cmd.name)
    if cmd.partition not in state.partitions:
        raise _err(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    if cmd.partition in client.partitions:
        raise _err(
            ErrorCode.ALREADY_EXISTS,
            f"partition '{cmd.partition}' is already assigned to client '{cmd.name}'",
        )
    if state.partitions[cmd.partition].cluster and client.keyrings:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"client '{cmd.name}' holds keyrings ({', '.join(sorted(client.keyrings))}); the cluster partition "
            "belongs to the cluster security officer, who must stay apart from keyring roles",
        )
    client.partitions.append(cmd.partition)
    client.partitions.sort()
    return _ok(audit=f"partition '{cmd.partition}' assigned to client '{cmd.name}'")


def client_revoke(state: HsmState, cmd: c.ClientRevoke) -> Result:
    authorize(state, cmd.actor, "client.revoke", cmd.timestamp)
    client = _existing_client(state, cmd.name)
    if not cmd.partition:
        del state.clients[cmd.name]
        return _ok(audit=f"client '{cmd.name}' unregistered")
    if cmd.partition not in client.partitions:
        raise _err(ErrorCode.NOT_FOUND, f"partition '{cmd.partition}' is not assigned to client '{cmd.name}'")
    client.partitions.remove(cmd.partition)
    client.epoch += 1
    return _ok(audit=f"partition '{cmd.partition}' revoked from client '{cmd.name}'")


# --- audit ------------------------------------------------------------------------------


def audit_note(state: HsmState, cmd: c.AuditNote) -> Result:
    authorize(state, cmd.actor, "audit.note", cmd.timestamp)
    text = cmd.text.strip()
    if not text or len(text) > AUDIT_NOTE_MAX:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"audit note must be 1-{AUDIT_NOTE_MAX} characters")
    if not text.isprintable():
        raise _err(ErrorCode.INVALID_ARGUMENT, "audit note must be printable text on one line")
    return _ok(seq=len(state.audit) + 1, audit=text)  # the record that apply appends next


def audit_config_set(state: HsmState, cmd: c.AuditConfigSet) -> Result:
    authorize(state, cmd.actor, "audit.config", cmd.timestamp)
    if cmd.category not in CATEGORIES:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown audit category {cmd.category!r} (known: {', '.join(CATEGORIES)})",
        )
    if cmd.level not in LEVELS:
        raise _err(
            ErrorCode.INVALID_ARGUMENT, f"audit level must be one of {', '.join(LEVELS)}, not {cmd.level!r}"
        )
    state.hsm.audit_config[cmd.category] = cmd.level
    # the answer, also to a repeat of the request: every category's level after this change
    levels = {category: state.hsm.audit_config.get(category, DEFAULT_LEVEL) for category in CATEGORIES}
    return _ok(levels=levels, audit=f"audit category {cmd.category} records {cmd.level}")


_KEY_EVENT = re.compile(r"(key|partition)\.[a-z_.]{1,40}")


def key_audit_event(state: HsmState, cmd: c.KeyAuditEvent) -> Result:
    parse(cmd.actor)
    if not _KEY_EVENT.fullmatch(cmd.event):
        raise _err(
            ErrorCode.INVALID_ARGUMENT, f"a key audit event is named key.* or partition.*, not {cmd.event!r}"
        )
    if cmd.outcome != "ok" and cmd.outcome not in ErrorCode.__members__:
        raise _err(
            ErrorCode.INVALID_ARGUMENT, f"a key audit outcome is ok or an error code, not {cmd.outcome!r}"
        )
    if max(len(cmd.container), len(cmd.object_id), len(cmd.label), len(cmd.member)) > 200:
        raise _err(ErrorCode.INVALID_ARGUMENT, "key audit fields are at most 200 characters")
    detail = cmd.detail[:AUDIT_NOTE_MAX]
    return _ok(
        audit=detail,
        audit_record={
            "command": cmd.event,
            "outcome": cmd.outcome,
            "member": cmd.member,
            "category": "key_management",
        },
    )


def audit_event(state: HsmState, cmd: c.AuditEvent) -> Result:
    parse(cmd.actor)
    if not cmd.event or len(cmd.event) > 64 or len(cmd.detail) > AUDIT_NOTE_MAX:
        raise _err(
            ErrorCode.INVALID_ARGUMENT, "audit event must name the event (<= 64) with a detail (<= 1000)"
        )
    return _ok(audit=f"{cmd.event}: {cmd.detail}", audit_record={"category": "access"})


def debug_fail(state: HsmState, cmd: c.DebugFail) -> Result:
    raise RuntimeError(f"injected failure: {cmd.reason}")


HANDLERS: dict[type[c.Command], Handler] = {
    c.InitCluster: init_cluster,
    c.RecordLogin: record_login,
    c.ChangePassword: change_password,
    c.Logout: logout,
    c.UserAdd: user_add,
    c.UserDelete: user_delete,
    c.UserSetEnabled: user_set_enabled,
    c.UserSetPassword: user_set_password,
    c.RoleAdd: role_add,
    c.RoleDelete: role_delete,
    c.ClientRegister: client_register,
    c.ClientAssign: client_assign,
    c.ClientRevoke: client_revoke,
    c.AuditNote: audit_note,
    c.AuditEvent: audit_event,
    c.AuditConfigSet: audit_config_set,
    c.KeyAuditEvent: key_audit_event,
    c.DebugFail: debug_fail,
}

"""Apply handlers for the appliance level: cluster bootstrap, users, custom roles, NTLS client
registration, audit notes and configuration (DOMAIN.md §1 appliance level, §6). Logins: `login.py`."""

from __future__ import annotations

import re

from hsmnode.domain import commands as c
from hsmnode.domain import permissions as perm
from hsmnode.domain import rules
from hsmnode.domain.access import (
    authorize,
)
from hsmnode.domain.audit import CATEGORIES, DEFAULT_LEVEL, LEVELS, AuditCategory
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import ApplianceUser, Client, Credential, CustomRole
from hsmnode.domain.principals import PrincipalKind, parse
from hsmnode.domain.result import Result, ok
from hsmnode.domain.roles import ApplianceRole
from hsmnode.domain.state import HsmState

AUDIT_NOTE_MAX = 1000
MAX_CLIENTS = 1000
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


# --- cluster bootstrap --------------------------------------------------------------


def init_cluster(state: HsmState, cmd: c.InitCluster) -> Result:
    if parse(cmd.actor).kind != PrincipalKind.NODE:
        raise DomainError(
            ErrorCode.PERMISSION_DENIED, "only a member node may bootstrap the cluster identity"
        )
    if not cmd.cluster_id:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "cluster_id must not be empty")
    if state.cluster_id is not None:
        if state.cluster_id == cmd.cluster_id:
            return ok(cluster_id=state.cluster_id, audit="already bootstrapped")
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"this state belongs to cluster {state.cluster_id}, not {cmd.cluster_id}",
        )
    if len(cmd.default_password_hashes) != len(perm.DEFAULT_ACCOUNTS) or not all(cmd.default_password_hashes):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"need {len(perm.DEFAULT_ACCOUNTS)} default password hashes"
        )
    state.cluster_id = cmd.cluster_id
    state.cluster_created_at = cmd.timestamp
    state.smk_check = cmd.smk_check
    for entry in cmd.members:
        member_id, _, rest = entry.partition("|")
        raft, _, grpc_address = rest.partition("|")
        if member_id and raft and grpc_address:
            state.members[member_id] = (raft, grpc_address)
    for name, digest in zip(perm.DEFAULT_ACCOUNTS, cmd.default_password_hashes, strict=True):
        state.users[name] = ApplianceUser(
            name=name,
            role=name,
            enabled=name == "admin",
            credential=Credential(password_hash=digest, must_change=True),
            builtin=True,
        )
    return ok(cluster_id=cmd.cluster_id, audit=f"cluster {cmd.cluster_id} bootstrapped")


# --- users and roles ------------------------------------------------------------------


def _role_exists(state: HsmState, role: str) -> bool:
    return role in perm.APPLIANCE_ROLES or role in state.roles


def _grants_of(state: HsmState, role: str) -> frozenset[str]:
    custom = state.roles.get(role)
    return perm.role_grants(role, frozenset(custom.commands) if custom else None)


def _no_escalation(
    state: HsmState,
    actor: str,
    operation: str,
    *,
    gives: frozenset[str] = frozenset(),
    what: str = "",
    target: ApplianceUser | None = None,
) -> None:
    """Refuse a user-management step that would reach beyond the actor's own role.

    A user gives only what its own role holds (a user added with a role, a custom role's commands:
    `gives`, described by `what`), and manages only users whose role grants nothing it lacks
    (`target`); users of the built-in admin role are managed by admins alone. The built-in admin
    holds every delegable operation (DOMAIN.md §1: a custom role is a subset of what admin may do),
    so these rules bind custom roles. The same rule as Kubernetes RBAC's escalation check.
    Raises DomainError(PERMISSION_DENIED) naming what the actor's role lacks.
    """
    user = state.users[parse(actor).name]
    if user.role == ApplianceRole.ADMIN:
        return
    held = _grants_of(state, user.role)
    gives = gives - perm.READ_ONLY
    who = f"user '{user.name}' (role {user.role})"
    lacking = sorted(gives - held)
    if lacking:
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"{who} may not give {what}: it grants {', '.join(lacking)}, which role {user.role} does not "
            "hold; a user gives only what its own role holds (ask an admin)",
        )
    if target is None:
        return
    if target.role == ApplianceRole.ADMIN:
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"{who} may not {operation} user '{target.name}': it holds the admin role, and only an admin "
            "manages admins",
        )
    lacking = sorted(_grants_of(state, target.role) - held)
    if lacking:
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"{who} may not {operation} user '{target.name}' (role {target.role}): that role grants "
            f"{', '.join(lacking)}, which role {user.role} does not hold (ask an admin)",
        )


def user_add(state: HsmState, cmd: c.UserAdd) -> Result:
    authorize(state, cmd.actor, "user.add", cmd.timestamp)
    rules.check_user_name(cmd.name)
    if cmd.name in state.users:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"user '{cmd.name}' already exists")
    if not _role_exists(state, cmd.role):
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no role '{cmd.role}' (roles: {', '.join(_all_roles(state))})"
        )
    _no_escalation(state, cmd.actor, "user.add", gives=_grants_of(state, cmd.role), what=f"role '{cmd.role}'")
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    state.users[cmd.name] = ApplianceUser(
        cmd.name, cmd.role, True, Credential(cmd.password_hash, must_change=True)
    )
    return ok(audit=f"user '{cmd.name}' added with role {cmd.role}")


def _all_roles(state: HsmState) -> list[str]:
    return list(perm.APPLIANCE_ROLES) + sorted(state.roles)


def _existing_user(state: HsmState, name: str) -> ApplianceUser:
    user = state.users.get(name)
    if user is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no user '{name}'")
    return user


def user_delete(state: HsmState, cmd: c.UserDelete) -> Result:
    actor = authorize(state, cmd.actor, "user.delete", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    _no_escalation(state, cmd.actor, "delete", target=user)
    if user.builtin:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"'{cmd.name}' is a default account and cannot be deleted: "
            + (
                "nor disabled; change its password instead (hsmnode user passwd admin)"
                if cmd.name == "admin"
                else f"disable it instead (hsmnode user disable {cmd.name})"
            ),
        )
    if user.name == actor.name:
        raise DomainError(ErrorCode.FAILED_PRECONDITION, "a user cannot delete itself")
    del state.users[cmd.name]
    return ok(audit=f"user '{cmd.name}' deleted")


def user_set_enabled(state: HsmState, cmd: c.UserSetEnabled) -> Result:
    actor = authorize(state, cmd.actor, "user.enable" if cmd.enabled else "user.disable", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    _no_escalation(state, cmd.actor, "enable" if cmd.enabled else "disable", target=user)
    if not cmd.enabled and (user.name == "admin" or user.name == actor.name):
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, f"'{user.name}' cannot be disabled (it is admin or yourself)"
        )
    if user.enabled != cmd.enabled:
        user.enabled = cmd.enabled
        user.credential.epoch += 1
    return ok(audit=f"user '{cmd.name}' {'enabled' if cmd.enabled else 'disabled'}")


def user_set_password(state: HsmState, cmd: c.UserSetPassword) -> Result:
    authorize(state, cmd.actor, "user.passwd", cmd.timestamp)
    user = _existing_user(state, cmd.name)
    _no_escalation(state, cmd.actor, "reset the password of", target=user)
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    cred = user.credential
    cred.password_hash, cred.must_change, cred.failed = cmd.password_hash, True, 0
    cred.locked, cred.locked_until = False, 0
    cred.epoch += 1
    return ok(audit=f"password of user '{cmd.name}' reset (must change at next login; unlocked)")


def role_add(state: HsmState, cmd: c.RoleAdd) -> Result:
    authorize(state, cmd.actor, "role.add", cmd.timestamp)
    rules.check_role_name(cmd.name)
    if cmd.name in perm.APPLIANCE_ROLES or cmd.name in state.roles:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"role '{cmd.name}' already exists")
    if not cmd.commands:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "a custom role needs at least one command")
    unknown = sorted(set(cmd.commands) - perm.CUSTOM_ROLE_COMMANDS)
    if unknown:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown or non-delegable command(s) {', '.join(unknown)}; allowed: {', '.join(sorted(perm.CUSTOM_ROLE_COMMANDS))}",
        )
    _no_escalation(
        state, cmd.actor, "role.add", gives=frozenset(cmd.commands), what="a role with these commands"
    )
    state.roles[cmd.name] = CustomRole(cmd.name, tuple(sorted(set(cmd.commands))))
    return ok(audit=f"role '{cmd.name}' added: {', '.join(sorted(set(cmd.commands)))}")


def role_delete(state: HsmState, cmd: c.RoleDelete) -> Result:
    authorize(state, cmd.actor, "role.delete", cmd.timestamp)
    if cmd.name in perm.APPLIANCE_ROLES:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, f"'{cmd.name}' is a default role and cannot be deleted"
        )
    if cmd.name not in state.roles:
        raise DomainError(ErrorCode.NOT_FOUND, f"no role '{cmd.name}'")
    holders = sorted(u.name for u in state.users.values() if u.role == cmd.name)
    if holders:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"role '{cmd.name}' is held by {', '.join(holders)}: change their role first",
        )
    del state.roles[cmd.name]
    return ok(audit=f"role '{cmd.name}' deleted")


# --- NTLS clients ---------------------------------------------------------------------


def _existing_client(state: HsmState, name: str) -> Client:
    client = state.clients.get(name)
    if client is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no registered client '{name}'")
    return client


def client_register(state: HsmState, cmd: c.ClientRegister) -> Result:
    authorize(state, cmd.actor, "client.register", cmd.timestamp)
    rules.check_object_name("client", cmd.name)
    if not _FINGERPRINT.fullmatch(cmd.fingerprint) or "BEGIN CERTIFICATE" not in cmd.cert_pem:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            "a client is registered with a PEM certificate and its sha256 fingerprint",
        )
    if cmd.name in state.clients:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"client '{cmd.name}' is already registered")
    holder = state.client_by_fingerprint(cmd.fingerprint)
    if holder is not None:
        raise DomainError(
            ErrorCode.ALREADY_EXISTS, f"this certificate is already registered as client '{holder.name}'"
        )
    if len(state.clients) >= MAX_CLIENTS:
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, f"at most {MAX_CLIENTS} clients may be registered")
    state.clients[cmd.name] = Client(cmd.name, cmd.fingerprint, cmd.cert_pem)
    return ok(audit=f"client '{cmd.name}' registered ({cmd.fingerprint[:16]}...)")


def client_assign(state: HsmState, cmd: c.ClientAssign) -> Result:
    authorize(state, cmd.actor, "client.assign", cmd.timestamp)
    client = _existing_client(state, cmd.name)
    if cmd.partition not in state.partitions:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    if cmd.partition in client.partitions:
        raise DomainError(
            ErrorCode.ALREADY_EXISTS,
            f"partition '{cmd.partition}' is already assigned to client '{cmd.name}'",
        )
    if state.partitions[cmd.partition].cluster and client.keyrings:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"client '{cmd.name}' holds keyrings ({', '.join(sorted(client.keyrings))}); the cluster partition "
            "belongs to the cluster security officer, who must stay apart from keyring roles",
        )
    client.partitions.append(cmd.partition)
    client.partitions.sort()
    return ok(audit=f"partition '{cmd.partition}' assigned to client '{cmd.name}'")


def client_revoke(state: HsmState, cmd: c.ClientRevoke) -> Result:
    authorize(state, cmd.actor, "client.revoke", cmd.timestamp)
    client = _existing_client(state, cmd.name)
    if not cmd.partition:
        del state.clients[cmd.name]
        return ok(audit=f"client '{cmd.name}' unregistered")
    if cmd.partition not in client.partitions:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"partition '{cmd.partition}' is not assigned to client '{cmd.name}'"
        )
    client.partitions.remove(cmd.partition)
    client.epoch += 1
    return ok(audit=f"partition '{cmd.partition}' revoked from client '{cmd.name}'")


# --- audit ------------------------------------------------------------------------------


def audit_note(state: HsmState, cmd: c.AuditNote) -> Result:
    authorize(state, cmd.actor, "audit.note", cmd.timestamp)
    text = cmd.text.strip()
    if not text or len(text) > AUDIT_NOTE_MAX:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"audit note must be 1-{AUDIT_NOTE_MAX} characters")
    if not text.isprintable():
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "audit note must be printable text on one line")
    return ok(seq=len(state.audit) + 1, audit=text)  # the record that apply appends next


def audit_config_set(state: HsmState, cmd: c.AuditConfigSet) -> Result:
    authorize(state, cmd.actor, "audit.config", cmd.timestamp)
    if cmd.category not in CATEGORIES:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown audit category {cmd.category!r} (known: {', '.join(CATEGORIES)})",
        )
    if cmd.level not in LEVELS:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"audit level must be one of {', '.join(LEVELS)}, not {cmd.level!r}"
        )
    state.hsm.audit_config[cmd.category] = cmd.level
    # the answer, also to a repeat of the request: every category's level after this change
    levels = {category: state.hsm.audit_config.get(category, DEFAULT_LEVEL) for category in CATEGORIES}
    return ok(levels=levels, audit=f"audit category {cmd.category} records {cmd.level}")


_KEY_EVENT = re.compile(r"(key|partition)\.[a-z_.]{1,40}")


def key_audit_event(state: HsmState, cmd: c.KeyAuditEvent) -> Result:
    parse(cmd.actor)
    if not _KEY_EVENT.fullmatch(cmd.event):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"a key audit event is named key.* or partition.*, not {cmd.event!r}"
        )
    if cmd.outcome != "ok" and cmd.outcome not in ErrorCode.__members__:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"a key audit outcome is ok or an error code, not {cmd.outcome!r}"
        )
    if max(len(cmd.container), len(cmd.object_id), len(cmd.label), len(cmd.member)) > 200:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "key audit fields are at most 200 characters")
    detail = cmd.detail[:AUDIT_NOTE_MAX]
    return ok(
        audit=detail,
        audit_record={
            "command": cmd.event,
            "outcome": cmd.outcome,
            "member": cmd.member,
            "category": AuditCategory.KEY_MANAGEMENT.value,
        },
    )


def audit_event(state: HsmState, cmd: c.AuditEvent) -> Result:
    parse(cmd.actor)
    if not cmd.event or len(cmd.event) > 64 or len(cmd.detail) > AUDIT_NOTE_MAX:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, "audit event must name the event (<= 64) with a detail (<= 1000)"
        )
    return ok(audit=f"{cmd.event}: {cmd.detail}", audit_record={"category": AuditCategory.ACCESS.value})


def debug_fail(state: HsmState, cmd: c.DebugFail) -> Result:
    raise RuntimeError(f"injected failure: {cmd.reason}")

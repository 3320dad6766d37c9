"""Apply handlers for logins (DOMAIN.md §1, §3): a login attempt's outcome, password changes, logouts.

The proposing member verified the password; apply decides what the attempt means on
every member alike: who may attempt it, lockout counting, expired passwords, the
session epochs a logout bumps. An appliance login with a wrong password gets one
answer whatever the reason (the audit record keeps the real one).
"""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain.access import (
    LoginTarget,
    assigned_keyring,
    assigned_partition,
    authorize,
    check_activated,
    client_of,
    is_locked,
    login_target,
    session_key,
)
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.principals import PrincipalKind, parse
from hsmnode.domain.result import Result, ok
from hsmnode.domain.roles import HsmRole, PartitionRole
from hsmnode.domain.state import HsmState

WRONG_USER_OR_PASSWORD = "wrong user name or password"


def _hidden(hide: bool, code: ErrorCode, message: str) -> DomainError:
    """`message` with `code`, or (hide) the answer of a wrong password, with `message` kept for the
    audit log and `code` for the login metric (hsmnode_logins_total counts a hidden lockout as locked)."""
    if hide:
        return DomainError(
            ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD, audit_detail=message, hidden_code=code
        )
    return DomainError(code, message)


def _check_login_actor(state: HsmState, actor: str, target: str, now: int) -> None:
    """Who may attempt a login to `target`: anyone with a TLS connection for appliance users,
    an appliance session allowed to take the HSM role for SO/AU, an assigned client for partitions."""
    kind = target.partition(":")[0]
    if kind == "user":
        if parse(actor).kind not in (PrincipalKind.CERT, PrincipalKind.CLIENT):
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, "appliance logins are proposed for the connecting certificate"
            )
    elif target == "hsm:SO":
        authorize(state, actor, "hsm.login", now)
    elif target == "hsm:AU":
        authorize(state, actor, "auditor.login", now)
    elif kind == "partition" and parse(actor).kind == PrincipalKind.CONSOLE:
        return  # the local console presents a partition's password with its cards (DOMAIN.md §5)
    elif kind in ("partition", "keyring"):
        principal = parse(actor)
        if principal.kind != PrincipalKind.CLIENT:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED, f"{kind} logins need a registered client certificate"
            )
        name = target[len(kind) + 1 :].rpartition(":")[0]
        client = client_of(state, principal)
        if kind == "partition":
            assigned_partition(state, client, name)
        else:
            assigned_keyring(state, client, name)
    else:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"unknown login target {target!r}")


def _passwd_command(t: LoginTarget) -> str:
    """The command that sets a new password for login target `t` (appliance users log in with
    --new-password; partition and keyring roles change theirs over NTLS)."""
    if t.partition is not None:
        return f"hsmnode session passwd {t.partition.name} --role {t.role.lower()}"
    if t.keyring is not None:
        return f"hsmnode session passwd {t.keyring.label} --role {t.role.lower()}"
    if t.target.startswith("user:"):
        return f"hsmnode login {t.target[5:]} --new-password"
    return "hsmnode login --new-password"


def record_login(state: HsmState, cmd: c.RecordLogin) -> Result:
    _check_login_actor(state, cmd.actor, cmd.target, cmd.timestamp)
    # An appliance login with a wrong password gets one answer whether the user exists, is
    # disabled, locked or just mistyped: only someone who knows the password learns more. The
    # audit record keeps the real reason.
    user_target = cmd.target.startswith("user:")
    hide = user_target and not cmd.success
    if user_target and cmd.target[5:] not in state.users:
        raise DomainError(ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD)
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
        raise DomainError(
            ErrorCode.UNAVAILABLE, f"the credential of {t.what} changed during the login: try again"
        )
    if not cmd.success:
        cred.failed += 1
        if cred.failed >= t.threshold:
            cred.locked = True
            cred.locked_until = cmd.timestamp + t.lock_ms if t.lock_ms else 0
            cred.epoch += 1
            if (
                t.partition is not None
                and t.role == PartitionRole.CO
                and PartitionRole.CU in t.partition.roles
            ):
                # Luna: failed CO logins lock out the CO and the CU
                cu = t.partition.roles[PartitionRole.CU]
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
            raise DomainError(ErrorCode.UNAUTHENTICATED, WRONG_USER_OR_PASSWORD)
        left = t.threshold - cred.failed
        raise DomainError(
            ErrorCode.UNAUTHENTICATED,
            f"wrong password for {t.what} ({left} attempt{'' if left == 1 else 's'} left before lockout)",
        )
    cred.failed = 0
    if cred.must_change:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"the initial password of {t.what} has expired: set a new one first ({_passwd_command(t)})",
        )
    session_epoch = 0
    if t.partition is not None:
        if t.role in (PartitionRole.CO, PartitionRole.CU):
            check_activated(t.partition)
        if parse(cmd.actor).kind == PrincipalKind.CLIENT:
            client = client_of(state, parse(cmd.actor))
            session_epoch = client.sessions.get(f"{t.partition.name}:{t.role}", 0)
    if t.keyring is not None:
        client = client_of(state, parse(cmd.actor))
        session_epoch = client.sessions.get(f"keyring:{t.keyring.label}:{t.role}", 0)
    # issued_at and role make the session the member answers with a function of this result alone,
    # so a repeat of the request gets the very same token (DESIGN.md §3.5)
    return ok(
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
        if principal.kind != PrincipalKind.USER:
            return ""
        name = principal.name
    user = state.users.get(name)
    return user.role if user else ""


def change_password(state: HsmState, cmd: c.ChangePassword) -> Result:
    _check_login_actor(state, cmd.actor, cmd.target, cmd.timestamp)
    t = login_target(state, cmd.target)
    cred = t.credential
    if is_locked(cred, cmd.timestamp):
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, t.lock_message(cmd.timestamp))
    if cmd.verified_epoch != cred.epoch:
        raise DomainError(ErrorCode.UNAVAILABLE, f"the credential of {t.what} changed meanwhile: try again")
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    cred.password_hash = cmd.password_hash
    cred.must_change = False
    cred.failed = 0
    cred.locked, cred.locked_until = False, 0
    cred.epoch += 1
    return ok(epoch=cred.epoch, target=cmd.target, audit=f"password of {t.what} changed")


def logout(state: HsmState, cmd: c.Logout) -> Result:
    principal = parse(cmd.actor)
    kind, _, rest = cmd.target.partition(":")
    if kind == "user":
        if principal.kind != PrincipalKind.USER or principal.name != rest:
            raise DomainError(ErrorCode.PERMISSION_DENIED, "an appliance user can only log itself out")
        user = state.users.get(rest)
        if user is None or user.credential.epoch != principal.epoch:
            return ok(audit=f"user '{rest}' was already logged out")
        user.credential.epoch += 1
        return ok(audit=f"user '{rest}' logged out")
    if cmd.target in ("hsm:SO", "hsm:AU"):
        role = cmd.target[4:]
        cred = state.hsm.so if role == HsmRole.SO else state.hsm.auditor
        if principal.hsm_role != role or cred is None or cred.epoch != principal.hsm_epoch:
            return ok(
                role=_user_role(state, cmd.actor, cmd.target), audit=f"HSM {role} was already logged out"
            )
        cred.epoch += 1
        return ok(role=_user_role(state, cmd.actor, cmd.target), audit=f"HSM {role} logged out")
    if kind in ("partition", "keyring"):
        if (
            principal.kind != PrincipalKind.CLIENT
            or f"{principal.container}:{principal.partition_role}" != cmd.target
        ):
            raise DomainError(ErrorCode.PERMISSION_DENIED, f"a client can only close its own {kind} sessions")
        client = client_of(state, principal)
        key = session_key(principal)
        if client.sessions.get(key, 0) != principal.session_epoch:
            return ok(audit=f"sessions of {key} were already closed")
        client.sessions[key] = principal.session_epoch + 1
        return ok(
            audit=f"client '{client.name}' closed its {principal.partition_role} sessions on '{principal.partition}'"
        )
    raise DomainError(ErrorCode.INVALID_ARGUMENT, f"unknown logout target {cmd.target!r}")

"""Authorization against replicated state: is this actor, with the epochs in its session,
allowed this operation now? Used inside apply (the authority) and by the service for
reads and fast refusals. Also: which credential a login target names, and its lockout rule;
whether a partition's activation lets its sessions open.
"""

from __future__ import annotations

from dataclasses import dataclass

from hsmnode.domain import permissions as perm
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Client, Credential, Keyring, Partition
from hsmnode.domain.principals import KEYRING_ROLES, PARTITION_ROLES, Principal, PrincipalKind, parse
from hsmnode.domain.roles import HsmRole, PartitionRole
from hsmnode.domain.state import HsmState

USER_LOCKOUT_THRESHOLD = 5  # our choice: Luna's REST default is not documented
USER_LOCKOUT_MS = 300_000
HSM_SO_THRESHOLD = 3  # Luna: fixed, cannot be changed
AUDITOR_THRESHOLD = 3
PO_THRESHOLD = 10
KEYRING_THRESHOLD = 10  # Luna: a keyring locks after 10 failed logins


def _denied(message: str) -> DomainError:
    return DomainError(ErrorCode.PERMISSION_DENIED, message)


def _unauth(message: str) -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, message)


def is_locked(cred: Credential, now: int) -> bool:
    return cred.locked and (cred.locked_until == 0 or now < cred.locked_until)


def check_activated(part: Partition, member_started_ms: int = 0) -> None:
    """DOMAIN.md §3 activation (Luna): a partition requiring it opens CO/CU sessions only once its CO
    activated it; a member that (re)started since has lost that activation unless auto_activation is
    on — and auto-activation, too, needs a first explicit activation. `member_started_ms` is the
    asking member's start (0: the replicated view alone, as apply judges it)."""
    policy = part.policy
    if not policy.activation_required:
        return
    how = f"the CO must activate it (hsmnode partition activate {part.name})"
    if not part.activated:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{part.name}' requires activation: {how}"
            + (
                "; auto_activation keeps an activation, it does not replace the first one"
                if policy.auto_activation
                else ""
            ),
        )
    if not policy.auto_activation and part.activated_at < member_started_ms:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{part.name}' requires activation, and this member lost it when it restarted: {how} "
            "again, or the PO turns on auto_activation so that activation survives restarts",
        )


@dataclass(frozen=True)
class LoginTarget:
    """A credential named by a login target, with its lockout rule."""

    target: str
    what: str  # "user 'bob'", "the HSM SO", "the CO of partition 'pay'"
    credential: Credential
    threshold: int
    lock_ms: int  # 0 = locked until someone unlocks it
    unlock_hint: str
    partition: Partition | None = None
    role: str = ""
    keyring: Keyring | None = None

    def lock_message(self, now: int) -> str:
        if (
            self.role == PartitionRole.CU
            and self.partition is not None
            and self.credential.failed < self.threshold
        ):
            # locked by the CO's lockout (apply/login.py), not by its own failed logins
            return (
                f"{self.what} is locked because its CO was locked out (as on Luna, a CO lockout locks "
                f"the CU too; the PO's reset of the CO does not unlock it): {self.unlock_hint}"
            )
        if self.lock_ms and self.credential.locked_until:
            left = max(1, (self.credential.locked_until - now + 999) // 1000)
            return (
                f"{self.what} is locked after {self.threshold} failed logins for {left} more seconds; "
                f"wait, or {self.unlock_hint}"
            )
        return f"{self.what} is locked after {self.threshold} failed logins: {self.unlock_hint}"


def login_target(state: HsmState, target: str) -> LoginTarget:
    kind, _, rest = target.partition(":")
    if kind == "user":
        user = state.users.get(rest)
        if user is None:
            raise _unauth("wrong user name or password")
        return LoginTarget(
            target,
            f"user '{rest}'",
            user.credential,
            USER_LOCKOUT_THRESHOLD,
            USER_LOCKOUT_MS,
            f"have admin reset its password (hsmnode user passwd {rest})",
        )
    if target == "hsm:SO":
        if not state.hsm.initialized or state.hsm.so is None:
            raise DomainError(ErrorCode.FAILED_PRECONDITION, "the HSM is not initialized (hsmnode hsm init)")
        return LoginTarget(
            target,
            "the HSM SO",
            state.hsm.so,
            HSM_SO_THRESHOLD,
            0,
            "a Luna HSM zeroizes here; an admin must re-initialize the HSM (hsmnode hsm init), "
            "which destroys every partition",
        )
    if target == "hsm:AU":
        if state.hsm.auditor is None:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                "the Auditor role is not initialized (hsmnode hsm auditor-init, as audit)",
            )
        return LoginTarget(
            target,
            "the HSM Auditor",
            state.hsm.auditor,
            AUDITOR_THRESHOLD,
            0,
            "the audit user must re-initialize the Auditor (hsmnode hsm auditor-init)",
        )
    if kind == "keyring":
        label, _, role = rest.rpartition(":")
        ring = state.keyrings.get(label)
        if ring is None or role not in KEYRING_ROLES:
            raise DomainError(ErrorCode.NOT_FOUND, f"no keyring {label!r} is assigned to this client")
        cred = ring.roles.get(role)
        if cred is None:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"the KRCO of keyring '{label}' is not set: the KRSO must set it first",
            )
        return LoginTarget(
            target,
            f"the {role} of keyring '{label}'",
            cred,
            KEYRING_THRESHOLD,
            0,
            f"the cluster security officer must unlock it (hsmnode keyring unlock {label})",
            role=role,
            keyring=ring,
        )
    if kind == "partition":
        name, _, role = rest.rpartition(":")
        part = state.partitions.get(name)
        if part is None or role not in PARTITION_ROLES:
            raise DomainError(ErrorCode.NOT_FOUND, f"no partition {name!r} is assigned to this client")
        if not part.initialized:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"partition '{name}' is not initialized (hsmnode partition init)",
            )
        cred = part.roles.get(role)
        if cred is None:
            initializer = PartitionRole.PO if role == PartitionRole.CO else PartitionRole.CO
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"the {role} of partition '{name}' is not initialized: the {initializer} must initialize it first",
            )
        if role == PartitionRole.PO:
            hint = "a Luna partition zeroizes here; the HSM SO must delete and re-create the partition"
            threshold = PO_THRESHOLD
        elif role == PartitionRole.CO:
            hint = (
                f"the PO must reset the CO credential (hsmnode partition role-init {name} --role co); "
                "the CU is locked with it until the CO resets the CU"
                if state.hsm.policies.get("po_can_reset_co", True)
                else "HSM policy po_can_reset_co is off, so the CO stays locked out"
            )
            threshold = part.policy.max_failed_logins
        else:
            hint = f"the CO must reset the CU credential (hsmnode partition role-init {name} --role cu)"
            threshold = part.policy.max_failed_logins
        return LoginTarget(target, f"the {role} of partition '{name}'", cred, threshold, 0, hint, part, role)
    raise DomainError(ErrorCode.INVALID_ARGUMENT, f"unknown login target {target!r}")


def client_of(state: HsmState, principal: Principal) -> Client:
    """The registered client behind a client principal whose registration epoch is current."""
    client = state.client_by_fingerprint(principal.name)
    if client is None:
        raise _unauth(
            f"client certificate {principal.name[:16]}... is not registered (hsmnode client register)"
        )
    if client.epoch != principal.epoch:
        raise _unauth(
            f"the registration or a partition assignment of client '{client.name}' changed: open a new session"
        )
    return client


def assigned_partition(state: HsmState, client: Client, name: str) -> Partition:
    """The partition, if it exists and is assigned to the client; one answer for both misses."""
    part = state.partitions.get(name)
    if part is None or name not in client.partitions:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition {name!r} is assigned to this client")
    return part


def assigned_keyring(state: HsmState, client: Client, label: str) -> Keyring:
    """The keyring, if it exists and is assigned to the client; one answer for both misses."""
    ring = state.keyrings.get(label)
    if ring is None or label not in client.keyrings:
        raise DomainError(ErrorCode.NOT_FOUND, f"no keyring {label!r} is assigned to this client")
    return ring


def authorize(state: HsmState, actor: str, operation: str, now: int, container: str = "") -> Principal:
    """Raise DomainError unless `actor` may perform `operation` now; return the parsed principal.

    `container` ("partition:<name>" / "keyring:<label>"), when given, is the container the
    operation targets: a session on another container is refused.
    """
    principal = parse(actor)
    level = perm.level_of(operation)
    if level is perm.Level.CONTAINER:
        if principal.kind != PrincipalKind.CLIENT or not principal.partition:
            kind = container.partition(":")[0] or "partition"
            raise _denied(f"{operation} needs a {kind} session (hsmnode session open)")
        validate_session(state, principal, now)
        if container and principal.container != container:
            _check_grant(state, principal, operation, container)
        keyring = principal.container_kind == "keyring"
        allowed = perm.keyring_allows if keyring else perm.partition_allows
        if not allowed(principal.partition_role, operation):
            where = "keyring" if keyring else "partition"
            raise _denied(
                f"the {principal.partition_role} of {where} '{principal.partition}' may not {operation}"
            )
        return principal
    if principal.kind != PrincipalKind.USER:
        raise _denied(f"{operation} needs an appliance login (hsmnode login)")
    validate_session(state, principal, now)
    user = state.users[principal.name]
    custom = state.roles.get(user.role)
    commands = frozenset(custom.commands) if custom else None
    if not perm.appliance_allows(user.role, commands, operation):
        raise _denied(f"user '{user.name}' (role {user.role}) may not run {operation}")
    if level is perm.Level.HSM:
        needed = perm.HSM[operation][0]
        if principal.hsm_role != needed:
            role_name, how = (
                ("SO", "hsmnode hsm login")
                if needed == HsmRole.SO
                else ("Auditor", "hsmnode hsm login --auditor")
            )
            raise _denied(f"{operation} needs the HSM {role_name} role: log in to it ({how})")
    return principal


def _check_grant(state: HsmState, principal: Principal, operation: str, container: str) -> None:
    """A session on one partition may act on another only by that owner's grant (not transitive, not symmetric)."""
    where = principal.container.replace(":", " ", 1)
    target_kind, _, owner = container.partition(":")
    needed = perm.GRANT.get(operation)
    if principal.container_kind != "partition" or target_kind != "partition" or needed is None:
        raise _denied(f"this session is for {where}, not {container.replace(':', ' ', 1)}")
    part = state.partitions.get(owner)
    granted = part.grants.get(principal.partition, []) if part else []
    if needed not in granted:
        raise _denied(
            f"partition '{owner}' has not granted '{principal.partition}' the permission to {needed} its objects"
        )


def session_key(principal: Principal) -> str:
    """Where a client's logout epoch for this container and role is kept."""
    if principal.container_kind == "keyring":
        return f"keyring:{principal.partition}:{principal.partition_role}"
    return f"{principal.partition}:{principal.partition_role}"


def validate_session(state: HsmState, principal: Principal, now: int) -> None:
    """Raise unless the session the principal stands for is still current in replicated state:
    the subject exists and is enabled, and no epoch it was issued under has been bumped since."""
    if principal.kind == PrincipalKind.USER:
        user = state.users.get(principal.name)
        if user is None:
            raise _unauth(f"user '{principal.name}' no longer exists: log in again")
        if not user.enabled:
            raise _unauth(f"user '{principal.name}' is disabled")
        cred = user.credential
        if cred.epoch != principal.epoch:
            raise _unauth("this session has ended (logout, password change, reset or lockout): log in again")
        if is_locked(cred, now):
            raise DomainError(
                ErrorCode.RESOURCE_EXHAUSTED, login_target(state, f"user:{user.name}").lock_message(now)
            )
        if cred.must_change:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"the password of '{user.name}' has expired: set a new one (hsmnode login --new-password)",
            )
        if principal.hsm_role:
            hsm_cred = state.hsm.so if principal.hsm_role == HsmRole.SO else state.hsm.auditor
            role_name = "SO" if principal.hsm_role == HsmRole.SO else "Auditor"
            if hsm_cred is None or hsm_cred.epoch != principal.hsm_epoch:
                raise _unauth(f"the HSM {role_name} session has ended: log in to the role again")
            if is_locked(hsm_cred, now):
                raise DomainError(
                    ErrorCode.RESOURCE_EXHAUSTED,
                    login_target(state, f"hsm:{principal.hsm_role}").lock_message(now),
                )
        return
    if principal.kind == PrincipalKind.CLIENT and principal.partition:
        client = client_of(state, principal)
        holder: Partition | Keyring
        if principal.container_kind == "keyring":
            holder = assigned_keyring(state, client, principal.partition)
        else:
            holder = assigned_partition(state, client, principal.partition)
        role_cred = holder.roles.get(principal.partition_role)
        if (
            role_cred is None
            or role_cred.epoch != principal.role_epoch
            or client.sessions.get(session_key(principal), 0) != principal.session_epoch
        ):
            raise _unauth(
                "this session has ended (logout, password change, reset or lockout): open a new session"
            )
        if is_locked(role_cred, now):
            target = f"{principal.container}:{principal.partition_role}"
            raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, login_target(state, target).lock_message(now))
        return
    raise _unauth("not a session")

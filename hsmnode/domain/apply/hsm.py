"""Apply handlers for the HSM and partition levels: HSM init and policies, the Auditor,
partitions and their roles, policies and activation (DOMAIN.md §1 HSM and partition
levels, §3 activation)."""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import assigned_partition, authorize, client_of, is_locked, login_target
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Credential, Hsm, Partition, PartitionAuthorization, PartitionPolicy
from hsmnode.domain.mofn import gate
from hsmnode.domain.principals import PrincipalKind, parse
from hsmnode.domain.result import Result, ok
from hsmnode.domain.roles import PartitionRole
from hsmnode.domain.state import HsmState

MAX_PARTITIONS = 100  # a Luna Network HSM 7 holds 5-100 application partitions


def _partition(state: HsmState, name: str) -> Partition:
    part = state.partitions.get(name)
    if part is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{name}'")
    return part


def _zeroize_partitions(state: HsmState) -> int:
    count = len(state.partitions)
    state.partitions.clear()
    for client in state.clients.values():
        if client.partitions:
            client.partitions.clear()
            client.epoch += 1
    return count


def hsm_init(state: HsmState, cmd: c.HsmInit) -> Result:
    if not cmd.label or len(cmd.label) > 64 or not cmd.label.isprintable():
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "HSM label must be 1-64 printable characters")
    if not cmd.so_password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "SO password hash must not be empty")
    if state.hsm.initialized and not (state.hsm.so is not None and is_locked(state.hsm.so, cmd.timestamp)):
        # re-initializing a working HSM destroys its partitions: only its SO may do that
        authorize(state, cmd.actor, "hsm.reinit", cmd.timestamp)
    else:
        authorize(state, cmd.actor, "hsm.init", cmd.timestamp)
    destroyed = _zeroize_partitions(state) if state.hsm.initialized else 0
    old_so_epoch = state.hsm.so.epoch if state.hsm.so else 0
    auditor, policies = state.hsm.auditor, dict(state.hsm.policies)
    state.hsm = Hsm(
        initialized=True,
        label=cmd.label,
        so=Credential(cmd.so_password_hash, must_change=False, epoch=old_so_epoch + 1),
        auditor=auditor,
        policies=policies,
        audit_config=dict(state.hsm.audit_config),  # the Auditor's, not the SO's to reset
    )
    detail = f"HSM '{cmd.label}' initialized" + (f"; zeroized {destroyed} partition(s)" if destroyed else "")
    return ok(destroyed=destroyed, audit=detail)


def auditor_init(state: HsmState, cmd: c.AuditorInit) -> Result:
    authorize(state, cmd.actor, "auditor.init", cmd.timestamp)
    if not state.hsm.initialized:
        raise DomainError(ErrorCode.FAILED_PRECONDITION, "initialize the HSM first (hsmnode hsm init)")
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    old = state.hsm.auditor.epoch if state.hsm.auditor else 0
    state.hsm.auditor = Credential(cmd.password_hash, must_change=False, epoch=old + 1)
    return ok(audit="HSM Auditor initialized")


def hsm_policy_set(state: HsmState, cmd: c.HsmPolicySet) -> Result:
    authorize(state, cmd.actor, "hsm.policy", cmd.timestamp)
    if cmd.name not in Hsm.POLICY_NAMES:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown HSM policy '{cmd.name}' (known: {', '.join(Hsm.POLICY_NAMES)})",
        )
    state.hsm.policies[cmd.name] = cmd.value
    return ok(audit=f"HSM policy {cmd.name} = {cmd.value}")


def partition_create(state: HsmState, cmd: c.PartitionCreate) -> Result:
    authorize(state, cmd.actor, "partition.create", cmd.timestamp)
    rules.check_object_name("partition", cmd.name)
    if cmd.name in state.partitions:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"partition '{cmd.name}' already exists")
    if len(state.partitions) >= MAX_PARTITIONS:
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, f"this HSM holds at most {MAX_PARTITIONS} partitions")
    existing = state.cluster_partition()
    if cmd.cluster and existing is not None:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"the cluster partition is already '{existing.name}' (there is one)",
        )
    state.partitions[cmd.name] = Partition(
        name=cmd.name,
        created_at=cmd.timestamp,
        cluster=cmd.cluster,
        authorization=PartitionAuthorization() if cmd.requires_authorization else None,
    )
    return ok(audit=f"partition '{cmd.name}' created" + (" as the cluster partition" if cmd.cluster else ""))


def partition_delete(state: HsmState, cmd: c.PartitionDelete) -> Result:
    authorize(state, cmd.actor, "partition.delete", cmd.timestamp)
    _partition(state, cmd.name)
    gate(state, f"partition:{cmd.name}", "remove_partition")
    del state.partitions[cmd.name]
    for client in state.clients.values():
        if cmd.name in client.partitions:
            client.partitions.remove(cmd.name)
            client.epoch += 1
    return ok(audit=f"partition '{cmd.name}' deleted")


def partition_init(state: HsmState, cmd: c.PartitionInit) -> Result:
    principal = parse(cmd.actor)
    if principal.kind != PrincipalKind.CLIENT:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED,
            "partitions are initialized over NTLS, by a client they are assigned to",
        )
    part = assigned_partition(state, client_of(state, principal), cmd.name)
    if part.initialized:
        raise DomainError(ErrorCode.FAILED_PRECONDITION, f"partition '{cmd.name}' is already initialized")
    if not cmd.label or len(cmd.label) > 64 or not cmd.label.isprintable():
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "partition label must be 1-64 printable characters")
    if not cmd.cloning_domain or len(cmd.cloning_domain) > 128:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "cloning domain must be 1-128 characters")
    if not cmd.po_password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "PO password hash must not be empty")
    part.initialized, part.label, part.cloning_domain = True, cmd.label, cmd.cloning_domain
    part.roles = {PartitionRole.PO.value: Credential(cmd.po_password_hash, must_change=False)}
    return ok(audit=f"partition '{cmd.name}' initialized (label '{cmd.label}')")


def partition_role_init(state: HsmState, cmd: c.PartitionRoleInit) -> Result:
    if cmd.role not in (PartitionRole.CO, PartitionRole.CU):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            "role must be CO (initialized by the PO) or CU (initialized by the CO)",
        )
    authorize(state, cmd.actor, f"partition.role.{cmd.role.lower()}", cmd.timestamp, f"partition:{cmd.name}")
    part = _partition(state, cmd.name)
    existing = part.roles.get(cmd.role)
    if (
        cmd.role == PartitionRole.CO
        and existing is not None
        and not state.hsm.policies.get("po_can_reset_co", True)
    ):
        raise DomainError(
            ErrorCode.PERMISSION_DENIED, "HSM policy po_can_reset_co is off: the PO may not reset the CO"
        )
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    part.roles[cmd.role] = Credential(
        cmd.password_hash,
        must_change=part.policy.must_change_initial_password,
        epoch=(existing.epoch + 1) if existing else 1,
    )
    verb = "reset (unlocked)" if existing else "initialized"
    return ok(audit=f"{cmd.role} of partition '{cmd.name}' {verb}")


def partition_policy_set(state: HsmState, cmd: c.PartitionPolicySet) -> Result:
    authorize(state, cmd.actor, "partition.policy", cmd.timestamp, f"partition:{cmd.name}")
    part = _partition(state, cmd.name)
    if cmd.policy not in PartitionPolicy.NAMES:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown partition policy '{cmd.policy}' (known: {', '.join(PartitionPolicy.NAMES)})",
        )
    if cmd.policy == "max_failed_logins":
        if not 1 <= cmd.value <= 10:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                "max_failed_logins must be 1-10 (the PO may lower it, not raise it)",
            )
        part.policy.max_failed_logins = cmd.value
    else:
        if cmd.value not in (0, 1):
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{cmd.policy} is 0 (off) or 1 (on)")
        other = {"private_key_wrapping": "private_key_cloning", "private_key_cloning": "private_key_wrapping"}
        if cmd.value and cmd.policy in other and getattr(part.policy, other[cmd.policy]):
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"partition '{cmd.name}': {cmd.policy} and {other[cmd.policy]} cannot both be on "
                f"(Luna CKR_CONFIG_FAILS_DEPENDENCIES); turn {other[cmd.policy]} off first",
            )
        setattr(part.policy, cmd.policy, bool(cmd.value))
    return ok(audit=f"partition '{cmd.name}' policy {cmd.policy} = {cmd.value}")


def partition_activate(state: HsmState, cmd: c.PartitionActivate) -> Result:
    principal = parse(cmd.actor)
    if principal.kind != PrincipalKind.CLIENT:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED, "partitions are activated over NTLS, by a client they are assigned to"
        )
    assigned_partition(state, client_of(state, principal), cmd.name)
    t = login_target(state, f"partition:{cmd.name}:CO")
    if is_locked(t.credential, cmd.timestamp):
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, t.lock_message(cmd.timestamp))
    if cmd.verified_epoch != t.credential.epoch:
        raise DomainError(ErrorCode.UNAVAILABLE, "the CO credential changed meanwhile: try again")
    if t.credential.must_change:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, f"the initial password of {t.what} has expired: change it first"
        )
    assert t.partition is not None
    t.partition.activated = cmd.active
    t.partition.activated_at = cmd.timestamp if cmd.active else 0
    return ok(audit=f"partition '{cmd.name}' {'activated' if cmd.active else 'deactivated'} by its CO")

"""Answers (generated `hsmnode.pb` messages) read into the SDK's result types (`_types.py`).

One function per message shape, so every session and the console read a message the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

from hsmnode.client._types import (
    AuditRecord,
    AuthInfo,
    BackupInfo,
    ChainCheck,
    ClientInfo,
    ClusterStatus,
    HsmInfo,
    KeyInfo,
    KeyringInfo,
    MemberStatus,
    NodeStatus,
    PartitionInfo,
    PartitionRole,
    Role,
    Slot,
    User,
)


def cluster_status(r: Any) -> ClusterStatus:
    return ClusterStatus(
        cluster_id=r.cluster_id,
        leader=r.leader,
        term=r.term,
        members=tuple(
            MemberStatus(
                m.id,
                m.address,
                m.role,
                None if m.role == "unreachable" else m.applied_index,
                m.raft_address,
                m.state_digest,
                None if m.role == "unreachable" else m.lag,
                m.voter,
                m.listed,
            )
            for m in r.members
        ),
        removed_from=r.removed_from,
    )


def node_status(r: Any) -> NodeStatus:
    return NodeStatus(
        id=r.id,
        cluster_id=r.cluster_id,
        address=r.address,
        raft_address=r.raft_address,
        role=r.role,
        term=r.term,
        leader=r.leader,
        commit_index=r.commit_index,
        applied_index=r.applied_index,
        state_digest=r.state_digest,
        has_quorum=r.has_quorum,
        ready=r.ready,
        replicated_cluster_id=r.replicated_cluster_id,
        node_certificate=r.node_certificate,
        members=r.members,
        removed_from=r.removed_from,
        raft_configuration=tuple(r.raft_configuration),
        directory=tuple(r.directory),
        incarnation=r.incarnation,
    )


def slot(s: Any) -> Slot:
    return Slot(
        s.partition, s.label, s.initialized, s.activation_required, s.activated, s.kind or "partition"
    )


def auth_info(r: Any) -> AuthInfo:
    """An AuthorizationInfo message as the SDK's AuthInfo."""
    return AuthInfo(
        r.partition,
        r.requires_authorization,
        r.state,
        r.set_id,
        r.threshold,
        tuple(r.card_labels),
        tuple(r.permissions),
        r.online_authorization,
        r.session_authorized,
    )


def extractable(extractable: bool | None, exportable: bool | None) -> bool:
    """The `extractable=` keyword of generate_key/import_key/unwrap_key, or the deprecated `exportable=`
    (accepted for one release with a DeprecationWarning). ValueError when both are given and differ."""
    if exportable is None:
        return bool(extractable)
    warnings.warn(
        "exportable= is deprecated: pass extractable= (PKCS#11 CKA_EXTRACTABLE); "
        "exportable= is accepted for one more release",
        DeprecationWarning,
        stacklevel=3,
    )
    if extractable is not None and extractable != exportable:
        raise ValueError(
            f"extractable={extractable} and the deprecated exportable={exportable} disagree: pass extractable only"
        )
    return exportable


def key(k: Any) -> KeyInfo:
    return KeyInfo(
        k.id,
        k.label,
        k.key_type,
        k.size,
        k.object_class,
        k.extractable or k.exportable,  # a member before issue 13's rename answers `exportable` only
        tuple(k.usage),
        bytes(k.public_der),
        k.origin,
        k.created_at_ms,
        k.container,
        k.blocked,
    )


def keyring(k: Any) -> KeyringInfo:
    return KeyringInfo(k.label, k.id, k.krso_initialized, k.krco_set, k.locked, k.objects, tuple(k.clients))


def user(u: Any) -> User:
    return User(u.name, u.role, u.enabled, u.builtin, u.must_change_password, u.locked, u.failed_logins)


def role(x: Any) -> Role:
    return Role(x.name, tuple(x.commands), x.builtin)


def client_info(x: Any) -> ClientInfo:
    return ClientInfo(x.name, x.fingerprint, tuple(x.partitions))


def hsm_info(x: Any) -> HsmInfo:
    return HsmInfo(
        x.initialized,
        x.label,
        x.so_locked,
        x.auditor_initialized,
        dict(x.policies),
        x.partitions,
        dict(x.keyring_objects),
    )


def partition(p: Any) -> PartitionInfo:
    return PartitionInfo(
        p.name,
        p.label,
        p.initialized,
        p.cloning_domain,
        tuple(PartitionRole(r.role, r.locked, r.must_change_password, r.failed_logins) for r in p.roles),
        dict(p.policies),
        p.activated,
        p.cluster,
        p.objects,
    )


def audit_record(x: Any, chain: str) -> AuditRecord:
    """`chain`: the chain asked for, when the member's answer leaves the record's chain empty."""
    return AuditRecord(
        x.seq,
        x.timestamp_ms,
        x.actor,
        x.request_id,
        x.command,
        x.outcome,
        x.detail,
        x.prev_hash,
        x.hash,
        x.category,
        x.container,
        x.key,
        x.member,
        x.chain or chain,
        x.count or 1,
    )


def chain_check(r: Any) -> ChainCheck:
    return ChainCheck(
        r.ok,
        r.length,
        r.head_hash,
        r.problem,
        r.member,
        r.member_ok,
        r.member_length,
        r.member_head_hash,
        r.member_problem,
    )


def backup_info(header: Any, size_bytes: int) -> BackupInfo:
    return BackupInfo(
        cluster_id=header.cluster_id,
        index=header.index,
        taken_at_ms=header.taken_at_ms,
        taken_by=header.taken_by,
        member_count=header.member_count,
        key_count=header.key_count,
        user_count=header.user_count,
        partition_count=header.partition_count,
        keyring_count=header.keyring_count,
        audit_length=header.audit_length,
        smk_check=header.smk_check,
        size_bytes=size_bytes,
    )

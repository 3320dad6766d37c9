"""The SDK's result types: plain frozen dataclasses."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar


class _Unpacks:
    """A result that replaced a tuple: it still unpacks and indexes as that tuple, in field order
    (`name, slots = client.list_slots()`), so code written against the tuple keeps working."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # set by @dataclass on each subclass, in field order

    def __iter__(self) -> Iterator[Any]:
        return iter(tuple(getattr(self, name) for name in self.__dataclass_fields__))

    def __getitem__(self, index: int) -> Any:
        return tuple(self)[index]

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


@dataclass(frozen=True)
class MemberStatus:
    id: str
    address: str
    role: str
    applied_index: int | None  # None: this member did not answer
    raft_address: str
    state_digest: str
    # applied entries behind the most advanced member that answered; None: this member did not answer
    lag: int | None = 0
    voter: bool = True  # in the answering member's Raft configuration
    listed: bool = True  # in the member directory (False: a Raft voter whose removal is to complete)


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    leader: str
    term: int
    members: tuple[MemberStatus, ...]
    removed_from: str = ""  # set when the answering member was removed from that cluster: a stale view

    def to_json(self) -> str:
        """`hsmnode cluster status --json` as text (indented JSON); `to_dict()` is the dict."""
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `hsmnode cluster status --json`, as a dict."""
        return {
            "cluster_id": self.cluster_id,
            "leader": self.leader,
            "term": self.term,
            "removed_from": self.removed_from,
            "members": [
                {
                    "id": m.id,
                    "address": m.address,
                    "role": m.role,
                    "applied_index": m.applied_index,
                    "lag": m.lag,
                    "voter": m.voter,
                    "listed": m.listed,
                    "state_digest": m.state_digest,  # "" from a member that did not answer
                }
                for m in self.members
            ],
        }


@dataclass(frozen=True)
class NodeStatus:
    id: str
    cluster_id: str
    address: str
    raft_address: str
    role: str
    term: int
    leader: str
    commit_index: int
    applied_index: int
    state_digest: str
    has_quorum: bool
    ready: bool
    replicated_cluster_id: str
    node_certificate: str = ""
    members: int = 0
    removed_from: str = ""  # set when this member was removed from that cluster
    raft_configuration: tuple[str, ...] = ()  # Raft addresses of this member's Raft configuration
    directory: tuple[str, ...] = ()  # Raft addresses of the members its replicated directory lists
    incarnation: str = ""  # random per process start: a restarted member answers with another one

    def agrees(self) -> bool:
        """Do this member's member directory and Raft configuration name the same members?"""
        return set(self.raft_configuration) == set(self.directory)


@dataclass(frozen=True)
class AuditRecord:
    """One record of the cluster chain (`chain` "cluster") or of a member's key-usage chain ("member").
    `count`: the events it stands for (1; a member records a CryptoStream batch's uses of one key
    with one outcome as one record, detail "sign ×64 with key ...")."""

    seq: int
    timestamp_ms: int
    actor: str
    request_id: str
    command: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str
    category: str = ""
    container: str = ""
    key: str = ""
    member: str = ""
    chain: str = "cluster"
    count: int = 1


@dataclass(frozen=True)
class AuditPage(_Unpacks):
    """What `audit_list` answers: records after the asked sequence number, and the chain's length."""

    records: list[AuditRecord]
    total: int


@dataclass(frozen=True)
class AuditNote(_Unpacks):
    """The cluster-chain record an audit note became: its sequence number and hash (hex)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """The cluster chain as the answering member recomputed it, and that member's key-usage chain."""

    ok: bool
    length: int
    head_hash: str
    problem: str
    member: str = ""
    member_ok: bool = True
    member_length: int = 0
    member_head_hash: str = ""
    member_problem: str = ""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enabled: bool
    builtin: bool
    must_change_password: bool
    locked: bool
    failed_logins: int


@dataclass(frozen=True)
class Role:
    name: str
    commands: tuple[str, ...]
    builtin: bool


@dataclass(frozen=True)
class ClientInfo:
    name: str
    fingerprint: str
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class HsmInfo:
    initialized: bool
    label: str
    so_locked: bool
    auditor_initialized: bool
    policies: dict[str, bool]
    partitions: int
    keyring_objects: dict[str, int] = field(default_factory=dict)  # keyring label -> objects held


@dataclass(frozen=True)
class PartitionRole:
    role: str
    locked: bool
    must_change_password: bool
    failed_logins: int


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    label: str
    initialized: bool
    cloning_domain: str
    roles: tuple[PartitionRole, ...]
    policies: dict[str, int]
    activated: bool
    cluster: bool = False
    objects: int = 0


@dataclass(frozen=True)
class Slot:
    partition: str  # partition name, or keyring label
    label: str  # partition label, or keyring id
    initialized: bool
    activation_required: bool
    activated: bool
    kind: str = "partition"  # "partition" | "keyring"


@dataclass(frozen=True)
class Slots(_Unpacks):
    """What `HsmClient.list_slots` answers: this client's registered name and its slots."""

    client: str
    slots: list[Slot]


@dataclass(frozen=True)
class SessionInfo:
    partition: str
    role: str
    expires_ms: int


@dataclass(frozen=True)
class KeyInfo:
    id: str
    label: str
    key_type: str
    size: str
    object_class: str
    extractable: bool  # CKA_EXTRACTABLE: may leave the HSM wrapped under another key
    usage: tuple[str, ...]
    public_der: bytes
    origin: str
    created_at_ms: int
    container: str
    blocked: bool

    @property
    def exportable(self) -> bool:
        """Deprecated alias of `extractable` (issue 13's rename), kept for one release."""
        warnings.warn(
            "KeyInfo.exportable is deprecated: read KeyInfo.extractable (PKCS#11 CKA_EXTRACTABLE)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.extractable


@dataclass(frozen=True)
class Encrypted(_Unpacks):
    """What `encrypt` answers: the ciphertext, and the IV (AES-GCM: 12 bytes; RSA-OAEP: empty)."""

    ciphertext: bytes
    iv: bytes


@dataclass(frozen=True)
class Grant(_Unpacks):
    """A grant between partitions (DOMAIN.md §4): `owner` lets `grantee`'s users use it as `permissions` say."""

    owner: str
    grantee: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class KeyringInfo:
    label: str
    id: str
    krso_initialized: bool
    krco_set: bool
    locked: bool
    objects: int
    clients: tuple[str, ...]


@dataclass(frozen=True)
class AuthChallenge:
    """A member-issued challenge: each card signs `data`; send both back."""

    data: bytes
    mac: bytes
    expires_ms: int


@dataclass(frozen=True)
class AuthInfo:
    partition: str
    requires_authorization: bool
    state: str  # the replicated state; SESSION_AUTHORIZED never shows here
    set_id: str
    threshold: int
    card_labels: tuple[str, ...]
    permissions: tuple[str, ...]
    online_authorization: bool
    session_authorized: bool  # this session holds SESSION_AUTHORIZED


@dataclass(frozen=True)
class BackupInfo:
    """A backup written by `ApplianceSession.backup` (the file's header, and its size in bytes)."""

    cluster_id: str
    index: int
    taken_at_ms: int
    taken_by: str
    member_count: int
    key_count: int
    user_count: int
    partition_count: int
    keyring_count: int
    audit_length: int
    smk_check: str
    size_bytes: int

    def to_json(self) -> str:
        """`hsmnode cluster backup --json` as text (indented JSON); `to_dict()` is the dict."""
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        """The shape of `hsmnode cluster backup --json`, as a dict."""
        return {
            "cluster_id": self.cluster_id,
            "index": self.index,
            "taken_at_ms": self.taken_at_ms,
            "taken_by": self.taken_by,
            "member_count": self.member_count,
            "key_count": self.key_count,
            "user_count": self.user_count,
            "partition_count": self.partition_count,
            "keyring_count": self.keyring_count,
            "audit_length": self.audit_length,
            "smk_check": self.smk_check,
            "size_bytes": self.size_bytes,
        }

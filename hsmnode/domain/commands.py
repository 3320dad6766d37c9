"""Commands: one frozen dataclass per mutation, and their canonical, versioned encoding.

A command is what the proposing member puts into the Raft log. Its bytes are
sorted-key compact JSON (UTF-8) so that every member decodes exactly the same
command and the journal never depends on Python class layout or pickle:

    {"v": 1, "type": "audit.note", "actor": "...", "request_id": "...",
     "timestamp": 1763860000000, "body": {"text": "..."}}

`bytes` fields travel as standard base64 strings. A field renamed in code keeps the name it was
logged under (`stored_as`): the bytes of a command never change with a rename. Decoding is strict: an unknown
version, type, envelope key or body field, a missing field or a wrong type is a
`CommandDecodeError` naming the problem.

The codec (the Command base, the registry of wire names, encode / decode) is command_codec.py;
this module holds the commands and is the one place callers take them from.
"""

from __future__ import annotations

import dataclasses

from hsmnode.domain.command_codec import (
    ENCODING_VERSION,
    MAX_COMMAND_BYTES,
    Command,
    CommandT,
    Converter,
    canonical_json,
    command,
    command_types,
    decode,
    encode,
    logged_name,
    stored_as,
    validate_request_id,
)
from hsmnode.domain.model import EXTRACTABLE_STORED_AS

__all__ = [
    # the codec (command_codec.py)
    "ENCODING_VERSION",
    "MAX_COMMAND_BYTES",
    "Command",
    "CommandT",
    "Converter",
    "canonical_json",
    "command",
    "command_types",
    "decode",
    "encode",
    "logged_name",
    "stored_as",
    "validate_request_id",
    # the cluster and its audit log
    "InitCluster",
    "DebugFail",
    "AuditNote",
    "AuditEvent",
    "AuditConfigSet",
    "KeyAuditEvent",
    "MemberAdd",
    "MemberRemove",
    "ClusterBackup",
    "ClusterRestore",
    # administration
    "RecordLogin",
    "ChangePassword",
    "Logout",
    "UserAdd",
    "UserDelete",
    "UserSetEnabled",
    "UserSetPassword",
    "RoleAdd",
    "RoleDelete",
    "ClientRegister",
    "ClientAssign",
    "ClientRevoke",
    "HsmInit",
    "AuditorInit",
    "HsmPolicySet",
    "PartitionCreate",
    "PartitionDelete",
    "PartitionInit",
    "PartitionRoleInit",
    "PartitionPolicySet",
    "PartitionActivate",
    # keys, keyrings, M-of-N, grants
    "KeyCreate",
    "KeyRestore",
    "KeyDestroy",
    "KeyringCreate",
    "KeyringDelete",
    "KeyringAssign",
    "KeyringUnlock",
    "KeyringSetKrco",
    "AuthChange",
    "AuthSetPermissions",
    "AuthSessionRevoke",
    "KeyBlock",
    "GrantSet",
]


# --- the commands -----------------------------------------------------------


@command("cluster.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class InitCluster(Command):
    """Bind the replicated state to a cluster identity; the first command of every cluster.

    Creates the default appliance accounts admin, operator, monitor and audit
    (only admin enabled) with the hashes of their initial password, in that order.
    """

    cluster_id: str
    default_password_hashes: tuple[str, ...]
    # the key check value of the cluster SMK: a member holding another SMK stops
    smk_check: str = ""
    # the initial member directory, "id|raft host:port|grpc host:port" each
    members: tuple[str, ...] = ()


@command("audit.note")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditNote(Command):
    """An operator's free-text note in the audit log (e.g. "failover drill starts")."""

    text: str


@command("debug.fail")
@dataclasses.dataclass(frozen=True, kw_only=True)
class DebugFail(Command):
    """Raises inside apply on every member: proves a failing command never stalls the cluster.

    Only proposed by members whose config enables fault injection; apply raises
    deterministically, so every member records the same INTERNAL outcome.
    """

    reason: str


# --- logins and credentials ----------------------------------------------------
#
# A credential target names one login credential:
#   "user:<name>" | "hsm:SO" | "hsm:AU" | "partition:<name>:<PO|CO|CU>"
# The proposing member verifies the password against the hash in its replicated
# state and proposes the outcome with the credential epoch it verified against;
# apply refuses if the credential changed meanwhile, counts failures cluster-wide
# and locks at the threshold.


@command("login.record")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordLogin(Command):
    target: str
    success: bool
    verified_epoch: int


@command("login.change_password")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangePassword(Command):
    """Self-service password change: the proposer verified the old password."""

    target: str
    password_hash: str
    verified_epoch: int


@command("login.logout")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Logout(Command):
    """End the actor's sessions: an appliance user's, an HSM role's, or one client's partition sessions."""

    target: str


# --- appliance users, roles, clients ---------------------------------------------


@command("user.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserAdd(Command):
    name: str
    role: str
    password_hash: str


@command("user.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserDelete(Command):
    name: str


@command("user.set_enabled")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserSetEnabled(Command):
    name: str
    enabled: bool


@command("user.set_password")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserSetPassword(Command):
    """admin sets another user's password: it must be changed at next login; unlocks the user."""

    name: str
    password_hash: str


@command("role.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleAdd(Command):
    name: str
    commands: tuple[str, ...]


@command("role.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleDelete(Command):
    name: str


@command("client.register")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientRegister(Command):
    name: str
    cert_pem: str
    fingerprint: str


@command("client.assign")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientAssign(Command):
    name: str
    partition: str


@command("client.revoke")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientRevoke(Command):
    """Revoke one partition assignment, or (partition "") the whole registration."""

    name: str
    partition: str


# --- HSM -------------------------------------------------------------------------


@command("hsm.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class HsmInit(Command):
    """Initialize the HSM (creates the SO credential); on an initialized HSM it zeroizes it first."""

    label: str
    so_password_hash: str


@command("hsm.auditor_init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditorInit(Command):
    password_hash: str


@command("hsm.policy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class HsmPolicySet(Command):
    name: str
    value: bool


@command("partition.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionCreate(Command):
    name: str
    # the cluster partition: its PO is the cluster security officer (keyrings)
    cluster: bool = False
    # M-of-N: the partition's keys are usable only when authorized by cards (DOMAIN.md §5)
    requires_authorization: bool = False


@command("partition.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionDelete(Command):
    name: str


@command("partition.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionInit(Command):
    """Initialize a created partition over NTLS: label, cloning domain, the PO credential."""

    name: str
    label: str
    cloning_domain: str
    po_password_hash: str


@command("partition.role_init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionRoleInit(Command):
    """PO initializes or resets the CO; CO initializes or resets the CU (unlocks it)."""

    name: str
    role: str
    password_hash: str


@command("partition.policy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionPolicySet(Command):
    name: str
    policy: str
    value: int


@command("partition.activate")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionActivate(Command):
    """The CO activates (or deactivates) a partition; the proposer verified the CO password."""

    name: str
    active: bool
    verified_epoch: int


@command("audit.event")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditEvent(Command):
    """A security-relevant refusal the service caught before proposing (e.g. a denied read)."""

    event: str
    detail: str


@command("audit.config")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditConfigSet(Command):
    """The Auditor sets what a category records: none | failure | success | all (DOMAIN.md §6)."""

    category: str
    level: str


@command("audit.key")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyAuditEvent(Command):
    """A key-management event a member served off the Raft path (an export, a wrap, a refused unwrap,
    a backup), put into the cluster chain; `outcome` is "ok" or the refusal's error code."""

    event: str
    container: str
    object_id: str
    label: str
    outcome: str
    detail: str
    member: str


# --- keys ----------------------------------------------------------------------------
#
# A container names where an object lives: "partition:<name>" or "keyring:<label>".


@command("key.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyCreate(Command):
    """A key generated, imported or unwrapped by the proposing member.

    `wrapped` is the secret or private key material already wrapped under the
    cluster SMK (associated data: container and object id); never plaintext.
    """

    container: str
    object_id: str
    label: str
    key_type: str
    size: str
    object_class: str  # secret | private | public
    extractable: bool = stored_as(EXTRACTABLE_STORED_AS)  # CKA_EXTRACTABLE
    usage: tuple[str, ...]
    wrapped: bytes
    public_der: bytes
    origin: str  # generated | imported | unwrapped


@command("key.restore")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyRestore(Command):
    """Restore a partition backup into `container`: every object, or none (Luna semantics).

    Each of `objects` is canonical JSON of one object with new ids and its material
    re-wrapped under the SMK for this container by the proposer: {"id", "label",
    "key_type", "size", "object_class", "exportable", "usage", "wrapped", "public_der",
    "blocked"} (bytes as base64; "exportable" is the stored name of `extractable`).
    `cloning_domain` and `source` come from the backup's header.
    """

    container: str
    source: str
    cloning_domain: str
    objects: tuple[str, ...]


@command("key.destroy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyDestroy(Command):
    container: str
    object_id: str


# --- keyrings ----------------------------------------------------------------------------


@command("keyring.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringCreate(Command):
    """The cluster SO creates a keyring with the initial KRSO credential."""

    label: str
    keyring_id: str
    krso_password_hash: str


@command("keyring.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringDelete(Command):
    label: str


@command("keyring.assign")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringAssign(Command):
    label: str
    client: str
    assigned: bool


@command("keyring.unlock")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringUnlock(Command):
    label: str


@command("keyring.set_krco")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringSetKrco(Command):
    """The KRSO sets the KRCO credential."""

    label: str
    password_hash: str


# --- M-of-N partition authorization (DOMAIN.md §5) --------------------------------------
#
# `challenge` is the exact bytes a member issued and the cards signed; apply parses
# it, checks freshness and replay, and re-verifies every card signature.


@command("auth.change")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthChange(Command):
    """A state transition (or, for SESSION_AUTHORIZED, the checked card presentation behind one)."""

    partition: str
    target: str
    challenge: bytes
    card_labels: tuple[str, ...]
    signatures: tuple[bytes, ...]
    verified_epoch: int  # the CO credential epoch the proposer checked the partition password against
    # associate only: the card set being bound
    set_id: str = ""
    threshold: int = 0
    set_labels: tuple[str, ...] = ()
    set_public_keys: tuple[bytes, ...] = ()
    # the SESSION_AUTHORIZED grant the proposing session's token carries, if any: while it holds
    # (same authorization epoch, not given back), the session's changes start from SESSION_AUTHORIZED
    session_grant: str = ""
    session_auth_epoch: int = 0
    session_expires: int = 0  # ms: until when a given-back grant must be remembered


@command("auth.permissions")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSetPermissions(Command):
    partition: str
    permissions: tuple[str, ...]
    challenge: bytes
    card_labels: tuple[str, ...]
    signatures: tuple[bytes, ...]
    verified_epoch: int


@command("auth.session_revoke")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSessionRevoke(Command):
    """SESSION_AUTHORIZED -> ASSOCIATED: the session gives back its grant `grant_id` (until `until` ms)."""

    partition: str
    grant_id: str
    until: int


@command("key.block")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyBlock(Command):
    container: str
    object_id: str
    blocked: bool


# --- partition permissions between users (DOMAIN.md §4) ---------------------------------


@command("grant.set")
@dataclasses.dataclass(frozen=True, kw_only=True)
class GrantSet(Command):
    """The owner (a CO session on `owner`) sets what `grantee`'s users may do on its objects; () revokes."""

    owner: str
    grantee: str
    permissions: tuple[str, ...]


# --- cluster membership ------------------------------------------------------------------


@command("member.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class MemberAdd(Command):
    member_id: str
    raft: str
    grpc: str


@command("member.remove")
@dataclasses.dataclass(frozen=True, kw_only=True)
class MemberRemove(Command):
    member_id: str


# --- backup and restore (hsmnode/backup/) ------------------------------------------------


@command("cluster.backup")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterBackup(Command):
    """A backup is taken: authorized (admin, or the leader for a scheduled one) and audited here;
    the member then snapshots its state at an index at or after this command's."""

    scheduled: bool = False


@command("cluster.restore")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterRestore(Command):
    """The first command of a cluster restored from a backup (every member started from the same
    backup): binds the restored state to the new cluster id and its member directory."""

    cluster_id: str
    source_cluster_id: str
    source_index: int
    # the new member directory, "id|raft host:port|grpc host:port" each (as InitCluster)
    members: tuple[str, ...]

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
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from hsmnode.domain.errors import CommandDecodeError
from hsmnode.domain.jsonform import compact_encoder
from hsmnode.domain.model import EXTRACTABLE_STORED_AS

ENCODING_VERSION = 1
MAX_COMMAND_BYTES = 1 << 20
_ENVELOPE_KEYS = frozenset({"v", "type", "actor", "request_id", "timestamp", "body"})
_REQUEST_ID_MAX = 128


@dataclasses.dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every replicated mutation.

    `actor` is who asks (authorization is decided in apply from it), `request_id`
    is the client's idempotency key, `timestamp` is milliseconds since the epoch
    as stamped by the proposing member (apply never reads a clock).
    """

    TYPE: ClassVar[str] = ""

    actor: str
    request_id: str
    timestamp: int

    def encode(self) -> bytes:
        return encode(self)

    def body(self) -> dict[str, Any]:
        return {logged: _to_json(getattr(self, name)) for name, logged, _, _ in _plan(type(self)).fields}


def stored_as(name: str) -> Any:
    """A field renamed in code that keeps `name` in the log: `extractable: bool = stored_as("exportable")`.

    The command bytes, and so the log and every member's digest, stay what the code before the
    rename wrote (members of both versions agree during a rolling upgrade)."""
    return dataclasses.field(metadata={"stored_as": name})


def logged_name(f: dataclasses.Field[Any]) -> str:
    """The name a command field carries in the log."""
    return str(f.metadata.get("stored_as", f.name))


CommandT = TypeVar("CommandT", bound=type[Command])
_REGISTRY: dict[str, type[Command]] = {}


def command(type_name: str) -> Callable[[CommandT], CommandT]:
    """Register a command class under its stable wire name."""

    def register(cls: CommandT) -> CommandT:
        if type_name in _REGISTRY:
            raise ValueError(f"command type {type_name!r} registered twice")
        cls.TYPE = type_name
        _REGISTRY[type_name] = cls
        return cls

    return register


def command_types() -> dict[str, type[Command]]:
    return dict(_REGISTRY)


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


_CANONICAL = compact_encoder(sort_keys=True)


def canonical_json(data: Any) -> bytes:
    """The one canonical JSON form used for commands, audit records and digests (json.dumps with
    sorted keys, no spaces, UTF-8; one C encoder built once: json.dumps builds one per call,
    jsonform.py)."""
    return _CANONICAL(data).encode("utf-8")


def encode(cmd: Command) -> bytes:
    if not cmd.TYPE:
        raise TypeError(f"{type(cmd).__name__} is not a registered command")
    return canonical_json(
        {
            "v": ENCODING_VERSION,
            "type": cmd.TYPE,
            "actor": cmd.actor,
            "request_id": cmd.request_id,
            "timestamp": cmd.timestamp,
            "body": cmd.body(),
        }
    )


def decode(payload: bytes) -> Command:
    """Bytes → command, or `CommandDecodeError` naming exactly what is wrong."""
    if not isinstance(payload, bytes | bytearray):
        raise CommandDecodeError(f"command payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandDecodeError(f"command is {len(payload)} bytes; the limit is {MAX_COMMAND_BYTES}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandDecodeError(f"command bytes are not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandDecodeError("command must be a JSON object")
    if data.keys() != _ENVELOPE_KEYS:  # one comparison on the way every entry takes
        unknown = sorted(set(data) - _ENVELOPE_KEYS)
        if unknown:
            raise CommandDecodeError(f"unknown command field(s): {', '.join(unknown)}")
        missing = sorted(_ENVELOPE_KEYS - set(data))
        raise CommandDecodeError(f"command lacks field(s): {', '.join(missing)}")
    if data["v"] != ENCODING_VERSION or isinstance(data["v"], bool):
        raise CommandDecodeError(
            f"unsupported command encoding version {data['v']!r} (this member reads version {ENCODING_VERSION})"
        )
    type_name = data["type"]
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise CommandDecodeError(f"unknown command type {type_name!r}")
    actor = _check("actor", data["actor"], str)
    request_id = _check("request_id", data["request_id"], str)
    timestamp = _check("timestamp", data["timestamp"], int)
    validate_request_id(request_id)
    body = data["body"]
    if not isinstance(body, dict):
        raise CommandDecodeError(f"{type_name}: body must be a JSON object")
    plan = _plan(cls)
    if not plan.expected.issuperset(body):
        unknown = sorted(set(body) - plan.expected)
        raise CommandDecodeError(f"{type_name}: unknown field(s): {', '.join(unknown)}")
    # A field added later carries a default: entries written before it decode with the default.
    if not plan.required.issubset(body):
        missing = sorted(plan.required - set(body))
        raise CommandDecodeError(f"{type_name}: missing field(s): {', '.join(missing)}")
    kwargs = {
        name: convert(label, body[logged]) for name, logged, convert, label in plan.fields if logged in body
    }
    return cls(actor=actor, request_id=request_id, timestamp=timestamp, **kwargs)


def validate_request_id(request_id: str) -> None:
    if not request_id or len(request_id) > _REQUEST_ID_MAX or not request_id.isprintable():
        raise CommandDecodeError(
            f"request_id must be 1-{_REQUEST_ID_MAX} printable characters, got {request_id!r}"
        )


Converter = Callable[[str, Any], Any]  # (the field's name in messages, its JSON value) -> the value


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How a command class's body is encoded and decoded, worked out once per class (apply decodes
    every entry on every member: the dataclass fields and type hints are not looked up per entry).
    `fields`: (field name, logged name, converter, "<type>.<logged name>" for messages) of the body;
    `expected`: every logged name; `required`: those without a default."""

    fields: tuple[tuple[str, str, Converter, str], ...]
    expected: frozenset[str]
    required: frozenset[str]


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        body = [f for f in dataclasses.fields(cls) if f.name not in ("actor", "request_id", "timestamp")]
        plan = _PLANS[cls] = _Plan(
            fields=tuple(
                (
                    f.name,
                    logged_name(f),
                    _converter(hints[f.name]),
                    f"{getattr(cls, 'TYPE', '')}.{logged_name(f)}",
                )
                for f in body
            ),
            expected=frozenset(logged_name(f) for f in body),
            required=frozenset(
                logged_name(f)
                for f in body
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
        )
    return plan


def _check(name: str, value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, bool):
        raise CommandDecodeError(f"{name} must be an integer, got a boolean")
    if not isinstance(value, kind):
        raise CommandDecodeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _converter(hint: Any) -> Converter:
    """The function that checks and converts a JSON value to a field of type `hint`: str, int, bool,
    bytes (base64 text), `X | None`, `tuple[X, ...]`. Raises TypeError for another type (a
    programming error, found when the class is first encoded or decoded)."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        options = typing.get_args(hint)
        (inner,) = [o for o in options if o is not type(None)]
        convert_inner = _converter(inner)
        nullable = type(None) in options

        def optional(name: str, value: Any) -> Any:
            return None if value is None and nullable else convert_inner(name, value)

        return optional
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(hint)
        convert_item = _converter(inner)

        def items(name: str, value: Any) -> Any:
            if not isinstance(value, list):
                raise CommandDecodeError(f"{name} must be a list, got {type(value).__name__}")
            if inner is str and all(type(v) is str for v in value):  # the common case: no names built
                return tuple(value)
            return tuple(convert_item(f"{name}[{i}]", v) for i, v in enumerate(value))

        return items
    if hint is bytes:
        return _from_base64
    if hint is str:
        return _str
    if hint in (int, bool):
        return lambda name, value: _check(name, value, hint)
    raise TypeError(f"unsupported command field type {hint!r}")


def _str(name: str, value: Any) -> Any:
    if type(value) is str:  # the common case, without _check's two isinstance calls
        return value
    return _check(name, value, str)


def _from_base64(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise CommandDecodeError(f"{name} must be base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CommandDecodeError(f"{name} is not valid base64") from None


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

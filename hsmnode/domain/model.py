"""Domain model: the replicated objects of the HSM (plain dataclasses, plain-data round trips).

Secrets never appear here in the clear: passwords are scrypt hashes computed by
the proposing member, client certificates are public.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from typing import Any

from hsmnode.domain.objects import ObjectTable

USAGES = ("sign", "verify", "encrypt", "decrypt", "wrap", "unwrap")

# The name the Raft log, snapshots, recorded results and backup files give a key's `extractable`
# attribute (PKCS#11's CKA_EXTRACTABLE). Issue 13 renamed the attribute in code and on the wire; the
# stored name stays the one written before, so old logs and snapshots replay to the same bytes and
# digest, and members running the code before and after the rename agree during a rolling upgrade.
# A rename of the stored name needs a new command encoding and snapshot version.
EXTRACTABLE_STORED_AS = "exportable"


class ObjectClass(enum.StrEnum):
    """A key object's class: PKCS#11 CKO_SECRET_KEY, CKO_PRIVATE_KEY (with its public half), CKO_PUBLIC_KEY.
    Stored as its value (a plain string), like every enum of the replicated state."""

    SECRET = "secret"
    PRIVATE = "private"
    PUBLIC = "public"


class KeyOrigin(enum.StrEnum):
    """How a key came into the HSM (CKA_LOCAL is true for GENERATED only)."""

    GENERATED = "generated"
    IMPORTED = "imported"
    UNWRAPPED = "unwrapped"
    RESTORED = "restored"


@dataclasses.dataclass
class KeyObject:
    """A key in a partition or keyring. Secret and private material only ever wrapped under the SMK."""

    id: str
    label: str
    key_type: str  # AES | RSA | EC | Ed25519
    size: str  # bits, or the curve name
    object_class: str  # secret | private | public
    extractable: bool  # CKA_EXTRACTABLE: may leave the HSM wrapped; stored as EXTRACTABLE_STORED_AS
    usage: tuple[str, ...]
    wrapped: bytes  # SMK-wrapped value / PKCS#8; empty for public keys
    public_der: bytes  # SubjectPublicKeyInfo; empty for secret keys
    origin: str
    created_at: int
    created_by: str
    blocked: bool = False

    def to_data(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d[EXTRACTABLE_STORED_AS] = d.pop("extractable")
        d["usage"] = list(self.usage)
        d["wrapped"] = base64.b64encode(self.wrapped).decode()
        d["public_der"] = base64.b64encode(self.public_der).decode()
        return d

    def digest_fields(self) -> list[Any]:
        """Every field in definition order as JSON values (bytes as hex, tuples as lists): what the
        state digest hashes of a key (objects.py `object_hash`), cheaper than `to_data`."""
        return [  # written out (apply hashes every key it stores); test_state_digest checks the order
            self.id,
            self.label,
            self.key_type,
            self.size,
            self.object_class,
            self.extractable,
            list(self.usage),
            self.wrapped.hex(),
            self.public_der.hex(),
            self.origin,
            self.created_at,
            self.created_by,
            self.blocked,
        ]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> KeyObject:
        fields = dict(data)
        fields["extractable"] = fields.pop(EXTRACTABLE_STORED_AS)
        return cls(
            **{
                **fields,
                "usage": tuple(data["usage"]),
                "wrapped": base64.b64decode(data["wrapped"]),
                "public_der": base64.b64decode(data["public_der"]),
            }
        )


@dataclasses.dataclass
class Credential:
    """One login credential (an appliance user's password, the HSM SO's, a partition role's).

    `epoch` is bumped by logout, password change, reset and lockout: every
    session token carries the epoch it was issued under, so bumping it ends
    those sessions on every member at once.
    """

    password_hash: str
    must_change: bool = True
    failed: int = 0
    locked: bool = False
    locked_until: int = 0  # ms; 0 = until an unlock (used by timed appliance lockouts)
    epoch: int = 1

    def to_data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Credential:
        return cls(**data)


@dataclasses.dataclass
class ApplianceUser:
    name: str
    role: str
    enabled: bool
    credential: Credential
    builtin: bool = False

    def to_data(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["credential"] = self.credential.to_data()
        return d

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ApplianceUser:
        return cls(**{**data, "credential": Credential.from_data(data["credential"])})


@dataclasses.dataclass
class CustomRole:
    name: str
    commands: tuple[str, ...]

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "commands": list(self.commands)}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CustomRole:
        return cls(name=data["name"], commands=tuple(data["commands"]))


@dataclasses.dataclass
class PartitionPolicy:
    """Partition policies (Luna numbering in brackets)."""

    max_failed_logins: int = 10  # [20] CO/CU lockout threshold; the PO may lower it
    must_change_initial_password: bool = True  # [HSM 21] initial credentials expire at first login
    activation_required: bool = False  # [22] PED-style: CO must activate before CO/CU sessions open
    auto_activation: bool = False  # [23] activation survives without a CO keeping it up
    private_key_cloning: bool = True  # [0] private keys may be cloned (HA replication in Luna)
    private_key_wrapping: bool = False  # [1] private keys may be wrapped off the HSM; never with [0]
    online_authorization: bool = False  # Dinamo: the AUTHORIZED state may be set over the API

    NAMES = (
        "max_failed_logins",
        "must_change_initial_password",
        "activation_required",
        "auto_activation",
        "private_key_cloning",
        "private_key_wrapping",
        "online_authorization",
    )

    def to_data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PartitionPolicy:
        return cls(**data)


class AuthState(enum.StrEnum):
    """The M-of-N authorization states of a partition (DOMAIN.md §5; the transitions: domain/mofn.py)."""

    INITIAL = "INITIAL"
    ASSOCIATED = "ASSOCIATED"
    AUTHORIZED = "AUTHORIZED"
    SESSION_AUTHORIZED = "SESSION_AUTHORIZED"  # held by one session's token, never stored


@dataclasses.dataclass
class PartitionAuthorization:
    """M-of-N authorization state of a partition (DOMAIN.md §5); SESSION_AUTHORIZED is never stored."""

    state: str = AuthState.INITIAL.value
    set_id: str = ""
    threshold: int = 0
    cards: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)  # (label, Ed25519 public key)
    permissions: list[str] = dataclasses.field(default_factory=list)
    epoch: int = 1  # bumped by every change: ends SESSION_AUTHORIZED tokens issued before it
    used_challenges: dict[str, int] = dataclasses.field(default_factory=dict)  # nonce -> expiry (ms)
    # SESSION_AUTHORIZED grants given back before their token expired: grant id -> forget after (ms)
    revoked_sessions: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "set_id": self.set_id,
            "threshold": self.threshold,
            "cards": [[label, base64.b64encode(key).decode()] for label, key in self.cards],
            "permissions": sorted(self.permissions),
            "epoch": self.epoch,
            "used_challenges": dict(sorted(self.used_challenges.items())),
            "revoked_sessions": dict(sorted(self.revoked_sessions.items())),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PartitionAuthorization:
        return cls(
            state=data["state"],
            set_id=data["set_id"],
            threshold=data["threshold"],
            cards=[(label, base64.b64decode(key)) for label, key in data["cards"]],
            permissions=list(data["permissions"]),
            epoch=data["epoch"],
            used_challenges=dict(data["used_challenges"]),
            revoked_sessions=dict(data.get("revoked_sessions", {})),
        )


@dataclasses.dataclass
class Partition:
    name: str
    created_at: int
    initialized: bool = False
    label: str = ""
    cloning_domain: str = ""
    roles: dict[str, Credential] = dataclasses.field(default_factory=dict)  # "PO" | "CO" | "CU"
    policy: PartitionPolicy = dataclasses.field(default_factory=PartitionPolicy)
    activated: bool = False
    activated_at: int = 0  # ms, the proposer's clock: members that (re)started later have lost it
    objects: ObjectTable[KeyObject] = dataclasses.field(default_factory=ObjectTable)
    cluster: bool = False  # the cluster partition: its PO is the cluster security officer
    authorization: PartitionAuthorization | None = None  # only partitions created to require it
    # DOMAIN.md §4: the owner's grants to other partitions' users: grantee -> permissions
    grants: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.objects, ObjectTable):  # built from a plain dict (tests, tools)
            self.objects = ObjectTable(self.objects)

    def to_data(self, objects: bool = True) -> dict[str, Any]:
        """Plain data; without `objects`, the keys are left out (the state digest hashes them apart)."""
        return {
            "grants": {k: sorted(v) for k, v in sorted(self.grants.items())},
            "authorization": self.authorization.to_data() if self.authorization else None,
            "objects": [self.objects[k].to_data() for k in sorted(self.objects)] if objects else [],
            "cluster": self.cluster,
            "name": self.name,
            "created_at": self.created_at,
            "initialized": self.initialized,
            "label": self.label,
            "cloning_domain": self.cloning_domain,
            "roles": {k: v.to_data() for k, v in sorted(self.roles.items())},
            "policy": self.policy.to_data(),
            "activated": self.activated,
            "activated_at": self.activated_at,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Partition:
        return cls(
            **{
                **data,
                "roles": {k: Credential.from_data(v) for k, v in data["roles"].items()},
                "policy": PartitionPolicy.from_data(data["policy"]),
                "objects": ObjectTable((o["id"], KeyObject.from_data(o)) for o in data.get("objects", [])),
                "authorization": PartitionAuthorization.from_data(data["authorization"])
                if data.get("authorization")
                else None,
                "grants": {k: list(v) for k, v in data.get("grants", {}).items()},
            }
        )


@dataclasses.dataclass
class Keyring:
    """A keyring (Luna cluster): like a partition with two roles, KRSO and KRCO, held by one person."""

    label: str
    id: str
    created_at: int
    roles: dict[str, Credential] = dataclasses.field(default_factory=dict)  # "KRSO" | "KRCO"
    objects: ObjectTable[KeyObject] = dataclasses.field(default_factory=ObjectTable)

    def __post_init__(self) -> None:
        if not isinstance(self.objects, ObjectTable):  # built from a plain dict (tests, tools)
            self.objects = ObjectTable(self.objects)

    def to_data(self, objects: bool = True) -> dict[str, Any]:
        """Plain data; without `objects`, the keys are left out (the state digest hashes them apart)."""
        return {
            "label": self.label,
            "id": self.id,
            "created_at": self.created_at,
            "roles": {k: v.to_data() for k, v in sorted(self.roles.items())},
            "objects": [self.objects[k].to_data() for k in sorted(self.objects)] if objects else [],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Keyring:
        return cls(
            label=data["label"],
            id=data["id"],
            created_at=data["created_at"],
            roles={k: Credential.from_data(v) for k, v in data["roles"].items()},
            objects=ObjectTable((o["id"], KeyObject.from_data(o)) for o in data["objects"]),
        )


@dataclasses.dataclass
class Client:
    """A registered NTLS client: its (usually self-signed) certificate and assigned partitions.

    `epoch` is bumped when the registration or an assignment is revoked.
    `sessions` holds, per "partition:role", the logout epoch of this client's sessions.
    """

    name: str
    fingerprint: str
    cert_pem: str
    partitions: list[str] = dataclasses.field(default_factory=list)
    epoch: int = 1
    sessions: dict[str, int] = dataclasses.field(default_factory=dict)
    keyrings: list[str] = dataclasses.field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return {
            "keyrings": sorted(self.keyrings),
            "name": self.name,
            "fingerprint": self.fingerprint,
            "cert_pem": self.cert_pem,
            "partitions": sorted(self.partitions),
            "epoch": self.epoch,
            "sessions": dict(sorted(self.sessions.items())),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Client:
        return cls(
            **{
                **data,
                "partitions": list(data["partitions"]),
                "sessions": dict(data["sessions"]),
                "keyrings": list(data.get("keyrings", [])),
            }
        )


@dataclasses.dataclass
class Hsm:
    initialized: bool = False
    label: str = ""
    so: Credential | None = None
    auditor: Credential | None = None
    policies: dict[str, bool] = dataclasses.field(default_factory=lambda: {"po_can_reset_co": True})
    # the Auditor's audit configuration: category -> none | failure | success | all (absent: all)
    audit_config: dict[str, str] = dataclasses.field(default_factory=dict)

    POLICY_NAMES = ("po_can_reset_co",)

    def to_data(self) -> dict[str, Any]:
        return {
            "initialized": self.initialized,
            "label": self.label,
            "so": self.so.to_data() if self.so else None,
            "auditor": self.auditor.to_data() if self.auditor else None,
            "policies": dict(sorted(self.policies.items())),
            "audit_config": dict(sorted(self.audit_config.items())),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Hsm:
        return cls(
            initialized=data["initialized"],
            label=data["label"],
            so=Credential.from_data(data["so"]) if data["so"] else None,
            auditor=Credential.from_data(data["auditor"]) if data["auditor"] else None,
            policies=dict(data["policies"]),
            audit_config=dict(data.get("audit_config", {})),
        )

"""Audit records and their hash chain (DOMAIN.md §6), for both chains:

- the cluster chain: replicated, one record per applied command (and per key
  management event a member served off the Raft path, e.g. an export), identical
  on every member;
- a member's key-usage chain: sign, verify, encrypt, decrypt served by that member,
  kept in its own append-only file (hsmnode/service/usage_audit.py), so crypto
  stays off the Raft path.

Each record's hash is sha256 over the previous record's hash and the record's
canonical bytes, so altering, dropping or reordering any record breaks the chain
from that point on. The fields added after the first version (category, container,
key, member, count) join the hashed body only when set, so records written before them
verify unchanged. `count` is set on a member chain's record that stands for several key
uses (one CryptoStream batch's uses of one key with one outcome, issue 16); a record
without it stands for one event.

Categories, as on an HSM's audit configuration (our choice, DOMAIN.md §6), each set
by the Auditor to none | failure | success | all:

    category         what                                                   where
    key_management   key creation, destruction, blocking, import, unwrap,   cluster chain
                     export (wrapped or public), backup, restore
    key_usage        sign, verify, encrypt, decrypt                          member chain
    access           refusals caught before proposing (denied reads,        cluster chain
                     unassigned partitions)

Commands that change state are always recorded (every applied command appends a
record); the categories govern the events that exist only to be audited.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from typing import Any

from hsmnode.domain.canonical_forms import cluster_body
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.frozen import maker

GENESIS_HASH = "0" * 64


class AuditCategory(enum.StrEnum):
    """What an audit configuration governs (the table above)."""

    KEY_MANAGEMENT = "key_management"
    KEY_USAGE = "key_usage"
    ACCESS = "access"


class AuditLevel(enum.StrEnum):
    """Which outcomes of a category are recorded."""

    NONE = "none"
    FAILURE = "failure"
    SUCCESS = "success"
    ALL = "all"


# plain strings: what the replicated configuration, records and messages hold
CATEGORIES = tuple(category.value for category in AuditCategory)
LEVELS = tuple(level.value for level in AuditLevel)
DEFAULT_LEVEL = AuditLevel.ALL.value
_LATER_FIELDS = ("category", "container", "key", "member", "count")


def wants(config: dict[str, str], category: str, ok: bool) -> bool:
    """Does the audit configuration record an event of `category` with this outcome?"""
    level = config.get(category, DEFAULT_LEVEL)
    return level == AuditLevel.ALL or level == (AuditLevel.SUCCESS if ok else AuditLevel.FAILURE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditRecord:
    seq: int
    timestamp: int
    actor: str
    request_id: str
    command: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str
    category: str = ""
    container: str = ""  # "partition:<name>" | "keyring:<label>"
    key: str = ""  # the key's object id
    member: str = ""  # the member that served the event (member chains; off-Raft key events)
    count: int = 0  # the key uses a member chain's record stands for, when more than one (else 0)

    def to_data(self) -> dict[str, Any]:
        # every field is a scalar: a plain comprehension is ~20x faster than dataclasses.asdict,
        # which matters on the key-usage path (one record per sign)
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        if self.count:  # only when set: the cluster chain's snapshot data stays as it was
            data["count"] = self.count
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(**data)

    def recomputed_hash(self) -> str:
        fields = self.to_data()
        del fields["hash"]
        return record_hash(**fields)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AuditRecord) if f.name != "count")


def hashed_body(
    *,
    seq: int,
    timestamp: int,
    actor: str,
    request_id: str,
    command: str,
    outcome: str,
    detail: str,
    **later: str | int,
) -> bytes:
    """The canonical bytes a record's hash covers (the later fields only when set)."""
    body_fields: dict[str, Any] = {
        "seq": seq,
        "timestamp": timestamp,
        "actor": actor,
        "request_id": request_id,
        "command": command,
        "outcome": outcome,
        "detail": detail,
    }
    for name, value in later.items():
        if name not in _LATER_FIELDS:
            raise TypeError(f"unknown audit field {name!r}")
        if value:
            body_fields[name] = value
    return canonical_json(body_fields)


def record_body(
    seq: int,
    timestamp: int,
    actor: str,
    request_id: str,
    command: str,
    outcome: str,
    detail: str,
    category: str,
    container: str,
    key: str,
    member: str,
    **later: str | int,
) -> bytes:
    """`hashed_body`'s bytes for a record with these fields: written out by hand
    (canonical_forms.cluster_body) when the later fields are at most `count` and every value has its
    usual type, else by the encoder (which raises TypeError for an unknown field or a value JSON
    cannot hold). The cluster chain (AuditLog.append) and each member's key-usage chain
    (service/usage_audit.py) hash their records' bodies through here."""
    count = later.get("count", 0)
    if later.keys() <= {"count"} and type(count) is int:
        try:
            return cluster_body(
                seq,
                timestamp,
                actor,
                request_id,
                command,
                outcome,
                detail,
                category,
                container,
                key,
                member,
                count,
            )
        except TypeError:
            pass
    return hashed_body(
        seq=seq,
        timestamp=timestamp,
        actor=actor,
        request_id=request_id,
        command=command,
        outcome=outcome,
        detail=detail,
        category=category,
        container=container,
        key=key,
        member=member,
        **later,
    )


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def record_hash(*, prev_hash: str, **fields: Any) -> str:
    return chain_hash(prev_hash, hashed_body(**fields))


_record = maker(AuditRecord)  # once per applied command: frozen.py


class AuditLog:
    """The chain itself. Only `apply` (`domain/apply/`) appends to it."""

    def __init__(self, records: list[AuditRecord] | None = None) -> None:
        self._records: list[AuditRecord] = list(records or [])

    def __len__(self) -> int:
        return len(self._records)

    @property
    def head(self) -> str:
        return self._records[-1].hash if self._records else GENESIS_HASH

    def append(
        self,
        *,
        timestamp: int,
        actor: str,
        request_id: str,
        command: str,
        outcome: str,
        detail: str,
        category: str = "",
        container: str = "",
        key: str = "",
        member: str = "",
        **later: str,
    ) -> AuditRecord:
        """Chain the next record (seq and prev_hash from the log) and return it. Once per applied
        command on every member: the four later fields apply sets are parameters; the hashed body
        is `record_body`'s (written out by hand unless another later field or type comes)."""
        records = self._records
        seq = len(records) + 1
        prev_hash = records[-1].hash if records else GENESIS_HASH
        body = record_body(
            seq,
            timestamp,
            actor,
            request_id,
            command,
            outcome,
            detail,
            category,
            container,
            key,
            member,
            **later,
        )
        record = _record(
            seq=seq,
            timestamp=timestamp,
            actor=actor,
            request_id=request_id,
            command=command,
            outcome=outcome,
            detail=detail,
            prev_hash=prev_hash,
            hash=chain_hash(prev_hash, body),
            category=category,
            container=container,
            key=key,
            member=member,
            count=later.get("count", 0),
        )
        records.append(record)
        return record

    def records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        selected = self._records[after_seq:]
        return selected if limit is None else selected[:limit]

    def to_data(self) -> list[dict[str, Any]]:
        return [r.to_data() for r in self._records]

    @classmethod
    def from_data(cls, data: list[dict[str, Any]]) -> AuditLog:
        return cls([AuditRecord.from_data(r) for r in data])


def chained(seq: int, prev_hash: str, **fields: Any) -> AuditRecord:
    """The record `seq` that follows `prev_hash`, with its hash."""
    digest = record_hash(seq=seq, prev_hash=prev_hash, **fields)
    return AuditRecord(seq=seq, prev_hash=prev_hash, hash=digest, **fields)


def verify_chain(records: list[AuditRecord]) -> str | None:
    """None if the chain is intact, else a sentence naming the first broken record."""
    prev = GENESIS_HASH
    for index, record in enumerate(records, start=1):
        if record.seq != index:
            return f"record at position {index} has seq {record.seq}: a record was removed or reordered"
        if record.prev_hash != prev:
            return f"record {record.seq}: prev_hash does not match the hash of record {record.seq - 1}"
        if record.hash != record.recomputed_hash():
            return f"record {record.seq}: content does not match its hash (altered)"
        prev = record.hash
    return None

"""The audit log: append-only, hash-chained, replicated (DOMAIN.md §6).

Each record's hash is sha256 over the previous record's hash and the record's
canonical bytes, so altering, dropping or reordering any record breaks the chain
from that point on, and every member holds the same chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from hsmnode.domain.commands import canonical_json

GENESIS_HASH = "0" * 64


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

    def to_data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(**data)


def record_hash(
    *,
    seq: int,
    timestamp: int,
    actor: str,
    request_id: str,
    command: str,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "timestamp": timestamp,
            "actor": actor,
            "request_id": request_id,
            "command": command,
            "outcome": outcome,
            "detail": detail,
        }
    )
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


class AuditLog:
    """The chain itself. Only `HsmState.apply` appends to it."""

    def __init__(self, records: list[AuditRecord] | None = None) -> None:
        self._records: list[AuditRecord] = list(records or [])

    def __len__(self) -> int:
        return len(self._records)

    @property
    def head(self) -> str:
        return self._records[-1].hash if self._records else GENESIS_HASH

    def append(
        self, *, timestamp: int, actor: str, request_id: str, command: str, outcome: str, detail: str
    ) -> AuditRecord:
        seq = len(self._records) + 1
        prev = self.head
        digest = record_hash(
            seq=seq,
            timestamp=timestamp,
            actor=actor,
            request_id=request_id,
            command=command,
            outcome=outcome,
            detail=detail,
            prev_hash=prev,
        )
        record = AuditRecord(
            seq=seq,
            timestamp=timestamp,
            actor=actor,
            request_id=request_id,
            command=command,
            outcome=outcome,
            detail=detail,
            prev_hash=prev,
            hash=digest,
        )
        self._records.append(record)
        return record

    def records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        selected = self._records[after_seq:]
        return selected if limit is None else selected[:limit]

    def to_data(self) -> list[dict[str, Any]]:
        return [r.to_data() for r in self._records]

    @classmethod
    def from_data(cls, data: list[dict[str, Any]]) -> AuditLog:
        return cls([AuditRecord.from_data(r) for r in data])


def verify_chain(records: list[AuditRecord]) -> str | None:
    """None if the chain is intact, else a sentence naming the first broken record."""
    prev = GENESIS_HASH
    for index, record in enumerate(records, start=1):
        if record.seq != index:
            return f"record at position {index} has seq {record.seq}: a record was removed or reordered"
        if record.prev_hash != prev:
            return f"record {record.seq}: prev_hash does not match the hash of record {record.seq - 1}"
        expected = record_hash(
            seq=record.seq,
            timestamp=record.timestamp,
            actor=record.actor,
            request_id=record.request_id,
            command=record.command,
            outcome=record.outcome,
            detail=record.detail,
            prev_hash=record.prev_hash,
        )
        if record.hash != expected:
            return f"record {record.seq}: content does not match its hash (altered)"
        prev = record.hash
    return None

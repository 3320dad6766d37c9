"""The audit hash chain verifies, and detects altered, removed and reordered records."""

from __future__ import annotations

import dataclasses

from hsmnode.domain.audit import GENESIS_HASH, AuditLog, verify_chain


def chain(n: int = 4) -> AuditLog:
    log = AuditLog()
    for i in range(n):
        log.append(
            timestamp=i,
            actor="client:admin",
            request_id=f"r{i}",
            command="audit.note",
            outcome="ok",
            detail=f"n{i}",
        )
    return log


def test_chain_verifies_and_links_records() -> None:
    records = chain().records()
    assert verify_chain(records) is None
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))


def test_altered_record_is_detected() -> None:
    records = chain().records()
    records[2] = dataclasses.replace(records[2], detail="something else")
    assert verify_chain(records) == "record 3: content does not match its hash (altered)"


def test_altered_record_with_recomputed_hash_breaks_the_next_link() -> None:
    log = chain()
    records = log.records()
    forged = AuditLog(records[:1])
    forged.append(
        timestamp=1, actor="client:mallory", request_id="r1", command="audit.note", outcome="ok", detail="n1"
    )
    tampered = forged.records() + records[2:]
    assert verify_chain(tampered) == "record 3: prev_hash does not match the hash of record 2"


def test_removed_record_is_detected() -> None:
    records = chain().records()
    del records[1]
    assert "a record was removed or reordered" in (verify_chain(records) or "")


def test_reordered_records_are_detected() -> None:
    records = chain().records()
    records[1], records[2] = records[2], records[1]
    assert verify_chain(records) is not None


def test_log_round_trips_through_plain_data() -> None:
    log = chain()
    assert AuditLog.from_data(log.to_data()).records() == log.records()

"""The audit hash chain verifies, and detects altered, removed and reordered records."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path
from typing import Any

import pytest

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


# --- fields added later, categories, the member key-usage chain ----------------------------------


def test_records_written_before_the_later_fields_verify_unchanged() -> None:
    """A record without category/container/key/member hashes as it did before those fields existed."""
    from hsmnode.domain.audit import record_hash

    old = chain(1).records()[0]
    assert old.hash == record_hash(
        seq=1,
        timestamp=0,
        actor="client:admin",
        request_id="r0",
        command="audit.note",
        outcome="ok",
        detail="n0",
        prev_hash=GENESIS_HASH,
    )
    keyed = dataclasses.replace(old, key="k1")
    assert keyed.recomputed_hash() != old.hash  # a later field, once set, is covered by the hash


def test_audit_levels_select_outcomes() -> None:
    from hsmnode.domain.audit import wants

    assert wants({}, "key_usage", True) and wants({}, "key_usage", False)
    assert wants({"key_usage": "failure"}, "key_usage", False)
    assert not wants({"key_usage": "failure"}, "key_usage", True)
    assert wants({"key_usage": "success"}, "key_usage", True)
    assert not wants({"key_usage": "none"}, "key_usage", False)


def test_member_usage_log_chains_resumes_and_detects_tampering(tmp_path: Path) -> None:
    from hsmnode.service.usage_audit import UsageLog

    log = UsageLog(tmp_path, "node1")
    for i in range(3):
        log.append(
            timestamp=i,
            actor="client:x",
            command="key.sign",
            container="partition:p",
            key=f"k{i}",
            outcome="ok",
            detail="sign",
        )
    log.close()
    again = UsageLog(tmp_path, "node1")  # a restart continues the chain
    again.append(
        timestamp=9,
        actor="client:x",
        command="key.verify",
        container="partition:p",
        key="k0",
        outcome="PERMISSION_DENIED",
        detail="verify",
    )
    records, total = again.records(after_seq=2)
    assert total == 4 and [r.seq for r in records] == [3, 4] and records[-1].member == "node1"
    assert again.verify().ok and again.verify().length == 4
    path = tmp_path / "usage-audit.log"
    text = path.read_text()
    path.write_text(text.replace('"key":"k1"', '"key":"k7"'))
    check = again.verify()
    assert not check.ok and "record 2" in check.problem and "altered" in check.problem
    path.write_text(text + '{"seq": 5, "torn')
    assert "torn" in again.verify().problem
    again.close()
    UsageLog(tmp_path, "node1").append(
        timestamp=10, actor="a", command="key.sign", container="", key="", outcome="ok", detail=""
    )
    assert [r.seq for r in UsageLog(tmp_path, "node1").records()[0]] == [1, 2, 3, 4, 5]


def test_a_record_copied_from_another_member_is_detected(tmp_path: Path) -> None:
    from hsmnode.service.usage_audit import UsageLog

    other = UsageLog(tmp_path, "node2")
    other.append(timestamp=1, actor="a", command="key.sign", container="", key="", outcome="ok", detail="")
    other.close()
    assert "another member" in UsageLog(tmp_path, "node1").verify().problem


def test_a_batch_record_counts_its_uses_and_its_count_is_hashed(tmp_path: Path) -> None:
    """A member records a CryptoStream batch's uses of one key with one outcome as one record with a
    count (issue 16): written in one go, chained, and a changed count breaks the chain; a record of
    one use carries no count, so its body is what it was before counts existed."""
    from hsmnode.domain.audit import hashed_body
    from hsmnode.service.usage_audit import UsageLog

    log = UsageLog(tmp_path, "node1")
    log.append(timestamp=1, actor="a", command="key.sign", container="p", key="k", outcome="ok", detail="one")
    last = log.append_many(
        2,
        "a",
        [
            ("key.sign", "p", "k", "ok", "sign ×64 with key 'k' (ECDSA-SHA256)", 64),
            (
                "key.sign",
                "p",
                "k",
                "INVALID_ARGUMENT",
                "sign with key 'k' (ECDSA-SHA256): data must not be empty",
                1,
            ),
        ],
    )
    records, total = log.records()
    assert last == total == 3 and [r.count for r in records] == [0, 64, 0]
    assert log.verify().ok
    single = dict(
        seq=1, timestamp=1, actor="a", request_id="", command="key.sign", outcome="ok", detail="one"
    )
    assert hashed_body(**single, count=0) == hashed_body(**single)
    assert records[1].to_data()["count"] == 64 and "count" not in records[0].to_data()
    path = tmp_path / "usage-audit.log"
    path.write_text(path.read_text().replace('"count":64', '"count":65'))
    check = log.verify()
    assert not check.ok and "record 2" in check.problem and "altered" in check.problem
    log.close()


def test_a_batch_that_cannot_be_written_leaves_the_chain_where_it_was(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from hsmnode.service import usage_audit

    log = usage_audit.UsageLog(tmp_path, "node1")
    log.append(timestamp=1, actor="a", command="key.sign", container="p", key="k", outcome="ok", detail="one")

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(usage_audit.os, "write", disk_full)
        with pytest.raises(OSError):
            log.append_many(2, "a", [("key.sign", "p", "k", "ok", "sign ×2 with key 'k' (Ed25519)", 2)])
    assert (
        log.append(
            timestamp=3, actor="a", command="key.sign", container="p", key="k", outcome="ok", detail="x"
        )
        == 2
    )
    assert log.verify().ok and log.verify().length == 2
    log.close()

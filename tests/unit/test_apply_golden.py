"""Golden bytes of apply: the state digest, every key's and request id's hash, the audit chain and
every Result of a fixed command sequence, as main's code (before issue 16's apply fast paths) gave
them. Members of the old and the new version run side by side in a rolling upgrade and compare
digests, and `hsmnode audit verify` checks the chain: a faster apply must keep every byte.

The sequence goes through `ReplicatedState.apply_payload` (decode, apply) as a member's tick thread
runs it, single entries and a batch entry: KeyCreate with plain, non-ASCII and refused labels, a
public key, an extractable key, a repeat of a request id (its first result), a request id reused
for another command, audit notes with quotes, backslashes and non-ASCII text (and one
refused for its control characters), a block, a destroy, a logout in the middle of a batch (the commands after it are refused) and
an undecodable command. The goldens were printed by `python -m tests.unit.test_apply_golden` on main
(69a773f); rerun it to see what a change moved.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hsmnode.domain import commands as c
from hsmnode.domain.audit import verify_chain
from hsmnode.domain.batch import encode_batch
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState, _seen_hash
from hsmnode.replicated_state import ReplicatedState
from tests.unit.world import with_partition

GOLDEN = {
    "digest": "00a9700d20de64bbaf4c00a0d6b3917e5faa9a6e10c81203887367dc07cf7379",
    "audit_records": 37,
    "audit_head": "f8e70106d8c669a47452fd8e5e2cdf02aa9266b0035d4374078650b4fdab8c26",
    "audit_chain": "abd4b7a03e8d238f1caa9a345ef6106fe8b2e3c26efd8fa4d8a4f03aa4d244e9",
    "seen_hashes": "1866e4da929ad3fc9016c007b5a30b0ceb58b3a7cfcd617d3a3646ef41d02788",
    "object_hashes": "b2ff95ba6f800ed193c706d487083964d5befb15485fe15bc3d6353662e922b0",
    "results": "f16da8e198cc9f89de9723c4f2413435a662fdcf0543e333aabea10495f68f4f",
}


def _key(n: int, actor: str, label: str, **overrides: Any) -> c.KeyCreate:
    fields: dict[str, Any] = {
        "actor": actor,
        "request_id": f"golden-{n}",
        "timestamp": 1_800_000_000_000 + n,
        "container": "partition:pay",
        "object_id": f"{n:032x}",
        "label": label,
        "key_type": "AES",
        "size": "256",
        "object_class": "secret",
        "extractable": False,
        "usage": ("wrap", "encrypt", "decrypt", "unwrap", "encrypt"),
        "wrapped": bytes(range(n % 7, 60 + n % 7)),
        "public_der": b"",
        "origin": "generated",
    }
    fields.update(overrides)
    return c.KeyCreate(**fields)


def replay() -> tuple[HsmState, list[Result]]:
    """The fixed sequence, applied entry by entry through a ReplicatedState: (state, every Result)."""
    w = with_partition()
    co, cu = w.partition_session("pay", "CO"), w.partition_session("pay", "CU")
    consumer = ReplicatedState(w.state)
    entries: list[bytes] = [
        _key(1, co, "plain").encode(),
        _key(2, co, 'clé «ünïcode» ✓ "quoted" \\back').encode(),
        _key(3, co, "tab\there").encode(),  # refused: not printable
        _key(4, co, "plain").encode(),  # refused: label taken
        _key(1, co, "plain").encode(),  # a repeat: the first result
        c.AuditNote(actor=co, request_id="golden-1", timestamp=1_800_000_000_100, text="x").encode(),
        c.AuditNote(
            actor=w.user("admin"),
            request_id="golden-note",
            timestamp=1_800_000_000_101,
            text='drill "starts"\\now\n\x01\x7f\u2028 — ∂ 🙂',
        ).encode(),  # refused: not one printable line
        c.AuditNote(
            actor=w.user("admin"),
            request_id="golden-note-2",
            timestamp=1_800_000_000_102,
            text='drill "starts" \\ now — ∂ 🙂 \u00e9',
        ).encode(),
        _key(
            5,
            co,
            "pub",
            key_type="EC",
            size="P-256",
            object_class="public",
            usage=("verify",),
            wrapped=b"",
            public_der=b"\x30\x59spki",
        ).encode(),
        _key(6, cu, "by-cu").encode(),  # refused: the CU creates public objects only
        _key(7, co, "extractable", extractable=True).encode(),
        c.KeyBlock(
            actor=co,
            request_id="golden-block",
            timestamp=1_800_000_000_200,
            container="partition:pay",
            object_id=f"{7:032x}",
            blocked=True,
        ).encode(),
        c.KeyDestroy(
            actor=co,
            request_id="golden-destroy",
            timestamp=1_800_000_000_201,
            container="partition:pay",
            object_id=f"{1:032x}",
        ).encode(),
        b'{"v":1,"type":"key.create"}',  # undecodable: refused, nothing applied
        encode_batch(
            [
                _key(8, co, "batched-8").encode(),
                _key(9, co, "batched-9").encode(),
                c.Logout(
                    actor=co,
                    request_id="golden-logout",
                    timestamp=1_800_000_000_300,
                    target="partition:pay:CO",
                ).encode(),
                _key(10, co, "after-logout").encode(),  # refused: the session ended in this entry
            ]
        ),
    ]
    results: list[Result] = []
    for entry in entries:
        outcome = consumer.apply_payload(entry)
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return consumer.state, results


def _sha(parts: list[bytes]) -> str:
    return hashlib.sha256(b"\n".join(parts)).hexdigest()


def figures(state: HsmState, results: list[Result]) -> dict[str, Any]:
    records = state.audit.records()
    part = state.partitions["pay"]
    return {
        "digest": state.digest(),
        "audit_records": len(records),
        "audit_head": state.audit.head,
        "audit_chain": _sha([canonical_json(r.to_data()) for r in records]),
        # the hash each request id's entry adds to the digest's sum, as apply stored it and as a
        # snapshot load recomputes it
        "seen_hashes": _sha([f"{rid}:{state.seen._hashes[rid]:x}".encode() for rid in state.seen]),
        "object_hashes": _sha(
            [f"{oid}:{part.objects._hashes[oid]:x}".encode() for oid in sorted(part.objects)]
        ),
        "results": _sha([canonical_json(r.to_data()) for r in results]),
    }


def test_apply_gives_mains_bytes_for_a_fixed_sequence() -> None:
    state, results = replay()
    assert figures(state, results) == GOLDEN
    assert [r.ok for r in results].count(True) >= 8  # the sequence does what it says


def test_the_hashes_apply_stored_equal_the_recomputed_ones() -> None:
    state, _ = replay()
    loaded = HsmState.from_data(state.to_data())
    assert loaded.digest() == state.digest()
    assert {rid: _seen_hash(rid, seen) for rid, seen in state.seen.items()} == state.seen._hashes
    assert loaded.audit.records() == state.audit.records()
    assert verify_chain(state.audit.records()) is None  # what `hsmnode audit verify` recomputes


if __name__ == "__main__":
    for name, value in figures(*replay()).items():
        print(f"    {name!r}: {value!r},")

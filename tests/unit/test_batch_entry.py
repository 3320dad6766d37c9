"""Batch entries (domain/batch.py): several commands in one Raft entry, each applied exactly as its own
entry would be — its own Result, request-id dedup, audit record, and the same state digest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hsmnode.domain import batch
from hsmnode.domain import commands as c
from hsmnode.domain.errors import CommandDecodeError, ErrorCode
from hsmnode.domain.result import Result
from hsmnode.replication import ReplicatedState
from tests.unit.world import World, with_partition

OID = "0" * 31
NOW = 1_800_000_000_000


def key_create(w: World, n: int, request_id: str = "", **overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "container": "partition:pay",
        "object_id": f"{OID}{n}",
        "label": f"k{n}",
        "key_type": "AES",
        "size": "256",
        "object_class": "secret",
        "extractable": False,
        "usage": ("encrypt", "decrypt"),
        "wrapped": b"wrapped-under-smk",
        "public_der": b"",
        "origin": "generated",
    }
    fields.update(overrides)
    actor = fields.pop("actor", None) or w.partition_session("pay", "CO")
    return c.KeyCreate(actor=actor, request_id=request_id or f"kc-{n}", timestamp=NOW + n, **fields).encode()


@pytest.fixture
def two() -> tuple[ReplicatedState, ReplicatedState, World]:
    """Two members holding the same state (a partition with its CO, built twice by the same commands),
    and the world that built the first."""
    w = with_partition()
    first, second = ReplicatedState(), ReplicatedState()
    first.state, second.state = w.state, with_partition().state
    return first, second, w


def one_by_one(member: ReplicatedState, payloads: list[bytes]) -> list[Result]:
    results = [member.apply_payload(p) for p in payloads]
    assert all(isinstance(r, Result) for r in results)
    return results  # type: ignore[return-value]


def as_batch(member: ReplicatedState, payloads: list[bytes]) -> list[Result]:
    results = member.apply_payload(batch.encode_batch(payloads))
    assert isinstance(results, list)
    return results


def test_a_batch_answers_each_command_and_leaves_the_state_of_applying_them_one_by_one(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    singles, batched, w = two
    payloads = [key_create(w, n) for n in range(1, 6)]
    expected = one_by_one(singles, payloads)
    assert as_batch(batched, payloads) == expected
    assert all(r.ok for r in expected) and [r.value["object_id"] for r in expected] == [
        f"{OID}{n}" for n in range(1, 6)
    ]
    assert batched.state.digest() == singles.state.digest()
    assert batched.state.full_digest() == singles.state.full_digest()
    assert batched.state.audit.head == singles.state.audit.head  # same records, same chain order


def test_a_refused_or_failing_command_gets_its_own_error_and_the_others_apply(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    singles, batched, w = two
    payloads = [
        key_create(w, 1),
        key_create(w, 2, actor=w.partition_session("pay", "PO")),  # PO creates no keys: refused in apply
        c.DebugFail(actor=w.user("admin"), request_id="boom", timestamp=NOW, reason="why").encode(),
        key_create(w, 3, label="k1"),  # a label already taken by the first command
        key_create(w, 4),
    ]
    expected = one_by_one(singles, payloads)
    got = as_batch(batched, payloads)
    assert [r.code for r in got] == [
        None,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.INTERNAL,
        expected[3].code,
        None,
    ]
    assert expected[3].code is not None  # the duplicate label is refused
    assert [(r.ok, r.code, r.message) for r in got] == [(r.ok, r.code, r.message) for r in expected]
    assert batched.state.digest() == singles.state.digest()


def test_an_undecodable_command_inside_a_batch_fails_alone(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    _, batched, w = two
    got = as_batch(batched, [key_create(w, 1), b'{"not":"a command"}', key_create(w, 2)])
    assert [r.ok for r in got] == [True, False, True]
    assert got[1].code is ErrorCode.INVALID_ARGUMENT


def test_a_resent_batch_answers_the_applied_commands_first_results_and_applies_the_rest(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    singles, batched, w = two
    first = [key_create(w, 1), key_create(w, 2)]
    resent = [*first, key_create(w, 3)]
    earlier = as_batch(batched, first)
    again = as_batch(batched, resent)
    assert again[:2] == earlier  # a request id applied before: its first result, nothing changed
    assert again[2].ok and again[2].value["object_id"] == f"{OID}3"
    one_by_one(singles, resent)
    assert batched.state.digest() == singles.state.digest()
    assert len(batched.state.audit) == len(singles.state.audit)


def test_a_request_id_repeated_inside_one_batch_is_applied_once(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    singles, batched, w = two
    payloads = [key_create(w, 1, request_id="same"), key_create(w, 1, request_id="same")]
    got = as_batch(batched, payloads)
    assert got[0] == got[1] and got[0].ok
    assert one_by_one(singles, payloads) == got
    assert batched.state.digest() == singles.state.digest()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-1], "command 1 says"),
        (lambda b: b + b"x", "bytes after its 2 commands"),
        (lambda b: batch.MAGIC + b"\x00\x00\x00\x00", "holds 1-256 commands"),
        (lambda b: batch.MAGIC + b"\x00\x00", "ends before the command count"),
        (lambda b: b[: len(batch.MAGIC) + 4], "ends before command 0's length"),
    ],
)
def test_a_malformed_batch_frame_applies_nothing(
    two: tuple[ReplicatedState, ReplicatedState, World], mangle: Callable[[bytes], bytes], message: str
) -> None:
    _, member, w = two
    before = member.state.digest()
    frame = mangle(batch.encode_batch([key_create(w, 1), key_create(w, 2)]))
    with pytest.raises(CommandDecodeError, match=message):
        batch.split_batch(frame)
    result = member.apply_payload(frame)
    assert isinstance(result, Result) and result.code is ErrorCode.INVALID_ARGUMENT
    assert member.state.digest() == before


def test_a_batch_is_never_read_as_a_command_and_a_command_never_as_a_batch() -> None:
    note = c.AuditNote(actor="user:admin#2", request_id="r", timestamp=1, text="hi").encode()
    assert not batch.is_batch(note) and batch.is_batch(batch.encode_batch([note]))
    with pytest.raises(CommandDecodeError, match="not UTF-8 JSON"):
        c.decode(batch.encode_batch([note]))  # what a member of the previous version makes of one


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "max_commands", "groups"),
    [
        ([100, 100, 100], 10_000, 256, [[0, 1, 2]]),
        ([100, 100, 100], 10_000, 2, [[0, 1], [2]]),
        ([5_000, 5_000, 100], 10_000, 256, [[0], [1, 2]]),
        ([20_000, 100, 100], 10_000, 256, [[0], [1, 2]]),  # too large to share: an entry of its own
        ([], 10_000, 256, []),
    ],
)
def test_pack_keeps_order_and_the_limits(
    sizes: list[int], max_bytes: int, max_commands: int, groups: list[list[int]]
) -> None:
    assert batch.pack(sizes, max_bytes, max_commands) == groups
    for group in groups:
        framed = len(batch.encode_batch([b"x" * sizes[i] for i in group]))
        assert len(group) == 1 or framed <= max_bytes


def test_commands_in_batch_entries_count_toward_log_compaction(
    two: tuple[ReplicatedState, ReplicatedState, World],
) -> None:
    _, member, w = two

    class Engine:
        raftLastApplied = 7
        forced = 0

        def forceLogCompaction(self) -> None:  # noqa: N802 - pysyncobj's name
            self.forced += 1

    engine = Engine()
    member._syncObj = engine
    member.compact_after = 5
    as_batch(member, [key_create(w, n) for n in range(1, 4)])
    assert engine.forced == 0  # 3 commands batched since the last snapshot
    as_batch(member, [key_create(w, n) for n in range(4, 6)])
    assert engine.forced == 1  # 5: the log is compacted by commands too
    member._serialize()  # a snapshot starts
    as_batch(member, [key_create(w, n) for n in range(6, 10)])
    assert engine.forced == 1

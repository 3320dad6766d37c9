"""apply(state, command): dedup by request_id, outcomes as values, determinism, snapshots."""

from __future__ import annotations

import pytest

from hsmnode.domain import apply as apply_mod
from hsmnode.domain import commands as c
from hsmnode.domain import state as state_mod
from hsmnode.domain.apply import apply
from hsmnode.domain.audit import verify_chain
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.result import Result
from tests.unit.world import booted

HASHES = ("h1", "h2", "h3", "h4")


def _admin() -> str:
    return "user:admin#2"  # after booted(): the factory password was changed once


def note(rid: str, text: str = "hello", actor: str = "user:admin#2", ts: int = 1000) -> c.AuditNote:
    return c.AuditNote(actor=actor, request_id=rid, timestamp=ts, text=text)


def init(cluster_id: str = "c-1", rid: str = "boot", actor: str = "node:node1") -> c.InitCluster:
    return c.InitCluster(
        actor=actor, request_id=rid, timestamp=1, cluster_id=cluster_id, default_password_hashes=HASHES
    )


def HsmState() -> state_mod.HsmState:  # noqa: N802 - a booted state stands in for a fresh one in these tests
    return booted().state


def test_same_request_id_returns_first_result_and_changes_state_once() -> None:
    s = HsmState()
    first = apply(s, note("r-1", ts=1000))
    digest = s.digest()
    again = apply(s, note("r-1", ts=2000))  # a retry, re-stamped by another member
    assert again == first
    assert s.digest() == digest
    assert s.audit_records()[-1].request_id == "r-1"
    assert [r.request_id for r in s.audit_records()].count("r-1") == 1


def test_request_id_reused_for_another_command_is_refused() -> None:
    s = HsmState()
    apply(s, note("r-1"))
    result = apply(s, init(rid="r-1"))
    assert not result.ok and result.code is ErrorCode.INVALID_ARGUMENT
    assert "already used" in result.message
    assert s.cluster_id == "c-test"


def test_dedup_memory_is_bounded_and_forgets_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    s = HsmState()
    monkeypatch.setattr(apply_mod, "DEDUP_CAPACITY", 3)
    for i in range(5):
        apply(s, note(f"r-{i}"))
    assert [row[0] for row in s.to_data()["seen"]] == ["r-2", "r-3", "r-4"]
    # a forgotten request id is a new request
    before = len(s.audit)
    apply(s, note("r-0"))
    assert len(s.audit) == before + 1


def test_every_applied_command_allowed_or_refused_is_audited() -> None:
    s = HsmState()
    before = len(s.audit)
    apply(s, note("a"))
    apply(s, note("b", text=""))  # refused: empty
    records = s.audit_records()[before:]
    assert [(r.command, r.outcome) for r in records] == [
        ("audit.note", "ok"),
        ("audit.note", "INVALID_ARGUMENT"),
    ]
    assert records[1].detail.startswith("audit note must be")
    assert verify_chain(s.audit_records()) is None


def test_unexpected_exception_becomes_internal_result_not_a_raise() -> None:
    s = HsmState()
    result = apply(s, c.DebugFail(actor="client:admin", request_id="boom", timestamp=5, reason="test"))
    assert not result.ok and result.code is ErrorCode.INTERNAL
    assert "injected failure: test" in result.message
    assert "RuntimeError" in result.internal_trace
    assert s.audit_records()[-1].outcome == "INTERNAL"
    # a retry gets the same stored outcome, without the node-local trace
    retry = apply(s, c.DebugFail(actor="client:admin", request_id="boom", timestamp=6, reason="test"))
    assert retry.code is ErrorCode.INTERNAL and retry.internal_trace == ""


def test_cluster_identity_is_set_once_by_a_member() -> None:
    s = state_mod.HsmState()
    assert apply(s, init(actor="user:admin#1", rid="boot-0")).code is ErrorCode.PERMISSION_DENIED
    assert apply(s, init()).ok
    assert s.cluster_id == "c-1"
    assert sorted(s.users) == ["admin", "audit", "monitor", "operator"]
    assert [u.name for u in s.users.values() if u.enabled] == ["admin"]
    assert all(u.credential.must_change for u in s.users.values())
    assert apply(s, init(rid="boot-2")).ok  # the same id again: a no-op
    other = apply(s, init(cluster_id="c-2", rid="boot-3"))
    assert other.code is ErrorCode.FAILED_PRECONDITION and "belongs to cluster c-1" in other.message
    assert s.cluster_id == "c-1"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", ErrorCode.INVALID_ARGUMENT),
        ("x" * 1001, ErrorCode.INVALID_ARGUMENT),
        ("two\nlines", ErrorCode.INVALID_ARGUMENT),
    ],
)
def test_bad_audit_notes_are_refused(text: str, code: ErrorCode) -> None:
    assert apply(HsmState(), note("r", text=text)).code is code


def test_members_do_not_write_notes() -> None:
    assert apply(HsmState(), note("r", actor="node:node1")).code is ErrorCode.PERMISSION_DENIED


def test_same_commands_give_same_digest_on_every_member() -> None:
    cmds = [note("a"), note("b", text="x" * 1001), note("a"), note("c", ts=99), init(cluster_id="c-other")]
    one, two = HsmState(), HsmState()
    for cmd in cmds:
        apply(one, cmd)
        apply(two, cmd)
    assert one.digest() == two.digest()


def test_snapshot_round_trip_preserves_state_and_dedup() -> None:
    s = HsmState()
    first = apply(s, note("a"))
    restored = state_mod.HsmState.from_data(s.to_data())
    assert restored.digest() == s.digest()
    assert apply(restored, note("a")) == first
    assert len(restored.audit) == len(s.audit)


def test_snapshot_of_another_version_is_refused() -> None:
    data = HsmState().to_data()
    data["v"] = 99
    with pytest.raises(ValueError, match="unsupported snapshot version 99"):
        state_mod.HsmState.from_data(data)


def test_result_round_trips_through_plain_data() -> None:
    for result in (Result.success(seq=3, audit="x"), Result.error(ErrorCode.NOT_FOUND, "no such thing")):
        assert Result.from_data(result.to_data()) == result

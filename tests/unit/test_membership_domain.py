"""The replicated member directory (issue 10): removals leave a tombstone that lets a half-done removal
be completed by id; refusals name the rule and what to do; snapshots keep the tombstones."""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.state import HsmState
from tests.unit.world import booted


def test_a_removed_member_leaves_a_tombstone_with_its_addresses_until_it_is_added_again() -> None:
    w = booted()
    admin = w.user("admin")
    w.ok(c.MemberAdd, admin, member_id="node2", raft="10.0.0.2:7500", grpc="10.0.0.2:7400")
    w.ok(c.MemberAdd, admin, member_id="node3", raft="10.0.0.3:7500", grpc="10.0.0.3:7400")
    removed = w.ok(c.MemberRemove, admin, member_id="node3")
    assert "node3" not in w.state.members
    assert w.state.departed["node3"] == ("10.0.0.3:7500", "10.0.0.3:7400", w.now)
    assert "10.0.0.3:7500" in removed.value["audit"]
    restored = HsmState.from_data(w.state.to_data())
    assert restored.departed == w.state.departed and restored.digest() == w.state.digest()
    w.ok(c.MemberAdd, admin, member_id="node3", raft="10.0.0.3:7500", grpc="10.0.0.3:7400")
    assert "node3" not in w.state.departed


def test_membership_refusals_name_the_rule_and_what_to_do() -> None:
    w = booted()
    admin = w.user("admin")
    w.ok(c.MemberAdd, admin, member_id="node1", raft="10.0.0.1:7500", grpc="10.0.0.1:7400")
    w.ok(c.MemberAdd, admin, member_id="node2", raft="10.0.0.2:7500", grpc="10.0.0.2:7400")
    unknown = w.apply(c.MemberRemove, admin, member_id="node9")
    assert unknown.code is ErrorCode.NOT_FOUND and "(members: node1, node2)" in unknown.message
    moved = w.apply(c.MemberAdd, admin, member_id="node2", raft="10.0.0.9:7500", grpc="10.0.0.9:7400")
    assert moved.code is ErrorCode.ALREADY_EXISTS and "remove it first" in moved.message
    taken = w.apply(c.MemberAdd, admin, member_id="node4", raft="10.0.0.2:7500", grpc="10.0.0.4:7400")
    assert taken.code is ErrorCode.ALREADY_EXISTS and "other addresses" in taken.message
    w.ok(c.MemberRemove, admin, member_id="node1")
    last = w.apply(c.MemberRemove, admin, member_id="node2")
    assert last.code is ErrorCode.FAILED_PRECONDITION and "add another member first" in last.message
    assert list(w.state.members) == ["node2"]


def test_prior_gives_a_request_ids_first_result() -> None:
    w = booted()
    admin = w.user("admin")
    result = w.ok(c.AuditNote, admin, text="once")
    assert w.state.prior(w.last_request_id) == ("audit.note", admin, result)
    assert w.state.prior("never-used") is None

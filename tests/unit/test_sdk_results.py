"""The SDK's results that replaced tuples: named fields, and still the tuple they replaced."""

from __future__ import annotations

import json

from hsmnode.client import (
    AuditNote,
    AuditPage,
    AuditRecord,
    ClusterStatus,
    Encrypted,
    Grant,
    MemberStatus,
    Slot,
    Slots,
)


def test_results_that_replaced_tuples_unpack_and_index_in_field_order() -> None:
    slot = Slot("pay", "Payments", True, False, False)
    found = Slots("app", [slot])
    name, slots = found  # the README's `name, slots = app.list_slots()`
    assert (name, slots) == ("app", [slot]) == (found.client, found.slots)
    assert found[1] == [slot] and len(found) == 2

    record = AuditRecord(1, 0, "admin", "r1", "audit.note", "ok", "x", "", "h1")
    records, total = AuditPage([record], 7)
    assert (records, total) == ([record], 7)
    assert tuple(AuditNote(3, "ab")) == (3, "ab") and AuditNote(3, "ab")[0] == 3
    ciphertext, iv = Encrypted(b"c", b"iv")
    assert (ciphertext, iv) == (b"c", b"iv")
    owner, grantee, permissions = Grant("pay", "app", ("read",))
    assert (owner, grantee, permissions) == ("pay", "app", ("read",))


def test_results_compare_by_their_fields() -> None:
    assert Grant("pay", "app", ("read",)) in [Grant("pay", "app", ("read",))]
    assert Grant("pay", "app", ("read",)) != Grant("pay", "app", ("create",))


def test_cluster_status_to_json_is_json_text_and_to_dict_the_dict() -> None:
    status = ClusterStatus(
        "c1",
        "node1",
        3,
        (
            MemberStatus(
                id="node1",
                address="127.0.0.1:1",
                role="leader",
                applied_index=5,
                raft_address="127.0.0.1:2",
                state_digest="ab",
            ),
        ),
    )
    text = status.to_json()
    assert isinstance(text, str)  # the README prints it: JSON, not a Python dict
    assert json.loads(text) == status.to_dict()
    assert status.to_dict()["members"][0]["id"] == "node1"

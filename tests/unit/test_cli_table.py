"""The CLI's column tables print the lines the hand-aligned f-strings printed before them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hsmnode.cli._output import Column, emit_fields, table, text
from hsmnode.cli.session import SLOT_COLUMNS
from hsmnode.client import Slot


@dataclass
class Member:
    id: str
    role: str
    applied_index: int
    lag: int


MEMBERS = [Member("node1", "leader", 1234, 0), Member("node2", "follower", 7, 12)]


def test_header_and_rows_pad_left_and_right_aligned_columns(capsys: pytest.CaptureFixture[str]) -> None:
    table(
        MEMBERS,
        [
            Column("MEMBER", "id", 10),
            Column("ROLE", "role", 12),
            Column("APPLIED", "applied_index", 8, right=True),
        ]
        + [Column("LAG", "lag", 5, right=True)],
    )
    expected = [f"{'MEMBER':<10} {'ROLE':<12} {'APPLIED':>8} {'LAG':>5}"] + [
        f"{m.id:<10} {m.role:<12} {m.applied_index:>8} {m.lag:>5}" for m in MEMBERS
    ]
    assert capsys.readouterr().out.splitlines() == expected


def test_booleans_print_as_words_and_the_last_column_is_not_padded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @dataclass
    class User:
        name: str
        enabled: bool
        must_change_password: bool

    table(
        [User("admin", True, False)],
        [Column("USER", "name", 20), Column("ENABLED", "enabled", 8)]
        + [Column("MUST-CHANGE", "must_change_password")],
    )
    assert capsys.readouterr().out.splitlines() == [
        f"{'USER':<20} {'ENABLED':<8} MUST-CHANGE",
        f"{'admin':<20} {'True':<8} False",
    ]


def test_separators_indent_and_no_header(capsys: pytest.CaptureFixture[str]) -> None:
    grants = [("pay", "ops", ("read", "create"))]
    table(
        grants,
        [Column("OWNER", lambda g: g[0], sep=" -> "), Column("GRANTEE", lambda g: g[1], sep=": ")]
        + [Column("PERMISSIONS", lambda g: ", ".join(g[2]))],
        header=False,
        indent="  ",
    )
    assert capsys.readouterr().out == "  pay -> ops: read, create\n"


def test_nested_values_print_readably_not_as_python_literals(capsys: pytest.CaptureFixture[str]) -> None:
    roles = (
        {"role": "CO", "locked": True, "must_change_password": False, "failed_logins": 3},
        {"role": "CU", "locked": False, "must_change_password": True, "failed_logins": 0},
        {"role": "PO", "locked": False, "must_change_password": False, "failed_logins": 0},
    )
    emit_fields(
        False,
        {
            "roles": roles,
            "policies": {"po_can_reset_co": True, "max_failed_logins": 3},
            "clients": ("demo-client",),
        }
        | {"card_labels": (), "initialized": True},
    )
    assert capsys.readouterr().out.splitlines() == [
        "roles: CO (locked, failed logins 3), CU (must change password), PO",
        "policies: po_can_reset_co=on, max_failed_logins=3",
        "clients: demo-client",
        "card_labels: -",
        "initialized: True",
    ]
    assert text({"online_authorization": False}) == "online_authorization=off"


def test_a_keyring_slot_shows_its_label_not_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    slots = [
        Slot("pay", "Payments", True, False, False),
        Slot("ops-ring", "9f3a0c", True, False, False, "keyring"),
    ]
    table(slots, SLOT_COLUMNS[:3], header=False)
    assert [line.split() for line in capsys.readouterr().out.splitlines()] == [
        ["partition", "pay", "Payments"],
        ["keyring", "ops-ring", "ops-ring"],
    ]


def test_a_member_that_did_not_answer_has_no_lag_in_the_sdk_the_table_or_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hsmnode.cli.cluster import MEMBER_COLUMNS
    from hsmnode.client._convert import cluster_status
    from hsmnode.pb import cluster_pb2

    answer = cluster_pb2.ClusterStatusResponse(
        cluster_id="c",
        leader="node1",
        term=3,
        members=[
            cluster_pb2.Member(id="node1", address="a:1", role="leader", applied_index=40, lag=0),
            cluster_pb2.Member(id="node2", address="a:2", role="follower", applied_index=38, lag=2),
            cluster_pb2.Member(id="node3", address="a:3", role="unreachable", applied_index=0, lag=0),
        ],
    )
    status = cluster_status(answer)
    assert [(m.applied_index, m.lag) for m in status.members] == [(40, 0), (38, 2), (None, None)]
    assert [(m["applied_index"], m["lag"]) for m in status.to_dict()["members"]] == [
        (40, 0),
        (38, 2),
        (None, None),
    ]
    table(status.members, MEMBER_COLUMNS)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.split()[-2:] == ["-", "-"] and "unreachable" in last

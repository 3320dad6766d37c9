"""What the code before issue 13 (main 56a358a) wrote, this code reads and reproduces exactly:
commands from the Raft log, a snapshot, and the state both lead to (roles and states are
StrEnums now; their values are the old strings, so the log, snapshots and the wire are unchanged).

testdata/before_issue13.json was written by that code: 46 commands applied to a fresh state
(appliance users and a custom role, HSM SO and Auditor, partitions with keys, the cluster
partition and a keyring with KRSO/KRCO, an M-of-N partition associated, AUTHORIZED and
session-authorized, a grant, a failed login, a logout, refusals), their canonical bytes in
order, the snapshot (`to_data`) and its digest. That digest is of the first definition
(sha256 of the whole canonical snapshot, `HsmState.full_digest`); the state digest members
compare is DIGEST_VERSION 2 since issue 16 (domain/state.py), so the old value is checked with
the old definition and the new one by its own equality: the replayed log and the loaded
snapshot reach the same value.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.apply import apply
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.state import HsmState

BEFORE = json.loads((Path(__file__).parent / "testdata" / "before_issue13.json").read_text())


def old_commands() -> list[bytes]:
    return [base64.b64decode(b) for b in BEFORE["commands"]]


@pytest.mark.parametrize("payload", old_commands(), ids=lambda p: json.loads(p)["type"])
def test_a_command_logged_before_decodes_and_encodes_to_the_same_bytes(payload: bytes) -> None:
    assert c.decode(payload).encode() == payload


def test_replaying_the_old_log_reaches_the_old_state_and_digest() -> None:
    state = HsmState()
    for payload in old_commands():
        apply(state, c.decode(payload))
    snapshot: dict[str, Any] = BEFORE["snapshot"]
    assert canonical_json(state.to_data()) == canonical_json(snapshot)
    assert state.full_digest() == BEFORE["digest"]
    assert state.digest() == HsmState.from_data(snapshot).digest()


def plain_types(data: object) -> set[type]:
    """The types of every value and key in nested snapshot data."""
    found = {type(data)}
    if isinstance(data, dict):
        for key, value in data.items():
            found |= plain_types(key) | plain_types(value)
    elif isinstance(data, list | tuple):
        for value in data:
            found |= plain_types(value)
    return found


def test_replicated_data_holds_plain_strings_not_enum_members() -> None:
    """A snapshot is pickled: an enum member in it would name a domain class (and old members could not load it)."""
    state = HsmState()
    for payload in old_commands():
        apply(state, c.decode(payload))
    assert plain_types(state.to_data()) <= {dict, list, str, int, bool, type(None)}


def test_an_old_snapshot_loads_and_writes_back_unchanged() -> None:
    state = HsmState.from_data(BEFORE["snapshot"])
    assert canonical_json(state.to_data()) == canonical_json(BEFORE["snapshot"])
    assert state.full_digest() == BEFORE["digest"]
    assert state.partitions["vault"].authorization is not None
    assert state.partitions["vault"].authorization.state == "AUTHORIZED"

"""Sealed Raft frames (hsmnode/raft/transport.py) between real members in-process: two members of
this version seal their frames (AES-256-GCM after pysyncobj's key exchange), while a plain pysyncobj
member (the framing of a member of an older version: it never marks its key) keeps Fernet frames
both ways, whichever end opened the connection, and writes replicate through all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pysyncobj import SyncObj
from pysyncobj.node import TCPNode

from tests.replication.raft_harness import Member, Register, free_ports, harness_conf, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def plain_member(address: str, others: list[str]) -> tuple[SyncObj, Register]:
    """A member of plain pysyncobj (its framing and key exchange), configured as the harness's are."""
    register = Register()
    return SyncObj(address, others, conf=harness_conf(), consumers=[register]), register


def sealed(member: Member, peer: str) -> Any:
    conn = member.obj._SyncObj__transport._connections.get(TCPNode(peer))
    return None if conn is None or conn.state != 2 else conn.sealed  # 2: CONNECTION_STATE.CONNECTED


def test_members_seal_between_themselves_and_keep_fernet_with_a_plain_pysyncobj_peer(tmp_path: Path) -> None:
    # pysyncobj connects from the higher address to the lower: with the plain member in the middle,
    # it opens one of its connections to a member of this version and accepts the other
    low, middle, high = sorted(f"127.0.0.1:{p}" for p in free_ports(3))
    members: dict[str, Member] = {}
    plain: SyncObj | None = None
    try:
        for address in (low, high):
            (tmp_path / address.replace(":", "_")).mkdir()
            others = [a for a in (low, middle, high) if a != address]
            members[address] = Member(address, others, tmp_path / address.replace(":", "_"), durable=False)
        plain, plain_register = plain_member(middle, [low, high])
        assert wait_for(lambda: sealed(members[low], high) and sealed(members[high], low), 20)
        assert wait_for(
            lambda: sealed(members[low], middle) is False and sealed(members[high], middle) is False, 20
        )

        writer = members[low].register
        assert wait_for(lambda: _put(writer, "from-new", 1), 20)
        assert wait_for(lambda: plain_register.data.get("from-new") == 1, 10)
        assert wait_for(lambda: _put(plain_register, "from-plain", 2), 20)
        assert wait_for(lambda: all(m.register.data.get("from-plain") == 2 for m in members.values()), 10)
        # still as negotiated (a refused frame would have dropped and redialled a connection)
        assert sealed(members[low], high) and sealed(members[high], low)
        assert sealed(members[low], middle) is False and sealed(members[high], middle) is False
    finally:
        for member in members.values():
            member.close()
        if plain is not None:
            plain.destroy()


def _put(register: Register, key: str, value: int) -> bool:
    try:
        register.put(key, value, sync=True, timeout=2)
    except Exception:  # no leader yet, or one elected meanwhile: try again
        return False
    return True

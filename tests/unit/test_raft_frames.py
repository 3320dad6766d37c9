"""Raft frames (hsmnode/raft/transport.py) keep pysyncobj's format: a zlib stream of stored blocks,
pickle protocol 4 and a Fernet token, which plain pysyncobj framing reads unchanged (zlib.decompress
with the default 32 KiB window, pickle.loads of any protocol); the replay check reads the token's
timestamp from its first bytes."""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Iterator

import pytest
from pysyncobj import pickle
from pysyncobj.encryptor import getEncryptor
from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection

from hsmnode.raft.transport import (
    PICKLE_PROTOCOL,
    HardenedConnection,
    TransportLimits,
    fernet_timestamp,
    harden,
    stored_zlib,
)

MESSAGES = [
    {"type": "next_node_idx", "next_node_idx": 1003, "success": True, "lease_echo": 1.5},
    {"type": "append_entries", "term": 3, "entries": [(b"\x00" + os.urandom(600), 7, 3)] * 3},
    {"type": "append_entries", "serialized": (os.urandom(70_000), 1, False)},  # a snapshot chunk
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: str(m["type"]))
def test_a_stored_frame_reads_as_pysyncobj_reads_a_frame(message: dict[str, object]) -> None:
    frame = stored_zlib(pickle.dumps(message))
    assert pickle.loads(zlib.decompress(frame)) == message  # pysyncobj 0.3.17, tcp_connection.py:291


def test_an_empty_payload_is_a_valid_stream() -> None:
    assert zlib.decompress(stored_zlib(b"")) == b""


def test_stored_blocks_carry_the_bytes_as_they_are() -> None:
    """Stored: the payload's bytes appear in the frame verbatim (nothing to inflate)."""
    payload = os.urandom(1000)
    assert payload in stored_zlib(payload)


def test_a_fernet_tokens_timestamp_is_read_from_its_first_bytes() -> None:
    """What the replay check reads after Fernet.decrypt accepted the token (pysyncobj reads it with
    extract_timestamp, which verifies the HMAC a second time)."""
    fernet = getEncryptor("raft password")
    for stamp in (0, 1, 1_700_000_000, 2**40 + 5):
        token = fernet.encrypt_at_time(b"frame", stamp)
        assert fernet_timestamp(token) == fernet.extract_timestamp(token) == stamp


def test_a_frame_pickled_at_protocol_4_reads_with_pysyncobjs_loads() -> None:
    message = ("k" * 32, {"type": "append_entries", "entries": [(b"\x00\xff" + os.urandom(64), 3, 1)]})
    frame = stored_zlib(pickle.dumps(message, protocol=PICKLE_PROTOCOL))
    assert pickle.loads(zlib.decompress(frame)) == message


class _Poller:
    """pysyncobj's poller interface, doing nothing: the test reads the sockets itself."""

    def subscribe(self, *_args: object) -> None: ...

    def unsubscribe(self, *_args: object) -> None: ...


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def _pair(
    sockets: list[socket.socket], hardened_sender: bool, hardened_receiver: bool
) -> tuple[TcpConnection, TcpConnection]:
    a, b = socket.socketpair()
    sockets += [a, b]
    sender, receiver = TcpConnection(_Poller(), socket=a), TcpConnection(_Poller(), socket=b)
    for conn, hardened in ((sender, hardened_sender), (receiver, hardened_receiver)):
        conn.encryptor = getEncryptor("raft password")
        if hardened:
            harden(conn, TransportLimits())
    sender.sendRandKey = receiver.recvRandKey = "k" * 32
    return sender, receiver


def _receive(conn: TcpConnection) -> object:
    conn._TcpConnection__processRead()
    return conn._TcpConnection__processParseMessage()


@pytest.mark.parametrize(
    ("hardened_sender", "hardened_receiver"),
    [(True, True), (True, False), (False, True)],
    ids=["hsmnode to hsmnode", "hsmnode to plain pysyncobj", "plain pysyncobj to hsmnode"],
)
def test_frames_pass_between_hsmnode_and_plain_pysyncobj_framing(
    sockets: list[socket.socket], hardened_sender: bool, hardened_receiver: bool
) -> None:
    sender, receiver = _pair(sockets, hardened_sender, hardened_receiver)
    for message in MESSAGES[:2]:
        sender.send(message)
        assert _receive(receiver) == message


def test_a_replayed_or_altered_frame_is_refused(sockets: list[socket.socket]) -> None:
    sender, receiver = _pair(sockets, True, True)
    sender.send(MESSAGES[0])
    assert _receive(receiver) == MESSAGES[0]
    assert isinstance(receiver, HardenedConnection)
    # a valid frame stamped before the one just read: a replay
    frame = receiver.encryptor.encrypt_at_time(stored_zlib(pickle.dumps(("k" * 32, MESSAGES[0]))), 0)
    assert not isinstance(receiver._decode(frame), tuple | dict)
    assert receiver.state == CONNECTION_STATE.DISCONNECTED

    sender, receiver = _pair(sockets, True, True)
    assert isinstance(receiver, HardenedConnection)
    token = bytearray(sender.encryptor.encrypt_at_time(stored_zlib(pickle.dumps(("k" * 32, MESSAGES[0]))), 9))
    token[40] ^= 1
    receiver._decode(bytes(token))
    assert receiver.state == CONNECTION_STATE.DISCONNECTED

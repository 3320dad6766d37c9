"""Raft frames (hsmnode/raft/transport.py) to a peer of an older version keep pysyncobj's format:
a zlib stream of stored blocks, pickle protocol 4 and a Fernet token, which plain pysyncobj framing
reads unchanged (zlib.decompress with the default 32 KiB window, pickle.loads of any protocol); the
replay check reads the token's timestamp from its first bytes. Between two members of this version,
frames are sealed (hsmnode/crypto/raft_frames.py): negotiated by the mark on both exchanged keys, refused
when altered, replayed, reflected, of another connection, or Fernet on a sealed connection."""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator

import pytest
from pysyncobj import pickle
from pysyncobj.encryptor import getEncryptor
from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection

from hsmnode.crypto.raft_frames import SEALS_MARK, frame_key, new_random_key
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


# --- sealed frames (AES-256-GCM after the key exchange, when both ends' keys carry the mark) ---------


def _sealed_pair(
    sockets: list[socket.socket], initiator_key: bytes, acceptor_key: bytes
) -> tuple[HardenedConnection, HardenedConnection]:
    """Two hardened connections after pysyncobj's exchange: the initiator chose `initiator_key` (the
    acceptor prefixes its frames with it), the acceptor `acceptor_key`; each seals if both are marked."""
    sender, receiver = _pair(sockets, True, True)
    assert isinstance(sender, HardenedConnection) and isinstance(receiver, HardenedConnection)
    sender.recvRandKey, sender.sendRandKey = initiator_key, acceptor_key
    receiver.recvRandKey, receiver.sendRandKey = acceptor_key, initiator_key
    sender.seal_if_agreed()
    receiver.seal_if_agreed()
    return sender, receiver


def _receive_all(conn: TcpConnection, sender: TcpConnection) -> object:
    """A frame larger than one read (a snapshot chunk): read and let the sender flush until it parses."""
    for _ in range(100):
        sender._TcpConnection__trySendBuffer()
        message = _receive(conn)
        if message is not None:
            return message
    return None


def _wire(sock_of: TcpConnection) -> bytes:
    """The body of the one frame waiting on `sock_of`'s socket, read raw (length prefix removed)."""
    raw = sock_of._TcpConnection__socket.recv(1 << 20)
    (length,) = struct.unpack("i", raw[:4])
    assert len(raw) == 4 + length
    return bytes(raw[4:])


def test_frames_are_sealed_both_ways_once_both_keys_say_so(sockets: list[socket.socket]) -> None:
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    assert a.sealed and b.sealed
    for message in MESSAGES:
        a.send(message)
        assert _receive_all(b, a) == message
        b.send(message)
        assert _receive_all(a, b) == message
    entry = os.urandom(600)
    a.send({"type": "append_entries", "entries": [(entry, 1, 1)]})
    frame = _wire(b)
    assert frame[:1] == b"\x01" and entry not in frame  # sealed, no Fernet token, no plaintext


@pytest.mark.parametrize("unmarked", ["initiator", "acceptor"])
def test_a_peer_that_did_not_say_it_reads_sealed_frames_gets_fernet_frames(
    sockets: list[socket.socket], unmarked: str
) -> None:
    """A member of an older version (or plain pysyncobj) chooses an unmarked 32-byte key."""
    plain = os.urandom(32)
    keys = (plain, new_random_key()) if unmarked == "initiator" else (new_random_key(), plain)
    a, b = _sealed_pair(sockets, *keys)
    assert not a.sealed and not b.sealed
    a.send(MESSAGES[1])
    frame = _wire(b)
    assert frame[:1] == b"g"  # a Fernet token, as before
    assert a.encryptor.decrypt(frame)


def test_an_altered_sealed_frame_is_refused(sockets: list[socket.socket]) -> None:
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    a.send(MESSAGES[0])
    frame = bytearray(_wire(b))
    frame[len(frame) // 2] ^= 1
    assert b._decode(bytes(frame)) is not MESSAGES[0]
    assert b.state == CONNECTION_STATE.DISCONNECTED


def test_a_replayed_sealed_frame_is_refused(sockets: list[socket.socket]) -> None:
    """Each frame's nonce is its number in its direction: the same frame again fails authentication."""
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    a.send(MESSAGES[0])
    frame = _wire(b)
    assert b._decode(frame) == MESSAGES[0]
    b._decode(frame)
    assert b.state == CONNECTION_STATE.DISCONNECTED


def test_a_sealed_frame_reflected_back_to_its_sender_is_refused(sockets: list[socket.socket]) -> None:
    """Each direction has its own key: a's first frame is no frame b could have sent a."""
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    a.send(MESSAGES[0])
    frame = _wire(b)
    a._decode(frame)
    assert a.state == CONNECTION_STATE.DISCONNECTED


def test_a_fernet_frame_on_a_sealed_connection_is_refused(sockets: list[socket.socket]) -> None:
    """No way back to Fernet frames (whose replay check is one second coarse) once sealed."""
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    token = b.encryptor.encrypt_at_time(
        stored_zlib(pickle.dumps((b.recvRandKey, MESSAGES[0]))), int(time.time())
    )
    b._decode(token)
    assert b.state == CONNECTION_STATE.DISCONNECTED


def test_sealed_frames_of_another_connection_are_refused(sockets: list[socket.socket]) -> None:
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    c, d = _sealed_pair(sockets, new_random_key(), new_random_key())
    c.send(MESSAGES[0])
    b._decode(_wire(d))
    assert b.state == CONNECTION_STATE.DISCONNECTED


def test_each_direction_of_a_connection_has_its_own_key() -> None:
    x, y = new_random_key(), new_random_key()
    assert x.startswith(SEALS_MARK) and len(x) == len(SEALS_MARK) + 32
    assert frame_key(x, y) != frame_key(y, x)
    assert len(frame_key(x, y)) == 32


def test_frames_sealed_from_several_threads_at_once_all_open(sockets: list[socket.socket]) -> None:
    """pysyncobj's transferLeadership sends from its caller's thread while the tick thread sends:
    every frame still gets its own nonce, in the order it takes in the stream."""
    a, b = _sealed_pair(sockets, new_random_key(), new_random_key())
    for conn in (a, b):
        conn._TcpConnection__socket.setblocking(False)  # as the Raft server's and dialled sockets are
    senders = [
        threading.Thread(target=lambda n=n: [a.send({"from": n, "i": i}) for i in range(300)])
        for n in range(4)
    ]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave as often as the interpreter lets them
    try:
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
    received = []
    while len(received) < 1200:
        message = _receive_all(b, a)
        assert message is not None, f"after {len(received)} frames"
        received.append(message)
    assert b.state == CONNECTION_STATE.CONNECTED
    assert sorted((m["from"], m["i"]) for m in received) == [(n, i) for n in range(4) for i in range(300)]


def test_a_members_connection_events_are_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a removed member still running redials ~17 times a second: 830 'lost' lines in 50 s (a new user)
    from hsmnode.raft import transport as t

    clock = [1000.0]
    monkeypatch.setattr(t.time, "monotonic", lambda: clock[0])
    hub = object.__new__(t.HsmTransport)
    hub._events_logged = {}
    hub._selfNode = "node1"
    with caplog.at_level("INFO", logger=t.log.name):
        for _ in range(17):
            hub._log_event("lost", "node3", "Raft connection to member node3 lost")
            clock[0] += 0.06
        # another member: its own line
        hub._log_event("lost", "node2", "Raft connection to member node2 lost")
        clock[0] += t.EVENT_LOG_EVERY
        hub._log_event("lost", "node3", "Raft connection to member node3 lost")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "node1: Raft connection to member node3 lost",
        "node1: Raft connection to member node2 lost",
        "node1: Raft connection to member node3 lost (16 more since the last such line)",
    ]

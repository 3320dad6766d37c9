"""Raft transport hardening: pysyncobj's TCP connection with bounded, linear framing and sealed frames.

pysyncobj 0.3.17 frames every message as a native 4-byte length plus the (Fernet-encrypted)
payload, and buffers with `bytes +=` before it even looks at the length. A peer that sends
the header 2^31-1 and then streams data makes the member copy an ever-growing buffer
(quadratic time, ~2x the data in memory, not returned); a connection that never sends a
valid frame is held open forever. This layer, applied to every Raft connection:

- refuses a frame longer than `max_frame_bytes` (or negative) as soon as its 4-byte header
  has arrived, and disconnects without reading the body;
- buffers linearly (one bytearray, consumed by offset, compacted) and reads no further than
  one maximum frame ahead;
- disconnects an incoming connection that has not identified itself as a member (key
  exchange plus node address: two authenticated frames) within `handshake_deadline`;
- gives up an outgoing connect that has not completed within `connect_timeout`, and sets
  TCP_USER_TIMEOUT so a peer behind a partition is dropped and redialled instead of waiting
  out TCP's retransmission back-off (minutes) after the network heals.

Sealed frames between two members of this version, negotiated per connection in pysyncobj's key
exchange (hsmnode/crypto/raft_frames.py: the format, the keys, the nonces, what is refused).
A sealed frame costs 2-6x less CPU, send plus receive, than the Fernet frame of earlier versions (bench/raft_frame.py;
in members under load ~0.3x: bench/findings/raft-frames.md).

Fernet frames (a peer that did not mark its key: a member of an older version, plain pysyncobj, the
syncobj_admin tool) keep pysyncobj's format, made and read more cheaply (the older peer reads them,
and this member reads theirs):

- pickle protocol 4 (the standard library's: pysyncobj's `pickle.dumps` ignores the protocol and
  pickles at 2, which pickles each `bytes` as a latin-1 string to re-encode: a command entry costs
  4x more to pickle and 2x more to unpickle); pysyncobj's `pickle.loads` reads any protocol;
- a received Fernet token is authenticated and decrypted once, then its (authenticated) timestamp read
  from its first 9 bytes for the replay check; pysyncobj verified the HMAC twice, once for the
  timestamp and once to decrypt;
- zlib streams of "stored" blocks (level 0, a 512-byte window, memLevel 1): pysyncobj's
  `zlib.compress(data, 3)` sets up a 256 KiB deflate state per message, 50-90 µs of CPU even for an
  85-byte acknowledgement (and its receiver inflates with a 32 KiB window). A stored stream costs
  about 2 µs to make and 1 µs to read, and any zlib.decompress reads it. Entries are base64 JSON and
  snapshots gzip'd, so little compression is lost.

A rolling upgrade needs nothing more: the format is chosen per connection, at every (re)connect, so a
member of this version talks Fernet to an older one and sealed frames to its own version, and a
downgraded member's next connection is Fernet again.

Snapshots still pass: pysyncobj sends dumps in 64 KiB chunks and splits a large entry, so the
largest frame is about one batch (64 KiB) plus the largest command, far below the default
maximum (tests/fault/test_raft_transport.py replicates a 10,000-key snapshot to a new member).

Applied by class swap (`harden`), because pysyncobj constructs its connections itself; the
methods replaced are named for pysyncobj 0.3.17's private names and checked at import.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import pickle
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection
from pysyncobj.transport import TCPTransport

from hsmnode.crypto.raft_frames import NONCE, SEALED, frame_cipher, frame_key, marked, new_random_key

log = logging.getLogger("hsmnode.raft.transport")

_HEADER = struct.Struct("i")  # pysyncobj's framing: native signed 32-bit length
_TIMESTAMP = struct.Struct(">Q")  # a Fernet token's timestamp, after its version byte
PICKLE_PROTOCOL = 4
for _cls, _names in (
    (TcpConnection, ("_TcpConnection__processRead", "_TcpConnection__processParseMessage", "connect")),
    (TcpConnection, ("_TcpConnection__trySendBuffer", "disconnect")),
    (TCPTransport, ("_onOutgoingConnected", "_onOutgoingMessageReceived", "_sendSelfAddress")),
):
    for _name in _names:
        if not hasattr(_cls, _name):  # pragma: no cover - guards the pin
            raise ImportError(
                f"pysyncobj {_cls.__name__} has no {_name}: hsmnode.raft needs pysyncobj==0.3.17"
            )


@dataclass(frozen=True)
class TransportLimits:
    """Bounds on one Raft connection: bytes per frame; seconds to identify; seconds to connect."""

    max_frame_bytes: int = 16 * 1024 * 1024
    handshake_deadline: float = 3.0
    connect_timeout: float = 1.0


class HardenedConnection(TcpConnection):  # type: ignore[misc]
    """A TcpConnection with a frame limit and linear buffering. Never constructed directly:
    `harden(conn, limits)` converts a connection pysyncobj made."""

    _limits: TransportLimits
    _rbuf: bytearray
    _rpos: int
    opened_at: float
    connecting_since: float | None
    frames: int
    recvLastTimestamp: float  # pysyncobj's (TcpConnection): the last received Fernet timestamp
    _seal: Any  # this connection's sealing for frames sent (None: Fernet frames)
    _open: Any  # ... and for frames received
    _sent: int  # frames sealed so far (the next one's nonce)
    _opened: int  # frames opened so far (the next one's expected nonce)
    _sealing: threading.RLock  # the sealing state and the write buffer, between threads (see send)

    def _init_hardening(self, limits: TransportLimits) -> None:
        self._limits = limits
        self._rbuf = bytearray()
        self._rpos = 0
        self.opened_at = time.monotonic()
        self.connecting_since = None
        self.frames = 0
        self._sealing = threading.RLock()
        self._unseal()

    def _unseal(self) -> None:
        with self._sealing:
            self._seal = self._open = None
            self._sent = self._opened = 0

    @property
    def sealed(self) -> bool:
        """Does this connection send and read sealed frames (both ends said they read them)?"""
        return self._seal is not None

    def seal_if_agreed(self) -> bool:
        """Switch to sealed frames, both directions, when both random keys of the exchange are known
        and both carry sealing.SEALS_MARK (each end said it reads them). Called by HsmTransport right where
        the exchange ends on this end: the initiator after reading the acceptor's key (before it
        sends its address), the acceptor after sending its key. Every frame after that point, both
        ways, is sealed; a Fernet frame is refused from then on."""
        mine, theirs = self.recvRandKey, self.sendRandKey
        if not (marked(mine) and marked(theirs)):
            return False
        with self._sealing:
            self._seal = frame_cipher(frame_key(theirs, mine))
            self._open = frame_cipher(frame_key(mine, theirs))
            self._sent = self._opened = 0
        return True

    # --- writing --------------------------------------------------------------

    def send(self, message: Any) -> None:
        """A sealed frame (module docstring) once the connection is sealed; otherwise pysyncobj's
        send (the connection's random key, pickle, zlib, Fernet, length prefix) with pickle protocol 4
        and the zlib stream made of stored blocks.

        Not only the tick thread sends (pysyncobj's transferLeadership sends from its caller's): a
        frame's number, its sealing and its place in the write buffer are taken under one lock, so
        two frames never share a nonce and go out in the order of their numbers."""
        with self._sealing:
            seal = self._seal
            if seal is not None:
                nonce = NONCE.pack(self._sent)
                self._sent += 1
                data = SEALED + seal.encrypt(nonce, pickle.dumps(message, protocol=PICKLE_PROTOCOL), SEALED)
            else:
                if self.sendRandKey:
                    message = (self.sendRandKey, message)
                data = stored_zlib(pickle.dumps(message, protocol=PICKLE_PROTOCOL))
                if self.encryptor:
                    data = self.encryptor.encrypt_at_time(data, int(monotonic()))
            self._TcpConnection__writeBuffer += _HEADER.pack(len(data)) + data
            self._TcpConnection__trySendBuffer()

    # --- reading --------------------------------------------------------------

    def _TcpConnection__processRead(self) -> bool:  # noqa: N802 - pysyncobj's private name
        sock = self._TcpConnection__socket
        try:
            incoming = sock.recv(self._TcpConnection__recvBufferSize)
        except OSError as exc:
            if exc.errno not in (socket.errno.EAGAIN, socket.errno.EWOULDBLOCK):  # type: ignore[attr-defined]
                self.disconnect()
            return False
        if not incoming or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.disconnect()
            return False
        self._rbuf += incoming
        pending = len(self._rbuf) - self._rpos
        if pending >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._rbuf, self._rpos)
            if not 0 <= length <= self._limits.max_frame_bytes:
                self._refuse(f"frame header announces {length} bytes (limit {self._limits.max_frame_bytes})")
                return False
            if pending >= _HEADER.size + length:
                return False  # a whole frame is here: parse it before reading more
        return True

    def _TcpConnection__processParseMessage(self) -> Any:  # noqa: N802 - pysyncobj's private name
        buf, pos = self._rbuf, self._rpos
        if len(buf) - pos < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(buf, pos)
        if not 0 <= length <= self._limits.max_frame_bytes:
            self._refuse(f"frame header announces {length} bytes (limit {self._limits.max_frame_bytes})")
            return None
        end = pos + _HEADER.size + length
        if len(buf) < end:
            return None
        data = bytes(buf[pos + _HEADER.size : end])
        message = self._decode(data)
        if message is _REFUSED:
            return None
        self._rpos = end
        if self._rpos > len(buf) // 2:  # compact: the consumed prefix goes, in one copy
            del buf[: self._rpos]
            self._rpos = 0
        self.frames += 1
        return message

    def _decode(self, data: bytes) -> Any:
        opener = self._open
        if opener is not None:
            try:
                if data[:1] != SEALED:
                    raise ValueError("an unsealed frame on a sealed connection")
                plain = opener.decrypt(NONCE.pack(self._opened), data[1:], SEALED)
                self._opened += 1
                return pickle.loads(plain)
            except Exception as exc:
                # InvalidTag: altered, replayed, reordered, of another connection or direction
                self._refuse(
                    f"a sealed frame failed authentication or decoding ({type(exc).__name__}: {exc})"
                )
                return _REFUSED
        try:
            if self.encryptor:
                plain = self.encryptor.decrypt(data)  # verifies the token's HMAC, timestamp included
                stamp = fernet_timestamp(data)
                if stamp < self.recvLastTimestamp:
                    raise ValueError("replayed frame")
                self.recvLastTimestamp = stamp
                data = plain
            message = pysyncobj_pickle.loads(zlib.decompress(data))
            if self.recvRandKey:
                rand_key, message = message
                if rand_key != self.recvRandKey:
                    raise ValueError("frame of another connection")
        except Exception as exc:
            self._refuse(f"a frame failed authentication or decoding ({type(exc).__name__}: {exc})")
            return _REFUSED
        return message

    def _refuse(self, why: str) -> None:
        log.warning("Raft connection %s dropped: %s", self._peer(), why)
        self.disconnect()

    def _peer(self) -> str:
        sock = self._TcpConnection__socket
        try:
            host, port = sock.getpeername()[:2]
            return f"{host}:{port}"
        except (OSError, AttributeError, ValueError):  # closed, or not an IP socket
            return "(closed)"

    # --- life cycle -------------------------------------------------------------

    def connect(self, host: str, port: int) -> bool:
        self._rbuf = bytearray()
        self._rpos = 0
        self.connecting_since = time.monotonic()
        self._unseal()
        started: bool = super().connect(host, port)
        sock = self._TcpConnection__socket
        if started and sock is not None:
            _set_user_timeout(sock, self._limits.connect_timeout)
        return started

    def disconnect(self) -> None:
        self._rbuf = bytearray()
        self._rpos = 0
        self.connecting_since = None
        self._unseal()
        super().disconnect()


_REFUSED = object()


def fernet_timestamp(token: bytes) -> int:
    """The timestamp of a Fernet token (version byte, then 8 bytes big-endian: its first 12 base64
    characters). Read it only from a token `Fernet.decrypt` accepted: that authenticated it."""
    return int(_TIMESTAMP.unpack_from(base64.urlsafe_b64decode(token[:12]), 1)[0])


def stored_zlib(data: bytes) -> bytes:
    """`data` as a zlib stream of stored (uncompressed) blocks: what any zlib.decompress reads."""
    deflate = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    return deflate.compress(data) + deflate.flush()


def _set_user_timeout(sock: socket.socket, seconds: float) -> None:
    """Drop a connection whose sent data stays unacknowledged this long (Linux TCP_USER_TIMEOUT)."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, max(1000, int(seconds * 2000)))


def harden(conn: TcpConnection, limits: TransportLimits) -> HardenedConnection:
    """Turn a connection pysyncobj built into a HardenedConnection (same object, same callbacks)."""
    if not isinstance(conn, HardenedConnection):
        pending = conn._TcpConnection__readBuffer
        conn.__class__ = HardenedConnection
        conn._init_hardening(limits)
        conn._rbuf += pending
        sock = conn._TcpConnection__socket
        if sock is not None:
            _set_user_timeout(sock, limits.connect_timeout)
    assert isinstance(conn, HardenedConnection)
    return conn


EVENT_LOG_EVERY = 10.0  # s between INFO lines about one member's connection coming or going


class HsmTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport with hardened connections and a send hook for the engine.

    The SyncObj that builds it must carry `transport_limits` (TransportLimits),
    `before_send(node, message) -> bool` (False: the engine holds the message and sends it
    later itself, e.g. an acknowledgement waiting for the journal fsync) and
    `on_peer_lost(node)` (a member connection dropped)."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803 - pysyncobj's names
        self._limits: TransportLimits = syncObj.transport_limits
        self.dropped_handshakes = 0
        self.learned: set[str] = set()  # addresses contacted although the configuration does not list them
        self._refusals_logged: set[str] = set()
        self._events_logged: dict[tuple[str, str], tuple[float, int]] = {}  # (kind, node) -> (last, muted)
        super().__init__(syncObj, selfNode, otherNodes)
        syncObj.addOnTickCallback(self._expire_connections)

    def addNode(self, node: Any) -> None:  # noqa: N802 - pysyncobj's name
        if node.address in self.learned:
            # the configuration now lists a learned member: keep its connection (pysyncobj would
            # replace an outgoing one with a new, unconnected object and orphan the live one)
            self.learned.discard(node.address)
            return
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None:
            harden(conn, self._limits)

    def known_addresses(self) -> set[str]:
        """Raft addresses this transport talks to: the configuration's and the learned ones."""
        return set(self._nodeAddrToNode)

    def learn(self, address: str) -> None:
        """Contact `address` as a member although the configuration does not list it (rules.leader_to_learn)."""
        if address in self._nodeAddrToNode:
            return
        self.learned.add(address)
        super().addNode(TCPNode(address))
        conn = self._connections.get(TCPNode(address))
        if conn is not None:
            harden(conn, self._limits)

    def forget(self, address: str) -> None:
        """Stop contacting a learned address the configuration does not list (rules.learned_to_forget)."""
        if address in self.learned:
            self.learned.discard(address)
            node = TCPNode(address)
            connected = self._syncObj.isNodeConnected(node)
            self.dropNode(node)  # pops the connection first: its disconnect reports no node
            if connected:
                self._onNodeDisconnected(node)

    def _onOutgoingConnected(self, conn: Any) -> None:  # noqa: N802 - pysyncobj's name
        if self._syncObj.encryptor and isinstance(conn, HardenedConnection):
            # pysyncobj's (transport.py:453-456), with a key that says "this end reads sealed frames"
            conn.setOnMessageReceivedCallback(functools.partial(self._onOutgoingMessageReceived, conn))
            conn.recvRandKey = new_random_key()
            conn.send(conn.recvRandKey)
            return
        super()._onOutgoingConnected(conn)

    def _onOutgoingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802 - pysyncobj's name
        if not conn.sendRandKey and isinstance(conn, HardenedConnection):
            # pysyncobj's (transport.py:473-479): the acceptor's key; seal (when both said they read
            # sealed frames) before this end's address goes out
            conn.sendRandKey = message
            conn.seal_if_agreed()
            self._sendSelfAddress(conn)
        super()._onOutgoingMessageReceived(conn, message)

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802 - pysyncobj's name
        if self._syncObj.encryptor and not conn.sendRandKey and isinstance(conn, HardenedConnection):
            # pysyncobj's (transport.py:342-346): the initiator's key; this end's key goes out in a
            # Fernet frame (the initiator cannot open a sealed one yet), everything after is sealed
            # when both said they read sealed frames
            conn.sendRandKey = message
            conn.recvRandKey = new_random_key()
            conn.send(conn.recvRandKey)
            conn.seal_if_agreed()
            return
        if (
            isinstance(message, str)
            and message != "readonly"
            and (conn.sendRandKey or not self._syncObj.encryptor)  # the member's address, not the key
            and message not in self._nodeAddrToNode
            and len(self._refusals_logged) < 16
            and message not in self._refusals_logged
        ):
            # pysyncobj drops it silently (transport.py:353-358): say once per address why
            self._refusals_logged.add(message)
            log.info(
                "%s: Raft connection from %s refused: not in this member's configuration (a removed "
                "member, or one added since this member's configuration)",
                self._selfNode,
                message,
            )
        super()._onIncomingMessageReceived(conn, message)

    def _onNewIncomingConnection(self, conn: Any) -> None:  # noqa: N802 - pysyncobj's name
        harden(conn, self._limits)
        super()._onNewIncomingConnection(conn)

    def send(self, node: Any, message: Any) -> bool:
        if isinstance(message, dict):
            conn = self._connections.get(node)
            if conn is not None and self._syncObj.encryptor and not conn.sendRandKey:
                # key exchange not finished: the peer would take this frame for the exchange and
                # drop the connection (pysyncobj sends RequestVotes to every member unchecked)
                return False
            if not self._syncObj.before_send(node, message):
                return True
        sent: bool = super().send(node, message)
        return sent

    def _onNodeConnected(self, node: Any) -> None:  # noqa: N802 - pysyncobj's name
        conn = self._connections.get(node)
        if isinstance(conn, HardenedConnection) and self._syncObj.encryptor:
            frames = "sealed frames" if conn.sealed else "Fernet frames (the peer does not read sealed ones)"
            self._log_event("connected", node, f"Raft connection with member {node}: {frames}")
        super()._onNodeConnected(node)

    def _onDisconnected(self, conn: Any) -> None:  # noqa: N802 - pysyncobj's name
        node = self._connToNode(conn)
        was_connected = node is not None and self._syncObj.isNodeConnected(node)
        if was_connected:
            self._log_event("lost", node, f"Raft connection to member {node} lost")
        super()._onDisconnected(conn)
        if was_connected:
            self._syncObj.on_peer_lost(node)

    def _log_event(self, kind: str, node: Any, text: str) -> None:
        """Log a connection event at INFO, at most once per EVENT_LOG_EVERY s per member and kind,
        with how many were left out since (a removed member still running redials ~17 times a
        second: a new user saw 830 'lost' lines in 50 s)."""
        key = (kind, str(node))
        now = time.monotonic()
        last, muted = self._events_logged.get(key, (-EVENT_LOG_EVERY, 0))
        if now - last < EVENT_LOG_EVERY:
            self._events_logged[key] = (last, muted + 1)
            return
        self._events_logged[key] = (now, 0)
        more = f" ({muted} more since the last such line)" if muted else ""
        log.info("%s: %s%s", self._selfNode, text, more)

    def send_now(self, node: Any, message: Any) -> bool:
        """Send without the engine's hook (the engine releasing what it held)."""
        sent: bool = super().send(node, message)
        return sent

    def _expire_connections(self) -> None:
        now = time.monotonic()
        for conn in list(self._unknownConnections):
            if (
                isinstance(conn, HardenedConnection)
                and now - conn.opened_at > self._limits.handshake_deadline
            ):
                self.dropped_handshakes += 1
                conn._refuse(
                    f"no member handshake within {self._limits.handshake_deadline:g}s "
                    f"({conn.frames} authenticated frame(s))"
                )
                self._unknownConnections.discard(conn)
        for conn in list(self._connections.values()):
            since = getattr(conn, "connecting_since", None)
            if conn.state == CONNECTION_STATE.CONNECTING and since is not None:
                if now - since > self._limits.connect_timeout:
                    conn.disconnect()
            elif conn.state == CONNECTION_STATE.CONNECTED and since is not None:
                conn.connecting_since = None

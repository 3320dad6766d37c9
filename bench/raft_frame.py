"""What one Raft frame costs, sent and received, in-process (issue 16: every write round costs frames).

No cluster: two connections of the Raft transport over a real loopback TCP socket and pysyncobj's
poller, the one a member's tick thread runs. Per frame kind (an AppendEntries carrying a ~1.5 KB
entry, an AppendEntries carrying only the commit index, an acknowledgement) and per framing:

- `pysyncobj`: plain pysyncobj 0.3.17 framing both ends (pickle 2, zlib level 3, Fernet checked twice);
- `fernet-main`: hsmnode's Fernet frames as main sent them (pysyncobj's `pickle.dumps`, which ignores
  the protocol it is given: protocol 2, so every `bytes` is pickled as a latin-1 string);
- `fernet`: hsmnode's Fernet frames, pickle protocol 4 (a member talking to an older peer);
- `sealed`: hsmnode's sealed frames (AES-256-GCM, a counter nonce; two members of this version).

`loop` is µs of this process's CPU per frame for the whole trip (send: pickle, seal, length prefix,
socket send; receive: poll, dispatch, recv, framing, open, unpickle), the best of `--rounds` rounds of
`--frames` frames; the pieces below it are µs each (timeit, best of 5), for the same message.

    .venv/bin/python -m bench.raft_frame [--frames 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket
import time
import timeit
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.encryptor import getEncryptor
from pysyncobj.poller import createPoller
from pysyncobj.tcp_connection import TcpConnection

from hsmnode.crypto.raft_frames import new_random_key
from hsmnode.raft import transport
from hsmnode.raft.transport import HardenedConnection, TransportLimits, harden, stored_zlib

ENTRY = (b"\x01" + os.urandom(1500), 1_234_567, 5)
MESSAGES: dict[str, dict[str, Any]] = {
    "append 1.5 KB": {
        "type": "append_entries",
        "term": 5,
        "commit_index": 1_234_566,
        "entries": [ENTRY],
        "prevLogIdx": 1_234_566,
        "prevLogTerm": 5,
        "lease_sent": 12345.678,
        "lease_left": 0.25,
    },
    "append commit": {
        "type": "append_entries",
        "term": 5,
        "commit_index": 1_234_567,
        "entries": [],
        "prevLogIdx": 1_234_567,
        "prevLogTerm": 5,
        "lease_sent": 12345.678,
        "lease_left": 0.25,
    },
    "acknowledgement": {
        "type": "next_node_idx",
        "term": 5,
        "next_node_idx": 1_234_568,
        "success": True,
        "lease_echo": 12345.678,
        "reads": ("batch",),
    },
}
FRAMINGS = ("pysyncobj", "fernet-main", "fernet", "sealed")


class _Protocol2Pickle:
    """main's transport pickled with pysyncobj's `pickle.dumps`, which always uses protocol 2."""

    dumps = staticmethod(lambda obj, protocol=None: pysyncobj_pickle.dumps(obj))
    loads = staticmethod(pickle.loads)


@contextmanager
def connected(framing: str) -> Iterator[tuple[Any, TcpConnection, TcpConnection, list[Any]]]:
    """(poller, sender, receiver, received) over one loopback TCP connection, keys exchanged."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    for sock in (a, b):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    poller = createPoller("auto")
    received: list[Any] = []
    sender = TcpConnection(poller, socket=a)
    receiver = TcpConnection(poller, socket=b, onMessageReceived=received.append)
    fernet = getEncryptor("bench raft password")
    initiator_key, acceptor_key = new_random_key(), new_random_key()
    for conn, mine, theirs in (
        (sender, initiator_key, acceptor_key),
        (receiver, acceptor_key, initiator_key),
    ):
        conn.encryptor = fernet
        if framing != "pysyncobj":
            harden(conn, TransportLimits())
        conn.recvRandKey, conn.sendRandKey = mine, theirs
        if framing == "sealed":
            assert isinstance(conn, HardenedConnection) and conn.seal_if_agreed()
    saved = transport.pickle
    if framing == "fernet-main":
        transport.pickle = _Protocol2Pickle  # type: ignore[assignment]
    try:
        yield poller, sender, receiver, received
    finally:
        transport.pickle = saved
        sender.disconnect()
        receiver.disconnect()


def loop_us(framing: str, message: dict[str, Any], frames: int, rounds: int) -> float:
    """µs of CPU per frame sent and received (the best round)."""
    best = float("inf")
    with connected(framing) as (poller, sender, _receiver, received):
        for _ in range(rounds):
            received.clear()
            started = time.process_time()
            for i in range(frames):
                sender.send(message)
                while len(received) <= i:
                    poller.poll(0.1)
            best = min(best, (time.process_time() - started) / frames * 1e6)
            assert received[-1] == message
    return best


def pieces_us(message: dict[str, Any]) -> dict[str, float]:
    """µs per piece of making and reading a frame of `message` (timeit, best of 5)."""
    fernet = getEncryptor("bench raft password")
    key = os.urandom(32)
    gcm = AESGCM(os.urandom(32))
    nonce = bytes(12)
    keyed = (key, message)
    p2 = pysyncobj_pickle.dumps(keyed)
    p4 = pickle.dumps(keyed, protocol=4)
    bare = pickle.dumps(message, protocol=4)
    z4 = stored_zlib(p4)
    token = fernet.encrypt_at_time(z4, 5)
    sealed = gcm.encrypt(nonce, bare, b"\x01")

    def t(fn: Callable[[], object]) -> float:
        n = 5000
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

    return {
        "bytes: pickle 2 / pickle 4 / Fernet token / sealed": float("nan"),
        f"  {len(p2)} / {len(p4)} / {len(token)} / {len(sealed) + 1}": float("nan"),
        "pickle 2 dumps (main)": t(lambda: pysyncobj_pickle.dumps(keyed)),
        "pickle 4 dumps": t(lambda: pickle.dumps(keyed, protocol=4)),
        "stored zlib": t(lambda: stored_zlib(p4)),
        "zlib level 3 (pysyncobj)": t(lambda: zlib.compress(p4, 3)),
        "Fernet encrypt": t(lambda: fernet.encrypt_at_time(z4, 5)),
        "AES-GCM seal": t(lambda: gcm.encrypt(nonce, bare, b"\x01")),
        "Fernet decrypt": t(lambda: fernet.decrypt(token)),
        "Fernet extract_timestamp (pysyncobj's 2nd HMAC)": t(lambda: fernet.extract_timestamp(token)),
        "AES-GCM open": t(lambda: gcm.decrypt(nonce, sealed, b"\x01")),
        "zlib decompress": t(lambda: zlib.decompress(z4)),
        "unpickle 2 (main)": t(lambda: pickle.loads(p2)),
        "unpickle 4": t(lambda: pickle.loads(p4)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"load average {os.getloadavg()[0]:.2f}; µs of CPU per frame, send + receive (best of {args.rounds})"
    )
    print(f"{'frame':<18}" + "".join(f"{f:>13}" for f in FRAMINGS) + "   sealed/main")
    for name, message in MESSAGES.items():
        figures = {f: loop_us(f, message, args.frames, args.rounds) for f in FRAMINGS}
        ratio = figures["sealed"] / figures["fernet-main"]
        print(
            f"{name:<18}" + "".join(f"{figures[f]:>13.1f}" for f in FRAMINGS) + f"   {ratio:>10.2f}",
            flush=True,
        )
    for name, message in MESSAGES.items():
        print(f"\npieces, {name} (µs)")
        for piece, us in pieces_us(message).items():
            print(f"  {piece:<52}" + ("" if us != us else f"{us:>8.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

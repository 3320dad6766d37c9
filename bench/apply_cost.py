"""What one KeyCreate costs every member's tick thread: apply, in-process (issue 16, replicated writes).

No cluster, no threads: the steadiest figure of a write's per-member work, so a change to apply can
be judged on a loaded machine (run both trees in the same minutes, or read the ratio to the
calibration row, which does not change with hsmnode's code). A state with one partition and its
Crypto Officer is built by applying commands as a cluster would; then, per round, `--keys` AES-256
KeyCreate entries (as the member's `Keys/Generate` encodes them: 60 bytes of wrapped material,
four usages) go through what a member's tick thread runs for each committed entry:

- `entry`: pysyncobj's entry unpickle and `ReplicatedState.apply_payload` (decode, apply: authorize,
  store the key, its digest hash, the audit chain record, the request-id memory and its hash);
- `decode`, `apply`: the two halves alone (apply on decoded commands);
- with `--breakdown`, µs per entry inside apply, by function (inclusive; wall time by
  `time.perf_counter()` around each call: the thread CPU clock is a system call here, 0.5-2 µs a
  read, which swamped the small functions; a wrapper adds ~0.3 µs to each figure and to its
  callers');
- `frame`: one AppendEntries of `--batch` entries sealed and opened by the Raft transport (pickle,
  AES-256-GCM: two members of this version), per entry, as the leader pays per follower and each
  follower once (bench/raft_frame.py: a whole frame's trip, by framing).

Figures are µs of thread CPU per entry: the best and the median of `--rounds` rounds, each round on
a fresh state (a partition holds at most 10,000 keys).

    .venv/bin/python -m bench.apply_cost [--keys 2000] [--rounds 5] [--batch 12] [--breakdown]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hsmnode.domain import commands as c

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
FINGERPRINT = "a" * 64
NOW = 1_700_000_000_000


class _Builder:
    """Applies set-up commands with fresh request ids and a moving clock."""

    def __init__(self) -> None:
        from hsmnode.domain.state import HsmState

        self.state = HsmState()
        self.count = 0

    def ok(self, cls: type[c.Command], actor: str, **fields: Any) -> None:
        from hsmnode.domain.apply import apply

        self.count += 1
        result = apply(
            self.state, cls(actor=actor, request_id=f"setup-{self.count}", timestamp=NOW, **fields)
        )
        if not result.ok:
            raise RuntimeError(f"set-up command {cls.TYPE} refused: {result.message}")


def partition_state() -> tuple[Any, str]:
    """(HsmState with partition "pay", its CO logged in through client "app"; the CO's actor string)."""
    b = _Builder()
    cert = f"cert:{'c' * 64}"
    b.ok(
        c.InitCluster,
        "node:node1",
        cluster_id="c-bench",
        default_password_hashes=("h:a", "h:o", "h:m", "h:u"),
    )

    def own_password(name: str) -> str:
        """Set user `name`'s own password (the factory one must change); its actor string."""
        epoch = b.state.users[name].credential.epoch
        b.ok(c.ChangePassword, cert, target=f"user:{name}", password_hash=f"h:{name}", verified_epoch=epoch)
        return f"user:{name}#{b.state.users[name].credential.epoch}"

    admin = own_password("admin")
    b.ok(c.UserSetPassword, admin, name="audit", password_hash="h:audit")
    b.ok(c.UserSetEnabled, admin, name="audit", enabled=True)
    audit = own_password("audit")
    b.ok(c.HsmInit, admin, label="hsm", so_password_hash="h:so")
    b.ok(c.AuditorInit, audit, password_hash="h:au")
    assert b.state.hsm.so is not None
    so = f"{admin}/hsm:SO#{b.state.hsm.so.epoch}"
    b.ok(c.PartitionCreate, so, name="pay")
    b.ok(c.ClientRegister, admin, name="app", cert_pem=PEM, fingerprint=FINGERPRINT)
    b.ok(c.ClientAssign, admin, name="app", partition="pay")
    client = f"client:{FINGERPRINT}#{b.state.clients['app'].epoch}"
    b.ok(c.PartitionInit, client, name="pay", label="pay", cloning_domain="dom", po_password_hash="h:po")
    part = b.state.partitions["pay"]

    def session(role: str) -> str:
        sessions = b.state.clients["app"].sessions.get(f"pay:{role}", 0)
        return f"{client}/partition:pay:{role}#{part.roles[role].epoch}#{sessions}"

    b.ok(c.PartitionRoleInit, session("PO"), name="pay", role="CO", password_hash="h:co0")
    epoch = part.roles["CO"].epoch
    b.ok(c.ChangePassword, client, target="partition:pay:CO", password_hash="h:co", verified_epoch=epoch)
    return b.state, session("CO")


def key_creates(actor: str, first: int, count: int) -> list[c.KeyCreate]:
    return [
        c.KeyCreate(
            actor=actor,
            request_id=f"bench-{n:012d}-{'r' * 20}",
            timestamp=NOW + n,
            container="partition:pay",
            object_id=f"{n:032x}",
            label=f"bench-key-{n}",
            key_type="AES",
            size="256",
            object_class="secret",
            extractable=False,
            usage=("decrypt", "encrypt", "unwrap", "wrap"),
            wrapped=os.urandom(60),
            public_der=b"",
            origin="generated",
        )
        for n in range(first, first + count)
    ]


def entries(payloads: list[bytes]) -> list[bytes]:
    """The journal entries pysyncobj makes of `ReplicatedState.apply(payload)` calls (type byte + pickle)."""
    from pysyncobj import pickle

    return [b"\x00" + pickle.dumps((0, (payload,))) for payload in payloads]


def per_entry_us(run: Callable[[], None], count: int) -> float:
    """µs of thread CPU per entry of `run`, after a full garbage collection (the set-up's garbage)."""
    gc.collect()
    started = time.thread_time()
    run()
    return (time.thread_time() - started) / count * 1e6


class Timers:
    """Inclusive wall time per wrapped function while installed (one thread, nothing else running)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, holder: Any, name: str, label: str) -> None:
        inner = holder[name] if isinstance(holder, dict) else getattr(holder, name)
        spent = self.spent
        spent.setdefault(label, 0.0)

        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] += clock() - started

        if isinstance(holder, dict):
            holder[name] = timed
            self._undo.append(lambda: holder.__setitem__(name, inner))
        else:
            setattr(holder, name, timed)
            self._undo.append(lambda: setattr(holder, name, inner))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def breakdown_timers() -> Iterator[Timers]:
    from hsmnode import replicated_state
    from hsmnode.domain import apply, audit, objects, state

    timers = Timers()
    # the names the callers look up at call time (module globals), so each wrapper is on the real path
    timers.wrap(replicated_state, "decode", "decode")
    timers.wrap(replicated_state, "apply_command", "apply (dedup, handler, record, remember)")
    timers.wrap(apply.HANDLERS, c.KeyCreate, "  handler key_create")
    timers.wrap(apply.keys, "authorize", "    authorize")
    timers.wrap(apply.keys, "_coherent", "    check_attributes (remembered)")
    timers.wrap(apply.keys, "KeyObject", "    KeyObject()")
    timers.wrap(objects, "object_hash", "    key digest hash (object_hash)")
    timers.wrap(apply.keys, "described", "    result's key (described)")
    timers.wrap(apply, "_record", "  audit record (_record)")
    timers.wrap(audit, "cluster_body", "    its canonical body (cluster_body)")
    timers.wrap(audit, "chain_hash", "    chain hash (chain_hash)")
    timers.wrap(apply, "_remember", "  request-id memory (_remember)")
    timers.wrap(state, "_seen_hash", "    its digest hash (_seen_hash)")
    try:
        yield timers
    finally:
        timers.undo()


def frame_us(payloads: list[bytes], batch: int) -> tuple[float, float]:
    """(seal, open) µs per entry of AppendEntries frames of `batch` entries, sealed as two members of
    this version seal them (pickle protocol 4, AES-256-GCM with a counter nonce: HardenedConnection)."""
    import pickle
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from hsmnode.raft.transport import PICKLE_PROTOCOL

    gcm = AESGCM(AESGCM.generate_key(256))
    nonce = struct.Struct("<4xQ")
    raw = entries(payloads)
    messages = [
        {
            "type": "append_entries",
            "term": 3,
            "commit_index": 100 + i,
            "entries": [(e, 100 + i + j, 3) for j, e in enumerate(raw[i : i + batch])],
            "prevLogIdx": 99 + i,
            "prevLogTerm": 3,
            "lease_sent": 1.0,
            "lease_left": 1.0,
        }
        for i in range(0, len(raw), batch)
    ]
    frames: list[bytes] = []

    def seal() -> None:
        for n, message in enumerate(messages):
            frames.append(
                gcm.encrypt(nonce.pack(n), pickle.dumps(message, protocol=PICKLE_PROTOCOL), b"\x01")
            )

    def open_() -> None:
        for n, frame in enumerate(frames):
            pickle.loads(gcm.decrypt(nonce.pack(n), frame, b"\x01"))

    return per_entry_us(seal, len(raw)), per_entry_us(open_, len(raw))


def calibration_us() -> float:
    """sha256 of 1 KiB, 100 times, per time: a yardstick that hsmnode's code does not move."""
    data = b"x" * 1024

    def run() -> None:
        for _ in range(100):
            hashlib.sha256(data).digest()

    return per_entry_us(run, 1)


def one_round(keys: int, batch: int, breakdown: bool) -> dict[str, float]:
    from hsmnode.domain.apply import apply
    from hsmnode.domain.commands import decode
    from hsmnode.replicated_state import ReplicatedState

    figures: dict[str, float] = {"calibration (sha256 1 KiB x100)": calibration_us()}
    state, actor = partition_state()
    consumer = ReplicatedState(state)
    raw = entries([cmd.encode() for cmd in key_creates(actor, 0, keys)])

    def run_entries() -> None:
        from pysyncobj import pickle

        for entry in raw:
            consumer.apply_payload(pickle.loads(entry[1:])[1][0])

    figures["entry (unpickle + apply_payload)"] = per_entry_us(run_entries, keys)
    commands = key_creates(actor, keys, keys)
    payloads = [cmd.encode() for cmd in commands]
    figures["encode (proposer)"] = per_entry_us(lambda: [cmd.encode() for cmd in commands], keys)
    decoded: list[c.Command] = []
    figures["decode"] = per_entry_us(lambda: decoded.extend(decode(p) for p in payloads), keys)
    figures["apply"] = per_entry_us(lambda: [apply(consumer.state, cmd) for cmd in decoded], keys)
    if breakdown:
        more = key_creates(actor, 2 * keys, keys)
        with breakdown_timers() as timers:
            for cmd in more:
                consumer.apply_payload(cmd.encode())
        figures.update({name: spent / keys * 1e6 for name, spent in timers.spent.items()})
    seal, open_ = frame_us(payloads, batch)
    figures[f"frame seal, {batch} entries (per entry)"] = seal
    figures[f"frame open, {batch} entries (per entry)"] = open_
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=2000, help="KeyCreate entries per round (≤ 3,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=12, help="entries per AppendEntries frame")
    parser.add_argument("--breakdown", action="store_true", help="time apply's functions too")
    args = parser.parse_args()
    if not 0 < args.keys <= 3000:
        parser.error("--keys must be 1-3000 (each round adds up to 3x that to one partition)")
    rounds = [one_round(args.keys, args.batch, args.breakdown) for _ in range(args.rounds)]
    print(
        f"µs of thread CPU per KeyCreate entry, {args.rounds} rounds of {args.keys} (load {os.getloadavg()[0]:.1f})"
    )
    print(f"{'':44s} {'best':>8s} {'median':>8s}")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(f"{name:44s} {min(values):8.1f} {statistics.median(values):8.1f}")


if __name__ == "__main__":
    main()

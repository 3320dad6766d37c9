"""The members' CryptoStreams and the queue of operations waiting for a batch on them (issue 16).

The coalescer (`_coalesce.py`) puts each caller's operations in the queue as *parts* (an
ordinary call: one operation; a bulk call: parts of up to `part_ops` operations and `max_bytes`
bytes) and settles their answers; this module turns waiting parts into batches:

    StreamPool.kick()                tell one member's stream with room to take waiting parts
    StreamPool.next_batch(stream)    what that stream's sending thread (gRPC's request thread)
                                     takes: it sleeps until told, then takes a batch
    StreamPool.encode(...)           a taken batch as CryptoBatch bytes (`_crypto_wire.py`)

Batch forming, measured with bench/stream.py at 16 threads (bench/findings/crypto.md):
- a stream is told when no other stream is told already: one whose member has a small batch
  (PIPELINE_OPS) of cheap operations in flight (PIPELINE_PER_OP of member CPU per operation, from
  the busy_us its answers carry) gets a second behind it (`max_inflight`, 2): the member's
  stream thread then finds the next batch waiting as it sends an answer, and at 16 threads one
  member and the client do the work (ECDSA: ~95% of batches pipelined, ~20-30% less CPU per
  operation than spread over the members, bench/findings/crypto.md); else one with no
  batch in flight, round robin over the healthy members (costly operations such as RSA, and
  bulk calls' large batches, spread over the members' cores);
- a batch takes 1/SHARES (2) of the parts in play: waiting, in flight, and coming back (the
  callers the last answers woke, whose next operations are on their way): two batches in
  flight of half the callers each, the one being answered while the other runs. Per batch a
  client spends ~200-400 µs of CPU in gRPC's threads, so larger batches cost less per
  operation; two keep a member and the client busy at once;
- the told stream lingers (at most `linger`, 1 ms) until that many parts wait: without it, a
  batch leaves with whoever came back first and batches stay small (4-5 operations at 16
  threads over 3 members, against 7-8); three times as long (COSTLY_LINGER) on a stream whose
  member spends more than PIPELINE_PER_OP per operation (RSA-2048: ~0.6-1 ms): such a batch keeps
  a member busy for milliseconds, the other batch in flight keeps the cores busy meanwhile, and
  the callers that signing members slow down still join it (RSA-2048 from 16 threads: ~7 per batch
  against ~6.5, bench/findings/crypto.md, "RSA coalesced");
- at most `max_ops` operations and `max_bytes` bytes of one session token per batch. A bulk call's
  parts (PART_OPS, 64) are smaller than a batch (MAX_OPS, 256): when few parts wait they spread over
  the members, when many wait a batch takes up to four. A member's cost per batch is ~0.5-1 ms of
  CPU whatever it holds (gRPC's stream hand-offs, the request log, the key-usage record, the key's
  checks), so at 64 operations per batch AES-GCM 1 KiB spent ~35% more CPU per operation than at
  256 (bench/findings/crypto.md).
An operation's id in its batch is (part number << 16 | position in the part).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from hsmnode.client import _crypto_wire as wire
from hsmnode.pb import crypto_stream_pb2

MAX_OPS = 256  # operations per batch (the member takes up to 1024)
PART_OPS = 64  # operations per part of a bulk call: small enough to spread a call over the members
MAX_BYTES = 1024 * 1024  # bytes per batch (the member takes up to 2 MiB)
MAX_INFLIGHT = 2  # batches in flight per member: a second only when pipelining (see _pick)
PIPELINE_OPS = 32  # a batch of at most this many operations may have another sent behind it...
PIPELINE_PER_OP = 0.0004  # ...by a member spending at most this CPU (s) per operation (busy_us, EWMA)
SHARES = 2  # a batch takes 1/SHARES of the parts in play (waiting, in flight, coming back)
LINGER = 0.001  # s at most a told stream waits for the callers an answer woke to come back
COSTLY_LINGER = 3  # times LINGER for a stream whose member spends more than PIPELINE_PER_OP per operation
IDLE_CLOSE = 2.0  # s without work after which a member's stream is closed (it holds a member thread)
STREAMLESS_FOR = 10.0  # s a member that refused a stream gets unary calls only
OVERHEAD = 16  # bytes a CryptoOp adds to its request's body (id, tags, lengths, timeout)
_PATH = "/hsmnode.pb.CryptoStream/Batch"
OPEN = object()  # an answer not come yet
UNARY = object()  # an operation its caller runs through the unary RPC


class Call:
    """One caller's operations: per operation its request body and its answer (a response
    message, an HsmError, OPEN or UNARY); `left` not answered yet (changed under the pool's
    lock) and a lock held until it reaches 0 (cheaper than a Condition per call)."""

    __slots__ = ("method", "field", "token", "deadline", "bodies", "answers", "left", "done", "over")

    def __init__(self, method: str, token: str, deadline: float, bodies: Sequence[bytes]) -> None:
        self.method = method
        self.field = wire.FIELDS[method]
        self.token = token
        self.deadline = deadline  # time.monotonic()
        self.bodies = bodies
        self.answers: list[Any] = [OPEN] * len(bodies)
        self.left = len(bodies)
        self.done = threading.Lock()
        self.done.acquire()
        self.over = False  # its deadline passed: what was left was answered Unavailable


class Part:
    """Operations of one call that travel together (`index`: their positions in the call)."""

    __slots__ = ("call", "index", "size", "failures")

    def __init__(self, call: Call, index: Sequence[int], size: int, failures: int = 0) -> None:
        self.call = call
        self.index = index
        self.size = size  # bytes in a batch
        self.failures = failures  # streams that failed under it


class MemberStream:
    """One open CryptoStream/Batch call to one member, and the batches in flight on it. gRPC's
    request thread runs `_requests` (it sleeps on `wake` until told to take a batch), a reader
    thread of its own hands each CryptoResults to the pool."""

    def __init__(self, pool: StreamPool, endpoint: str) -> None:
        self.endpoint = endpoint
        self.inflight: dict[int, tuple[list[Part], int, float]] = {}  # id -> parts, operations, sent at
        self.open = True
        self.closing = False  # closed by the client: what is in flight fails, nothing is resent
        self.told = False  # told to take waiting parts (it holds a place among the batches out)
        self.per_op = 0.0  # member CPU s per operation of its batches (busy_us, EWMA; 0: not known)
        self.wake = threading.Condition(pool.lock)
        self._pool = pool
        transport = pool.transport
        batch = transport.channel(endpoint).stream_stream(
            _PATH, request_serializer=None, response_deserializer=crypto_stream_pb2.CryptoResults.FromString
        )
        self.call = batch(self._requests(), metadata=transport.stream_metadata())
        threading.Thread(target=self._read, name=f"crypto-stream-{endpoint}", daemon=True).start()

    def close(self) -> None:
        with self._pool.lock:
            self.open = False
            self.wake.notify()
        self.call.cancel()

    def _requests(self) -> Iterator[bytes]:
        pool = self._pool
        while True:
            with pool.lock:
                taken = pool.next_batch(self)
            if taken is None:
                return
            yield pool.encode(*taken)

    def _read(self) -> None:
        try:
            for results in self.call:
                self._pool.answered(self, results)
        except grpc.RpcError as exc:
            self._pool.broken(self, exc)
        else:
            self._pool.broken(self, None)


class StreamPool:
    """The waiting parts and the members' streams (module docstring). Everything here runs under
    `lock` unless said otherwise; `answered` and `broken` (the reader threads' calls) are the
    coalescer's."""

    def __init__(
        self, transport: Any, *, max_ops: int, max_bytes: int, max_inflight: int, linger: float
    ) -> None:
        self.transport = transport
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self.linger = linger
        self.lock = threading.Lock()
        self.pending: deque[Part] = deque()
        self.streams: dict[str, MemberStream] = {}
        self.out = 0  # batches in flight, and a stream told to take one
        self.parts_out = 0  # parts in flight
        self.returning = 0  # callers an answer woke whose next operation has not come yet
        self.told: MemberStream | None = None  # the stream told to take waiting parts
        self.lingering = 0  # parts the told stream waits for (0: it does not wait)
        self.no_stream_until: dict[str, float] = {}  # members that refused a stream: unary for a while
        self._ids = itertools.count(1)
        # where the round robin starts: a random member, so that clients started alike do not all
        # pipeline their batches on the same member
        self._rotation = random.randrange(64)
        self.pipelined = 0  # batches sent behind another on the same member (_pick)

    def answered(self, stream: MemberStream, results: crypto_stream_pb2.CryptoResults) -> None:
        raise NotImplementedError

    def broken(self, stream: MemberStream, exc: grpc.RpcError | None) -> None:
        raise NotImplementedError

    def queued(self) -> None:
        """A part was queued: wake the lingering stream when what it waits for is there, or tell one."""
        if self.told is None:
            self.kick()
        elif self.lingering and len(self.pending) >= self.lingering:
            self.told.wake.notify()

    def kick(self, *, retry: bool = False) -> None:
        """Tell a member's stream to take waiting parts (or to wait for the returning ones), when
        one has room and none is told already. Only healthy members, unless `retry` (a waiting
        caller's poll, every _POLL s) and none is: no resending in a busy loop."""
        if self.told is not None or not (self.pending or self.returning):
            return
        stream = self._pick(retry)
        if stream is None:
            if self._streamless():
                finished: list[Call] = []
                for part in self.pending:
                    self.settle(part, part.index, UNARY, finished)
                self.pending.clear()
                self.notify(finished)
            return
        stream.told = True
        self.told = stream
        self.out += 1
        stream.wake.notify()

    def untell(self, stream: MemberStream) -> None:
        """`stream` no longer holds a place to take parts (it took them, or it is closed)."""
        if stream.told:
            stream.told = False
            self.told = None
            self.lingering = 0
            self.out -= 1

    def next_batch(self, stream: MemberStream) -> tuple[int, str, list[Part], float] | None:
        """The next batch `stream` sends (its id, token, parts, the time it is taken), waiting until
        it is told to take one; None when the stream is closed or idle."""
        while True:
            if not stream.open:
                return None
            if stream.told:
                most = self._share()
                want = min(most, len(self.pending) + self.returning)  # no waiting for parts not coming
                if self.linger and len(self.pending) < want:
                    self.lingering = want
                    costly = stream.per_op > PIPELINE_PER_OP
                    stream.wake.wait(self.linger * COSTLY_LINGER if costly else self.linger)
                    if not stream.told:
                        continue  # taken out meanwhile, which gave up its place
                    late = want - len(self.pending)
                    if late > 0:  # not back in time: not waited for again
                        self.returning = max(0, self.returning - late)
                self.untell(stream)
                taken = self._take(stream, most)
                if taken is not None:
                    self.kick()  # more waits than it took: another member takes the rest
                    return taken
            if not stream.wake.wait(IDLE_CLOSE) and not stream.told and not stream.inflight:
                stream.open = False  # idle: the stream ends (it holds a member thread)
                if self.streams.get(stream.endpoint) is stream:
                    del self.streams[stream.endpoint]
                return None

    def _share(self) -> int:
        """The parts a batch takes: 1/SHARES of those waiting, in flight and coming back, rounded up."""
        return max(1, -(-(len(self.pending) + self.parts_out + self.returning) // SHARES))

    def _take(self, stream: MemberStream, most: int) -> tuple[int, str, list[Part], float] | None:
        """Up to `most` waiting parts, max_ops operations and max_bytes bytes, of the first one's
        token, registered in flight on `stream`; None when nothing waits."""
        pending = self.pending
        parts: list[Part] = []
        skipped: list[Part] = []
        count = size = 0
        token = ""
        while pending and len(parts) < most:
            part = pending.popleft()
            call = part.call
            if call.over:
                continue
            if not parts:
                token = call.token
            elif call.token != token:
                skipped.append(part)
                continue
            if count + len(part.index) > self.max_ops or size + part.size > self.max_bytes:
                pending.appendleft(part)
                break
            parts.append(part)
            count += len(part.index)
            size += part.size
        pending.extendleft(reversed(skipped))
        if not parts:
            return None
        batch_id = next(self._ids)
        now = time.monotonic()
        stream.inflight[batch_id] = (parts, count, now)
        self.out += 1
        self.parts_out += len(parts)
        return batch_id, token, parts, now

    def encode(self, batch_id: int, token: str, parts: list[Part], now: float) -> bytes:
        """A taken batch as CryptoBatch bytes (outside the lock: a part is not changed once made)."""
        pieces = wire.batch_head(batch_id, token, self.transport.index_tracker.index)
        record = wire.op_record
        for number, part in enumerate(parts):
            call = part.call
            tag = wire.OP_TAGS[call.method]
            timeout = wire.timeout_field(max(1, int((call.deadline - now) * 1000)))
            bodies = call.bodies
            base = number << 16
            for k, i in enumerate(part.index):
                pieces += record(base | k, tag, bodies[i], timeout)
        return b"".join(pieces)

    def _pick(self, retry: bool) -> MemberStream | None:
        """The stream of a member with room for a batch (opened if need be), healthy members round
        robin (with `retry`, members marked down when none is healthy): one with a small batch in
        flight (PIPELINE_OPS) of cheap operations (PIPELINE_PER_OP), where the batch's fixed cost
        dominates and a second batch behind it keeps one member busy (module docstring), else one
        with none in flight."""
        now = time.monotonic()
        takes = [e for e in self.transport.endpoints if self.no_stream_until.get(e, 0.0) <= now]
        healthy = [e for e in self.transport.healthy_endpoints() if e in takes] or (takes if retry else [])
        self._rotation = (self._rotation + 1) % max(1, len(healthy))
        order = healthy[self._rotation :] + healthy[: self._rotation]
        best: MemberStream | None = None
        for endpoint in order:
            stream = self.streams.get(endpoint)
            if stream is None or not stream.open:
                stream = self.streams[endpoint] = MemberStream(self, endpoint)
            busy = len(stream.inflight)
            if (
                busy
                and busy < self.max_inflight
                and 0 < stream.per_op <= PIPELINE_PER_OP
                and all(count <= PIPELINE_OPS for _, count, _ in stream.inflight.values())
            ):
                self.pipelined += 1
                return stream  # pipelined behind short batches: its worker stays busy, no other wakes
            if not busy and best is None:
                best = stream
        return best

    def take_out(self, stream: MemberStream) -> list[list[Part]]:
        """Close `stream` to new batches: the parts of every batch in flight on it, which no
        longer count as out."""
        stream.open = False
        self.untell(stream)
        stream.wake.notify()
        if self.streams.get(stream.endpoint) is stream:
            del self.streams[stream.endpoint]
        batches = [parts for parts, _, _ in stream.inflight.values()]
        self.out -= len(batches)
        self.parts_out -= sum(len(parts) for parts in batches)
        stream.inflight.clear()
        return batches

    def _streamless(self) -> bool:
        """Does every member refuse streams now (the unary RPCs then answer)?"""
        now = time.monotonic()
        return all(self.no_stream_until.get(e, 0.0) > now for e in self.transport.endpoints)

    @staticmethod
    def settle(part: Part, index: Sequence[int], answer: Any, finished: list[Call]) -> None:
        """Answer the open operations `index` of `part` with `answer` (an error or UNARY): exactly
        once, an operation answered already (its deadline passed) keeps its answer; its call goes
        to `finished` when this answered its last."""
        call = part.call
        answers = call.answers
        was = call.left
        for i in index:
            if answers[i] is OPEN:
                answers[i] = answer
                call.left -= 1
        if was and not call.left:
            finished.append(call)

    @staticmethod
    def notify(finished: list[Call]) -> None:
        """Wake the callers of `finished` (outside the lock or in it: their locks are their own)."""
        for call in finished:
            call.done.release()

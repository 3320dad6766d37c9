"""Concurrent crypto calls coalesced into batches on one CryptoStream per member (crypto_stream.proto).

    Coalescer.enter() / leave()        route one ordinary call: unary when nothing else is in
                                       flight (a lone caller pays no batching), else the stream
    Coalescer.call(method, request, token)        one operation through a batch
    Coalescer.run(method, requests, token)        many (sign_many, ...): a result or an HsmError each

Batching: operations wait in one queue; a batch leaves for a member as soon as that member has
fewer than `max_inflight` batches in flight (no timer: an operation lingers exactly until a batch
in flight returns), holding up to `max_ops` operations and `max_bytes` bytes of one session token.
Members are taken round robin over the healthy ones.

Outcome contract (`_outcome.py`): crypto operations are reads, so resending one is safe. An
operation whose member fails (the stream breaks, the member dies, it answers UNAVAILABLE: lease
lost, behind min_index) goes back to the queue and to another member, as does one whose batch
went unanswered for as long as a unary attempt waits (half the timeout, at least 1 s: a hung or
cut-off member); a member refusing as removed or of another cluster is dropped. Every operation
is answered exactly once: its own result or error (the same HsmError subclass and message as
the unary RPC), or Unavailable at its deadline (the transport's `timeout`, counted from the
call). An operation whose stream failed more often than there are members, or that no member
takes on a stream (UNIMPLEMENTED, too many streams, a channel refusal), runs through the unary
RPC instead, with its failover rules (and a timeout of its own).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from hsmnode.client._errors import HsmError, Unavailable, error_from_status
from hsmnode.client._outcome import MEMBER_REFUSALS, refusal_of
from hsmnode.pb import crypto_stream_pb2, crypto_stream_pb2_grpc

# the Keys RPCs a batch carries, and their field in CryptoOp / CryptoResult
KINDS = {"Sign": "sign", "Verify": "verify", "Encrypt": "encrypt", "Decrypt": "decrypt"}
MAX_OPS = 64  # operations per batch (the member takes up to 1024): small enough to spread bulk calls
MAX_BYTES = 1024 * 1024  # bytes per batch (the member takes up to 2 MiB)
MAX_INFLIGHT = 1  # batches in flight per member (1: the largest batches; measured 1 > 2 > 4 at 16 threads)
IDLE_CLOSE = 2.0  # s without work after which a member's stream is closed (it holds a member thread)
STREAMLESS_FOR = 10.0  # s a member that refused a stream gets unary calls only
_POLL = 0.05  # s between a waiting caller's looks at its deadline and the queue (failover backoff)
_REQUEUE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_STATUS = {s.value[0]: s for s in grpc.StatusCode}


class _Waiter:
    """What one caller waits on: the count of its operations not yet answered (changed under the
    coalescer's lock) and a lock held until it reaches 0 (cheaper than a Condition per call)."""

    __slots__ = ("done", "left")

    def __init__(self, count: int) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.left = count


class _Op:
    __slots__ = (
        "id",
        "method",
        "request",
        "token",
        "deadline",
        "size",
        "waiter",
        "done",
        "response",
        "error",
        "failures",
        "unary",
    )

    def __init__(
        self, op_id: int, method: str, request: Any, token: str, deadline: float, waiter: _Waiter
    ) -> None:
        self.id = op_id
        self.method = method
        self.request = request
        self.token = token
        self.deadline = deadline
        self.size = request.ByteSize() + 16
        self.waiter = waiter
        self.done = False
        self.response: Any = None
        self.error: HsmError | None = None
        self.failures = 0  # streams that failed under it
        self.unary = False  # to be run through the unary RPC by its caller


class _MemberStream:
    """One open CryptoStream/Batch call to one member, and the batches in flight on it."""

    def __init__(self, coalescer: Coalescer, endpoint: str) -> None:
        self.endpoint = endpoint
        self.inflight: dict[int, list[_Op]] = {}
        self.sent_at: dict[int, float] = {}  # batch id -> time.monotonic() it was sent
        self.open = True
        self.closing = False  # closed by the client: what is in flight fails, nothing is resent
        self._co = coalescer
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        transport = coalescer.transport
        stub = crypto_stream_pb2_grpc.CryptoStreamStub(transport.channel(endpoint))
        self.call = stub.Batch(self._requests(), metadata=transport.stream_metadata())
        threading.Thread(target=self._read, name=f"crypto-stream-{endpoint}", daemon=True).start()

    def send(self, batch: crypto_stream_pb2.CryptoBatch) -> None:
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self.call.cancel()

    def _requests(self) -> Iterator[crypto_stream_pb2.CryptoBatch]:
        while True:
            try:
                batch = self._queue.get(timeout=IDLE_CLOSE)
            except queue.Empty:
                if self._co.idle(self):
                    return
                continue
            if batch is None:
                return
            yield batch

    def _read(self) -> None:
        try:
            for results in self.call:
                self._co.answered(self, results)
        except grpc.RpcError as exc:
            self._co.broken(self, exc)
        else:
            self._co.broken(self, None)


class Coalescer:
    """The transport's batching door for Sign, Verify, Encrypt and Decrypt (module docstring).
    `streamed` counts operations answered through a stream, `batches` the batches answered,
    `resent` the operations sent again after their member failed under them, `lone` the ordinary
    calls sent unary because nothing else was in flight."""

    def __init__(
        self,
        transport: Any,
        *,
        max_ops: int = MAX_OPS,
        max_bytes: int = MAX_BYTES,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self.transport = transport
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self.streamed = 0
        self.batches = 0
        self.resent = 0
        self.lone = 0
        self._lock = threading.Lock()
        self._pending: deque[_Op] = deque()
        self._streams: dict[str, _MemberStream] = {}
        self._ids = itertools.count(1)
        self._rotation = 0
        self._unary = 0
        self._no_stream_until: dict[str, float] = {}  # members that refused a stream: unary for a while

    # --- routing of ordinary calls ------------------------------------------------------------

    def enter(self) -> bool:
        """True: send this call through a batch (other calls are in flight); False: send it unary,
        and call `leave()` when it is answered."""
        with self._lock:
            if self._unary or self._pending or any(s.inflight for s in self._streams.values()):
                return True
            self._unary += 1
            self.lone += 1
            return False

    def leave(self) -> None:
        with self._lock:
            self._unary -= 1

    # --- calls --------------------------------------------------------------------------------

    def call(self, method: str, request: Any, token: str, unary: Callable[[Any], Any]) -> Any:
        """One operation's response message (e.g. SignResponse), as the unary RPC answers it;
        `unary(request)` runs it unary when the stream cannot. Raises the unary RPC's HsmError."""
        answer = self.run(method, [request], token, unary)[0]
        if isinstance(answer, HsmError):
            raise answer
        return answer

    def run(self, method: str, requests: Sequence[Any], token: str, unary: Callable[[Any], Any]) -> list[Any]:
        """Per request, in order: its response message or its HsmError. Every operation's deadline
        is the transport's timeout, counted from now."""
        timeout = self.transport.timeout
        deadline = time.monotonic() + timeout
        waiter = _Waiter(len(requests))
        ops = [_Op(next(self._ids), method, r, token, deadline, waiter) for r in requests]
        with self._lock:
            for op in ops:
                if op.size > self.max_bytes:
                    op.unary = op.done = True  # alone above a batch: the unary RPC answers it
                    waiter.left -= 1
                else:
                    self._pending.append(op)
            self._pump()
            answered = waiter.left <= 0  # every operation was refused a stream at once
        if not answered:
            self._wait(ops, waiter, deadline)
        answers: list[Any] = []
        for op in ops:
            if op.unary:
                try:
                    answers.append(unary(op.request))
                except HsmError as exc:
                    answers.append(exc)
            else:
                answers.append(op.error if op.error is not None else op.response)
        return answers

    def _wait(self, ops: list[_Op], waiter: _Waiter, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if waiter.done.acquire(timeout=min(left, _POLL)):
                return
            with self._lock:
                stalled = self._stalled()
                self._pump(retry=True)  # the backoff: members marked down are tried again now
            for stream in stalled:
                stream.call.cancel()
        with self._lock:  # the deadline: what is still unanswered fails as a unary call would
            late = [op for op in ops if not op.done]
            for op in late:
                op.done = True
                op.error = Unavailable(
                    f"no member answered {op.method} within {self.transport.timeout}s "
                    f"({', '.join(self.transport.endpoints)})"
                )
            if late:
                remaining = set(map(id, late))
                self._pending = deque(op for op in self._pending if id(op) not in remaining)

    def in_flight(self, endpoint: str | None = None) -> int:
        """Operations sent and not answered yet (to `endpoint`, or to any member)."""
        with self._lock:
            return sum(
                len(ops)
                for stream in self._streams.values()
                if endpoint is None or stream.endpoint == endpoint
                for ops in stream.inflight.values()
            )

    def close(self) -> None:
        """Close every stream (what is in flight on them fails Unavailable); a later call opens them again."""
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
            for stream in streams:
                stream.closing = True
        for stream in streams:
            stream.close()

    # --- batches (all under self._lock) -----------------------------------------------------

    def _pump(self, *, retry: bool = False) -> None:
        """Send batches while operations wait and a member has room. Only healthy members, unless
        `retry` (a waiting caller's poll, every _POLL s) and none is: no resending in a busy loop."""
        while self._pending:
            stream = self._pick(retry)
            if stream is None:
                if self._streamless():
                    finished: list[_Waiter] = []
                    for op in self._pending:
                        op.unary = True
                        self._finish(op, finished)
                    self._pending.clear()
                    self._notify(finished)
                return
            head = self._pending[0]
            ops: list[_Op] = []
            size = 0
            rest: deque[_Op] = deque()
            while self._pending and len(ops) < self.max_ops:
                op = self._pending.popleft()
                if op.done:
                    continue
                if op.token != head.token or size + op.size > self.max_bytes:
                    rest.append(op)
                    if size + op.size > self.max_bytes:
                        break
                    continue
                ops.append(op)
                size += op.size
            rest.extend(self._pending)
            self._pending = rest
            if not ops:
                return
            batch_id = next(self._ids)
            now = time.monotonic()
            batch = crypto_stream_pb2.CryptoBatch(
                batch_id=batch_id, session=head.token, min_index=self.transport.index_tracker.index
            )
            for op in ops:
                entry = batch.ops.add(id=op.id, timeout_ms=max(1, int((op.deadline - now) * 1000)))
                getattr(entry, KINDS[op.method]).CopyFrom(op.request)
            stream.inflight[batch_id] = ops
            stream.sent_at[batch_id] = now
            stream.send(batch)

    def _pick(self, retry: bool) -> _MemberStream | None:
        """The stream of a member with room for a batch (opened if need be): healthy members round
        robin, the least loaded first; with `retry`, members marked down when none is healthy."""
        now = time.monotonic()
        takes = [e for e in self.transport.endpoints if self._no_stream_until.get(e, 0.0) <= now]
        healthy = [e for e in self.transport.healthy_endpoints() if e in takes] or (takes if retry else [])
        self._rotation = (self._rotation + 1) % max(1, len(healthy))
        order = healthy[self._rotation :] + healthy[: self._rotation]
        best: _MemberStream | None = None
        for endpoint in order:
            stream = self._streams.get(endpoint)
            if stream is None or not stream.open:
                stream = self._streams[endpoint] = _MemberStream(self, endpoint)
            if len(stream.inflight) < self.max_inflight and (
                best is None or len(stream.inflight) < len(best.inflight)
            ):
                best = stream
                if not stream.inflight:
                    break
        return best

    def _stalled(self) -> list[_MemberStream]:
        """Streams with a batch unanswered for longer than a unary attempt waits (half the timeout,
        at least 1 s: a hung or cut-off member): taken out, their operations sent elsewhere. The
        caller cancels them (outside the lock)."""
        limit = max(1.0, self.transport.timeout / 2)
        now = time.monotonic()
        stalled = [
            s for s in self._streams.values() if any(now - sent > limit for sent in s.sent_at.values())
        ]
        finished: list[_Waiter] = []
        for stream in stalled:
            stream.open = False
            del self._streams[stream.endpoint]
            self.transport.mark(stream.endpoint, False)
            ops = [op for batch in stream.inflight.values() for op in batch]
            stream.inflight.clear()
            stream.sent_at.clear()
            self._requeue(ops, finished, failed=True)
        self._notify(finished)
        return stalled

    def _streamless(self) -> bool:
        """Does every member refuse streams now (the unary RPCs then answer)?"""
        now = time.monotonic()
        return all(self._no_stream_until.get(e, 0.0) > now for e in self.transport.endpoints)

    # --- answers (reader threads) -----------------------------------------------------------

    def idle(self, stream: _MemberStream) -> bool:
        """Close an idle stream: True when it has nothing in flight (it then takes no more)."""
        with self._lock:
            if stream.inflight:
                return False
            stream.open = False
            if self._streams.get(stream.endpoint) is stream:
                del self._streams[stream.endpoint]
            return True

    def answered(self, stream: _MemberStream, results: crypto_stream_pb2.CryptoResults) -> None:
        transport = self.transport
        transport.note_index(results.applied_index)
        finished: list[_Waiter] = []
        with self._lock:
            ops = stream.inflight.pop(results.batch_id, [])
            stream.sent_at.pop(results.batch_id, None)
            if results.code:
                status = _STATUS.get(results.code, grpc.StatusCode.UNKNOWN)
                if results.refusal in MEMBER_REFUSALS:
                    transport.drop(stream.endpoint)
                    self._requeue(ops, finished, failed=False)
                elif status in _REQUEUE:
                    transport.mark(stream.endpoint, False)
                    self._requeue(ops, finished, failed=False)
                else:
                    for each in ops:
                        self._finish(each, finished, error=error_from_status(status, results.message))
            else:
                transport.mark(stream.endpoint, True)
                self.batches += 1
                by_id = {each.id: each for each in ops}
                for r in results.results:
                    if r.id not in by_id:
                        continue
                    op = by_id.pop(r.id)
                    if not r.code:
                        self.streamed += 1
                        self._finish(op, finished, response=getattr(r, KINDS[op.method]))
                        continue
                    status = _STATUS.get(r.code, grpc.StatusCode.UNKNOWN)
                    if status in _REQUEUE:
                        if status is grpc.StatusCode.UNAVAILABLE:
                            transport.mark(stream.endpoint, False)
                        self._requeue([op], finished, failed=False)
                    else:
                        self._finish(op, finished, error=error_from_status(status, r.message, r.refusal))
                self._requeue(list(by_id.values()), finished, failed=False)  # unanswered: elsewhere
            self._pump()
        self._notify(finished)

    def broken(self, stream: _MemberStream, exc: grpc.RpcError | None) -> None:
        """The stream ended: its batches in flight go to other members (or unary, see the module)."""
        finished: list[_Waiter] = []
        with self._lock:
            stream.open = False
            if self._streams.get(stream.endpoint) is stream:
                del self._streams[stream.endpoint]
            ops = [op for batch in stream.inflight.values() for op in batch]
            stream.inflight.clear()
            stream.sent_at.clear()
            code = exc.code() if exc is not None else None
            trailing = (
                exc.trailing_metadata() if exc is not None and hasattr(exc, "trailing_metadata") else None
            )
            refusal = refusal_of(trailing)
            if stream.closing:
                for op in ops:
                    self._finish(op, finished, error=Unavailable("the client was closed"))
            elif refusal in MEMBER_REFUSALS and self.transport.drop(stream.endpoint):
                self._requeue(ops, finished, failed=False)
            elif code is None or code in (*_REQUEUE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN):
                if code is not None and code is not grpc.StatusCode.CANCELLED:
                    self.transport.mark(stream.endpoint, False)
                self._requeue(ops, finished, failed=True)
            else:  # the member takes no stream from us (UNIMPLEMENTED, too many streams, a refusal)
                self._no_stream_until[stream.endpoint] = time.monotonic() + STREAMLESS_FOR
                for op in ops:
                    op.unary = True
                    self._finish(op, finished)
            self._pump()
        self._notify(finished)

    def _requeue(self, ops: list[_Op], finished: list[_Waiter], *, failed: bool) -> None:
        limit = len(self.transport.endpoints) + 1
        for op in reversed(ops):
            if op.done:
                continue
            if failed:
                op.failures += 1
                if op.failures > limit:
                    op.unary = True
                    self._finish(op, finished)
                    continue
            self.resent += 1
            self._pending.appendleft(op)

    @staticmethod
    def _finish(
        op: _Op, finished: list[_Waiter], *, response: Any = None, error: HsmError | None = None
    ) -> None:
        """Answer `op` (under self._lock); its waiter goes to `finished` when it was the last."""
        if op.done:
            return  # answered already (its deadline passed): exactly once
        op.done = True
        op.response = response
        op.error = error
        op.waiter.left -= 1
        if op.waiter.left == 0:
            finished.append(op.waiter)

    @staticmethod
    def _notify(finished: list[_Waiter]) -> None:
        for waiter in finished:
            waiter.done.release()

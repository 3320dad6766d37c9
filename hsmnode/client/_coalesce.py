"""Concurrent crypto calls coalesced into batches on one CryptoStream per member (crypto_stream.proto).

    Coalescer.call(method, request, token)   one ordinary call: unary when nothing else is in
                                             flight and no batch was answered in the last
                                             LONE_AFTER s (a lone caller pays no batching),
                                             else through a batch
    Coalescer.run(method, bodies, token)     many (sign_many, ...): a response or an HsmError each

How waiting operations become batches: `_crypto_streams.py`. Each operation travels as its
request's wire form (`_crypto_wire.py`), written once by its caller, never as a message copied.

Outcome contract (`_outcome.py`): crypto operations are reads, so resending one is safe. An
operation whose member fails (the stream breaks, the member dies, it answers UNAVAILABLE: lease
lost, behind min_index) goes back to the queue and to another member, as does one whose batch
went unanswered for as long as a unary attempt waits (half the timeout, see `attempt_timeout`: a
hung or cut-off member); a member refusing as removed or of another cluster is dropped. Every operation
is answered exactly once: its own result or error (the same HsmError subclass and message as
the unary RPC), or Unavailable at its deadline (the transport's `timeout`, counted from the
call). An operation whose stream failed more often than there are members, or that no member
takes on a stream (UNIMPLEMENTED, too many streams, a channel refusal), runs through the unary
RPC instead, with its failover rules, within what is left of its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc

from hsmnode.client import _crypto_wire as wire
from hsmnode.client._crypto_streams import (
    LINGER,
    MAX_BYTES,
    MAX_INFLIGHT,
    MAX_OPS,
    OPEN,
    OVERHEAD,
    PART_OPS,
    STREAMLESS_FOR,
    UNARY,
    Call,
    MemberStream,
    Part,
    StreamPool,
)
from hsmnode.client._errors import HsmError, Unavailable, error_from_status
from hsmnode.client._outcome import MEMBER_REFUSALS, attempt_timeout, refusal_of
from hsmnode.pb import crypto_stream_pb2

KINDS = wire.FIELDS  # the Keys RPCs a batch carries -> their field in CryptoOp / CryptoResult
LONE_AFTER = 0.005  # s after a batch's answer during which an ordinary call still joins a batch
_POLL = 0.05  # s between a waiting caller's looks at its deadline and the queue (failover backoff)
_REQUEUE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_STATUS = {s.value[0]: s for s in grpc.StatusCode}
_FIRST = (0,)


class Coalescer(StreamPool):
    """The transport's batching door for Sign, Verify, Encrypt and Decrypt (module docstring).
    `streamed` counts operations answered through a stream, `batches` the batches answered,
    `resent` the operations sent again after their member failed under them, `lone` the ordinary
    calls sent unary because nothing else was in flight."""

    def __init__(
        self,
        transport: Any,
        *,
        max_ops: int = MAX_OPS,
        part_ops: int = PART_OPS,
        max_bytes: int = MAX_BYTES,
        max_inflight: int = MAX_INFLIGHT,
        linger: float = LINGER,
    ) -> None:
        super().__init__(
            transport, max_ops=max_ops, max_bytes=max_bytes, max_inflight=max_inflight, linger=linger
        )
        self.part_ops = min(part_ops, max_ops)
        self.streamed = 0
        self.batches = 0
        self.resent = 0
        self.lone = 0
        self._unary = 0  # lone calls in flight
        self._answered_at = 0.0  # time.monotonic() of the last batch answered

    # --- calls --------------------------------------------------------------------------------

    def call(self, method: str, request: Any, token: str) -> Any:
        """One operation's response message (e.g. SignResponse), as the unary RPC answers it.
        Raises the unary RPC's HsmError."""
        body = request.SerializeToString()
        now = time.monotonic()
        call = Call(method, token, now + self.transport.timeout, (body,))
        with self.lock:
            lone = not (self._unary or self.pending or self.out) and now - self._answered_at > LONE_AFTER
            if lone:
                self._unary += 1
                self.lone += 1
            elif len(body) + OVERHEAD > self.max_bytes:
                call.answers[0] = UNARY  # alone above a batch: the unary RPC answers it
                call.left = 0
            else:
                self.pending.append(Part(call, _FIRST, len(body) + OVERHEAD))
                if self.returning:
                    self.returning -= 1
                self.queued()
        if lone:
            try:
                return self.transport.unary_crypto(method, request, token, call.deadline)
            finally:
                with self.lock:
                    self._unary -= 1
        if call.left:
            self._wait(call)
        answer = call.answers[0]
        if answer is UNARY:  # its deadline, not a fresh one: the call has waited meanwhile
            return self.transport.unary_crypto(method, request, token, call.deadline)
        if isinstance(answer, HsmError):
            raise answer
        return answer

    def run(self, method: str, bodies: Sequence[bytes], token: str) -> list[Any]:
        """Per request body (`_crypto_wire.bodies`), in order: its response message or its
        HsmError. Every operation's deadline is the transport's timeout, counted from now: those
        the streams leave to the unary RPC (above a batch's size, or failed on every member) keep
        it, so the whole call ends within the timeout and one attempt's overshoot."""
        call = Call(method, token, time.monotonic() + self.transport.timeout, bodies)
        parts: list[Part] = []
        index: list[int] = []
        size = 0
        for i, body in enumerate(bodies):
            n = len(body) + OVERHEAD
            if n > self.max_bytes:
                call.answers[i] = UNARY  # alone above a batch: the unary RPC answers it
                call.left -= 1
                continue
            if len(index) == self.part_ops or size + n > self.max_bytes:
                parts.append(Part(call, index, size))
                index, size = [], 0
            index.append(i)
            size += n
        if index:
            parts.append(Part(call, index, size))
        with self.lock:
            self.pending.extend(parts)
            self.queued()
        if call.left:
            self._wait(call)
        answers = call.answers
        for i, answer in enumerate(answers):
            if answer is UNARY:
                try:
                    answers[i] = self.transport.unary_crypto(
                        method, wire.request(method, bodies[i]), token, call.deadline
                    )
                except HsmError as exc:
                    answers[i] = exc
        return answers

    def _wait(self, call: Call) -> None:
        done = call.done
        while True:
            left = call.deadline - time.monotonic()
            if left <= 0:
                break
            if done.acquire(timeout=min(left, _POLL)):
                return
            with self.lock:
                stalled = self._stalled()
                self.kick(retry=True)  # the backoff: members marked down are tried again now
            for stream in stalled:
                stream.call.cancel()
        with self.lock:  # the deadline: what is still unanswered fails as a unary call would
            if call.left <= 0:
                return
            call.over = True
            call.left = 0
            answers = call.answers
            for i, answer in enumerate(answers):
                if answer is OPEN:
                    answers[i] = Unavailable(
                        f"no member answered {call.method} within {self.transport.timeout}s "
                        f"({', '.join(self.transport.endpoints)}): each was down, cut off or too busy "
                        "to answer in time (fewer operations at once, or a longer timeout)"
                    )

    def in_flight(self, endpoint: str | None = None) -> int:
        """Operations sent and not answered yet (to `endpoint`, or to any member)."""
        with self.lock:
            return sum(
                count
                for stream in self.streams.values()
                if endpoint is None or stream.endpoint == endpoint
                for _, count, _ in stream.inflight.values()
            )

    def close(self) -> None:
        """Close every stream (what is in flight on them fails Unavailable); a later call opens them again."""
        with self.lock:
            streams = list(self.streams.values())
            self.streams.clear()
            for stream in streams:
                stream.closing = True
                self.untell(stream)
        for stream in streams:
            stream.close()

    def _stalled(self) -> list[MemberStream]:
        """Streams with a batch unanswered for longer than a unary attempt waits (`attempt_timeout`:
        a hung or cut-off member): taken out, their operations sent elsewhere. The caller cancels
        them (outside the lock)."""
        limit = attempt_timeout(self.transport.timeout, len(self.transport.endpoints))
        now = time.monotonic()
        stalled = [
            s for s in self.streams.values() if any(now - sent > limit for _, _, sent in s.inflight.values())
        ]
        finished: list[Call] = []
        for stream in stalled:
            self.transport.mark(stream.endpoint, False)
            for parts in self.take_out(stream):
                self._requeue(parts, finished, failed=True)
        self.notify(finished)
        return stalled

    # --- answers (reader threads) -----------------------------------------------------------

    def answered(self, stream: MemberStream, results: crypto_stream_pb2.CryptoResults) -> None:
        transport = self.transport
        transport.note_index(results.applied_index)
        finished: list[Call] = []
        with self.lock:
            sent = stream.inflight.pop(results.batch_id, None)
            if sent is None:
                return  # taken out meanwhile (stalled): its operations went elsewhere
            parts, count, _ = sent
            if results.busy_us:  # 0: refused whole, or a member from before busy_us
                per_op = results.busy_us / 1e6 / max(1, count)
                stream.per_op = per_op if not stream.per_op else 0.75 * stream.per_op + 0.25 * per_op
            self.out -= 1
            self.parts_out -= len(parts)
            if results.code:
                status = _STATUS.get(results.code, grpc.StatusCode.UNKNOWN)
                if results.refusal in MEMBER_REFUSALS:
                    transport.drop(stream.endpoint)
                    self._requeue(parts, finished, failed=False)
                elif status in _REQUEUE:
                    transport.mark(stream.endpoint, False)
                    self._requeue(parts, finished, failed=False)
                else:
                    error = error_from_status(status, results.message)
                    for part in parts:
                        self.settle(part, part.index, error, finished)
            else:
                self.batches += 1
                settled = self._answer(stream, parts, results.results, finished)
                self.streamed += settled
                if settled < count:  # some asked to go elsewhere, or went unanswered
                    self._requeue(parts, finished, failed=False)
        woken = sum(len(c.answers) == 1 for c in finished)  # ordinary callers: back soon
        self.notify(finished)  # the callers first: their next operations join the next batch
        with self.lock:
            self._answered_at = time.monotonic()
            if self.linger:
                self.returning += woken
            self.kick()

    def _answer(self, stream: MemberStream, parts: list[Part], results: Any, finished: list[Call]) -> int:
        """Settle each operation with its result: the number settled (answered or failed)."""
        settled = 0
        up = True
        for r in results:
            number = r.id
            try:
                part = parts[number >> 16]
                i = part.index[number & 0xFFFF]
            except IndexError:
                continue
            call = part.call
            answers = call.answers
            if answers[i] is not OPEN:
                continue
            code = r.code
            if code:
                status = _STATUS.get(code, grpc.StatusCode.UNKNOWN)
                if status in _REQUEUE:  # left open: sent again (this member lost its lease, ...)
                    up = up and status is not grpc.StatusCode.UNAVAILABLE
                    continue
                answers[i] = error_from_status(status, r.message, r.refusal)
            else:
                answers[i] = getattr(r, call.field)
            settled += 1
            call.left -= 1
            if not call.left:
                finished.append(call)
        self.transport.mark(stream.endpoint, up)
        return settled

    def broken(self, stream: MemberStream, exc: grpc.RpcError | None) -> None:
        """The stream ended: its batches in flight go to other members (or unary, see the module)."""
        finished: list[Call] = []
        with self.lock:
            batches = self.take_out(stream)
            code = exc.code() if exc is not None else None
            trailing = (
                exc.trailing_metadata() if exc is not None and hasattr(exc, "trailing_metadata") else None
            )
            refusal = refusal_of(trailing)
            if stream.closing:
                closed = Unavailable("the client was closed")
                for parts in batches:
                    for part in parts:
                        self.settle(part, part.index, closed, finished)
            elif refusal in MEMBER_REFUSALS and self.transport.drop(stream.endpoint):
                for parts in batches:
                    self._requeue(parts, finished, failed=False)
            elif code is None or code in (*_REQUEUE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN):
                if code is not None and code is not grpc.StatusCode.CANCELLED:
                    self.transport.mark(stream.endpoint, False)
                for parts in batches:
                    self._requeue(parts, finished, failed=True)
            else:  # the member takes no stream from us (UNIMPLEMENTED, too many streams, a refusal)
                self.no_stream_until[stream.endpoint] = time.monotonic() + STREAMLESS_FOR
                for parts in batches:
                    for part in parts:
                        self.settle(part, part.index, UNARY, finished)
            self.kick()
        self.notify(finished)

    def _requeue(self, parts: list[Part], finished: list[Call], *, failed: bool) -> None:
        """The operations of `parts` not answered yet go to the front of the queue (their order
        kept); with `failed` (their stream broke), to the unary RPC after as many failures as
        there are members, and one more."""
        limit = len(self.transport.endpoints) + 1
        for part in reversed(parts):
            call = part.call
            if call.over:
                continue
            answers = call.answers
            index = [i for i in part.index if answers[i] is OPEN]
            if not index:
                continue
            if len(index) < len(part.index):
                size = sum(len(call.bodies[i]) for i in index) + OVERHEAD * len(index)
                part = Part(call, index, size, part.failures)
            if failed:
                part.failures += 1
                if part.failures > limit:
                    self.settle(part, index, UNARY, finished)
                    continue
            self.resent += len(index)
            self.pending.appendleft(part)

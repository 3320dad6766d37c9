"""The transport's batched key generation: ordinary `generate_key` calls of many threads sent as
Keys/GenerateBatch to the leader (`_write_batch.py` gathers them), with unary semantics.

One attempt per batch, to the member a write goes to first (the hinted leader, `_hints.py`). Each
request's result there is its caller's answer: the response, or the HsmError its unary RPC would
have raised (the member answered it exactly as Generate). What the attempt did not settle goes to
the unary RPC with the same request id (`Fallback`): a request answered UNAVAILABLE (not applied)
or ABORTED (outcome unknown) by the member, and every request of a batch whose member failed (the
transport's failover rules judge the failure: a member down, a deadline, a refusal as removed or
of another cluster). A member that knows no GenerateBatch (UNIMPLEMENTED: an older version) runs
nothing; the SDK then sends unary writes to it for NO_BATCH_FOR s.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc

from hsmnode.client._errors import HsmError, error_from_status
from hsmnode.client._outcome import Attempts
from hsmnode.client._write_batch import Fallback, Write, WriteBatcher
from hsmnode.pb import keys_pb2, keys_pb2_grpc

NO_BATCH_FOR = 60.0  # s a member that answered UNIMPLEMENTED gets unary writes only
_STATUS = {s.value[0]: s for s in grpc.StatusCode}
_RESEND = {
    grpc.StatusCode.UNAVAILABLE.value[0]: False,  # the member says: not applied
    grpc.StatusCode.ABORTED.value[0]: True,  # outcome unknown
    grpc.StatusCode.DEADLINE_EXCEEDED.value[0]: True,
}


class BatchedGenerate:
    """Keys/Generate through GenerateBatch for `transport` (a Transport; module docstring)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.batcher = WriteBatcher(self._send)
        self._no_batch: dict[str, float] = {}  # endpoint -> time.monotonic() until which it gets unary
        self._lock = threading.Lock()
        self._sending: dict[str, int] = {}  # endpoint -> batches in flight there

    def in_flight(self, endpoint: str = "") -> int:
        """Batches in flight (to `endpoint`, or to any member)."""
        with self._lock:
            return self._sending.get(endpoint, 0) if endpoint else sum(self._sending.values())

    def generate(self, request: Any, token: str) -> Any:
        """One GenerateKeyRequest's KeyInfo (protobuf), as Keys/Generate answers it: batched with the
        other writes in flight, unary without the transport's `coalesce`. Raises its HsmError."""
        transport = self._transport
        write = Write(request, token, time.monotonic() + transport.timeout)
        # the members' order is worked out only while one refuses batches (`_send` works it out per batch)
        if not transport.coalesce or (
            self._no_batch and self._no_batch.get(transport.write_order()[0], 0.0) > time.monotonic()
        ):
            return self._unary(write, False)
        return self.batcher.call(write, self._unary)

    def _unary(self, write: Write, maybe_applied: bool) -> Any:
        return self._transport.call(
            keys_pb2_grpc.KeysStub,
            "Generate",
            write.request,
            write=True,
            token=write.token,
            deadline=write.deadline,
            maybe_applied=maybe_applied,
        )

    def _send(self, token: str, writes: list[Write]) -> None:
        transport = self._transport
        endpoint = transport.write_order()[0]
        now = time.monotonic()
        left = max(write.deadline for write in writes) - now
        if left <= 0 or self._no_batch.get(endpoint, 0.0) > now:
            for write in writes:
                write.answer = Fallback(False)
            return
        batch = keys_pb2.GenerateKeyBatch(
            requests=[write.request for write in writes],
            timeout_ms=[max(1, int((write.deadline - now) * 1000)) for write in writes],
        )
        with self._lock:
            self._sending[endpoint] = self._sending.get(endpoint, 0) + 1
        try:
            answer, call = transport.send(
                endpoint, keys_pb2_grpc.KeysStub, "GenerateBatch", batch, token, left
            )
        except grpc.RpcError as exc:
            self._failed(endpoint, exc, writes)
            return
        finally:
            with self._lock:
                self._sending[endpoint] -= 1
        transport.answered_by(endpoint, call.trailing_metadata())
        results = list(answer.results)
        if len(results) != len(writes):  # not this RPC's answer: let each go alone
            for write in writes:
                write.answer = Fallback(True)
            return
        for write, result in zip(writes, results, strict=True):
            write.answer = _answer(result)

    def _failed(self, endpoint: str, exc: grpc.RpcError, writes: list[Write]) -> None:
        """The batch's RPC failed: nothing ran (UNIMPLEMENTED), or the transport's failover rules say
        whether it may have been applied; each write then goes alone, or all raise the member's error."""
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            with self._lock:
                self._no_batch[endpoint] = time.monotonic() + NO_BATCH_FOR
            for write in writes:
                write.answer = Fallback(False)
            return
        attempts = Attempts("GenerateBatch", True, "")
        try:
            self._transport.judge(endpoint, exc, attempts)
        except HsmError:
            # an error the unary RPC does not fail over on (the channel table, a session-wide refusal):
            # each write goes alone and gets its own unary answer; after an internal error some may have run
            unsure = exc.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
            for write in writes:
                write.answer = Fallback(unsure)
            return
        for write in writes:
            write.answer = Fallback(attempts.maybe_applied)


def _answer(result: Any) -> Any:
    if result.code == 0:
        return result.key
    if result.code in _RESEND:
        return Fallback(_RESEND[result.code])
    return error_from_status(
        _STATUS.get(result.code, grpc.StatusCode.UNKNOWN), result.message, result.refusal
    )

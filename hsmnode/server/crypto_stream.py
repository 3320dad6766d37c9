"""CryptoStream servicer (crypto_stream.proto): many sign/verify/encrypt/decrypt operations per message.

Not a side door: a batch runs through KeyService.run_batch (service/key_use.py), the same checks
as the unary Keys RPCs (session token verified, the key's container authorized, usage flags,
blocked keys, M-of-N gates, the member's lease, the key-usage audit), run once per batch (the
session) or once per key of the batch (the rest), and each operation answers with the status
and message its unary RPC would have answered. What the `rpc` wrapper does once per unary call
happens here once per stream (a removed member or another cluster's refuses it) and once per
batch (the certificate's channel, which sees a revocation at once; the min_index wait; the
member removed since). The other operations of a batch are unaffected by one's error; when the
batch's key-usage records cannot be written, every operation answers UNAVAILABLE.

This servicer only maps protobuf: it hands the service (operation name, request, deadline) per
operation, and writes each answer or error into the operation's CryptoResult. The request log
and metrics see one record per batch, with its operation count (rpc.remember_batch).

Limits (named in the refusal; the SDK's coalescer stays below them):

    MAX_BATCH_OPS    1024 operations per batch
    MAX_BATCH_BYTES  2 MiB per batch (serialized CryptoBatch); a single operation's data is
                     limited as in the unary RPCs (key_fields.MAX_DATA); a message above gRPC's
                     own 4 MiB receive limit ends the stream (RESOURCE_EXHAUSTED) before this code
    MAX_STREAMS      16 open streams per member (beyond: RESOURCE_EXHAUSTED, use the unary RPCs)
    SEND_STALL       10 s: a client that reads no answer for that long is cut off (CANCELLED)
    IDLE_LIMIT       60 s: a stream that sends no batch for that long is ended

Each stream is served by one worker thread that reads a batch, runs it and hands the answer to
gRPC before it reads the next: one answer at most waits for the client (a bounded send queue),
and HTTP/2 flow control holds back a client that sends faster than the member answers. The
watchdog (one thread per servicer) cancels a stream stuck in a send or idle past its limit, so
a client that stops reading holds no member thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from hsmnode.pb import crypto_stream_pb2, crypto_stream_pb2_grpc
from hsmnode.replication import ReplicationError
from hsmnode.server.channels import Peer
from hsmnode.server.errors import STATUS_FOR_CODE, status_for_replication
from hsmnode.server.rpc import (
    MIN_INDEX_WAIT,
    REMOVED,
    Received,
    Servicer,
    Undecodable,
    open_stream,
    remember_batch,
    sized_deserializer,
)
from hsmnode.service.call import Call, Caller
from hsmnode.service.errors import DomainError, ErrorCode
from hsmnode.service.key_use import BatchAnswers, BatchOp, Expired
from hsmnode.service.keys import KeyService

log = logging.getLogger(__name__)

MAX_BATCH_OPS = 1024
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_STREAMS = 16
SEND_STALL = 10.0
IDLE_LIMIT = 60.0
METHOD = "hsmnode.pb.CryptoStream/Batch"


def _code(status: grpc.StatusCode) -> int:
    return int(status.value[0])


_INVALID = _code(grpc.StatusCode.INVALID_ARGUMENT)
_EXPIRED = _code(grpc.StatusCode.DEADLINE_EXCEEDED)
_INTERNAL = _code(grpc.StatusCode.INTERNAL)


def _signed(result: Any, signature: bytes) -> None:
    result.sign.signature = signature


def _verified(result: Any, valid: bool) -> None:
    result.verify.valid = valid


def _encrypted(result: Any, sealed: tuple[bytes, bytes]) -> None:
    encrypt = result.encrypt
    encrypt.ciphertext, encrypt.iv = sealed


def _decrypted(result: Any, plaintext: bytes) -> None:
    result.decrypt.plaintext = plaintext


# an operation's answer into its CryptoResult's oneof, by the CryptoOp's oneof name
_ANSWER: dict[str, Callable[[Any, Any], None]] = {
    "sign": _signed,
    "verify": _verified,
    "encrypt": _encrypted,
    "decrypt": _decrypted,
}


def _failed(result: Any, op_id: int, error: BaseException | Expired) -> None:
    """An operation's error into its CryptoResult: the status and message its unary RPC answers."""
    if isinstance(error, DomainError):
        result.code, result.message, result.refusal = (
            _code(STATUS_FOR_CODE[error.code]),
            error.message,
            error.reason,
        )
    elif isinstance(error, ReplicationError):
        result.code, result.message = _code(status_for_replication(error)), error.message
    elif isinstance(error, Expired):
        result.code = _EXPIRED
        result.message = f"operation {op_id}: its deadline passed before this member ran it"
    else:
        result.code, result.message = _INTERNAL, f"internal error: {type(error).__name__}: {error}"


class _Watch:
    """Streams and the phase each is in ("send": an answer waits for the client; "read": waiting for
    the client's next batch; "run": working) since when; the watchdog cancels those past a limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, tuple[grpc.ServicerContext, str, float]] = {}
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    def open(self, context: grpc.ServicerContext) -> int | None:
        """A stream's number, or None when MAX_STREAMS are open."""
        with self._lock:
            if len(self._streams) >= MAX_STREAMS:
                return None
            sid = next(self._ids)
            self._streams[sid] = (context, "read", time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crypto-stream-watch", daemon=True)
                self._thread.start()
            return sid

    def phase(self, sid: int, phase: str) -> bool:
        """Note the stream's new phase; False when the watchdog cut it off meanwhile. Without the
        lock (three times per batch): only the stream's own thread replaces its entry, the watchdog
        only removes it (under the lock, then cancels the stream), and a dict item's get and set
        are atomic; an entry set back just after the watchdog's removal ends the stream at its next
        phase (the cancelled call's read or send fails) and is removed by `close`."""
        streams = self._streams
        entry = streams.get(sid)
        if entry is None:
            return False
        streams[sid] = (entry[0], phase, time.monotonic())
        return True

    def close(self, sid: int) -> None:
        with self._lock:
            self._streams.pop(sid, None)

    def _run(self) -> None:
        while True:
            time.sleep(min(SEND_STALL, IDLE_LIMIT) / 10)
            now = time.monotonic()
            with self._lock:
                stuck = [
                    (sid, context, phase)
                    for sid, (context, phase, since) in list(self._streams.items())  # phase() sets unlocked
                    if (phase == "send" and now - since > SEND_STALL)
                    or (phase == "read" and now - since > IDLE_LIMIT)
                ]
                for sid, _, _ in stuck:
                    self._streams.pop(sid, None)
            for sid, context, phase in stuck:
                why = f"read no answer for {SEND_STALL:g}s" if phase == "send" else f"idle {IDLE_LIMIT:g}s"
                log.warning("crypto stream %d cut off: the client %s", sid, why)
                context.cancel()


class CryptoStreamServicer(Servicer[KeyService], crypto_stream_pb2_grpc.CryptoStreamServicer):
    """The member's CryptoStream: `Batch` answers each CryptoBatch with one CryptoResults."""

    # a batch's wire size comes with it (MAX_BATCH_BYTES without re-encoding: ~1-2 µs per operation)
    request_deserializers = {"Batch": sized_deserializer}  # noqa: RUF012

    def __init__(self, replicator: Any, service: KeyService) -> None:
        super().__init__(replicator, service)
        self._watch = _Watch()

    def Batch(  # noqa: N802
        self, requests: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[crypto_stream_pb2.CryptoResults]:
        peer = open_stream(self, "Batch", context)
        caller = Caller(peer.common_name, peer.fingerprint) if peer.fingerprint else None
        sid = self._watch.open(context)
        if sid is None:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this member serves at most {MAX_STREAMS} crypto streams at once: "
                "use the unary Keys RPCs, or another member",
            )
        stream_token = next((str(v) for k, v in context.invocation_metadata() if k == "x-hsm-session"), "")
        try:
            for batch in requests:
                if not self._watch.phase(sid, "run"):
                    return
                answer = self._answer(batch, peer, caller, stream_token)
                if not self._watch.phase(sid, "send"):
                    return
                yield answer
                if not self._watch.phase(sid, "read"):
                    return  # cut off while its answer waited: the client stopped reading
        finally:
            self._watch.close(sid)

    # --- one batch ----------------------------------------------------------------------

    def _answer(
        self, received: Received | Undecodable, peer: Peer, caller: Caller | None, stream_token: str
    ) -> crypto_stream_pb2.CryptoResults:
        """One batch's CryptoResults. `received`: the batch and its wire size (or what could not be
        decoded); `peer`: the stream's connection as classified when it opened; `caller` its Call.peer.
        Its busy_us: the CPU time this thread and the key-use helpers spent running it (the SDK's
        pipelining weighs it)."""
        busy = time.thread_time()
        now = time.monotonic()
        refused = self._refused(received, peer)
        if refused is not None:
            refused.applied_index = self.replicator.applied_index()
            return refused
        assert isinstance(received, Received)
        batch = received.message
        call = Call(method=METHOD, peer=caller, token=batch.session or stream_token)
        ops = batch.ops
        work: list[BatchOp] = []
        slots: list[int] = []  # per operation: its place in `work`, or -1 when it carries none
        for op in ops:
            name = op.WhichOneof("op")
            if name is None:
                slots.append(-1)
                continue
            slots.append(len(work))
            timeout_ms = op.timeout_ms
            work.append((name, getattr(op, name), now + timeout_ms / 1000 if timeout_ms else None))
        try:
            done = self._s.run_batch(call, work)
        except ReplicationError as exc:  # its key-usage records could not be written: answer none
            done = BatchAnswers([None] * len(work), dict.fromkeys(range(len(work)), exc))
        except Exception as exc:
            log.exception("unexpected error in a CryptoStream batch")
            done = BatchAnswers([None] * len(work), dict.fromkeys(range(len(work)), exc))
        remember_batch(call, len(ops), done.ops, done.failed)
        answer = crypto_stream_pb2.CryptoResults(batch_id=batch.batch_id)
        add = answer.results.add
        answers, errors = done.answers, done.errors
        for op, slot in zip(ops, slots, strict=True):
            if slot < 0:
                result = add(id=op.id, code=_INVALID)
                result.message = (
                    f"operation {op.id} carries no sign, verify, encrypt or decrypt request: set one"
                )
            elif errors and slot in errors:
                _failed(add(id=op.id), op.id, errors[slot])
            else:
                _ANSWER[work[slot][0]](add(id=op.id), answers[slot])
        answer.applied_index = self.replicator.applied_index()
        busy_s = time.thread_time() - busy + done.helper_cpu
        answer.busy_us = min(0xFFFFFFFF, int(busy_s * 1e6))
        return answer

    def _refused(
        self, received: Received | Undecodable, peer: Peer
    ) -> crypto_stream_pb2.CryptoResults | None:
        """The whole batch's refusal, or None: undecodable, over a limit, a member removed since
        the stream opened, a registration revoked since, or behind the batch's min_index."""
        batch: Any = received.message if isinstance(received, Received) else received

        def refuse(
            status: grpc.StatusCode, message: str, refusal: str = ""
        ) -> crypto_stream_pb2.CryptoResults:
            return crypto_stream_pb2.CryptoResults(
                batch_id=getattr(batch, "batch_id", 0), code=_code(status), message=message, refusal=refusal
            )

        if isinstance(received, Undecodable):
            return refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the batch is not a valid {received.type_name} message ({received.problem}); "
                "send that message type, encoded by a protobuf library",
            )
        if len(batch.ops) > MAX_BATCH_OPS:
            return refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch {batch.batch_id} holds {len(batch.ops)} operations; a batch holds at most "
                f"{MAX_BATCH_OPS} (MAX_BATCH_OPS): split it",
            )
        size = received.size
        if size > MAX_BATCH_BYTES:
            return refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch {batch.batch_id} is {size} bytes; a batch holds at most {MAX_BATCH_BYTES} bytes "
                "(MAX_BATCH_BYTES): split it",
            )
        standing = self.standing
        if standing is not None and standing.removed_from:
            return refuse(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this member was removed from cluster {standing.removed_from} and serves no clients: "
                "use the cluster's other members",
                REMOVED,
            )
        try:
            if self.channels is None:
                raise DomainError(ErrorCode.INTERNAL, "Batch is not bound to a channel")
            self.channels.recheck("Batch", peer)  # a registration revoked since the stream opened
            if batch.min_index and not self.replicator.wait_applied(batch.min_index, MIN_INDEX_WAIT):
                raise ReplicationError(
                    "unavailable",
                    f"this member has applied index {self.replicator.applied_index()}, behind the "
                    f"requested {batch.min_index}; try another member",
                )
        except DomainError as exc:
            return refuse(STATUS_FOR_CODE[exc.code], exc.message, exc.reason)
        except ReplicationError as exc:
            return refuse(status_for_replication(exc), exc.message)
        return None

"""Every gRPC request a member answers: one metrics sample and one log record, from one server
interceptor (so the servicers and the `rpc` wrapper stay as they are).

The record (logger `hsmnode.request`, INFO; health and reflection calls at DEBUG):

    request_id   the request's `request_id` field, if its message has one ("" otherwise)
    actor        who the session token names: user:<name>, partition:<name>/<role>,
                 keyring:<label>/<role> (the token verified with the cluster key; "" without one)
    client       the common name of the client certificate
    method       <service>/<method>, e.g. hsmnode.pb.Keys/Sign
    code         the gRPC status code name (OK, UNAUTHENTICATED, ...)
    duration_ms  from the request's arrival at the handler to its answer
    member       this member's id
    message      for an error: the answer's message (what the client read; never a secret)

Never in it: the token, the request or answer body (passwords, PINs, key material).
Server-streaming calls (Cluster/Backup) are recorded when their stream ends. The CryptoStream
(bidirectional) is recorded per batch: one record per answered CryptoBatch, method
hsmnode.pb.CryptoStream/Batch, `code` the batch's own status (OK unless refused whole),
`duration_ms` from the batch's arrival to its answer, and

    ops          the batch's operation count
    failed       how many of them failed (each answered its own error)

(the operations by name and outcome go to the metrics: hsmnode_crypto_operations_total); the
stream itself gets a record when it ends with an error (refused, cut off). A batched write
(Keys/GenerateBatch, unary) is one record too, with `ops` (its requests) and `failed` (those
answered with an error); `request_id` is "" (each request carries its own).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from hsmnode.crypto import certificate_fingerprint
from hsmnode.observability.logs import fields
from hsmnode.observability.metrics import MemberMetrics
from hsmnode.server.rpc import SESSION_KEY, last_batch, last_call
from hsmnode.service.call import Call
from hsmnode.sessions import TokenAuthority

log = logging.getLogger("hsmnode.request")

QUIET_SERVICES = ("grpc.health.", "grpc.reflection.")  # probes and tools: DEBUG, not INFO
_SOURCE = __file__  # the pathname of every request record
UNOBSERVED = ("/grpc.health.v1.Health/Watch",)  # a stream that lasts as long as the client


_STATUS_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}
_CODE_NAMES = {status: status.name for status in grpc.StatusCode}  # an Enum's .name is a descriptor call


def _split(full: str) -> tuple[str, str]:
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


class RequestObserver(grpc.ServerInterceptor):  # type: ignore[misc,unused-ignore]
    """Wraps each method handler once: times the call, reads its status code from the context,
    feeds `metrics` and logs the record. `tokens` (the member's TokenAuthority) names the actor."""

    def __init__(self, member: str, metrics: MemberMetrics | None, tokens: TokenAuthority | None) -> None:
        self._member = member
        self._metrics = metrics
        self._tokens = tokens
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method in UNOBSERVED:
            return handler
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(details.method, handler)
        with self._lock:
            self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _wrap(self, full: str, handler: Any) -> Any:
        service, method = _split(full)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                started = time.perf_counter()
                last_call(clear=True)
                try:
                    return inner(request, context)
                finally:
                    self.record(service, method, request, context, started)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started = time.perf_counter()
                last_call(clear=True)
                try:
                    yield from inner_stream(request, context)
                finally:
                    self.record(service, method, request, context, started)

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._batches(service, method, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _batches(
        self, service: str, method: str, inner: Any
    ) -> Callable[[Iterator[Any], Any], Iterator[Any]]:
        """A bidirectional stream (CryptoStream/Batch) recorded per answer, each from its request's
        arrival; the stream itself only when it ends with an error."""

        def stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            started = arrived = time.perf_counter()

            def timed() -> Iterator[Any]:
                nonlocal arrived
                for request in requests:
                    arrived = time.perf_counter()
                    last_call(clear=True)
                    yield request

            try:
                for answer in inner(timed(), context):
                    self.record_batch(service, method, answer, arrived)
                    yield answer
            finally:
                status = context.code()  # type: ignore[attr-defined]
                if status is not None and status != grpc.StatusCode.OK:
                    self.record(service, method, None, context, started)

        return stream

    def record_batch(self, service: str, method: str, answer: Any, arrived: float) -> None:
        """Metrics and the log record of one answered batch (see the module's docstring). Never raises."""
        seconds = time.perf_counter() - arrived
        try:
            code = _STATUS_NAMES.get(answer.code, str(answer.code))
            tally = last_batch()
            if self._metrics is not None:
                self._metrics.observe_request(service, method, code, seconds)
                if tally is not None:
                    self._metrics.observe_operations(tally.by_operation, tally.failed)
            if not log.isEnabledFor(logging.INFO):
                return
            call = last_call()
            record = {
                "request_id": "",
                "actor": self._call_actor(call) if call is not None else "",
                "client": call.peer.common_name if call is not None and call.peer else "",
                "method": f"{service}/{method}",
                "code": code,
                "duration_ms": round(seconds * 1000, 3),
                "member": self._member,
                "ops": tally.ops if tally is not None else 0,
                "failed": sum(tally.failed.values()) if tally is not None else 0,
            }
            if answer.code:
                record["message"] = answer.message
            # built and handled directly, as in `record`: no walk of the stack for the caller's line
            log.handle(
                log.makeRecord(
                    log.name,
                    logging.INFO,
                    _SOURCE,
                    0,
                    "%s/%s %s %d ops %.1f ms",
                    (service, method, code, record["ops"], seconds * 1000),
                    None,
                    extra=fields(**record),
                )
            )
        except Exception:
            log.exception("recording a batch of %s/%s", service, method)

    def record(
        self, service: str, method: str, request: Any, context: grpc.ServicerContext, started: float
    ) -> None:
        """Metrics and the log record of one finished call. Never raises."""
        seconds = time.perf_counter() - started
        try:
            status = context.code() or grpc.StatusCode.OK  # type: ignore[attr-defined]
            code = _CODE_NAMES.get(status) or str(status)
            if self._metrics is not None:
                self._metrics.observe_request(service, method, code, seconds)
            level = logging.DEBUG if service.startswith(QUIET_SERVICES) else logging.INFO
            if not log.isEnabledFor(level):
                return
            call = last_call()  # the rpc wrapper's, when it got that far: no second look at the context
            record = {
                # the Call's (the request's field, read once by the rpc wrapper), else the request's
                "request_id": call.request_id
                if call is not None
                else str(getattr(request, "request_id", "") or ""),
                "actor": self._call_actor(call) if call is not None else self._actor(context),
                "client": (call.peer.common_name if call.peer else "")
                if call is not None
                else _client_name(context),
                "method": f"{service}/{method}",
                "code": code,
                "duration_ms": round(seconds * 1000, 3),
                "member": self._member,
            }
            tally = last_batch()  # a batched write (Keys/GenerateBatch): its request count
            if tally is not None:
                record["ops"] = tally.ops
                record["failed"] = sum(tally.failed.values())
            if code != "OK":
                details = context.details()  # type: ignore[attr-defined]
                record["message"] = (
                    details.decode(errors="replace") if isinstance(details, bytes) else str(details or "")
                )
            # the record built and handled directly: Logger.log would also walk the stack for the
            # caller's file and line, which no format of ours prints (a third of the record's cost)
            args: tuple[object, ...] = (service, method, code, seconds * 1000)
            text = "%s/%s %s %.1f ms"
            if tally is not None:  # as a stream's batch prints: its count in the text line too
                text, args = "%s/%s %s %d ops %.1f ms", (service, method, code, tally.ops, seconds * 1000)
            log.handle(
                log.makeRecord(
                    log.name,
                    level,
                    _SOURCE,
                    0,
                    text,
                    args,
                    None,
                    extra=fields(**record),
                )
            )
        except Exception:
            log.exception("recording %s/%s", service, method)

    def _call_actor(self, call: Call) -> str:
        if self._tokens is None or not call.token or call.peer is None:
            return ""
        actor, expires_ms = self._verified(call.token, call.peer.fingerprint)
        return actor if int(time.time() * 1000) < expires_ms else ""

    def _actor(self, context: grpc.ServicerContext) -> str:
        if self._tokens is None:
            return ""
        token = next((str(v) for k, v in context.invocation_metadata() if k == SESSION_KEY), "")
        if not token:
            return ""
        pem = (context.auth_context().get("x509_pem_cert") or [b""])[0]
        if not pem:  # no client certificate (the console's unix socket)
            return ""
        fingerprint = _fingerprint(pem)
        actor, expires_ms = self._verified(token, fingerprint)
        return actor if int(time.time() * 1000) < expires_ms else ""

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one observer per member process, kept for its life
    def _verified(self, token: str, fingerprint: str) -> tuple[str, int]:
        """(actor, expiry ms) a token names, verified once per token (a session's calls repeat it)."""
        assert self._tokens is not None
        try:
            claims = self._tokens.verify(token, fingerprint, 0)
        except Exception:  # forged, another cluster's, another certificate's: no actor
            return "", 0
        if claims.kind == "appliance":
            return f"user:{claims.subject}", claims.expires_ms
        return f"{claims.kind}:{claims.subject}/{claims.partition_role}", claims.expires_ms


def _client_name(context: grpc.ServicerContext) -> str:
    try:
        auth = context.auth_context()
    except Exception:
        return ""
    first = next(iter(auth.get("x509_common_name") or []), b"")
    return first.decode(errors="replace") if isinstance(first, bytes) else ""


@functools.lru_cache(maxsize=1024)
def _fingerprint(pem: bytes) -> str:
    """The client certificate's fingerprint, computed once per certificate (what session tokens bind)."""
    return certificate_fingerprint(pem)

"""The wrapper every RPC method runs in: channels, undecodable requests, min_index, errors, applied index.

- the channel table (`channels.py`): the connection's certificate class must reach
  the method, else PERMISSION_DENIED naming the class;
- a request whose bytes do not decode answers INVALID_ARGUMENT naming its message type;
- `x-hsm-min-index` (request metadata): wait up to MIN_INDEX_WAIT for this member
  to apply that far, else UNAVAILABLE so the client tries another member; the same
  for a member outside its lease (a cut-off member's applied state may be stale),
  except for the status RPCs, which describe exactly such members;
- `x-hsm-applied-index` (trailing metadata): this member's applied Raft index,
  on every answer, success or error;
- `x-hsm-leader` (trailing metadata, on every answer to a write: a request with a
  `request_id`, or a batch of them: BATCHED_WRITES): the client address of the leader this member knows, itself when it
  leads; absent when it knows none. A hint: the SDK sends its next writes there
  first (no forward to the leader, no wait for its commit index) and falls back
  to the other members as before;
- `x-hsm-cluster-id` (request metadata): the cluster the client means; a member
  of another cluster refuses (FAILED_PRECONDITION) with `x-hsm-refusal:
  foreign-cluster`, a removed member with `x-hsm-refusal: removed` (its Status
  and NodeStatus answers carry that key too): nothing ran, ask another member;
- `x-hsm-refusal` also carries the reason of a DomainError raised with one;
- DomainError / ReplicationError → the status of the error table, with the message;
  anything else → INTERNAL, logged; the node stays up.

Servicer methods never see the gRPC context: they get the request and its `Call`
(service/call.py: caller, session token, request id, deadline, method), built here
once, pass the Call to their service, and raise; this wrapper answers. The Call is also
left for the thread's server interceptors (`last_call`: the request log reads the caller
and the token from it instead of the gRPC context again).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

import grpc

from hsmnode.replication import ReplicationError, Replicator
from hsmnode.server.channels import ChannelGuard, Peer
from hsmnode.server.errors import STATUS_FOR_CODE, status_for_replication
from hsmnode.service.call import Call, Caller
from hsmnode.service.errors import DomainError, ErrorCode
from hsmnode.service.standing import Standing

log = logging.getLogger(__name__)

SESSION_KEY = "x-hsm-session"
MIN_INDEX_KEY = "x-hsm-min-index"
APPLIED_INDEX_KEY = "x-hsm-applied-index"
LEADER_KEY = "x-hsm-leader"
CLUSTER_ID_KEY = "x-hsm-cluster-id"
REFUSAL_KEY = "x-hsm-refusal"
REMOVED = "removed"
FOREIGN_CLUSTER = "foreign-cluster"
MIN_INDEX_WAIT = 1.0
STATUS_METHODS = ("NodeStatus", "Status")
# what a removed member still answers: its status, and the cluster's request to join again
REMOVED_MAY_SERVE = (*STATUS_METHODS, "AdoptCluster")
# about this node's own data dir, not the replicated state: no min-index wait, no lease (a repeated
# AdoptCluster reaches the restarted member, whose index may be below what the client saw before)
NODE_LOCAL = ("AdoptCluster",)
# writes whose request ids are inside the request (one per write it carries): answered with x-hsm-leader too
BATCHED_WRITES = frozenset({"GenerateBatch"})

Metadata = Sequence[tuple[str, Any]]  # a call's invocation metadata: (key, value) pairs
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S", bound="Servicer[Any]")


_this_thread = threading.local()


def last_call(clear: bool = False) -> Call | None:
    """The Call the `rpc` wrapper built last on this thread (None if none since the last clear);
    `clear`: forget it (an interceptor does so before each call it wraps)."""
    call: Call | None = getattr(_this_thread, "call", None)
    if clear:
        _this_thread.call = None
        _this_thread.batch = None
    return call


@dataclass(frozen=True)
class BatchTally:
    """What a CryptoStream batch ran, for the request log and metrics: `ops` operations in all;
    `by_operation` and `failed` by operation name (sign, verify, encrypt, decrypt)."""

    ops: int
    by_operation: dict[str, int]
    failed: dict[str, int]


def remember_batch(call: Call, ops: int, by_operation: dict[str, int], failed: dict[str, int]) -> None:
    """Leave a CryptoStream batch's Call and tally for the thread's server interceptors (the request
    log names the caller and counts the operations once per batch)."""
    _this_thread.call = call
    _this_thread.batch = BatchTally(ops, by_operation, failed)


def last_batch() -> BatchTally | None:
    """The tally `remember_batch` left on this thread since the last `last_call(clear=True)`."""
    batch: BatchTally | None = getattr(_this_thread, "batch", None)
    return batch


@dataclass(frozen=True)
class Undecodable:
    """What a request deserializer returns for bytes that are not its message: the wrapper answers it."""

    type_name: str
    problem: str


def safe_deserializer(message_cls: Any) -> Callable[[bytes], Any]:
    """`message_cls.FromString`, except that undecodable bytes become an `Undecodable` (gRPC would
    otherwise answer INTERNAL before any of our code runs)."""
    type_name = message_cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_cls.FromString(data)
        except Exception as exc:  # protobuf's DecodeError, or anything else the parser raises
            return Undecodable(type_name, str(exc) or type(exc).__name__)

    return parse


class Servicer(Generic[T]):
    """Base of the servicers: each holds its service (`_s`, of type T), the member's replicator
    for the `rpc` wrapper, the channel guard its service was bound with (server/app.py `bind`)
    and the member's standing (removed or not); `cluster_id` (the member's cluster) is set on each
    servicer when the server is built (members of several clusters may share a process: tests)."""

    cluster_id: str = ""
    channels: ChannelGuard | None = None
    standing: Standing | None = None
    # the leader's client address as this member knows it ("" for none): answers to writes carry it
    leader_endpoint: Callable[[], str] | None = None
    # method name -> its request deserializer's factory, where not `safe_deserializer` (server/app.py bind)
    request_deserializers: dict[str, Callable[[Any], Callable[[bytes], Any]]] = {}  # noqa: RUF012

    def __init__(self, replicator: Replicator, service: T) -> None:
        self.replicator = replicator
        self._s = service


def rpc(method: Callable[[S, Any, Call], R]) -> Callable[[S, Any, grpc.ServicerContext], R]:
    """Run a servicer method inside the member's error table and index metadata; the method gets
    the request and its `Call` (service/call.py), built here once, never the gRPC context."""
    name = method.__name__

    @functools.wraps(method)
    def handler(servicer: S, request: Any, context: grpc.ServicerContext) -> R:
        replicator = servicer.replicator
        guarded = name not in STATUS_METHODS
        metadata = context.invocation_metadata()  # read once: gRPC builds it anew on every read
        _refuse_elsewhere(servicer, name, context, metadata, guarded)
        write = name in BATCHED_WRITES or bool(getattr(request, "request_id", ""))
        hint = servicer.leader_endpoint if write else None
        try:
            call = _this_thread.call = _call(servicer, name, request, context, metadata)
            if name not in NODE_LOCAL:
                _await_min_index(replicator, metadata, leased=guarded)
            response = method(servicer, request, call)
        except DomainError as exc:
            _abort(replicator, context, STATUS_FOR_CODE[exc.code], exc.message, exc.reason, hint)
        except ReplicationError as exc:
            _abort(replicator, context, status_for_replication(exc), exc.message, "", hint)
        except Exception as exc:
            log.exception("unexpected error in %s", method.__qualname__)
            _abort(
                replicator,
                context,
                grpc.StatusCode.INTERNAL,
                f"internal error: {type(exc).__name__}: {exc}",
                "",
                hint,
            )
        context.set_trailing_metadata(_trailing(replicator, REMOVED if _removed_from(servicer) else "", hint))
        return response

    return handler


def _refuse_elsewhere(
    servicer: Servicer[Any], name: str, context: grpc.ServicerContext, metadata: Metadata, guarded: bool
) -> None:
    """A removed member, or a member of another cluster than the client means, runs nothing."""
    replicator, standing = servicer.replicator, servicer.standing
    if standing is not None and (standing.removed_from or not guarded):
        standing.refresh()  # removed, or added back, since the watcher's last round?
    removed_from = _removed_from(servicer)
    if removed_from and name not in REMOVED_MAY_SERVE:
        _abort(
            replicator,
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"this member was removed from cluster {removed_from} and serves no clients: "
            "use the cluster's other members; to bring it back, join it again "
            "(hsmnode cluster join --node THIS-MEMBER --cluster ANOTHER-MEMBER)",
            REMOVED,
        )
    wanted = _metadata(metadata, CLUSTER_ID_KEY)
    if guarded and wanted and servicer.cluster_id and wanted != servicer.cluster_id:
        _abort(
            replicator,
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"this member belongs to cluster {servicer.cluster_id}, not to cluster {wanted}: "
            "check the endpoints of your profile",
            FOREIGN_CLUSTER,
        )


def _removed_from(servicer: Servicer[Any]) -> str:
    return servicer.standing.removed_from if servicer.standing is not None else ""


def _call(
    servicer: Servicer[Any], name: str, request: Any, context: grpc.ServicerContext, metadata: Metadata
) -> Call:
    """The channel check (which classifies the caller), the request decoded, then its Call."""
    if servicer.channels is None:  # never bound through the channel table: refuse everything
        raise DomainError(ErrorCode.INTERNAL, f"{name} is not bound to a channel")
    peer = servicer.channels.check(name, context)
    if isinstance(request, Undecodable):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"the request is not a valid {request.type_name} message ({request.problem}); "
            "send that message type, encoded by a protobuf library",
        )
    left = context.time_remaining()
    return Call(
        method=f"{servicer.channels.service}/{name}",
        peer=Caller(peer.common_name, peer.fingerprint) if peer.fingerprint else None,
        token=_metadata(metadata, SESSION_KEY),
        # a batch's request ids are inside it (a miss on a protobuf message raises and catches)
        request_id="" if name in BATCHED_WRITES else str(getattr(request, "request_id", "")),
        deadline=None if left is None else time.monotonic() + left,
    )


def _await_min_index(replicator: Replicator, metadata: Metadata, leased: bool) -> None:
    """Wait for min_index; a `leased` read (everything but status) also needs the member's lease."""
    for key, value in metadata:
        if key != MIN_INDEX_KEY:
            continue
        try:
            wanted = int(value)
        except ValueError:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"{MIN_INDEX_KEY} must be an integer, got {value!r}"
            ) from None
        if not replicator.wait_applied(wanted, MIN_INDEX_WAIT):
            raise ReplicationError(
                "unavailable",
                f"this member has applied index {replicator.applied_index()}, behind the requested {wanted}; "
                "try another member",
            )
        if leased:  # read-your-writes from a cut-off member would be stale
            replicator.require_lease()


def _metadata(metadata: Metadata, wanted: str) -> str:
    for key, value in metadata:
        if key == wanted:
            return str(value)
    return ""


def _trailing(
    replicator: Replicator, refusal: str, leader: Callable[[], str] | None = None
) -> tuple[tuple[str, str], ...]:
    """The applied index; the refusal reason if any; with `leader` (a write), the leader's address."""
    pairs = [(APPLIED_INDEX_KEY, str(replicator.applied_index()))]
    if refusal:
        pairs.append((REFUSAL_KEY, refusal))
    endpoint = leader() if leader is not None else ""
    if endpoint:
        pairs.append((LEADER_KEY, endpoint))
    return tuple(pairs)


def _abort(
    replicator: Replicator,
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    refusal: str = "",
    leader: Callable[[], str] | None = None,
) -> NoReturn:
    context.set_trailing_metadata(_trailing(replicator, refusal, leader))
    context.abort(code, status_message(message))
    raise AssertionError("context.abort returned")


MAX_STATUS_MESSAGE = 1024  # characters of a status message: it travels in the grpc-message header


def status_message(message: str) -> str:
    """`message` cut to MAX_STATUS_MESSAGE characters, saying so. The status travels percent-encoded
    in a header, and gRPC refuses headers above 8 KiB, so a message echoing a 10,000-character key
    name reached the client as "received metadata size exceeds soft limit" instead of the refusal."""
    if len(message) <= MAX_STATUS_MESSAGE:
        return message
    return f"{message[: MAX_STATUS_MESSAGE - 40]}… ({len(message)} characters, cut)"


def open_stream(servicer: Servicer[Any], name: str, context: grpc.ServicerContext) -> Peer:
    """What the `rpc` wrapper checks before a unary method, for a client-streaming method's start: a
    removed member or another cluster's refuses, the channel table classifies the caller; a refusal
    aborts the stream with the error table's status. Returns the connection's Peer (its later
    messages are checked with `servicer.channels.recheck(name, peer)`)."""
    _refuse_elsewhere(servicer, name, context, context.invocation_metadata(), True)
    try:
        if servicer.channels is None:
            raise DomainError(ErrorCode.INTERNAL, f"{name} is not bound to a channel")
        peer = servicer.channels.check(name, context)
    except DomainError as exc:
        _abort(servicer.replicator, context, STATUS_FOR_CODE[exc.code], exc.message, exc.reason)
    return peer


@dataclass(frozen=True)
class Received:
    """A decoded request and the size of its wire form in bytes (`sized_deserializer`)."""

    message: Any
    size: int


def sized_deserializer(message_cls: Any) -> Callable[[bytes], Any]:
    """`safe_deserializer`, with the message's wire size: a `Received`, or an `Undecodable` (a
    CryptoStream batch's byte limit is checked against what came, without re-encoding it)."""
    parse = safe_deserializer(message_cls)

    def sized(data: bytes) -> Any:
        message = parse(data)
        return message if isinstance(message, Undecodable) else Received(message, len(data))

    return sized

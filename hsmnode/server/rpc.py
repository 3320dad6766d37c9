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
- `x-hsm-cluster-id` (request metadata): the cluster the client means; a member
  of another cluster refuses (FAILED_PRECONDITION) with `x-hsm-refusal:
  foreign-cluster`, a removed member with `x-hsm-refusal: removed` (its Status
  and NodeStatus answers carry that key too): nothing ran, ask another member;
- `x-hsm-refusal` also carries the reason of a DomainError raised with one;
- DomainError / ReplicationError → the status of the error table, with the message;
  anything else → INTERNAL, logged; the node stays up.

Servicer methods never call `context.abort` themselves: they raise, and this
wrapper answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc

from hsmnode.crypto import certificate_common_name, certificate_fingerprint
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.replication import ReplicationError, Replicator
from hsmnode.server.channels import ChannelGuard
from hsmnode.server.errors import STATUS_FOR_CODE, status_for_replication
from hsmnode.service.context import Caller

log = logging.getLogger(__name__)

SESSION_KEY = "x-hsm-session"
MIN_INDEX_KEY = "x-hsm-min-index"
APPLIED_INDEX_KEY = "x-hsm-applied-index"
CLUSTER_ID_KEY = "x-hsm-cluster-id"
REFUSAL_KEY = "x-hsm-refusal"
REMOVED = "removed"
FOREIGN_CLUSTER = "foreign-cluster"
MIN_INDEX_WAIT = 1.0
STATUS_METHODS = ("NodeStatus", "Status")
# what a removed member still answers: its status, and the cluster's request to join again
REMOVED_MAY_SERVE = (*STATUS_METHODS, "AdoptCluster")

R = TypeVar("R")


def caller_of(context: grpc.ServicerContext) -> Caller:
    auth = context.auth_context()
    pem = (auth.get("x509_pem_cert") or [b""])[0]
    if not pem:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "no client certificate on this connection")
    return _caller(pem)


@functools.lru_cache(maxsize=1024)
def _caller(pem: bytes) -> Caller:
    return Caller(common_name=certificate_common_name(pem), fingerprint=certificate_fingerprint(pem))


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


def token_of(context: grpc.ServicerContext) -> str:
    return _metadata(context, SESSION_KEY)


def remaining(context: grpc.ServicerContext) -> float | None:
    left = context.time_remaining()
    return None if left is None else max(0.05, left - 0.05)


class Servicer:
    """Base of the servicers: each holds the member's replicator for the `rpc` wrapper, and the
    channel guard its service was bound with (server/app.py `bind`); `cluster_id` (the member's
    cluster) is set on each servicer when the server is built."""

    cluster_id: str = ""
    channels: ChannelGuard | None = None

    def __init__(self, replicator: Replicator) -> None:
        self.replicator = replicator


def rpc(method: Callable[[Any, Any, grpc.ServicerContext], R]) -> Callable[..., R]:
    """Run a servicer method inside the member's error table and index metadata."""

    @functools.wraps(method)
    def handler(servicer: Servicer, request: Any, context: grpc.ServicerContext) -> R:
        replicator = servicer.replicator
        guarded = method.__name__ not in STATUS_METHODS
        if (replicator.removed_from or not guarded) and replicator.removal_check is not None:
            replicator.removal_check()  # removed, or added back, since the watcher's last round?
        if replicator.removed_from and method.__name__ not in REMOVED_MAY_SERVE:
            _abort(
                replicator,
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this member was removed from cluster {replicator.removed_from} and serves no clients: "
                "use the cluster's other members; to bring it back, join it again "
                "(hsmnode cluster join --node THIS-MEMBER --cluster ANOTHER-MEMBER)",
                REMOVED,
            )
        wanted = _metadata(context, CLUSTER_ID_KEY)
        if guarded and wanted and servicer.cluster_id and wanted != servicer.cluster_id:
            _abort(
                replicator,
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this member belongs to cluster {servicer.cluster_id}, not to cluster {wanted}: "
                "check the endpoints of your profile",
                FOREIGN_CLUSTER,
            )
        try:
            if servicer.channels is None:  # never bound through the channel table: refuse everything
                raise DomainError(ErrorCode.INTERNAL, f"{method.__name__} is not bound to a channel")
            servicer.channels.check(method.__name__, context)
            if isinstance(request, Undecodable):
                raise DomainError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"the request is not a valid {request.type_name} message ({request.problem}); "
                    "send that message type, encoded by a protobuf library",
                )
            _await_min_index(replicator, context, leased=guarded)
            response = method(servicer, request, context)
        except DomainError as exc:
            _abort(replicator, context, STATUS_FOR_CODE[exc.code], exc.message, exc.reason)
        except ReplicationError as exc:
            _abort(replicator, context, status_for_replication(exc), exc.message)
        except Exception as exc:
            log.exception("unexpected error in %s", method.__qualname__)
            _abort(
                replicator, context, grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
            )
        context.set_trailing_metadata(_trailing(replicator, REMOVED if replicator.removed_from else ""))
        return response

    return handler


def _await_min_index(replicator: Replicator, context: grpc.ServicerContext, leased: bool) -> None:
    """Wait for min_index; a `leased` read (everything but status) also needs the member's lease."""
    for key, value in context.invocation_metadata():
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


def _metadata(context: grpc.ServicerContext, wanted: str) -> str:
    for key, value in context.invocation_metadata():
        if key == wanted:
            return str(value)
    return ""


def _trailing(replicator: Replicator, refusal: str) -> tuple[tuple[str, str], ...]:
    applied = (APPLIED_INDEX_KEY, str(replicator.applied_index()))
    return (applied, (REFUSAL_KEY, refusal)) if refusal else (applied,)


def _abort(
    replicator: Replicator,
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    refusal: str = "",
) -> NoReturn:
    context.set_trailing_metadata(_trailing(replicator, refusal))
    context.abort(code, message)
    raise AssertionError("context.abort returned")

"""The one table from domain and replication errors to gRPC status codes (DESIGN.md §4)."""

from __future__ import annotations

import grpc

from hsmnode.replication import ReplicationError
from hsmnode.service.errors import DomainError, ErrorCode

STATUS_FOR_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Not applied → UNAVAILABLE (safe to send elsewhere); outcome unknown → ABORTED
# (retry with the same request_id; the state machine answers the first outcome).
STATUS_FOR_REPLICATION: dict[str, grpc.StatusCode] = {
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "unknown_outcome": grpc.StatusCode.ABORTED,
    "busy": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_for_replication(exc: ReplicationError) -> grpc.StatusCode:
    return STATUS_FOR_REPLICATION.get(exc.kind, grpc.StatusCode.UNAVAILABLE)


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """The status, message and refusal reason (x-hsm-refusal) the `rpc` wrapper answers for `error`
    raised by a use case: for one operation of a batch that answers each on its own."""
    if isinstance(error, DomainError):
        return STATUS_FOR_CODE[error.code], error.message, error.reason
    if isinstance(error, ReplicationError):
        return status_for_replication(error), error.message, ""
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}", ""

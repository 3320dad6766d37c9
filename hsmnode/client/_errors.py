"""The SDK's exception tree: one class per gRPC status family.

HsmError                      any failure; .code (grpc.StatusCode), .message
├── InvalidArgument           malformed argument
├── NotFound                  no such object
├── AlreadyExists             duplicate
├── PermissionDenied          role or grant missing
├── Unauthenticated           bad credential, unregistered client certificate
├── FailedPrecondition        wrong state (locked, blocked, not authorized)
├── ResourceExhausted         lockout, queue full
├── OutcomeUnknown            a write may have been applied but no member confirmed it before
│                             the call's deadline (the SDK retried it with the same request_id
│                             until then); `.request_id`: call again with it to learn the
│                             outcome, never with a new one
├── Unavailable               no member could answer, and nothing was applied (after failover)
├── Internal                  a bug on the member; report it
└── BatchError                some operations of a sign_many/encrypt_many/... call failed:
                              `.results` (per item: its result or its HsmError), `.errors`
"""

from __future__ import annotations

import re
from typing import Any

import grpc


class HsmError(Exception):
    """`reason`: the member's machine-readable refusal reason (`x-hsm-refusal`), if it gave one."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = ""
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(HsmError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(HsmError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(HsmError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(HsmError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(HsmError):
    code = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(HsmError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(HsmError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class OutcomeUnknown(HsmError):
    code = grpc.StatusCode.ABORTED

    def __init__(self, message: str, code: grpc.StatusCode | None = None, *, request_id: str = "") -> None:
        super().__init__(message, code)
        self.request_id = request_id


class Unavailable(HsmError):
    code = grpc.StatusCode.UNAVAILABLE


class Internal(HsmError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[HsmError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        FailedPrecondition,
        ResourceExhausted,
        OutcomeUnknown,
        Unavailable,
        Internal,
    )
}


class BatchError(HsmError):
    """Some operations of a `*_many` call failed (the others succeeded). `results`: per item, in
    the order given, its result or its HsmError; `errors`: {item index: HsmError}. Its code and
    message are those of the first failed item's error, its message prefixed with the count."""

    def __init__(self, results: list[Any]) -> None:
        self.results = results
        self.errors: dict[int, HsmError] = {i: r for i, r in enumerate(results) if isinstance(r, HsmError)}
        first_index, first = next(iter(self.errors.items()))
        super().__init__(
            f"{len(self.errors)} of {len(results)} operations failed; item {first_index}: {first.message}",
            first.code,
        )
        self.reason = first.reason


def error_from_status(code: grpc.StatusCode, message: str, reason: str = "") -> HsmError:
    """The HsmError of a status code and message (an RPC's, or one operation's in a batch)."""
    cls = _BY_CODE.get(code, HsmError)
    error = cls(message or code.name, code)
    error.reason = reason
    return error


# gRPC's own refusal of an oversize message ("Received message larger than max (5000024 vs. 4194304)")
_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")
DIGEST_MECHANISMS_HINT = "ECDSA-DIGEST, RSA-PSS-SHA256-DIGEST or RSA-PKCS1-DIGESTINFO"


def _readable(code: grpc.StatusCode, details: str) -> str:
    """gRPC transport texts a person cannot act on, rewritten to name the limit and the way round it."""
    found = _TOO_LARGE.search(details) if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if found is None:
        return details
    size, limit = int(found.group(1)), int(found.group(2))
    return (
        f"the message is {size} bytes, over the {limit // (1024 * 1024)} MiB gRPC message limit ({limit} bytes); "
        f"an operation takes at most 64 KiB of data: to sign large data, hash it first and sign the digest "
        f"with a digest-only mechanism ({DIGEST_MECHANISMS_HINT}); to encrypt it, encrypt it locally with "
        f"a data key of your own and encrypt that key here (envelope encryption)"
    )


def error_from_rpc(exc: grpc.RpcError) -> HsmError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = _readable(code, (exc.details() if hasattr(exc, "details") else str(exc)) or "")
    # (key, value) pairs at run time, whatever the stubs say of RpcError's metadata
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    reason = next((str(v) for k, v in trailing or () if k == "x-hsm-refusal"), "")
    return error_from_status(code, details or "", reason)

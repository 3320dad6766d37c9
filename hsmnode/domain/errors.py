"""Domain error codes: the outcome vocabulary of `apply`, mapped to gRPC status codes at the edge."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Why a command was refused. Stable strings: they are replicated in results and audit records."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    """A refusal with a code and a message a person can act on.

    Raised by validation helpers inside the domain and caught by `apply` (`domain/apply/`),
    which turns it into an error `Result`; it never leaves the domain as an exception.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        reason: str = "",
        audit_detail: str = "",
        hidden_code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # a machine-readable reason for a refusal a client acts on (sent as `x-hsm-refusal`)
        self.reason = reason
        # what the audit log records when it must say more than the answer (e.g. a hidden lockout)
        self.audit_detail = audit_detail
        # the code the refusal has when its answer (`code`) hides it: for metrics, never answered
        self.hidden_code = hidden_code


class CommandDecodeError(DomainError):
    """Command bytes that are not a valid canonical command."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message)

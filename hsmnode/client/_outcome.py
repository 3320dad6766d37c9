"""What the failed attempts of one call say about its outcome (the SDK's outcome contract).

A write may have been applied when an attempt reached a member and no answer came back
(a lost answer, a deadline, a member that died mid-call, an unknown outcome the member
reported); it was provably not applied when the member answered UNAVAILABLE itself, the
connection never opened, or a fault was injected before sending.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import grpc

from hsmnode.client._errors import HsmError, OutcomeUnknown, Unavailable, error_from_rpc

APPLIED_INDEX_KEY = "x-hsm-applied-index"
REFUSAL_KEY = "x-hsm-refusal"
# refusals of a member that is not (or no longer) one of this cluster's: nothing ran, drop it
MEMBER_REFUSALS = frozenset({"removed", "foreign-cluster"})
# transport failures before the request left this process: provably not applied
NOT_SENT = (
    "failed to connect",
    "connection refused",
    "connections to all backends failing",
    "dns resolution",
)


class Attempts:
    """What the attempts of one call found out."""

    def __init__(self, method: str, write: bool, request_id: str) -> None:
        self.method = method
        self.write = write
        self.request_id = request_id
        self.maybe_applied = False
        self.last: grpc.RpcError | None = None
        self.refused: set[str] = set()

    def failure(self, endpoints: Sequence[str], timeout: float) -> HsmError:
        where = ", ".join(endpoints)
        last = f"; last error: {error_from_rpc(self.last)}" if self.last is not None else ""
        if self.maybe_applied:
            return OutcomeUnknown(
                f"{self.method} may have been applied, but no member confirmed it within {timeout}s "
                f"({where}){last}: call again with request_id {self.request_id!r} to learn its outcome "
                "(the members answer a repeat of any of the last 10,000 request ids with its first result); "
                "a new request_id could apply it twice",
                request_id=self.request_id,
            )
        return Unavailable(f"no member answered {self.method} within {timeout}s ({where}){last}")


def refusal_of(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REFUSAL_KEY:
            return str(value)
    return ""


def provably_not_applied(exc: grpc.RpcError, trailing: Any) -> bool:
    """UNAVAILABLE from a member (it says: not applied, try elsewhere), a fault injected before
    sending, or a connection that never opened. Everything else may have reached a member."""
    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
        return False
    if any(key == APPLIED_INDEX_KEY for key, _ in trailing or ()):
        return True
    if getattr(exc, "sent", None) is False:
        return True
    details = (exc.details() or "").lower()
    return any(hint in details for hint in NOT_SENT)


def attempt_timeout(timeout: float, members: int) -> float:
    """How long (s) one attempt at one member may take within a call's `timeout` (s), the client
    knowing `members` members: half of it, so a hung or cut-off member leaves the call time for
    another. With one member, at least 1 s (another attempt could only go to the same member). It
    was at least 1 s always, so with `timeout` ≤ 2 s one hung member took a call's whole deadline."""
    return timeout / 2 if members > 1 else max(1.0, timeout / 2)


def new_request_id() -> str:
    """A fresh request id: 32 hex characters of a random (version 4, RFC 4122 variant) UUID, as
    `uuid.uuid4().hex` gives, at a third of its cost (its constructor checks; every write makes one)."""
    raw = bytearray(os.urandom(16))
    raw[6], raw[8] = raw[6] & 0x0F | 0x40, raw[8] & 0x3F | 0x80
    return raw.hex()


def request_id_or_new(request_id: str | None) -> str:
    return request_id or new_request_id()

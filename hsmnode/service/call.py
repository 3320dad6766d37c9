"""The request context: one RPC as a use case sees it, built once by the server's `rpc` wrapper.

Services take a `Call` first and read who is calling (`caller`), with which session
(`token`), under which idempotency key (`request_id`) and how long the client still
waits (`timeout`) from it; they never see gRPC. A use case run by the member itself
(a scheduled backup, the reconciler) has no Call.

The caches behind a Call (issue 16), for any servicer that builds Calls (the `rpc` wrapper,
a streaming servicer):
- identity: `ChannelGuard.check(method, context)` (server/channels.py) gives the caller's
  `Peer`; its certificate facts (fingerprint, common name, issued by the cluster CA) are
  derived once per certificate (`Classifier`, keyed by the PEM bytes), while registration
  (NTLS clients) is read from replicated state on every call, so revocation is immediate;
- session: `NodeContext.claims(call, ...)` verifies `call.token` through
  `TokenAuthority.verify` (sessions.py), whose MAC/JSON check runs once per token; expiry and
  the certificate binding are checked on every call, and every epoch the token carries is
  checked against replicated state on every call (domain/access.py);
- per-request logs and metrics read `method` and `request_id` (and `rpc.last_call()`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hsmnode.domain.errors import DomainError, ErrorCode

# what a write keeps back of the client's deadline to send its answer (s)
ANSWER_MARGIN = 0.05


@dataclass(frozen=True)
class Caller:
    """Who is on the other end of the mutual-TLS connection."""

    common_name: str
    fingerprint: str

    @property
    def cert_actor(self) -> str:
        return f"cert:{self.fingerprint}"


@dataclass(frozen=True)
class Call:
    """One RPC: `method` is its full name ("hsmnode.pb.Keys/Sign"); `peer` the TLS caller, None on
    the local console's socket (no certificate); `token` the session token ("" for none);
    `request_id` the request's idempotency key ("" for a read); `deadline` the time.monotonic()
    by which the client stops waiting (None: no deadline)."""

    method: str
    peer: Caller | None = None
    token: str = ""
    request_id: str = ""
    deadline: float | None = None

    @property
    def caller(self) -> Caller:
        """The TLS caller. Raises DomainError UNAUTHENTICATED on a connection without a certificate."""
        if self.peer is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "no client certificate on this connection")
        return self.peer

    @property
    def timeout(self) -> float | None:
        """Seconds left for the work (at least ANSWER_MARGIN), keeping ANSWER_MARGIN for the answer;
        None without a deadline."""
        if self.deadline is None:
            return None
        return max(ANSWER_MARGIN, self.deadline - time.monotonic() - ANSWER_MARGIN)

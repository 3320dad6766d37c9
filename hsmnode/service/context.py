"""What every use case needs from its member: the replicator, identity, clock, session
tokens, and the few steps every use case repeats (stamp, propose, authorize a read)."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hsmnode.config import NodeConfig
from hsmnode.domain import audit, command_limits
from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize, validate_session
from hsmnode.domain.commands import MAX_COMMAND_BYTES, Command, validate_request_id
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.principals import parse
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.replication import ReplicationError, Replicator
from hsmnode.service.call import Call
from hsmnode.sessions import Claims, SessionKind, TokenAuthority

log = logging.getLogger(__name__)

DEFAULT_WRITE_TIMEOUT = 5.0
# the sessions key use takes (KeyService)
KEY_SESSIONS = (SessionKind.PARTITION, SessionKind.KEYRING)
# what a call without a session token is told, by the kinds of session it needs
_NO_SESSION: dict[tuple[SessionKind, ...], str] = {
    (SessionKind.APPLIANCE,): "this needs an appliance session: log in first (hsmnode login)",
    (SessionKind.PARTITION,): "this needs a partition session: open a session first (hsmnode session open)",
    (SessionKind.KEYRING,): "this needs a keyring session: open a session first (hsmnode session open)",
    KEY_SESSIONS: "this needs a partition or keyring session: open one first (hsmnode session open)",
}
T = TypeVar("T")
C = TypeVar("C", bound=Command)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def answer(result: Result) -> Result:
    """A successful Result as is; a refusal as the DomainError it carries."""
    if not result.ok:
        assert result.code is not None
        raise DomainError(result.code, result.message)
    return result


def write_timeout(timeout: float | None) -> float:
    """How long a write waits for its commit (s): the client's time left, at most DEFAULT_WRITE_TIMEOUT."""
    return min(timeout or DEFAULT_WRITE_TIMEOUT, DEFAULT_WRITE_TIMEOUT)


def encoded(cmd: Command) -> bytes:
    """`cmd`'s Raft payload. Raises DomainError INVALID_ARGUMENT for a command over MAX_COMMAND_BYTES
    (refused before it reaches any journal)."""
    return _within_limit(cmd.TYPE, cmd.encode())


def _within_limit(type_name: str, payload: bytes) -> bytes:
    size = len(payload)
    if size > MAX_COMMAND_BYTES:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"the {type_name} command would be {size} bytes; a command holds at most {MAX_COMMAND_BYTES} "
            "bytes: send smaller values",
        )
    return payload


def sub_request_id(request_id: str, tag: str) -> str:
    """A derived idempotency key for the n-th command one request proposes."""
    derived = f"{request_id}/{tag}"
    if len(derived) <= 128:
        return derived
    return f"{hashlib.sha256(request_id.encode()).hexdigest()[:64]}/{tag}"


@dataclass
class NodeContext:
    config: NodeConfig
    replicator: Replicator
    tokens: TokenAuthority
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)
    ca_pem: bytes = b""
    node_cert_pem: bytes = b""
    node_key_pem: bytes = b""
    request_restart: Callable[[], None] = field(default=lambda: None)
    # wall-clock ms when this member process started (activation lifetime, DOMAIN.md §3)
    started_ms: int = field(default_factory=wall_clock_ms)

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def read(self, fn: Callable[[HsmState], T]) -> T:
        return self.replicator.read(fn)

    def caught_up(self, timeout: float | None) -> None:
        """Return once this member has applied everything committed before the call (a Raft barrier,
        for a security-relevant read such as judging a password), waiting at most min(`timeout`, 2) s.

        Raises ReplicationError "unavailable" when the barrier does not commit in time, the leader
        changes or none is known: the barrier is a no-op entry and nothing of the request was
        proposed, so the request was not applied and may go to another member (README, the outcome
        contract). Answered as the barrier's "unknown outcome" (ABORTED), the SDK took a login that
        only waited for it as one that may have been applied (a login storm: OutcomeUnknown)."""
        wait = min(timeout or 2.0, 2.0)
        try:
            self.replicator.barrier(timeout=wait)
        except ReplicationError as exc:
            if exc.kind != "unknown_outcome":
                raise
            raise ReplicationError(
                "unavailable",
                f"this member could not confirm within {wait:.2f} s that it has applied every committed "
                "Raft entry (a barrier), so it judged and wrote nothing: try again, or another member",
            ) from None

    def propose(self, cmd: Command, timeout: float | None) -> Result:
        """Replicate and return the applied Result; a refusal becomes a DomainError.

        A command over MAX_COMMAND_BYTES is refused here, before it reaches any journal."""
        result = self.replicator.propose(cmd, timeout=write_timeout(timeout), payload=encoded(cmd))
        return answer(result)

    def propose_many(self, payloads: list[bytes], timeouts: list[float | None]) -> list[Result | Exception]:
        """Replicate several commands together (`encoded` payloads, all queued before any is awaited:
        one group-commit round; as batch entries, several commands in one Raft entry, once every voter
        reads them: Replicator.propose_many) and return per command, in order, its applied Result or
        the DomainError / ReplicationError `propose` would have raised for it."""
        try:
            results = self.replicator.propose_many(payloads, [write_timeout(t) for t in timeouts])
        except ReplicationError as exc:  # no leader with a quorum: none was queued
            return [exc] * len(payloads)
        answers: list[Result | Exception] = []
        for result in results:
            if isinstance(result, Result) and not result.ok:
                assert result.code is not None
                answers.append(DomainError(result.code, result.message))
            else:
                answers.append(result)
        return answers

    def submit(
        self, cls: type[C], actor: str, request_id: str, timeout: float | None, **fields: Any
    ) -> Result:
        """Validate the client's request_id, stamp the time, build `cls` and propose it."""
        return self.propose(self.stamped(cls, actor, request_id, **fields), timeout)

    def stamped(self, cls: type[C], actor: str, request_id: str, **fields: Any) -> C:
        """`cls` built with the client's request_id (validated) and this member's time. Raises
        DomainError INVALID_ARGUMENT for an invalid request id or a name longer than its rule allows
        (command_limits: refused by that rule before the command is built)."""
        validate_request_id(request_id)
        command_limits.check_command(cls, fields)
        return cls(actor=actor, request_id=request_id, timestamp=self.clock_ms(), **fields)

    def stamped_payload(self, cls: type[C], actor: str, request_id: str, fields: dict[str, Any]) -> bytes:
        """`encoded(self.stamped(cls, actor, request_id, **fields))`: the same checks, the same bytes,
        without building the command (c.encode_fields; GenerateBatch, one per key created)."""
        validate_request_id(request_id)
        command_limits.check_command(cls, fields)
        return _within_limit(cls.TYPE, c.encode_fields(cls, actor, request_id, self.clock_ms(), fields))

    # --- idempotency (DESIGN.md §3.5) ------------------------------------------

    def prior(self, request_id: str, cls: type[Command], actor: str) -> Result | None:
        """The first result of `request_id`, when this member applied it as a `cls` command by `actor`.

        A use case asks this before any check that reads local state: the first execution may
        have changed that state (a destroyed key is gone, a changed password no longer matches),
        and a repeated request id must get the first answer, not a verdict on the new state."""
        if not request_id:
            return None
        found = self.read(lambda s: s.prior(request_id))
        if found is None or found[0] != cls.TYPE or found[1] != actor:
            return None
        return found[2]

    def once(
        self,
        cls: type[C],
        actor: str,
        request_id: str,
        timeout: float | None,
        prepare: Callable[[], dict[str, Any]],
    ) -> Result:
        """Propose `cls(**prepare())` under `request_id`, or answer the request's first result.

        `prepare` holds the use case's checks against local state and mints the command's
        fields; it runs only for a request id this member has not applied. A check that fails
        is judged again against the request's first result, because the first attempt may
        have been applied while the check ran (its answer lost, the client retrying).
        Raises DomainError for a refused command (first or now)."""
        found = self.first_or_prepared(cls, actor, request_id, prepare)
        if isinstance(found, Result):
            return answer(found)
        return self.submit(cls, actor, request_id, timeout, **found)

    def first_results(self, cls: type[Command], actor: str, request_ids: Iterable[str]) -> dict[str, Result]:
        """`prior` for many request ids in one read of the state (a batch of writes): request id ->
        first result, for those this member applied as a `cls` command by `actor`."""

        def firsts(s: HsmState) -> dict[str, Result]:
            found: dict[str, Result] = {}
            for request_id in request_ids:
                seen = s.prior(request_id) if request_id else None
                if seen is not None and seen[0] == cls.TYPE and seen[1] == actor:
                    found[request_id] = seen[2]
            return found

        return self.read(firsts)

    def first_or_prepared(
        self,
        cls: type[C],
        actor: str,
        request_id: str,
        prepare: Callable[[], dict[str, Any]],
        known: dict[str, Result] | None = None,
    ) -> Result | dict[str, Any]:
        """`once` up to the proposal: the request's first Result (success or refusal, not raised)
        when this member applied it, else the fields `prepare` minted. `known`: the first results
        `first_results` read just before for a batch of request ids including this one (else the
        state is read here). Raises DomainError for an invalid request id or a failed check (not
        judged as a repeat: see `once`)."""
        validate_request_id(request_id)
        first = known.get(request_id) if known is not None else self.prior(request_id, cls, actor)
        if first is not None:
            return first
        try:
            return prepare()
        except DomainError:
            first = self.prior(request_id, cls, actor)
            if first is None:
                raise
            return first

    # --- sessions ---------------------------------------------------------

    def claims(self, call: Call, *kinds: SessionKind) -> Claims:
        """The verified claims of the call's session token, which must be of one of `kinds`. Raises DomainError UNAUTHENTICATED without a valid
        token, PERMISSION_DENIED for a session of another kind."""
        if not call.token:
            raise DomainError(ErrorCode.UNAUTHENTICATED, _NO_SESSION[kinds])
        claims = self.tokens.verify(call.token, call.caller.fingerprint, self.clock_ms())
        if claims.kind not in kinds:
            # authenticated, but this session carries no authority for the request
            if kinds == KEY_SESSIONS:
                raise DomainError(
                    ErrorCode.PERMISSION_DENIED, "keys live in partitions and keyrings: open a session on one"
                )
            article = "an" if kinds[0] == SessionKind.APPLIANCE else "a"
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                f"this needs {article} {kinds[0]} session, not a {claims.kind} one",
            )
        return claims

    def check_session(self, claims: Claims) -> None:
        now = self.clock_ms()
        self.read(lambda s: validate_session(s, parse(claims.actor), now))

    def authorize_read(
        self, call: Call, operation: str, kind: SessionKind = SessionKind.APPLIANCE, partition: str = ""
    ) -> Claims:
        """Check a read-only operation against local replicated state; a denial is audited."""
        claims = self.claims(call, kind)
        now = self.clock_ms()
        try:
            self.read(lambda s: authorize(s, claims.actor, operation, now, partition))
        except DomainError as exc:
            if exc.code is ErrorCode.PERMISSION_DENIED:
                self.audit_refusal(claims.actor, "permission.denied", exc.message)
            raise
        return claims

    def audit_wanted(self, category: audit.AuditCategory, ok: bool) -> bool:
        """Does the Auditor's configuration (replicated) record this category and outcome?"""
        return self.read(lambda s: audit.wants(s.hsm.audit_config, category, ok))

    def audit_key_event(
        self,
        actor: str,
        event: str,
        container: str,
        object_id: str,
        label: str,
        outcome: str,
        detail: str,
        *,
        required: bool,
    ) -> None:
        """Put a key-management event served off the Raft path (an export, a refused unwrap, a backup)
        into the cluster chain, if the category records it. `required`: an event whose record cannot
        be written fails (key material must not leave unaudited); otherwise best effort."""
        if not self.audit_wanted(audit.AuditCategory.KEY_MANAGEMENT, outcome == "ok"):
            return
        cmd = c.KeyAuditEvent(
            actor=actor,
            request_id=f"audit-{uuid.uuid4().hex}",
            timestamp=self.clock_ms(),
            event=event,
            container=container[:200],
            object_id=object_id[:200],
            label=label[:200],
            outcome=outcome,
            detail=detail[:1000],
            member=self.node_id,
        )
        try:
            self.propose(cmd, timeout=2.0)
        except (DomainError, ReplicationError) as exc:
            if required:
                raise ReplicationError(
                    "unavailable",
                    f"{event} could not be written to the audit log ({exc}), so it was not served: try again",
                ) from None
            log.warning("could not audit %s by %s: %s", event, actor, exc)

    def audit_refusal(self, actor: str, event: str, detail: str) -> None:
        """Put a refusal caught before proposing into the audit log (best effort, DESIGN.md §3.9),
        if the Auditor's `access` category records failures."""
        if not self.audit_wanted(audit.AuditCategory.ACCESS, False):
            return
        try:
            self.propose(
                c.AuditEvent(
                    actor=actor,
                    request_id=f"refusal-{uuid.uuid4().hex}",
                    timestamp=self.clock_ms(),
                    event=event,
                    detail=detail[:1000],
                ),
                timeout=2.0,
            )
        except (DomainError, ReplicationError) as exc:
            log.warning("could not audit %s by %s: %s", event, actor, exc)

"""Audit of key actions served off the Raft path (DOMAIN.md §6), for the key service:

- key use (sign, verify, encrypt, decrypt), allowed or refused, goes to this member's
  key-usage chain (usage_audit.py), if the Auditor's `key_usage` category records it;
  a use whose record cannot be written fails (no unaudited key use). A unary use is one
  record; a CryptoStream batch is one record per (key, operation, mechanism, outcome,
  message) with the count of uses it stands for (`Use.times`, detail "sign ×64 with key
  'k' (ECDSA-SHA256)"), the batch's records written at once (key_use.py);
- exports (public or wrapped), refused exports and refused unwraps go to the cluster
  chain as `audit.key` events (`key_management`); an export is served only once its
  record is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from hsmnode.domain.audit import AuditCategory
from hsmnode.domain.errors import DomainError
from hsmnode.replication import ReplicationError
from hsmnode.service.context import NodeContext
from hsmnode.service.key_views import LocatedKey
from hsmnode.service.usage_audit import UsageLog
from hsmnode.sessions import Claims


def target(claims: Claims, key_ref: str) -> tuple[str, str]:
    """("partition:OWNER", key) for a reference "partition:OWNER/KEY" to another user's partition
    (DOMAIN.md §4 grants); otherwise the session's own container and the reference as given."""
    if key_ref.startswith("partition:") and "/" in key_ref:
        owner, _, ref = key_ref[len("partition:") :].partition("/")
        return f"partition:{owner}", ref
    return claims.container, key_ref


class Use(NamedTuple):
    """One key-usage record to write: `times` uses of `command` ("key.sign") on `key` (its object id,
    or the reference as given when the key was not found) with one outcome ("ok" or an error code);
    the record's `count` (domain/audit.py)."""

    command: str
    container: str
    key: str
    outcome: str
    detail: str
    times: int = 1


def use_detail(command: str, key_name: str, mechanism: str, why: str = "", count: int = 1) -> str:
    """What a key-usage record says: "sign with key 'k' (ECDSA-SHA256)", "sign ×64 with key ...",
    followed by ": <the refusal's message>" for a refusal."""
    verb = command[4:] if count == 1 else f"{command[4:]} ×{count}"
    return f"{verb} with key '{key_name}' ({mechanism})" + (f": {why}" if why else "")


def refusal(exc: BaseException) -> tuple[str, str] | None:
    """(outcome, message) a key-usage record gives an error: a DomainError's code, UNAVAILABLE for a
    ReplicationError (the lease); None for anything else (an internal error: logged, not recorded)."""
    if isinstance(exc, DomainError):
        return str(exc.code), exc.message
    if isinstance(exc, ReplicationError):
        return "UNAVAILABLE", exc.message
    return None


_DETAIL = 1000  # characters of a key-usage record's detail at most


class KeyAudit:
    def __init__(self, ctx: NodeContext, usage_log: UsageLog | None) -> None:
        self._ctx = ctx
        self._usage = usage_log

    def use(self, claims: Claims, command: str, key_ref: str, mechanism: str) -> KeyUse:
        """A context for one key use: recorded when it ends, allowed or refused."""
        return KeyUse(self, claims, command, key_ref, mechanism)

    def record_uses(self, claims: Claims, uses: Sequence[Use]) -> None:
        """Append key uses to this member's key-usage chain, those the Auditor's configuration
        records (key_usage: success, failure, all), in one write. Raises ReplicationError
        ("unavailable") when the chain cannot be written: the uses must then not be served."""
        if self._usage is None or not uses:
            return
        wanted: dict[bool, bool] = {}  # by success: the configuration read once per outcome kind
        kept: list[Use] = []
        for use in uses:
            ok = use.outcome == "ok"
            keep = wanted.get(ok)
            if keep is None:
                keep = wanted[ok] = self._ctx.audit_wanted(AuditCategory.KEY_USAGE, ok)
            if keep:
                kept.append(use if len(use.detail) <= _DETAIL else use._replace(detail=use.detail[:_DETAIL]))
        if not kept:
            return
        try:
            self._usage.append_many(self._ctx.clock_ms(), claims.actor, kept)
        except OSError as exc:
            # no unaudited key use: the caller's operation fails and the SDK tries another member
            raise ReplicationError(
                "unavailable",
                f"this member cannot write its key-usage audit log ({exc.strerror}); try another member",
            ) from None

    def exported(
        self, claims: Claims, event: str, key_ref: str, run: Callable[[], tuple[LocatedKey, bytes]]
    ) -> bytes:
        """Serve an export (`run` returns the key and what leaves the HSM) and audit it in the cluster
        chain: a refusal best effort, a success before anything is returned."""
        container, ref = target(claims, key_ref)
        try:
            key, exported = run()
        except DomainError as exc:
            self._ctx.audit_key_event(
                claims.actor, event, container, ref, "", str(exc.code), exc.message, required=False
            )
            raise
        self._ctx.audit_key_event(
            claims.actor,
            event,
            key.container,
            key.id,
            key.label,
            "ok",
            f"{event[4:]} of {key.object_class} {key.key_type}-{key.size} key '{key.label}' ({key.id})",
            required=True,
        )
        return exported


class KeyUse:
    """Records one key use in the member's key-usage chain when it ends, allowed or refused."""

    def __init__(self, audit: KeyAudit, claims: Claims, command: str, key_ref: str, mechanism: str) -> None:
        self._audit = audit
        self._claims = claims
        self._command = command
        self._container, self._key = target(claims, key_ref)
        self._label = ""
        self._mechanism = mechanism

    def found(self, key: LocatedKey) -> None:
        self._container, self._key, self._label = key.container, key.id, key.label

    def __enter__(self) -> KeyUse:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        recorded = ("ok", "") if exc is None else refusal(exc)
        if recorded is None:
            return  # an internal error: logged by the rpc wrapper
        outcome, why = recorded
        self._audit.record_uses(
            self._claims,
            [
                Use(
                    self._command,
                    self._container,
                    self._key,
                    outcome,
                    use_detail(self._command, self._label or self._key, self._mechanism, why),
                )
            ],
        )

"""Audit use cases: operator notes (appliance session); listing and verifying both chains — the
cluster chain and this member's key-usage chain — and the audit configuration (the HSM
Auditor's job: an `audit` user holding the Auditor role)."""

from __future__ import annotations

from dataclasses import dataclass

from hsmnode.domain import commands as c
from hsmnode.domain.audit import CATEGORIES, DEFAULT_LEVEL, AuditRecord, verify_chain
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext
from hsmnode.service.usage_audit import LocalChainCheck, UsageLog
from hsmnode.sessions import SessionKind

LIST_DEFAULT = 100
LIST_MAX = 1000


CHAINS = ("cluster", "member")

# an audit record is frozen and holds scalars only: it is its own view
AuditEntry = AuditRecord


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    length: int
    head_hash: str
    problem: str
    member: str = ""
    member_chain: LocalChainCheck | None = None  # this member's key-usage chain


class AuditService:
    def __init__(self, ctx: NodeContext, usage_log: UsageLog | None = None) -> None:
        self._ctx = ctx
        self._usage = usage_log

    @property
    def member(self) -> str:
        return self._ctx.node_id

    def note(self, call: Call, text: str) -> tuple[int, str]:
        """(the note's seq in the cluster chain, its record's hash)."""
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        result = self._ctx.submit(c.AuditNote, claims.actor, call.request_id, call.timeout, text=text)
        seq = int(result.value["seq"])
        record = self._ctx.read(lambda s: s.audit_records(seq - 1, 1))
        return seq, record[0].hash if record else ""

    def list(
        self, call: Call, after_seq: int, limit: int, chain: str = "cluster"
    ) -> tuple[list[AuditEntry], int]:
        """Records of the cluster chain, or of this member's key-usage chain, after `after_seq`."""
        if limit < 0 or limit > LIST_MAX:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"limit must be 0-{LIST_MAX} (0 means {LIST_DEFAULT})"
            )
        chain = chain or "cluster"
        if chain not in CHAINS:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"chain must be one of {', '.join(CHAINS)}, not {chain!r}"
            )
        self._ctx.authorize_read(call, "audit.list")
        limit = limit or LIST_DEFAULT
        if chain == "member":
            return self._usage.records(after_seq, limit) if self._usage else ([], 0)
        return self._ctx.read(lambda s: (s.audit_records(after_seq, limit), len(s.audit)))

    def verify(self, call: Call) -> ChainCheck:
        """Recompute the cluster chain and this member's key-usage chain."""
        self._ctx.authorize_read(call, "audit.verify")
        records, head = self._ctx.read(lambda s: (s.audit_records(), s.audit.head))
        problem = verify_chain(records)
        return ChainCheck(
            ok=problem is None,
            length=len(records),
            head_hash=head,
            problem=problem or "",
            member=self._ctx.node_id,
            member_chain=self._usage.verify() if self._usage else None,
        )

    def set_config(self, call: Call, category: str, level: str) -> dict[str, str]:
        """Every category's level after the change (a repeated request id: after the first one)."""
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        result = self._ctx.once(
            c.AuditConfigSet,
            claims.actor,
            call.request_id,
            call.timeout,
            lambda: dict(category=category, level=level),
        )
        return {str(k): str(v) for k, v in result.value["levels"].items()}

    def show_config(self, call: Call) -> dict[str, str]:
        self._ctx.authorize_read(call, "audit.list")
        return self._config()

    def _config(self) -> dict[str, str]:
        config = self._ctx.read(lambda s: dict(s.hsm.audit_config))
        return {category: config.get(category, DEFAULT_LEVEL) for category in CATEGORIES}

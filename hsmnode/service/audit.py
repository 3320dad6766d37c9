"""Audit use cases: operator notes (appliance session), listing and chain verification
(the HSM Auditor's job: an `audit` user holding the Auditor role)."""

from __future__ import annotations

from dataclasses import dataclass

from hsmnode.domain import commands as c
from hsmnode.domain.audit import AuditRecord, verify_chain
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.service.context import Caller, NodeContext

LIST_DEFAULT = 100
LIST_MAX = 1000


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    length: int
    head_hash: str
    problem: str


class AuditService:
    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def note(
        self, caller: Caller, token: str, request_id: str, text: str, timeout: float | None
    ) -> tuple[int, str]:
        claims = self._ctx.claims(caller, token, "appliance")
        result = self._ctx.submit(c.AuditNote, claims.actor, request_id, timeout, text=text)
        seq = int(result.value["seq"])
        record = self._ctx.read(lambda s: s.audit_records(seq - 1, 1))
        return seq, record[0].hash if record else ""

    def list(self, caller: Caller, token: str, after_seq: int, limit: int) -> tuple[list[AuditRecord], int]:
        if limit < 0 or limit > LIST_MAX:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"limit must be 0-{LIST_MAX} (0 means {LIST_DEFAULT})"
            )
        self._ctx.authorize_read(caller, token, "audit.list")
        limit = limit or LIST_DEFAULT
        return self._ctx.read(lambda s: (s.audit_records(after_seq, limit), len(s.audit)))

    def verify(self, caller: Caller, token: str) -> ChainCheck:
        self._ctx.authorize_read(caller, token, "audit.verify")
        records, head = self._ctx.read(lambda s: (s.audit_records(), s.audit.head))
        problem = verify_chain(records)
        return ChainCheck(ok=problem is None, length=len(records), head_hash=head, problem=problem or "")

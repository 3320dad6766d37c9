"""Audit servicer (audit.proto): operator notes, both audit chains, the audit configuration."""

from __future__ import annotations

from hsmnode.pb import audit_pb2, audit_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.audit import AuditEntry, AuditService
from hsmnode.service.call import Call


def _audit_record(r: AuditEntry, chain: str) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        seq=r.seq,
        timestamp_ms=r.timestamp,
        actor=r.actor,
        request_id=r.request_id,
        command=r.command,
        outcome=r.outcome,
        detail=r.detail,
        prev_hash=r.prev_hash,
        hash=r.hash,
        category=r.category,
        container=r.container,
        key=r.key,
        member=r.member,
        chain=chain,
        count=r.count or 1,
    )


class AuditServicer(Servicer[AuditService], audit_pb2_grpc.AuditServicer):
    @rpc
    def Note(self, r: audit_pb2.AuditNoteRequest, call: Call) -> audit_pb2.AuditNoteResponse:  # noqa: N802
        seq, digest = self._s.note(call, r.text)
        return audit_pb2.AuditNoteResponse(seq=seq, hash=digest)

    @rpc
    def List(self, r: audit_pb2.AuditListRequest, call: Call) -> audit_pb2.AuditListResponse:  # noqa: N802
        chain = r.chain or "cluster"
        records, total = self._s.list(call, r.after_seq, r.limit, chain)
        return audit_pb2.AuditListResponse(
            records=[_audit_record(x, chain) for x in records], total=total, member=self._s.member
        )

    @rpc
    def Verify(self, r: audit_pb2.AuditVerifyRequest, call: Call) -> audit_pb2.AuditVerifyResponse:  # noqa: N802
        check = self._s.verify(call)
        local = check.member_chain
        return audit_pb2.AuditVerifyResponse(
            ok=check.ok,
            length=check.length,
            head_hash=check.head_hash,
            problem=check.problem,
            member=check.member,
            member_ok=local.ok if local else True,
            member_length=local.length if local else 0,
            member_head_hash=local.head_hash if local else "",
            member_problem=local.problem if local else "",
        )

    @rpc
    def SetConfig(self, r: audit_pb2.SetAuditConfigRequest, call: Call) -> audit_pb2.AuditConfig:  # noqa: N802
        return audit_pb2.AuditConfig(levels=self._s.set_config(call, r.category, r.level))

    @rpc
    def ShowConfig(self, r: audit_pb2.ShowAuditConfigRequest, call: Call) -> audit_pb2.AuditConfig:  # noqa: N802
        return audit_pb2.AuditConfig(levels=self._s.show_config(call))

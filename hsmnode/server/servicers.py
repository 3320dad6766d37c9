"""Servicers: protobuf in, one service call, protobuf out. Errors are the `rpc` wrapper's job."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from hsmnode.backup.fileformat import BackupHeader
from hsmnode.domain.audit import AuditRecord
from hsmnode.pb import audit_pb2, audit_pb2_grpc, cluster_pb2, cluster_pb2_grpc, debug_pb2, debug_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.peers import PeerClients
from hsmnode.server.rpc import Servicer, caller_of, remaining, rpc, token_of
from hsmnode.service.audit import AuditService
from hsmnode.service.backup import BackupService
from hsmnode.service.cluster import (
    ClusterService,
    MemberAddress,
    NodeStatus,
    adopt_cluster,
    join_bundle,
    rejoin_cluster,
)
from hsmnode.service.context import NodeContext
from hsmnode.service.membership import add_member, remove_member


def _node_status_pb(s: NodeStatus) -> cluster_pb2.NodeStatusResponse:
    return cluster_pb2.NodeStatusResponse(
        id=s.id,
        cluster_id=s.cluster_id,
        address=s.address,
        raft_address=s.raft_address,
        role=s.role,
        term=s.term,
        leader=s.leader,
        commit_index=s.commit_index,
        applied_index=s.applied_index,
        state_digest=s.state_digest,
        has_quorum=s.has_quorum,
        ready=s.ready,
        replicated_cluster_id=s.replicated_cluster_id,
        node_certificate=s.node_certificate,
        members=s.members,
        removed_from=s.removed_from,
        raft_configuration=list(s.raft_configuration),
        directory=list(s.directory),
        incarnation=s.incarnation,
    )


def _member_ids(service: ClusterService) -> list[str]:
    return [m.id for m in service.members]


BACKUP_CHUNK_BYTES = 1 << 20  # below gRPC's 4 MiB default message limit


def _backup_chunks(header: BackupHeader, blob: bytes) -> Iterator[cluster_pb2.BackupChunk]:
    yield cluster_pb2.BackupChunk(
        data=blob[:BACKUP_CHUNK_BYTES],
        total_bytes=len(blob),
        header=cluster_pb2.BackupHeader(
            cluster_id=header.cluster_id,
            index=header.index,
            taken_at_ms=header.taken_at_ms,
            taken_by=header.taken_by,
            member_count=header.member_count,
            key_count=header.key_count,
            user_count=header.user_count,
            partition_count=header.partition_count,
            keyring_count=header.keyring_count,
            audit_length=header.audit_length,
            smk_check=header.smk_check,
        ),
    )
    for start in range(BACKUP_CHUNK_BYTES, len(blob), BACKUP_CHUNK_BYTES):
        yield cluster_pb2.BackupChunk(data=blob[start : start + BACKUP_CHUNK_BYTES])


class ClusterServicer(Servicer, cluster_pb2_grpc.ClusterServicer):
    def __init__(
        self,
        replicator: Replicator,
        service: ClusterService,
        peers: PeerClients,
        ctx: NodeContext,
        backups: BackupService,
    ) -> None:
        super().__init__(replicator)
        self._service = service
        self._peers = peers
        self._ctx = ctx
        self._backups = backups

    @rpc
    def NodeStatus(
        self, request: cluster_pb2.NodeStatusRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.NodeStatusResponse:  # noqa: N802
        caller_of(context)
        return _node_status_pb(self._service.node_status())

    @rpc
    def Status(
        self, request: cluster_pb2.ClusterStatusRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.ClusterStatusResponse:  # noqa: N802
        caller_of(context)
        me = self._service.node_status()
        config = set(me.raft_configuration)
        # the directory's members, then Raft voters it no longer lists (a removal to complete)
        entries = [(m.id, m.grpc, m.raft, True) for m in self._service.members]
        listed = {raft for _, _, raft, _ in entries}
        departed = {
            raft: (mid, grpc_address) for mid, (raft, grpc_address, _) in self._service.departed().items()
        }
        for raft in sorted(config - listed):
            mid, grpc_address = departed.get(raft, (raft, ""))
            entries.append((mid, grpc_address, raft, False))
        answers = self._peers.node_statuses([g for mid, g, _, _ in entries if mid != me.id and g])
        members = []
        for mid, grpc_address, raft, is_listed in entries:
            if mid == me.id:
                role, applied, digest = me.role, me.applied_index, me.state_digest
            else:
                answer = answers.get(grpc_address)
                role = answer.role if answer else "unreachable"
                applied = answer.applied_index if answer else 0
                digest = answer.state_digest if answer else ""
            members.append(
                cluster_pb2.Member(
                    id=mid,
                    address=grpc_address,
                    role=role,
                    applied_index=applied,
                    raft_address=raft,
                    state_digest=digest,
                    voter=raft in config,
                    listed=is_listed,
                )
            )
        newest = max((m.applied_index for m in members if m.role != "unreachable"), default=0)
        for m in members:
            if m.role != "unreachable":
                m.lag = newest - m.applied_index
        return cluster_pb2.ClusterStatusResponse(
            cluster_id=me.cluster_id,
            leader=me.leader,
            term=me.term,
            members=members,
            removed_from=me.removed_from,
        )

    @rpc
    def AddMember(
        self, request: cluster_pb2.AddMemberRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.MemberChangeResponse:  # noqa: N802
        claims = self._ctx.claims(caller_of(context), token_of(context), "appliance")
        add_member(
            self._ctx,
            claims.actor,
            request.id,
            request.raft_address,
            request.address,
            request.request_id,
            remaining(context),
        )
        return cluster_pb2.MemberChangeResponse(members=_member_ids(self._service))

    @rpc
    def RemoveMember(
        self, request: cluster_pb2.RemoveMemberRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.MemberChangeResponse:  # noqa: N802
        claims = self._ctx.claims(caller_of(context), token_of(context), "appliance")

        def applied_by(address: str) -> int | None:
            answer = self._peers.node_statuses([address])[address]
            return answer.applied_index if answer else None

        remove_member(self._ctx, claims.actor, request.id, request.request_id, remaining(context), applied_by)
        return cluster_pb2.MemberChangeResponse(members=_member_ids(self._service))

    @rpc
    def JoinBundle(
        self, request: cluster_pb2.JoinBundleRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.JoinBundleResponse:  # noqa: N802
        claims = self._ctx.claims(caller_of(context), token_of(context), "appliance")
        cluster_id, members, sealed = join_bundle(self._ctx, claims.actor, request.node_certificate)
        return cluster_pb2.JoinBundleResponse(
            cluster_id=cluster_id,
            members=[cluster_pb2.Member(id=m.id, address=m.grpc, raft_address=m.raft) for m in members],
            sealed=sealed,
        )

    @rpc
    def AdoptCluster(
        self, request: cluster_pb2.AdoptClusterRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.AdoptClusterResponse:  # noqa: N802
        members = [MemberAddress(m.id, m.address, m.raft_address) for m in request.members]
        if request.cluster_id == self.cluster_id:  # a removed member joins again: the bundle authorizes it
            caller_of(context)
            saved = rejoin_cluster(self._ctx, request.cluster_id, members, request.sealed)
        else:
            claims = self._ctx.claims(caller_of(context), token_of(context), "appliance")
            saved = adopt_cluster(self._ctx, claims.actor, request.cluster_id, members, request.sealed)
        return cluster_pb2.AdoptClusterResponse(archive=saved)

    @rpc
    def Backup(
        self, request: cluster_pb2.BackupRequest, context: grpc.ServicerContext
    ) -> Iterator[cluster_pb2.BackupChunk]:  # noqa: N802
        # the whole file is sealed before the first message: every refusal is a status, not a cut stream
        header, blob = self._backups.take(
            caller_of(context), token_of(context), request.request_id, remaining(context)
        )
        return _backup_chunks(header, blob)


class AuditServicer(Servicer, audit_pb2_grpc.AuditServicer):
    def __init__(self, replicator: Replicator, service: AuditService) -> None:
        super().__init__(replicator)
        self._service = service

    @rpc
    def Note(
        self, request: audit_pb2.AuditNoteRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AuditNoteResponse:  # noqa: N802
        seq, digest = self._service.note(
            caller_of(context), token_of(context), request.request_id, request.text, remaining(context)
        )
        return audit_pb2.AuditNoteResponse(seq=seq, hash=digest)

    @rpc
    def List(
        self, request: audit_pb2.AuditListRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AuditListResponse:  # noqa: N802
        chain = request.chain or "cluster"
        records, total = self._service.list(
            caller_of(context), token_of(context), request.after_seq, request.limit, chain
        )
        return audit_pb2.AuditListResponse(
            records=[_audit_record(r, chain) for r in records], total=total, member=self._service.member
        )

    @rpc
    def Verify(
        self, request: audit_pb2.AuditVerifyRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AuditVerifyResponse:  # noqa: N802
        check = self._service.verify(caller_of(context), token_of(context))
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
    def SetConfig(
        self, request: audit_pb2.SetAuditConfigRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AuditConfig:  # noqa: N802
        levels = self._service.set_config(
            caller_of(context),
            token_of(context),
            request.category,
            request.level,
            request.request_id,
            remaining(context),
        )
        return audit_pb2.AuditConfig(levels=levels)

    @rpc
    def ShowConfig(
        self, request: audit_pb2.ShowAuditConfigRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AuditConfig:  # noqa: N802
        return audit_pb2.AuditConfig(levels=self._service.show_config(caller_of(context), token_of(context)))


def _audit_record(r: AuditRecord, chain: str) -> audit_pb2.AuditRecord:
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
    )


class DebugServicer(Servicer, debug_pb2_grpc.DebugServicer):
    def __init__(self, replicator: Replicator, service: ClusterService) -> None:
        super().__init__(replicator)
        self._service = service

    @rpc
    def FailApply(
        self, request: debug_pb2.FailApplyRequest, context: grpc.ServicerContext
    ) -> debug_pb2.FailApplyResponse:  # noqa: N802
        self._service.fail_apply(caller_of(context), request.request_id, request.reason, remaining(context))
        return debug_pb2.FailApplyResponse()

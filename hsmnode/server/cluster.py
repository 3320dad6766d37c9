"""Cluster servicer (cluster.proto): member and cluster status, membership changes, joining, backup."""

from __future__ import annotations

from collections.abc import Iterator

from hsmnode.backup.fileformat import BackupHeader
from hsmnode.pb import cluster_pb2, cluster_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.backup import BackupService
from hsmnode.service.call import Call
from hsmnode.service.cluster import ClusterService, MemberAddress, NodeStatus

BACKUP_CHUNK_BYTES = 1 << 20  # below gRPC's 4 MiB default message limit


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


class ClusterServicer(Servicer[ClusterService], cluster_pb2_grpc.ClusterServicer):
    def __init__(self, replicator: Replicator, service: ClusterService, backups: BackupService) -> None:
        super().__init__(replicator, service)
        self._backups = backups

    @rpc
    def NodeStatus(self, r: cluster_pb2.NodeStatusRequest, call: Call) -> cluster_pb2.NodeStatusResponse:  # noqa: N802
        _ = call.caller  # TLS callers only
        return _node_status_pb(self._s.node_status(digest=not r.without_digest))

    @rpc
    def Status(self, r: cluster_pb2.ClusterStatusRequest, call: Call) -> cluster_pb2.ClusterStatusResponse:  # noqa: N802
        _ = call.caller  # TLS callers only
        status = self._s.status(with_digest=not r.without_digest)
        return cluster_pb2.ClusterStatusResponse(
            cluster_id=status.cluster_id,
            leader=status.leader,
            term=status.term,
            members=[
                cluster_pb2.Member(
                    id=m.id,
                    address=m.address,
                    role=m.role,
                    applied_index=m.applied_index,
                    raft_address=m.raft_address,
                    state_digest=m.state_digest,
                    voter=m.voter,
                    listed=m.listed,
                    lag=m.lag,
                )
                for m in status.members
            ],
            removed_from=status.removed_from,
        )

    @rpc
    def AddMember(self, r: cluster_pb2.AddMemberRequest, call: Call) -> cluster_pb2.MemberChangeResponse:  # noqa: N802
        return cluster_pb2.MemberChangeResponse(
            members=self._s.add_member(call, r.id, r.raft_address, r.address)
        )

    @rpc
    def RemoveMember(
        self, r: cluster_pb2.RemoveMemberRequest, call: Call
    ) -> cluster_pb2.MemberChangeResponse:  # noqa: N802
        return cluster_pb2.MemberChangeResponse(members=self._s.remove_member(call, r.id))

    @rpc
    def JoinBundle(self, r: cluster_pb2.JoinBundleRequest, call: Call) -> cluster_pb2.JoinBundleResponse:  # noqa: N802
        bundle = self._s.join_bundle(call, r.node_certificate)
        return cluster_pb2.JoinBundleResponse(
            cluster_id=bundle.cluster_id,
            members=[
                cluster_pb2.Member(id=m.id, address=m.grpc, raft_address=m.raft) for m in bundle.members
            ],
            sealed=bundle.sealed,
        )

    @rpc
    def AdoptCluster(
        self, r: cluster_pb2.AdoptClusterRequest, call: Call
    ) -> cluster_pb2.AdoptClusterResponse:  # noqa: N802
        members = [MemberAddress(m.id, m.address, m.raft_address) for m in r.members]
        return cluster_pb2.AdoptClusterResponse(archive=self._s.adopt(call, r.cluster_id, members, r.sealed))

    @rpc
    def Backup(self, r: cluster_pb2.BackupRequest, call: Call) -> Iterator[cluster_pb2.BackupChunk]:  # noqa: N802
        # the whole file is sealed before the first message: every refusal is a status, not a cut stream
        header, blob = self._backups.take(call)
        return _backup_chunks(header, blob)

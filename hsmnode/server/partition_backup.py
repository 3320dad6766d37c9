"""PartitionBackup servicer (partition_backup.proto): a partition's backup and its restore."""

from __future__ import annotations

from hsmnode.pb import partition_backup_pb2, partition_backup_pb2_grpc
from hsmnode.server.keys import key_info
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.partition_backup import PartitionBackupService


class PartitionBackupServicer(
    Servicer[PartitionBackupService], partition_backup_pb2_grpc.PartitionBackupServicer
):
    @rpc
    def Create(
        self, r: partition_backup_pb2.PartitionBackupRequest, call: Call
    ) -> partition_backup_pb2.PartitionBackupResponse:  # noqa: N802
        made = self._s.create(call)
        return partition_backup_pb2.PartitionBackupResponse(
            backup=made.data, objects=made.objects, cloning_domain=made.cloning_domain
        )

    @rpc
    def Restore(
        self, r: partition_backup_pb2.PartitionRestoreRequest, call: Call
    ) -> partition_backup_pb2.PartitionRestoreResponse:  # noqa: N802
        keys, source = self._s.restore(call, r.backup)
        return partition_backup_pb2.PartitionRestoreResponse(
            keys=[key_info(k) for k in keys], source_partition=source
        )

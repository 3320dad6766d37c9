"""Debug servicer (debug.proto): fault injection, on members configured for it."""

from __future__ import annotations

from hsmnode.pb import debug_pb2, debug_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.cluster import ClusterService


class DebugServicer(Servicer, debug_pb2_grpc.DebugServicer):
    def __init__(self, replicator: Replicator, service: ClusterService) -> None:
        super().__init__(replicator)
        self._service = service

    @rpc
    def FailApply(self, r: debug_pb2.FailApplyRequest, call: Call) -> debug_pb2.FailApplyResponse:  # noqa: N802
        self._service.fail_apply(call, r.reason)
        return debug_pb2.FailApplyResponse()

"""Debug servicer (debug.proto): fault injection, on members configured for it."""

from __future__ import annotations

from hsmnode.pb import debug_pb2, debug_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.cluster import ClusterService


class DebugServicer(Servicer[ClusterService], debug_pb2_grpc.DebugServicer):
    @rpc
    def FailApply(self, r: debug_pb2.FailApplyRequest, call: Call) -> debug_pb2.FailApplyResponse:  # noqa: N802
        self._s.fail_apply(call, r.reason)
        return debug_pb2.FailApplyResponse()

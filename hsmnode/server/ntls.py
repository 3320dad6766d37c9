"""Ntls servicer (ntls.proto): the NTLS-style client handshake and partition administration over it."""

from __future__ import annotations

from hsmnode.pb import ntls_pb2, ntls_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.ntls import NtlsService


class NtlsServicer(Servicer[NtlsService], ntls_pb2_grpc.NtlsServicer):
    @rpc
    def ListSlots(self, r: ntls_pb2.ListSlotsRequest, call: Call) -> ntls_pb2.ListSlotsResponse:  # noqa: N802
        found = self._s.list_slots(call)
        return ntls_pb2.ListSlotsResponse(
            client=found.client,
            slots=[
                ntls_pb2.Slot(
                    partition=s.partition,
                    label=s.label,
                    initialized=s.initialized,
                    activation_required=s.activation_required,
                    activated=s.activated,
                    kind=s.kind,
                )
                for s in found.slots
            ],
        )

    @rpc
    def OpenSession(self, r: ntls_pb2.OpenSessionRequest, call: Call) -> ntls_pb2.OpenSessionResponse:  # noqa: N802
        s = self._s.open_session(call, r.partition, r.role, r.password)
        return ntls_pb2.OpenSessionResponse(
            token=s.token, expires_ms=s.expires_ms, partition=s.subject, role=s.role
        )

    @rpc
    def CloseSession(self, r: ntls_pb2.CloseSessionRequest, call: Call) -> ntls_pb2.CloseSessionResponse:  # noqa: N802
        self._s.close_session(call)
        return ntls_pb2.CloseSessionResponse()

    @rpc
    def SessionInfo(self, r: ntls_pb2.SessionInfoRequest, call: Call) -> ntls_pb2.SessionInfoResponse:  # noqa: N802
        claims = self._s.session_info(call)
        return ntls_pb2.SessionInfoResponse(
            partition=claims.subject, role=claims.partition_role, expires_ms=claims.expires_ms
        )

    @rpc
    def ChangePassword(
        self, r: ntls_pb2.PartitionPasswordRequest, call: Call
    ) -> ntls_pb2.PartitionPasswordResponse:  # noqa: N802
        self._s.change_password(call, r.partition, r.role, r.old_password, r.new_password)
        return ntls_pb2.PartitionPasswordResponse()

    @rpc
    def InitPartition(self, r: ntls_pb2.InitPartitionRequest, call: Call) -> ntls_pb2.InitPartitionResponse:  # noqa: N802
        self._s.init_partition(call, r.partition, r.label, r.cloning_domain, r.po_password)
        return ntls_pb2.InitPartitionResponse()

    @rpc
    def InitRole(self, r: ntls_pb2.InitRoleRequest, call: Call) -> ntls_pb2.InitRoleResponse:  # noqa: N802
        self._s.init_role(call, r.role, r.password)
        return ntls_pb2.InitRoleResponse()

    @rpc
    def SetPolicy(self, r: ntls_pb2.SetPolicyRequest, call: Call) -> ntls_pb2.SetPolicyResponse:  # noqa: N802
        self._s.set_policy(call, r.policy, r.value)
        return ntls_pb2.SetPolicyResponse()

    @rpc
    def Activate(self, r: ntls_pb2.ActivateRequest, call: Call) -> ntls_pb2.ActivateResponse:  # noqa: N802
        self._s.activate(call, r.partition, r.co_password, r.active)
        return ntls_pb2.ActivateResponse()

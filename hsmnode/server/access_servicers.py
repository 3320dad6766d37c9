"""Servicers for logins, administration and the NTLS handshake: protobuf in, one service call, protobuf out."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from hsmnode.domain.model import ApplianceUser, Client, CustomRole, Partition
from hsmnode.domain.permissions import APPLIANCE_ROLES
from hsmnode.pb import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, ntls_pb2, ntls_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.rpc import Servicer, caller_of, remaining, rpc, token_of
from hsmnode.service.admin import AdminService
from hsmnode.service.auth import AuthService, Session
from hsmnode.service.ntls import NtlsService

Ctx: TypeAlias = grpc.ServicerContext


def _session(s: Session) -> auth_pb2.SessionResponse:
    return auth_pb2.SessionResponse(token=s.token, expires_ms=s.expires_ms, subject=s.subject, role=s.role)


def _user(u: ApplianceUser) -> admin_pb2.User:
    return admin_pb2.User(
        name=u.name,
        role=u.role,
        enabled=u.enabled,
        builtin=u.builtin,
        must_change_password=u.credential.must_change,
        locked=u.credential.locked,
        failed_logins=u.credential.failed,
    )


def _role(r: CustomRole) -> admin_pb2.Role:
    return admin_pb2.Role(name=r.name, commands=list(r.commands), builtin=r.name in APPLIANCE_ROLES)


def _client(cl: Client) -> admin_pb2.ClientInfo:
    return admin_pb2.ClientInfo(name=cl.name, fingerprint=cl.fingerprint, partitions=sorted(cl.partitions))


def _partition(p: Partition) -> admin_pb2.PartitionInfo:
    return admin_pb2.PartitionInfo(
        name=p.name,
        label=p.label,
        initialized=p.initialized,
        cloning_domain=p.cloning_domain,
        roles=[
            admin_pb2.PartitionRole(
                role=r, locked=cred.locked, must_change_password=cred.must_change, failed_logins=cred.failed
            )
            for r, cred in sorted(p.roles.items())
        ],
        policies={k: int(getattr(p.policy, k)) for k in p.policy.NAMES},
        activated=p.activated,
        cluster=p.cluster,
        objects=len(p.objects),
        authorization_state=p.authorization.state if p.authorization else "",
    )


class AuthServicer(Servicer, auth_pb2_grpc.AuthServicer):
    def __init__(self, replicator: Replicator, service: AuthService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Login(self, r: auth_pb2.LoginRequest, context: Ctx) -> auth_pb2.SessionResponse:  # noqa: N802
        return _session(
            self._s.login(
                caller_of(context), r.user, r.password, r.new_password, r.request_id, remaining(context)
            )
        )

    @rpc
    def Logout(self, r: auth_pb2.LogoutRequest, context: Ctx) -> auth_pb2.LogoutResponse:  # noqa: N802
        self._s.logout(caller_of(context), token_of(context), r.request_id, remaining(context))
        return auth_pb2.LogoutResponse()

    @rpc
    def ChangePassword(
        self, r: auth_pb2.ChangePasswordRequest, context: Ctx
    ) -> auth_pb2.ChangePasswordResponse:  # noqa: N802
        self._s.change_own_password(
            caller_of(context), r.user, r.old_password, r.new_password, r.request_id, remaining(context)
        )
        return auth_pb2.ChangePasswordResponse()

    @rpc
    def HsmLogin(self, r: auth_pb2.HsmLoginRequest, context: Ctx) -> auth_pb2.SessionResponse:  # noqa: N802
        return _session(
            self._s.hsm_login(
                caller_of(context), token_of(context), r.role, r.password, r.request_id, remaining(context)
            )
        )

    @rpc
    def HsmLogout(self, r: auth_pb2.LogoutRequest, context: Ctx) -> auth_pb2.SessionResponse:  # noqa: N802
        return _session(
            self._s.hsm_logout(caller_of(context), token_of(context), r.request_id, remaining(context))
        )


class AdminServicer(Servicer, admin_pb2_grpc.AdminServicer):
    def __init__(self, replicator: Replicator, service: AdminService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def AddUser(self, r: admin_pb2.AddUserRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.add_user(
            caller_of(context),
            token_of(context),
            r.name,
            r.role,
            r.password,
            r.request_id,
            remaining(context),
        )
        return admin_pb2.Empty()

    @rpc
    def DeleteUser(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_user(caller_of(context), token_of(context), r.name, r.request_id, remaining(context))
        return admin_pb2.Empty()

    @rpc
    def SetUserEnabled(self, r: admin_pb2.SetUserEnabledRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_user_enabled(
            caller_of(context), token_of(context), r.name, r.enabled, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def SetUserPassword(self, r: admin_pb2.SetUserPasswordRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_user_password(
            caller_of(context), token_of(context), r.name, r.password, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def ListUsers(self, r: admin_pb2.ListRequest, context: Ctx) -> admin_pb2.UserList:  # noqa: N802
        return admin_pb2.UserList(
            users=[_user(u) for u in self._s.list_users(caller_of(context), token_of(context))]
        )

    @rpc
    def ShowUser(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.User:  # noqa: N802
        return _user(self._s.show_user(caller_of(context), token_of(context), r.name))

    @rpc
    def AddRole(self, r: admin_pb2.AddRoleRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.add_role(
            caller_of(context), token_of(context), r.name, list(r.commands), r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def DeleteRole(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_role(caller_of(context), token_of(context), r.name, r.request_id, remaining(context))
        return admin_pb2.Empty()

    @rpc
    def ListRoles(self, r: admin_pb2.ListRequest, context: Ctx) -> admin_pb2.RoleList:  # noqa: N802
        return admin_pb2.RoleList(
            roles=[_role(x) for x in self._s.list_roles(caller_of(context), token_of(context))]
        )

    @rpc
    def ShowRole(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.Role:  # noqa: N802
        return _role(self._s.show_role(caller_of(context), token_of(context), r.name))

    @rpc
    def RegisterClient(
        self, r: admin_pb2.RegisterClientRequest, context: Ctx
    ) -> admin_pb2.RegisterClientResponse:  # noqa: N802
        fp = self._s.register_client(
            caller_of(context), token_of(context), r.name, r.cert_pem, r.request_id, remaining(context)
        )
        return admin_pb2.RegisterClientResponse(fingerprint=fp)

    @rpc
    def AssignClient(self, r: admin_pb2.ClientPartitionRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.assign_client(
            caller_of(context), token_of(context), r.name, r.partition, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def RevokeClient(self, r: admin_pb2.ClientPartitionRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.revoke_client(
            caller_of(context), token_of(context), r.name, r.partition, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def ListClients(self, r: admin_pb2.ListRequest, context: Ctx) -> admin_pb2.ClientList:  # noqa: N802
        return admin_pb2.ClientList(
            clients=[_client(x) for x in self._s.list_clients(caller_of(context), token_of(context))]
        )

    @rpc
    def ShowClient(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.ClientInfo:  # noqa: N802
        return _client(self._s.show_client(caller_of(context), token_of(context), r.name))

    @rpc
    def InitHsm(self, r: admin_pb2.InitHsmRequest, context: Ctx) -> admin_pb2.InitHsmResponse:  # noqa: N802
        destroyed = self._s.init_hsm(
            caller_of(context), token_of(context), r.label, r.so_password, r.request_id, remaining(context)
        )
        return admin_pb2.InitHsmResponse(destroyed_partitions=destroyed)

    @rpc
    def ShowHsm(self, r: admin_pb2.ListRequest, context: Ctx) -> admin_pb2.HsmInfo:  # noqa: N802
        hsm, partitions, keyrings = self._s.show_hsm(caller_of(context), token_of(context))
        return admin_pb2.HsmInfo(
            initialized=hsm.initialized,
            label=hsm.label,
            so_locked=bool(hsm.so and hsm.so.locked),
            auditor_initialized=hsm.auditor is not None,
            policies=hsm.policies,
            partitions=partitions,
            keyring_objects=keyrings,
        )

    @rpc
    def InitAuditor(self, r: admin_pb2.InitAuditorRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.init_auditor(
            caller_of(context), token_of(context), r.password, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def SetHsmPolicy(self, r: admin_pb2.SetHsmPolicyRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_hsm_policy(
            caller_of(context), token_of(context), r.name, r.value, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def CreatePartition(self, r: admin_pb2.CreatePartitionRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.create_partition(
            caller_of(context),
            token_of(context),
            r.name,
            r.cluster,
            r.request_id,
            remaining(context),
            r.requires_authorization,
        )
        return admin_pb2.Empty()

    @rpc
    def DeletePartition(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_partition(
            caller_of(context), token_of(context), r.name, r.request_id, remaining(context)
        )
        return admin_pb2.Empty()

    @rpc
    def ListPartitions(self, r: admin_pb2.ListRequest, context: Ctx) -> admin_pb2.PartitionList:  # noqa: N802
        return admin_pb2.PartitionList(
            partitions=[_partition(p) for p in self._s.list_partitions(caller_of(context), token_of(context))]
        )

    @rpc
    def ShowPartition(self, r: admin_pb2.NameRequest, context: Ctx) -> admin_pb2.PartitionInfo:  # noqa: N802
        return _partition(self._s.show_partition(caller_of(context), token_of(context), r.name))


class NtlsServicer(Servicer, ntls_pb2_grpc.NtlsServicer):
    def __init__(self, replicator: Replicator, service: NtlsService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def ListSlots(self, r: ntls_pb2.ListSlotsRequest, context: Ctx) -> ntls_pb2.ListSlotsResponse:  # noqa: N802
        caller = caller_of(context)
        client = self._s.client(caller)
        return ntls_pb2.ListSlotsResponse(
            client=client.name,
            slots=[
                ntls_pb2.Slot(
                    partition=s.partition,
                    label=s.label,
                    initialized=s.initialized,
                    activation_required=s.activation_required,
                    activated=s.activated,
                    kind=s.kind,
                )
                for s in self._s.list_slots(caller)
            ],
        )

    @rpc
    def OpenSession(self, r: ntls_pb2.OpenSessionRequest, context: Ctx) -> ntls_pb2.OpenSessionResponse:  # noqa: N802
        s = self._s.open_session(
            caller_of(context), r.partition, r.role, r.password, r.request_id, remaining(context)
        )
        return ntls_pb2.OpenSessionResponse(
            token=s.token, expires_ms=s.expires_ms, partition=s.subject, role=s.role
        )

    @rpc
    def CloseSession(self, r: ntls_pb2.CloseSessionRequest, context: Ctx) -> ntls_pb2.CloseSessionResponse:  # noqa: N802
        self._s.close_session(caller_of(context), token_of(context), r.request_id, remaining(context))
        return ntls_pb2.CloseSessionResponse()

    @rpc
    def SessionInfo(self, r: ntls_pb2.SessionInfoRequest, context: Ctx) -> ntls_pb2.SessionInfoResponse:  # noqa: N802
        claims = self._s.session_info(caller_of(context), token_of(context))
        return ntls_pb2.SessionInfoResponse(
            partition=claims.subject, role=claims.partition_role, expires_ms=claims.expires_ms
        )

    @rpc
    def ChangePassword(
        self, r: ntls_pb2.PartitionPasswordRequest, context: Ctx
    ) -> ntls_pb2.PartitionPasswordResponse:  # noqa: N802
        self._s.change_password(
            caller_of(context),
            r.partition,
            r.role,
            r.old_password,
            r.new_password,
            r.request_id,
            remaining(context),
        )
        return ntls_pb2.PartitionPasswordResponse()

    @rpc
    def InitPartition(self, r: ntls_pb2.InitPartitionRequest, context: Ctx) -> ntls_pb2.InitPartitionResponse:  # noqa: N802
        self._s.init_partition(
            caller_of(context),
            r.partition,
            r.label,
            r.cloning_domain,
            r.po_password,
            r.request_id,
            remaining(context),
        )
        return ntls_pb2.InitPartitionResponse()

    @rpc
    def InitRole(self, r: ntls_pb2.InitRoleRequest, context: Ctx) -> ntls_pb2.InitRoleResponse:  # noqa: N802
        self._s.init_role(
            caller_of(context), token_of(context), r.role, r.password, r.request_id, remaining(context)
        )
        return ntls_pb2.InitRoleResponse()

    @rpc
    def SetPolicy(self, r: ntls_pb2.SetPolicyRequest, context: Ctx) -> ntls_pb2.SetPolicyResponse:  # noqa: N802
        self._s.set_policy(
            caller_of(context), token_of(context), r.policy, r.value, r.request_id, remaining(context)
        )
        return ntls_pb2.SetPolicyResponse()

    @rpc
    def Activate(self, r: ntls_pb2.ActivateRequest, context: Ctx) -> ntls_pb2.ActivateResponse:  # noqa: N802
        self._s.activate(
            caller_of(context), r.partition, r.co_password, r.active, r.request_id, remaining(context)
        )
        return ntls_pb2.ActivateResponse()

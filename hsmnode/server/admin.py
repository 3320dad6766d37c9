"""Admin servicer (admin.proto): appliance users, custom roles, NTLS clients, the HSM, partitions."""

from __future__ import annotations

from hsmnode.pb import admin_pb2, admin_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.admin import AdminService, ClientView, PartitionView, RoleView, UserView
from hsmnode.service.call import Call


def _user(u: UserView) -> admin_pb2.User:
    return admin_pb2.User(
        name=u.name,
        role=u.role,
        enabled=u.enabled,
        builtin=u.builtin,
        must_change_password=u.must_change_password,
        locked=u.locked,
        failed_logins=u.failed_logins,
    )


def _role(r: RoleView) -> admin_pb2.Role:
    return admin_pb2.Role(name=r.name, commands=list(r.commands), builtin=r.builtin)


def _client(cl: ClientView) -> admin_pb2.ClientInfo:
    return admin_pb2.ClientInfo(name=cl.name, fingerprint=cl.fingerprint, partitions=list(cl.partitions))


def _partition(p: PartitionView) -> admin_pb2.PartitionInfo:
    return admin_pb2.PartitionInfo(
        name=p.name,
        label=p.label,
        initialized=p.initialized,
        cloning_domain=p.cloning_domain,
        roles=[
            admin_pb2.PartitionRole(
                role=r.role,
                locked=r.locked,
                must_change_password=r.must_change_password,
                failed_logins=r.failed_logins,
            )
            for r in p.roles
        ],
        policies=p.policies,
        activated=p.activated,
        cluster=p.cluster,
        objects=p.objects,
        authorization_state=p.authorization_state,
    )


class AdminServicer(Servicer[AdminService], admin_pb2_grpc.AdminServicer):
    @rpc
    def AddUser(self, r: admin_pb2.AddUserRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.add_user(call, r.name, r.role, r.password)
        return admin_pb2.Empty()

    @rpc
    def DeleteUser(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_user(call, r.name)
        return admin_pb2.Empty()

    @rpc
    def SetUserEnabled(self, r: admin_pb2.SetUserEnabledRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_user_enabled(call, r.name, r.enabled)
        return admin_pb2.Empty()

    @rpc
    def SetUserPassword(self, r: admin_pb2.SetUserPasswordRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_user_password(call, r.name, r.password)
        return admin_pb2.Empty()

    @rpc
    def ListUsers(self, r: admin_pb2.ListRequest, call: Call) -> admin_pb2.UserList:  # noqa: N802
        return admin_pb2.UserList(users=[_user(u) for u in self._s.list_users(call)])

    @rpc
    def ShowUser(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.User:  # noqa: N802
        return _user(self._s.show_user(call, r.name))

    @rpc
    def AddRole(self, r: admin_pb2.AddRoleRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.add_role(call, r.name, list(r.commands))
        return admin_pb2.Empty()

    @rpc
    def DeleteRole(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_role(call, r.name)
        return admin_pb2.Empty()

    @rpc
    def ListRoles(self, r: admin_pb2.ListRequest, call: Call) -> admin_pb2.RoleList:  # noqa: N802
        return admin_pb2.RoleList(roles=[_role(x) for x in self._s.list_roles(call)])

    @rpc
    def ShowRole(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.Role:  # noqa: N802
        return _role(self._s.show_role(call, r.name))

    @rpc
    def RegisterClient(
        self, r: admin_pb2.RegisterClientRequest, call: Call
    ) -> admin_pb2.RegisterClientResponse:  # noqa: N802
        return admin_pb2.RegisterClientResponse(fingerprint=self._s.register_client(call, r.name, r.cert_pem))

    @rpc
    def AssignClient(self, r: admin_pb2.ClientPartitionRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.assign_client(call, r.name, r.partition)
        return admin_pb2.Empty()

    @rpc
    def RevokeClient(self, r: admin_pb2.ClientPartitionRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.revoke_client(call, r.name, r.partition)
        return admin_pb2.Empty()

    @rpc
    def ListClients(self, r: admin_pb2.ListRequest, call: Call) -> admin_pb2.ClientList:  # noqa: N802
        return admin_pb2.ClientList(clients=[_client(x) for x in self._s.list_clients(call)])

    @rpc
    def ShowClient(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.ClientInfo:  # noqa: N802
        return _client(self._s.show_client(call, r.name))

    @rpc
    def InitHsm(self, r: admin_pb2.InitHsmRequest, call: Call) -> admin_pb2.InitHsmResponse:  # noqa: N802
        destroyed = self._s.init_hsm(call, r.label, r.so_password)
        return admin_pb2.InitHsmResponse(destroyed_partitions=destroyed)

    @rpc
    def ShowHsm(self, r: admin_pb2.ListRequest, call: Call) -> admin_pb2.HsmInfo:  # noqa: N802
        hsm = self._s.show_hsm(call)
        return admin_pb2.HsmInfo(
            initialized=hsm.initialized,
            label=hsm.label,
            so_locked=hsm.so_locked,
            auditor_initialized=hsm.auditor_initialized,
            policies=hsm.policies,
            partitions=hsm.partitions,
            keyring_objects=hsm.keyring_objects,
        )

    @rpc
    def InitAuditor(self, r: admin_pb2.InitAuditorRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.init_auditor(call, r.password)
        return admin_pb2.Empty()

    @rpc
    def SetHsmPolicy(self, r: admin_pb2.SetHsmPolicyRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.set_hsm_policy(call, r.name, r.value)
        return admin_pb2.Empty()

    @rpc
    def CreatePartition(self, r: admin_pb2.CreatePartitionRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.create_partition(call, r.name, r.cluster, r.requires_authorization)
        return admin_pb2.Empty()

    @rpc
    def DeletePartition(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.Empty:  # noqa: N802
        self._s.delete_partition(call, r.name)
        return admin_pb2.Empty()

    @rpc
    def ListPartitions(self, r: admin_pb2.ListRequest, call: Call) -> admin_pb2.PartitionList:  # noqa: N802
        return admin_pb2.PartitionList(partitions=[_partition(p) for p in self._s.list_partitions(call)])

    @rpc
    def ShowPartition(self, r: admin_pb2.NameRequest, call: Call) -> admin_pb2.PartitionInfo:  # noqa: N802
        return _partition(self._s.show_partition(call, r.name))

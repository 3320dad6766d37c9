"""Appliance sessions: an appliance user's session (admin work: users, roles, NTLS clients,
membership, backup) and one that also holds an HSM role (the SO: HSM policies and partitions;
the Auditor: the audit chains). Opened by `HsmClient.login` and `ApplianceSession.hsm_login`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from hsmnode.client import _convert as convert
from hsmnode.client._errors import Internal
from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._session import Session
from hsmnode.client._types import (
    AuditNote,
    AuditPage,
    BackupInfo,
    ChainCheck,
    ClientInfo,
    HsmInfo,
    PartitionInfo,
    Role,
    User,
)
from hsmnode.pb import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
)


class ApplianceSession(Session):
    """An appliance user's session; `hsm_login()` returns one that also holds an HSM role."""

    def logout(self, *, request_id: str | None = None) -> None:
        self._call(
            auth_pb2_grpc.AuthStub,
            "Logout",
            auth_pb2.LogoutRequest(request_id=request_id_or_new(request_id)),
            write=True,
        )

    def hsm_login(self, password: str, *, role: str = "SO", request_id: str | None = None) -> HsmRoleSession:
        """Also take an HSM role (SO, or AU for the Auditor); leaving it ends the role only."""
        r = self._call(
            auth_pb2_grpc.AuthStub,
            "HsmLogin",
            auth_pb2.HsmLoginRequest(request_id=request_id_or_new(request_id), role=role, password=password),
            write=True,
        )
        return HsmRoleSession(self.client, r.token, r.subject, r.role, r.expires_ms)

    # cluster membership (admin)
    def add_member(
        self, member_id: str, *, raft_address: str, address: str, request_id: str | None = None
    ) -> list[str]:
        """Add a member (start it with every member listed as a peer, then call this); returns the members."""
        req = cluster_pb2.AddMemberRequest(
            request_id=request_id_or_new(request_id), id=member_id, raft_address=raft_address, address=address
        )
        return list(self._call(cluster_pb2_grpc.ClusterStub, "AddMember", req, write=True).members)

    def remove_member(self, member_id: str, *, request_id: str | None = None) -> list[str]:
        """Remove a member; send this to another member than the one removed. Returns the members."""
        req = cluster_pb2.RemoveMemberRequest(request_id=request_id_or_new(request_id), id=member_id)
        return list(self._call(cluster_pb2_grpc.ClusterStub, "RemoveMember", req, write=True).members)

    def join_bundle(self, node_certificate: str) -> Any:
        """On a cluster member: its identity and secrets sealed for a joining node's certificate."""
        req = cluster_pb2.JoinBundleRequest(node_certificate=node_certificate)
        return self._call(cluster_pb2_grpc.ClusterStub, "JoinBundle", req)

    def adopt_cluster(self, bundle: Any, *, request_id: str | None = None) -> str:
        """On the joining node: archive its data and restart as a member of the bundle's cluster; the
        archive's path. A write: retried with its `request_id` (new when None) on an unknown outcome,
        and a repeated request id answers the first adoption's archive, before or after the node's
        restart. Raises OutcomeUnknown when no attempt settled it within the client's timeout."""
        req = cluster_pb2.AdoptClusterRequest(
            cluster_id=bundle.cluster_id,
            members=bundle.members,
            sealed=bundle.sealed,
            request_id=request_id_or_new(request_id),
        )
        return str(self._call(cluster_pb2_grpc.ClusterStub, "AdoptCluster", req, write=True).archive)

    # users
    def backup(
        self,
        out: BinaryIO,
        *,
        request_id: str | None = None,
        timeout: float = 300.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> BackupInfo:
        """admin: write a consistent, encrypted backup of the cluster's replicated state to `out`.

        `progress(received_bytes, total_bytes)` is called after every chunk. Restore it with
        `hsmnode cluster restore`, which needs the cluster's SMK.
        """
        req = cluster_pb2.BackupRequest(request_id=request_id_or_new(request_id))
        header: Any = None
        total = received = 0
        for chunk in self.transport.call_stream(
            cluster_pb2_grpc.ClusterStub, "Backup", req, token=self.token, timeout=timeout
        ):
            if header is None:
                header, total = chunk.header, chunk.total_bytes
            out.write(chunk.data)
            received += len(chunk.data)
            if progress is not None:
                progress(received, total)
        if header is None or received != total:
            raise Internal(f"the backup stream ended after {received} of {total} bytes; take it again")
        return convert.backup_info(header, received)

    def add_user(self, name: str, *, role: str, password: str, request_id: str | None = None) -> None:
        req = admin_pb2.AddUserRequest(
            request_id=request_id_or_new(request_id), name=name, role=role, password=password
        )
        self._call(admin_pb2_grpc.AdminStub, "AddUser", req, write=True)

    def delete_user(self, name: str, *, request_id: str | None = None) -> None:
        self._call(
            admin_pb2_grpc.AdminStub,
            "DeleteUser",
            admin_pb2.NameRequest(request_id=request_id_or_new(request_id), name=name),
            write=True,
        )

    def set_user_enabled(self, name: str, enabled: bool, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetUserEnabledRequest(
            request_id=request_id_or_new(request_id), name=name, enabled=enabled
        )
        self._call(admin_pb2_grpc.AdminStub, "SetUserEnabled", req, write=True)

    def set_user_password(self, name: str, password: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetUserPasswordRequest(
            request_id=request_id_or_new(request_id), name=name, password=password
        )
        self._call(admin_pb2_grpc.AdminStub, "SetUserPassword", req, write=True)

    def list_users(self) -> list[User]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListUsers", admin_pb2.ListRequest())
        return [convert.user(u) for u in r.users]

    def show_user(self, name: str) -> User:
        return convert.user(
            self._call(admin_pb2_grpc.AdminStub, "ShowUser", admin_pb2.NameRequest(name=name))
        )

    # roles
    def add_role(self, name: str, commands: list[str], *, request_id: str | None = None) -> None:
        req = admin_pb2.AddRoleRequest(request_id=request_id_or_new(request_id), name=name, commands=commands)
        self._call(admin_pb2_grpc.AdminStub, "AddRole", req, write=True)

    def delete_role(self, name: str, *, request_id: str | None = None) -> None:
        self._call(
            admin_pb2_grpc.AdminStub,
            "DeleteRole",
            admin_pb2.NameRequest(request_id=request_id_or_new(request_id), name=name),
            write=True,
        )

    def list_roles(self) -> list[Role]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListRoles", admin_pb2.ListRequest())
        return [convert.role(x) for x in r.roles]

    def show_role(self, name: str) -> Role:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowRole", admin_pb2.NameRequest(name=name))
        return convert.role(x)

    # NTLS clients
    def register_client(self, name: str, cert_pem: str, *, request_id: str | None = None) -> str:
        req = admin_pb2.RegisterClientRequest(
            request_id=request_id_or_new(request_id), name=name, cert_pem=cert_pem
        )
        return str(self._call(admin_pb2_grpc.AdminStub, "RegisterClient", req, write=True).fingerprint)

    def assign_client(self, name: str, partition: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.ClientPartitionRequest(
            request_id=request_id_or_new(request_id), name=name, partition=partition
        )
        self._call(admin_pb2_grpc.AdminStub, "AssignClient", req, write=True)

    def revoke_client(self, name: str, partition: str = "", *, request_id: str | None = None) -> None:
        """Revoke one partition assignment, or without a partition the whole registration."""
        req = admin_pb2.ClientPartitionRequest(
            request_id=request_id_or_new(request_id), name=name, partition=partition
        )
        self._call(admin_pb2_grpc.AdminStub, "RevokeClient", req, write=True)

    def list_clients(self) -> list[ClientInfo]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListClients", admin_pb2.ListRequest())
        return [convert.client_info(x) for x in r.clients]

    def show_client(self, name: str) -> ClientInfo:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowClient", admin_pb2.NameRequest(name=name))
        return convert.client_info(x)

    # HSM
    def init_hsm(self, label: str, so_password: str, *, request_id: str | None = None) -> int:
        req = admin_pb2.InitHsmRequest(
            request_id=request_id_or_new(request_id), label=label, so_password=so_password
        )
        return int(self._call(admin_pb2_grpc.AdminStub, "InitHsm", req, write=True).destroyed_partitions)

    def init_auditor(self, password: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.InitAuditorRequest(request_id=request_id_or_new(request_id), password=password)
        self._call(admin_pb2_grpc.AdminStub, "InitAuditor", req, write=True)

    def show_hsm(self) -> HsmInfo:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowHsm", admin_pb2.ListRequest())
        return convert.hsm_info(x)

    def list_partitions(self) -> list[PartitionInfo]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListPartitions", admin_pb2.ListRequest())
        return [convert.partition(p) for p in r.partitions]

    def show_partition(self, name: str) -> PartitionInfo:
        return convert.partition(
            self._call(admin_pb2_grpc.AdminStub, "ShowPartition", admin_pb2.NameRequest(name=name))
        )

    # audit
    def audit_note(self, text: str, *, request_id: str | None = None) -> AuditNote:
        """Write `text` (1-1000 characters) into the cluster chain; the record it became."""
        r = self._call(
            audit_pb2_grpc.AuditStub,
            "Note",
            audit_pb2.AuditNoteRequest(request_id=request_id_or_new(request_id), text=text),
            write=True,
        )
        return AuditNote(r.seq, r.hash)


class HsmRoleSession(ApplianceSession):
    """An appliance session holding an HSM role (SO or AU). Leaving it ends the role only."""

    def logout(self, *, request_id: str | None = None) -> None:
        self.leave_role(request_id=request_id)

    def leave_role(self, *, request_id: str | None = None) -> ApplianceSession:
        """End the HSM role on every member; returns the plain appliance session, which goes on."""
        r = self._call(
            auth_pb2_grpc.AuthStub,
            "HsmLogout",
            auth_pb2.LogoutRequest(request_id=request_id_or_new(request_id)),
            write=True,
        )
        return ApplianceSession(self.client, r.token, r.subject, r.role, r.expires_ms)

    # SO
    def set_hsm_policy(self, name: str, value: bool, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetHsmPolicyRequest(request_id=request_id_or_new(request_id), name=name, value=value)
        self._call(admin_pb2_grpc.AdminStub, "SetHsmPolicy", req, write=True)

    def create_partition(
        self,
        name: str,
        *,
        cluster: bool = False,
        requires_authorization: bool = False,
        request_id: str | None = None,
    ) -> None:
        """cluster=True designates the cluster partition, whose PO is the cluster security officer;
        requires_authorization=True makes the partition's keys usable only when authorized by M of N cards."""
        self._call(
            admin_pb2_grpc.AdminStub,
            "CreatePartition",
            admin_pb2.CreatePartitionRequest(
                request_id=request_id_or_new(request_id),
                name=name,
                cluster=cluster,
                requires_authorization=requires_authorization,
            ),
            write=True,
        )

    def delete_partition(self, name: str, *, request_id: str | None = None) -> None:
        self._call(
            admin_pb2_grpc.AdminStub,
            "DeletePartition",
            admin_pb2.NameRequest(request_id=request_id_or_new(request_id), name=name),
            write=True,
        )

    # Auditor
    def audit_list(self, *, after_seq: int = 0, limit: int = 0, chain: str = "cluster") -> AuditPage:
        """Records of the cluster chain, or (chain="member") of the answering member's key-usage chain
        (use a one-endpoint client to pick the member)."""
        r = self._call(
            audit_pb2_grpc.AuditStub,
            "List",
            audit_pb2.AuditListRequest(after_seq=after_seq, limit=limit, chain=chain),
        )
        return AuditPage([convert.audit_record(x, chain) for x in r.records], r.total)

    def audit_verify(self) -> ChainCheck:
        """Both chains on the answering member: the cluster chain and its key-usage chain."""
        r = self._call(audit_pb2_grpc.AuditStub, "Verify", audit_pb2.AuditVerifyRequest())
        return convert.chain_check(r)

    def audit_config(self) -> dict[str, str]:
        """What each audit category records: none, failure, success or all."""
        r = self._call(audit_pb2_grpc.AuditStub, "ShowConfig", audit_pb2.ShowAuditConfigRequest())
        return dict(r.levels)

    def set_audit_config(self, category: str, level: str, *, request_id: str | None = None) -> dict[str, str]:
        """The Auditor sets what `category` (key_management, key_usage, access) records."""
        req = audit_pb2.SetAuditConfigRequest(
            request_id=request_id_or_new(request_id), category=category, level=level
        )
        return dict(self._call(audit_pb2_grpc.AuditStub, "SetConfig", req, write=True).levels)

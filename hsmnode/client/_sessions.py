"""Sessions as context managers: an appliance session (admin work) and a partition session
(the NTLS handshake's result). Leaving the `with` block logs out; the token is cluster-wide,
so a session keeps working when the client fails over to another member."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from hsmnode.client._errors import Internal
from hsmnode.client._types import (
    AuditRecord,
    AuthChallenge,
    AuthInfo,
    BackupInfo,
    ChainCheck,
    ClientInfo,
    HsmInfo,
    KeyInfo,
    KeyringInfo,
    PartitionInfo,
    PartitionRole,
    Role,
    SessionInfo,
    User,
)
from hsmnode.pb import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    authorization_pb2,
    authorization_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    keyrings_pb2,
    keyrings_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    ntls_pb2,
    ntls_pb2_grpc,
    partition_backup_pb2,
    partition_backup_pb2_grpc,
)

if TYPE_CHECKING:
    from hsmnode.client._client import HsmClient


def _rid(request_id: str | None) -> str:
    from hsmnode.client._client import new_request_id

    return request_id or new_request_id()


class _Session:
    def __init__(self, client: HsmClient, token: str, subject: str, role: str, expires_ms: int) -> None:
        self.client = client
        self.token = token
        self.subject = subject
        self.role = role
        self.expires_ms = expires_ms
        self.keep = False  # set to leave the session open when the `with` block ends

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            self.logout()

    def logout(self) -> None:
        raise NotImplementedError

    def _call(
        self, stub: Any, method: str, request: Any, *, write: bool = False, balance: bool = False
    ) -> Any:
        return self.client.call(stub, method, request, write=write, token=self.token, balance=balance)


class ApplianceSession(_Session):
    """An appliance user's session; `hsm_login()` returns one that also holds an HSM role."""

    def logout(self, *, request_id: str | None = None) -> None:
        self._call(
            auth_pb2_grpc.AuthStub, "Logout", auth_pb2.LogoutRequest(request_id=_rid(request_id)), write=True
        )

    def hsm_login(
        self, password: str, *, role: str = "SO", request_id: str | None = None
    ) -> ApplianceSession:
        r = self._call(
            auth_pb2_grpc.AuthStub,
            "HsmLogin",
            auth_pb2.HsmLoginRequest(request_id=_rid(request_id), role=role, password=password),
            write=True,
        )
        return HsmRoleSession(self.client, r.token, r.subject, r.role, r.expires_ms)

    # cluster membership (admin)
    def add_member(
        self, member_id: str, *, raft_address: str, address: str, request_id: str | None = None
    ) -> list[str]:
        """Add a member (start it with every member listed as a peer, then call this); returns the members."""
        req = cluster_pb2.AddMemberRequest(
            request_id=_rid(request_id), id=member_id, raft_address=raft_address, address=address
        )
        return list(self._call(cluster_pb2_grpc.ClusterStub, "AddMember", req, write=True).members)

    def remove_member(self, member_id: str, *, request_id: str | None = None) -> list[str]:
        """Remove a member; send this to another member than the one removed. Returns the members."""
        req = cluster_pb2.RemoveMemberRequest(request_id=_rid(request_id), id=member_id)
        return list(self._call(cluster_pb2_grpc.ClusterStub, "RemoveMember", req, write=True).members)

    def join_bundle(self, node_certificate: str) -> Any:
        """On a cluster member: its identity and secrets sealed for a joining node's certificate."""
        req = cluster_pb2.JoinBundleRequest(node_certificate=node_certificate)
        return self._call(cluster_pb2_grpc.ClusterStub, "JoinBundle", req)

    def adopt_cluster(self, bundle: Any) -> str:
        """On the joining node: archive its data and restart as a member of the bundle's cluster."""
        req = cluster_pb2.AdoptClusterRequest(
            cluster_id=bundle.cluster_id, members=bundle.members, sealed=bundle.sealed
        )
        return str(self._call(cluster_pb2_grpc.ClusterStub, "AdoptCluster", req).archive)

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
        req = cluster_pb2.BackupRequest(request_id=_rid(request_id))
        header: Any = None
        total = received = 0
        for chunk in self.client.call_stream(
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
        return BackupInfo(
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
            size_bytes=received,
        )

    def add_user(self, name: str, *, role: str, password: str, request_id: str | None = None) -> None:
        req = admin_pb2.AddUserRequest(request_id=_rid(request_id), name=name, role=role, password=password)
        self._call(admin_pb2_grpc.AdminStub, "AddUser", req, write=True)

    def delete_user(self, name: str, *, request_id: str | None = None) -> None:
        self._call(
            admin_pb2_grpc.AdminStub,
            "DeleteUser",
            admin_pb2.NameRequest(request_id=_rid(request_id), name=name),
            write=True,
        )

    def set_user_enabled(self, name: str, enabled: bool, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetUserEnabledRequest(request_id=_rid(request_id), name=name, enabled=enabled)
        self._call(admin_pb2_grpc.AdminStub, "SetUserEnabled", req, write=True)

    def set_user_password(self, name: str, password: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetUserPasswordRequest(request_id=_rid(request_id), name=name, password=password)
        self._call(admin_pb2_grpc.AdminStub, "SetUserPassword", req, write=True)

    def list_users(self) -> list[User]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListUsers", admin_pb2.ListRequest())
        return [_user(u) for u in r.users]

    def show_user(self, name: str) -> User:
        return _user(self._call(admin_pb2_grpc.AdminStub, "ShowUser", admin_pb2.NameRequest(name=name)))

    # roles
    def add_role(self, name: str, commands: list[str], *, request_id: str | None = None) -> None:
        req = admin_pb2.AddRoleRequest(request_id=_rid(request_id), name=name, commands=commands)
        self._call(admin_pb2_grpc.AdminStub, "AddRole", req, write=True)

    def delete_role(self, name: str, *, request_id: str | None = None) -> None:
        self._call(
            admin_pb2_grpc.AdminStub,
            "DeleteRole",
            admin_pb2.NameRequest(request_id=_rid(request_id), name=name),
            write=True,
        )

    def list_roles(self) -> list[Role]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListRoles", admin_pb2.ListRequest())
        return [Role(x.name, tuple(x.commands), x.builtin) for x in r.roles]

    def show_role(self, name: str) -> Role:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowRole", admin_pb2.NameRequest(name=name))
        return Role(x.name, tuple(x.commands), x.builtin)

    # NTLS clients
    def register_client(self, name: str, cert_pem: str, *, request_id: str | None = None) -> str:
        req = admin_pb2.RegisterClientRequest(request_id=_rid(request_id), name=name, cert_pem=cert_pem)
        return str(self._call(admin_pb2_grpc.AdminStub, "RegisterClient", req, write=True).fingerprint)

    def assign_client(self, name: str, partition: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.ClientPartitionRequest(request_id=_rid(request_id), name=name, partition=partition)
        self._call(admin_pb2_grpc.AdminStub, "AssignClient", req, write=True)

    def revoke_client(self, name: str, partition: str = "", *, request_id: str | None = None) -> None:
        """Revoke one partition assignment, or without a partition the whole registration."""
        req = admin_pb2.ClientPartitionRequest(request_id=_rid(request_id), name=name, partition=partition)
        self._call(admin_pb2_grpc.AdminStub, "RevokeClient", req, write=True)

    def list_clients(self) -> list[ClientInfo]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListClients", admin_pb2.ListRequest())
        return [ClientInfo(x.name, x.fingerprint, tuple(x.partitions)) for x in r.clients]

    def show_client(self, name: str) -> ClientInfo:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowClient", admin_pb2.NameRequest(name=name))
        return ClientInfo(x.name, x.fingerprint, tuple(x.partitions))

    # HSM
    def init_hsm(self, label: str, so_password: str, *, request_id: str | None = None) -> int:
        req = admin_pb2.InitHsmRequest(request_id=_rid(request_id), label=label, so_password=so_password)
        return int(self._call(admin_pb2_grpc.AdminStub, "InitHsm", req, write=True).destroyed_partitions)

    def init_auditor(self, password: str, *, request_id: str | None = None) -> None:
        req = admin_pb2.InitAuditorRequest(request_id=_rid(request_id), password=password)
        self._call(admin_pb2_grpc.AdminStub, "InitAuditor", req, write=True)

    def show_hsm(self) -> HsmInfo:
        x = self._call(admin_pb2_grpc.AdminStub, "ShowHsm", admin_pb2.ListRequest())
        return HsmInfo(
            x.initialized,
            x.label,
            x.so_locked,
            x.auditor_initialized,
            dict(x.policies),
            x.partitions,
            dict(x.keyring_objects),
        )

    def list_partitions(self) -> list[PartitionInfo]:
        r = self._call(admin_pb2_grpc.AdminStub, "ListPartitions", admin_pb2.ListRequest())
        return [_partition(p) for p in r.partitions]

    def show_partition(self, name: str) -> PartitionInfo:
        return _partition(
            self._call(admin_pb2_grpc.AdminStub, "ShowPartition", admin_pb2.NameRequest(name=name))
        )

    # audit
    def audit_note(self, text: str, *, request_id: str | None = None) -> tuple[int, str]:
        r = self._call(
            audit_pb2_grpc.AuditStub,
            "Note",
            audit_pb2.AuditNoteRequest(request_id=_rid(request_id), text=text),
            write=True,
        )
        return r.seq, r.hash


class HsmRoleSession(ApplianceSession):
    """An appliance session holding an HSM role (SO or AU). Leaving it ends the role only."""

    def logout(self, *, request_id: str | None = None) -> None:
        self.leave_role(request_id=request_id)

    def leave_role(self, *, request_id: str | None = None) -> ApplianceSession:
        """End the HSM role on every member; returns the plain appliance session, which goes on."""
        r = self._call(
            auth_pb2_grpc.AuthStub,
            "HsmLogout",
            auth_pb2.LogoutRequest(request_id=_rid(request_id)),
            write=True,
        )
        return ApplianceSession(self.client, r.token, r.subject, r.role, r.expires_ms)

    # SO
    def set_hsm_policy(self, name: str, value: bool, *, request_id: str | None = None) -> None:
        req = admin_pb2.SetHsmPolicyRequest(request_id=_rid(request_id), name=name, value=value)
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
                request_id=_rid(request_id),
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
            admin_pb2.NameRequest(request_id=_rid(request_id), name=name),
            write=True,
        )

    # Auditor
    def audit_list(
        self, *, after_seq: int = 0, limit: int = 0, chain: str = "cluster"
    ) -> tuple[list[AuditRecord], int]:
        """Records of the cluster chain, or (chain="member") of the answering member's key-usage chain
        (use a one-endpoint client to pick the member)."""
        r = self._call(
            audit_pb2_grpc.AuditStub,
            "List",
            audit_pb2.AuditListRequest(after_seq=after_seq, limit=limit, chain=chain),
        )
        records = [
            AuditRecord(
                x.seq,
                x.timestamp_ms,
                x.actor,
                x.request_id,
                x.command,
                x.outcome,
                x.detail,
                x.prev_hash,
                x.hash,
                x.category,
                x.container,
                x.key,
                x.member,
                x.chain or chain,
            )
            for x in r.records
        ]
        return records, r.total

    def audit_verify(self) -> ChainCheck:
        """Both chains on the answering member: the cluster chain and its key-usage chain."""
        r = self._call(audit_pb2_grpc.AuditStub, "Verify", audit_pb2.AuditVerifyRequest())
        return ChainCheck(
            r.ok,
            r.length,
            r.head_hash,
            r.problem,
            r.member,
            r.member_ok,
            r.member_length,
            r.member_head_hash,
            r.member_problem,
        )

    def audit_config(self) -> dict[str, str]:
        """What each audit category records: none, failure, success or all."""
        r = self._call(audit_pb2_grpc.AuditStub, "ShowConfig", audit_pb2.ShowAuditConfigRequest())
        return dict(r.levels)

    def set_audit_config(self, category: str, level: str, *, request_id: str | None = None) -> dict[str, str]:
        """The Auditor sets what `category` (key_management, key_usage, access) records."""
        req = audit_pb2.SetAuditConfigRequest(request_id=_rid(request_id), category=category, level=level)
        return dict(self._call(audit_pb2_grpc.AuditStub, "SetConfig", req, write=True).levels)


class PartitionSession(_Session):
    """A session on one partition (PO, CO, CU) or keyring (KRSO, KRCO): keys and crypto operations."""

    def logout(self, *, request_id: str | None = None) -> None:
        self._call(
            ntls_pb2_grpc.NtlsStub,
            "CloseSession",
            ntls_pb2.CloseSessionRequest(request_id=_rid(request_id)),
            write=True,
        )

    close = logout

    def info(self) -> SessionInfo:
        r = self._call(ntls_pb2_grpc.NtlsStub, "SessionInfo", ntls_pb2.SessionInfoRequest())
        return SessionInfo(r.partition, r.role, r.expires_ms)

    # partition administration
    def init_role(self, role: str, password: str, *, request_id: str | None = None) -> None:
        """PO: initialize or reset the CO. CO: initialize or reset the CU."""
        req = ntls_pb2.InitRoleRequest(request_id=_rid(request_id), role=role, password=password)
        self._call(ntls_pb2_grpc.NtlsStub, "InitRole", req, write=True)

    def set_policy(self, policy: str, value: int | bool, *, request_id: str | None = None) -> None:
        req = ntls_pb2.SetPolicyRequest(request_id=_rid(request_id), policy=policy, value=int(value))
        self._call(ntls_pb2_grpc.NtlsStub, "SetPolicy", req, write=True)

    # keys
    def generate_key(
        self,
        label: str,
        key_type: str,
        size: str | int,
        *,
        usage: list[str],
        exportable: bool = False,
        partition: str = "",
        request_id: str | None = None,
    ) -> KeyInfo:
        """Generate a key here, or in `partition` when its owner granted this partition `create`."""
        req = keys_pb2.GenerateKeyRequest(
            request_id=_rid(request_id),
            label=label,
            key_type=key_type,
            size=str(size),
            exportable=exportable,
            usage=usage,
            partition=partition,
        )
        return _key(self._call(keys_pb2_grpc.KeysStub, "Generate", req, write=True))

    def import_public_key(
        self, label: str, pem: bytes, *, usage: list[str], request_id: str | None = None
    ) -> KeyInfo:
        req = keys_pb2.ImportPublicKeyRequest(request_id=_rid(request_id), label=label, pem=pem, usage=usage)
        return _key(self._call(keys_pb2_grpc.KeysStub, "ImportPublic", req, write=True))

    def import_key(
        self,
        label: str,
        key_type: str,
        material: bytes,
        *,
        usage: list[str],
        exportable: bool = False,
        request_id: str | None = None,
    ) -> KeyInfo:
        """Import plaintext material: an AES value, or a private key as PKCS#8 DER or PEM."""
        req = keys_pb2.ImportKeyRequest(
            request_id=_rid(request_id),
            label=label,
            key_type=key_type,
            material=material,
            usage=usage,
            exportable=exportable,
        )
        return _key(self._call(keys_pb2_grpc.KeysStub, "Import", req, write=True))

    def unwrap_key(
        self,
        wrapping_key: str,
        wrapped: bytes,
        *,
        label: str,
        key_type: str,
        usage: list[str],
        exportable: bool = False,
        request_id: str | None = None,
        mechanism: str = "AES-KWP",
        iv: bytes = b"",
        aad: bytes = b"",
    ) -> KeyInfo:
        """Import key material wrapped by `mechanism` (AES-KWP, or AES-GCM with the IV and AAD it was
        wrapped with) under `wrapping_key`; the member unwraps it."""
        req = keys_pb2.UnwrapKeyRequest(
            request_id=_rid(request_id),
            wrapping_key=wrapping_key,
            wrapped=wrapped,
            label=label,
            key_type=key_type,
            usage=usage,
            exportable=exportable,
            mechanism=mechanism,
            iv=iv,
            aad=aad,
        )
        return _key(self._call(keys_pb2_grpc.KeysStub, "Unwrap", req, write=True))

    # Partition backup and restore (the CO: every object; the CU: public objects)
    def backup(self) -> bytes:
        """A backup of this session's partition, encrypted for the cluster (write it to a file as is)."""
        r = self._call(
            partition_backup_pb2_grpc.PartitionBackupStub,
            "Create",
            partition_backup_pb2.PartitionBackupRequest(),
        )
        return bytes(r.backup)

    def restore(self, backup: bytes, *, request_id: str | None = None) -> list[KeyInfo]:
        """Restore a backup into this session's partition (same cloning domain): every object, or none."""
        req = partition_backup_pb2.PartitionRestoreRequest(request_id=_rid(request_id), backup=backup)
        r = self._call(partition_backup_pb2_grpc.PartitionBackupStub, "Restore", req, write=True)
        return [_key(k) for k in r.keys]

    def destroy_key(self, key: str, *, request_id: str | None = None) -> None:
        self._call(
            keys_pb2_grpc.KeysStub,
            "Destroy",
            keys_pb2.KeyRef(request_id=_rid(request_id), key=key),
            write=True,
        )

    def list_keys(
        self, *, label: str = "", key_type: str = "", key_id: str = "", partition: str = ""
    ) -> list[KeyInfo]:
        """Keys here, or in `partition` when its owner granted this partition `read`."""
        r = self._call(
            keys_pb2_grpc.KeysStub,
            "List",
            keys_pb2.ListKeysRequest(label=label, key_type=key_type, id=key_id, partition=partition),
        )
        return [_key(k) for k in r.keys]

    def show_key(self, key: str) -> KeyInfo:
        return _key(self._call(keys_pb2_grpc.KeysStub, "Show", keys_pb2.KeyRef(key=key)))

    def sign(self, key: str, data: bytes, *, mechanism: str) -> bytes:
        r = self._call(
            keys_pb2_grpc.KeysStub,
            "Sign",
            keys_pb2.SignRequest(key=key, mechanism=mechanism, data=data),
            balance=True,
        )
        return bytes(r.signature)

    def verify(self, key: str, data: bytes, signature: bytes, *, mechanism: str) -> bool:
        req = keys_pb2.VerifyRequest(key=key, mechanism=mechanism, data=data, signature=signature)
        return bool(self._call(keys_pb2_grpc.KeysStub, "Verify", req, balance=True).valid)

    def encrypt(
        self, key: str, data: bytes, *, mechanism: str, aad: bytes = b"", iv: bytes = b""
    ) -> tuple[bytes, bytes]:
        """(ciphertext, iv): AES-GCM uses `iv` (12 bytes) when given, else returns the IV the HSM
        drew; RSA-OAEP returns an empty one."""
        r = self._call(
            keys_pb2_grpc.KeysStub,
            "Encrypt",
            keys_pb2.EncryptRequest(key=key, mechanism=mechanism, data=data, aad=aad, iv=iv),
            balance=True,
        )
        return bytes(r.ciphertext), bytes(r.iv)

    def decrypt(
        self, key: str, ciphertext: bytes, *, mechanism: str, iv: bytes = b"", aad: bytes = b""
    ) -> bytes:
        req = keys_pb2.DecryptRequest(key=key, mechanism=mechanism, ciphertext=ciphertext, iv=iv, aad=aad)
        return bytes(self._call(keys_pb2_grpc.KeysStub, "Decrypt", req, balance=True).plaintext)

    def wrap_key(
        self, wrapping_key: str, key: str, *, mechanism: str = "AES-KWP", iv: bytes = b"", aad: bytes = b""
    ) -> bytes:
        """Export `key` wrapped under `wrapping_key` (an AES key) by the member: AES-KWP (RFC 5649), or
        AES-GCM with the caller's 12-byte `iv` and optional `aad` (ciphertext || 16-byte tag)."""
        req = keys_pb2.WrapKeyRequest(wrapping_key=wrapping_key, key=key, mechanism=mechanism, iv=iv, aad=aad)
        r = self._call(keys_pb2_grpc.KeysStub, "Wrap", req)
        return bytes(r.wrapped)

    def export_public_key(self, key: str) -> bytes:
        return bytes(self._call(keys_pb2_grpc.KeysStub, "ExportPublic", keys_pb2.KeyRef(key=key)).pem)

    def digest(self, data: bytes, *, mechanism: str = "SHA256") -> bytes:
        return bytes(
            self._call(
                keys_pb2_grpc.KeysStub,
                "Digest",
                keys_pb2.DigestRequest(mechanism=mechanism, data=data),
                balance=True,
            ).digest
        )

    def random(self, length: int) -> bytes:
        return bytes(
            self._call(
                keys_pb2_grpc.KeysStub, "Random", keys_pb2.RandomRequest(length=length), balance=True
            ).data
        )

    # keyrings: the cluster security officer (a PO session on the cluster partition)
    def create_keyring(self, label: str, krso_password: str, *, request_id: str | None = None) -> str:
        req = keyrings_pb2.CreateKeyringRequest(
            request_id=_rid(request_id), label=label, krso_password=krso_password
        )
        return str(self._call(keyrings_pb2_grpc.KeyringsStub, "Create", req, write=True).id)

    def delete_keyring(self, label: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.KeyringRequest(request_id=_rid(request_id), label=label)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Delete", req, write=True)

    def assign_keyring(self, label: str, client: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.AssignKeyringRequest(request_id=_rid(request_id), label=label, client=client)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Assign", req, write=True)

    def unassign_keyring(self, label: str, client: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.AssignKeyringRequest(request_id=_rid(request_id), label=label, client=client)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Unassign", req, write=True)

    def unlock_keyring(self, label: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.KeyringRequest(request_id=_rid(request_id), label=label)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Unlock", req, write=True)

    def list_keyrings(self) -> list[KeyringInfo]:
        r = self._call(keyrings_pb2_grpc.KeyringsStub, "List", keyrings_pb2.ListKeyringsRequest())
        return [_keyring(k) for k in r.keyrings]

    def show_keyring(self, label: str) -> KeyringInfo:
        return _keyring(
            self._call(keyrings_pb2_grpc.KeyringsStub, "Show", keyrings_pb2.KeyringRequest(label=label))
        )

    # M-of-N authorization (a CO session on a partition created to require it)
    def auth_challenge(self, action: str) -> AuthChallenge:
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub,
            "Challenge",
            authorization_pb2.ChallengeRequest(action=action),
        )
        return AuthChallenge(bytes(r.challenge), bytes(r.mac), r.expires_ms)

    def auth_change(
        self,
        target: str,
        challenge: AuthChallenge | None,
        signatures: list[tuple[str, bytes]],
        password: str,
        *,
        card_set: tuple[str, int, list[tuple[str, bytes]]] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Move the partition to `target` with M card signatures over `challenge` and the partition
        password; SESSION_AUTHORIZED (and back) changes only this session, whose token is replaced."""
        req = authorization_pb2.ChangeAuthorizationRequest(
            request_id=_rid(request_id),
            target=target,
            challenge=challenge.data if challenge else b"",
            mac=challenge.mac if challenge else b"",
            signatures=[
                authorization_pb2.CardSignature(label=label, signature=sig) for label, sig in signatures
            ],
            password=password,
        )
        if card_set is not None:
            set_id, threshold, cards = card_set
            req.card_set.CopyFrom(
                authorization_pb2.CardSet(
                    set_id=set_id,
                    threshold=threshold,
                    cards=[authorization_pb2.Card(label=label, public_key=key) for label, key in cards],
                )
            )
        r = self._call(authorization_pb2_grpc.AuthorizationStub, "Change", req, write=True)
        if r.token:
            self.token = r.token
        return str(r.state)

    def auth_set_permissions(
        self,
        permissions: list[str],
        challenge: AuthChallenge,
        signatures: list[tuple[str, bytes]],
        password: str,
        *,
        request_id: str | None = None,
    ) -> list[str]:
        req = authorization_pb2.SetAuthPermissionsRequest(
            request_id=_rid(request_id),
            permissions=permissions,
            challenge=challenge.data,
            mac=challenge.mac,
            signatures=[
                authorization_pb2.CardSignature(label=label, signature=sig) for label, sig in signatures
            ],
            password=password,
        )
        return list(
            self._call(
                authorization_pb2_grpc.AuthorizationStub, "SetPermissions", req, write=True
            ).permissions
        )

    def auth_show(self) -> AuthInfo:
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub, "Show", authorization_pb2.ShowAuthorizationRequest()
        )
        return auth_info(r)

    # grants between partitions' users (DOMAIN.md §4); keys of a granting partition are named
    # "partition:OWNER/KEY" in every key argument
    def grant(
        self, grantee: str, permissions: list[str], *, request_id: str | None = None
    ) -> tuple[str, ...]:
        """As the owner: grant `grantee`'s users create, remove, read and/or update_log on this partition."""
        req = authorization_pb2.SetGrantRequest(
            request_id=_rid(request_id), grantee=grantee, permissions=permissions
        )
        return tuple(
            self._call(authorization_pb2_grpc.AuthorizationStub, "SetGrant", req, write=True).permissions
        )

    def revoke_grant(self, grantee: str, *, request_id: str | None = None) -> None:
        self.grant(grantee, [], request_id=request_id)

    def list_grants(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(owner, grantee, permissions) for grants this partition gave or received."""
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub, "ListGrants", authorization_pb2.ListGrantsRequest()
        )
        return [(g.owner, g.grantee, tuple(g.permissions)) for g in r.grants]

    def block_key(self, key: str, *, blocked: bool = True, request_id: str | None = None) -> None:
        req = keys_pb2.BlockKeyRequest(request_id=_rid(request_id), key=key, blocked=blocked)
        self._call(keys_pb2_grpc.KeysStub, "Block", req, write=True)

    # keyrings: the KRSO
    def set_krco(self, password: str, *, request_id: str | None = None) -> None:
        """KRSO session: set the KRCO credential of this keyring."""
        req = keyrings_pb2.SetKrcoRequest(request_id=_rid(request_id), password=password)
        self._call(keyrings_pb2_grpc.KeyringsStub, "SetKrco", req, write=True)


def auth_info(r: Any) -> AuthInfo:
    """An AuthorizationInfo message as the SDK's AuthInfo."""
    return AuthInfo(
        r.partition,
        r.requires_authorization,
        r.state,
        r.set_id,
        r.threshold,
        tuple(r.card_labels),
        tuple(r.permissions),
        r.online_authorization,
        r.session_authorized,
    )


def _key(k: Any) -> KeyInfo:
    return KeyInfo(
        k.id,
        k.label,
        k.key_type,
        k.size,
        k.object_class,
        k.exportable,
        tuple(k.usage),
        bytes(k.public_der),
        k.origin,
        k.created_at_ms,
        k.container,
        k.blocked,
    )


def _keyring(k: Any) -> KeyringInfo:
    return KeyringInfo(k.label, k.id, k.krso_initialized, k.krco_set, k.locked, k.objects, tuple(k.clients))


def _user(u: Any) -> User:
    return User(u.name, u.role, u.enabled, u.builtin, u.must_change_password, u.locked, u.failed_logins)


def _partition(p: Any) -> PartitionInfo:
    return PartitionInfo(
        p.name,
        p.label,
        p.initialized,
        p.cloning_domain,
        tuple(PartitionRole(r.role, r.locked, r.must_change_password, r.failed_logins) for r in p.roles),
        dict(p.policies),
        p.activated,
        p.cluster,
        p.objects,
    )

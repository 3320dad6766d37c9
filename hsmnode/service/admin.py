"""Appliance and HSM administration: users, custom roles, NTLS clients, the HSM, partitions.

Writes are proposed with the session's actor and authorized inside apply; reads are
authorized against local replicated state here (a denial is audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hsmnode import crypto
from hsmnode.domain import commands as c
from hsmnode.domain import permissions as perm
from hsmnode.domain import rules
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import ApplianceUser, Client, Partition
from hsmnode.domain.permissions import APPLIANCE_ROLES, CUSTOM_ROLE_COMMANDS
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext
from hsmnode.sessions import SessionKind


@dataclass(frozen=True)
class UserView:
    name: str
    role: str
    enabled: bool
    builtin: bool
    must_change_password: bool
    locked: bool
    failed_logins: int

    @classmethod
    def of(cls, u: ApplianceUser) -> UserView:
        cred = u.credential
        return cls(u.name, u.role, u.enabled, u.builtin, cred.must_change, cred.locked, cred.failed)


@dataclass(frozen=True)
class RoleView:
    name: str
    commands: tuple[str, ...]
    builtin: bool  # a default role (its commands from the permission table)


@dataclass(frozen=True)
class ClientView:
    name: str
    fingerprint: str
    partitions: tuple[str, ...]

    @classmethod
    def of(cls, client: Client) -> ClientView:
        return cls(client.name, client.fingerprint, tuple(sorted(client.partitions)))


@dataclass(frozen=True)
class PartitionRoleView:
    role: str
    locked: bool
    must_change_password: bool
    failed_logins: int


@dataclass(frozen=True)
class PartitionView:
    """A partition as administrators see it: its objects counted, never copied."""

    name: str
    label: str
    initialized: bool
    cloning_domain: str
    roles: tuple[PartitionRoleView, ...]
    policies: dict[str, int]
    activated: bool
    cluster: bool
    objects: int
    authorization_state: str

    @classmethod
    def of(cls, p: Partition) -> PartitionView:
        return cls(
            name=p.name,
            label=p.label,
            initialized=p.initialized,
            cloning_domain=p.cloning_domain,
            roles=tuple(
                PartitionRoleView(r, cred.locked, cred.must_change, cred.failed)
                for r, cred in sorted(p.roles.items())
            ),
            policies={k: int(getattr(p.policy, k)) for k in p.policy.NAMES},
            activated=p.activated,
            cluster=p.cluster,
            objects=len(p.objects),
            authorization_state=p.authorization.state if p.authorization else "",
        )


@dataclass(frozen=True)
class HsmView:
    initialized: bool
    label: str
    so_locked: bool
    auditor_initialized: bool
    policies: dict[str, bool]
    partitions: int
    keyring_objects: dict[str, int]  # keyring label -> objects held


def _certificate(pem: str) -> tuple[str, str]:
    try:
        normalized = crypto.normalize_certificate(pem.encode())
    except ValueError as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"client certificate: {exc}") from None
    return normalized.decode(), crypto.certificate_fingerprint(normalized)


class AdminService:
    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def _write(self, call: Call, cls: type[c.Command], **fields: Any) -> dict[str, Any]:
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        return self._ctx.submit(cls, claims.actor, call.request_id, call.timeout, **fields).value

    # --- users ----------------------------------------------------------------

    def add_user(
        self,
        call: Call,
        name: str,
        role: str,
        password: str,
    ) -> None:
        rules.check_user_name(name)
        rules.check_password(password)
        self._write(
            call,
            c.UserAdd,
            name=name,
            role=role,
            password_hash=crypto.hash_password(password),
        )

    def delete_user(self, call: Call, name: str) -> None:
        self._write(call, c.UserDelete, name=name)

    def set_user_enabled(self, call: Call, name: str, enabled: bool) -> None:
        self._write(call, c.UserSetEnabled, name=name, enabled=enabled)

    def set_user_password(self, call: Call, name: str, password: str) -> None:
        rules.check_password(password)
        self._write(
            call,
            c.UserSetPassword,
            name=name,
            password_hash=crypto.hash_password(password),
        )

    def list_users(self, call: Call) -> list[UserView]:
        self._ctx.authorize_read(call, "user.list")
        return self._ctx.read(lambda s: [UserView.of(s.users[k]) for k in sorted(s.users)])

    def show_user(self, call: Call, name: str) -> UserView:
        self._ctx.authorize_read(call, "user.show")
        user = self._ctx.read(lambda s: UserView.of(s.users[name]) if name in s.users else None)
        if user is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no user '{name}'")
        return user

    # --- roles ------------------------------------------------------------------

    def add_role(
        self,
        call: Call,
        name: str,
        commands: list[str],
    ) -> None:
        self._write(call, c.RoleAdd, name=name, commands=tuple(commands))

    def delete_role(self, call: Call, name: str) -> None:
        self._write(call, c.RoleDelete, name=name)

    def list_roles(self, call: Call) -> list[RoleView]:
        """Default roles (their commands from the permission table) and custom roles."""
        self._ctx.authorize_read(call, "role.list")
        return [_default_role(r) for r in APPLIANCE_ROLES] + self._ctx.read(
            lambda s: [RoleView(k, s.roles[k].commands, False) for k in sorted(s.roles)]
        )

    def show_role(self, call: Call, name: str) -> RoleView:
        self._ctx.authorize_read(call, "role.show")
        if name in APPLIANCE_ROLES:
            return _default_role(name)
        role = self._ctx.read(
            lambda s: RoleView(name, s.roles[name].commands, False) if name in s.roles else None
        )
        if role is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no role '{name}'")
        return role

    @staticmethod
    def delegable_commands() -> list[str]:
        return sorted(CUSTOM_ROLE_COMMANDS)

    # --- NTLS clients -----------------------------------------------------------

    def register_client(self, call: Call, name: str, cert_pem: str) -> str:
        pem, fingerprint = _certificate(cert_pem)
        if self._ctx.ca_pem and crypto.issued_by(pem.encode(), self._ctx.ca_pem):
            # DOMAIN.md §3 channels: administration certificates and NTLS client certificates never overlap
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"this certificate (CN '{crypto.certificate_common_name(pem.encode())}') was issued by the cluster CA "
                "for administration; an NTLS client registers a certificate of its own (hsmnode client register NAME --cert FILE)",
            )
        self._write(
            call,
            c.ClientRegister,
            name=name,
            cert_pem=pem,
            fingerprint=fingerprint,
        )
        return fingerprint

    def assign_client(self, call: Call, name: str, partition: str) -> None:
        self._write(call, c.ClientAssign, name=name, partition=partition)

    def revoke_client(self, call: Call, name: str, partition: str) -> None:
        self._write(call, c.ClientRevoke, name=name, partition=partition)

    def list_clients(self, call: Call) -> list[ClientView]:
        self._ctx.authorize_read(call, "client.list")
        return self._ctx.read(lambda s: [ClientView.of(s.clients[k]) for k in sorted(s.clients)])

    def show_client(self, call: Call, name: str) -> ClientView:
        self._ctx.authorize_read(call, "client.show")
        client = self._ctx.read(lambda s: ClientView.of(s.clients[name]) if name in s.clients else None)
        if client is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no registered client '{name}'")
        return client

    # --- HSM and partitions -------------------------------------------------------

    def init_hsm(self, call: Call, label: str, so_password: str) -> int:
        rules.check_password(so_password, "SO password")
        value = self._write(
            call,
            c.HsmInit,
            label=label,
            so_password_hash=crypto.hash_password(so_password),
        )
        return int(value["destroyed"])

    def init_auditor(self, call: Call, password: str) -> None:
        rules.check_password(password, "Auditor password")
        self._write(call, c.AuditorInit, password_hash=crypto.hash_password(password))

    def set_hsm_policy(self, call: Call, name: str, value: bool) -> None:
        self._write(call, c.HsmPolicySet, name=name, value=value)

    def show_hsm(self, call: Call) -> HsmView:
        """The HSM, its number of partitions and its keyrings' object counts (labels and counts only)."""
        self._ctx.authorize_read(call, "hsm.show")

        def view(s: HsmState) -> HsmView:
            hsm = s.hsm
            return HsmView(
                initialized=hsm.initialized,
                label=hsm.label,
                so_locked=bool(hsm.so and hsm.so.locked),
                auditor_initialized=hsm.auditor is not None,
                policies=dict(hsm.policies),
                partitions=len(s.partitions),
                keyring_objects={label: len(ring.objects) for label, ring in s.keyrings.items()},
            )

        return self._ctx.read(view)

    def create_partition(
        self,
        call: Call,
        name: str,
        cluster: bool,
        requires_authorization: bool = False,
    ) -> None:
        self._write(
            call,
            c.PartitionCreate,
            name=name,
            cluster=cluster,
            requires_authorization=requires_authorization,
        )

    def delete_partition(self, call: Call, name: str) -> None:
        self._write(call, c.PartitionDelete, name=name)

    def list_partitions(self, call: Call) -> list[PartitionView]:
        self._ctx.authorize_read(call, "partition.list")
        return self._ctx.read(lambda s: [PartitionView.of(s.partitions[k]) for k in sorted(s.partitions)])

    def show_partition(self, call: Call, name: str) -> PartitionView:
        self._ctx.authorize_read(call, "partition.show")
        part = self._ctx.read(
            lambda s: PartitionView.of(s.partitions[name]) if name in s.partitions else None
        )
        if part is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{name}'")
        return part


def _default_role(role: str) -> RoleView:
    """A default role and the commands the permission table gives it."""
    allowed = [
        op for op in sorted(set(perm.APPLIANCE) | set(perm.HSM)) if perm.appliance_allows(role, None, op)
    ]
    return RoleView(role, tuple(allowed), True)

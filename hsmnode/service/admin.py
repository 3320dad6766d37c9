"""Appliance and HSM administration: users, custom roles, NTLS clients, the HSM, partitions.

Writes are proposed with the session's actor and authorized inside apply; reads are
authorized against local replicated state here (a denial is audited).
"""

from __future__ import annotations

import copy
from typing import Any

from hsmnode import crypto
from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import ApplianceUser, Client, CustomRole, Hsm, Partition
from hsmnode.domain.permissions import APPLIANCE_ROLES, CUSTOM_ROLE_COMMANDS
from hsmnode.service.context import Caller, NodeContext


def _certificate(pem: str) -> tuple[str, str]:
    try:
        normalized = crypto.normalize_certificate(pem.encode())
    except ValueError as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"client certificate: {exc}") from None
    return normalized.decode(), crypto.certificate_fingerprint(normalized)


class AdminService:
    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def _write(
        self,
        caller: Caller,
        token: str,
        cls: type[c.Command],
        request_id: str,
        timeout: float | None,
        **fields: Any,
    ) -> dict[str, Any]:
        claims = self._ctx.claims(caller, token, "appliance")
        return self._ctx.submit(cls, claims.actor, request_id, timeout, **fields).value

    # --- users ----------------------------------------------------------------

    def add_user(
        self,
        caller: Caller,
        token: str,
        name: str,
        role: str,
        password: str,
        request_id: str,
        timeout: float | None,
    ) -> None:
        rules.check_user_name(name)
        rules.check_password(password)
        self._write(
            caller,
            token,
            c.UserAdd,
            request_id,
            timeout,
            name=name,
            role=role,
            password_hash=crypto.hash_password(password),
        )

    def delete_user(
        self, caller: Caller, token: str, name: str, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.UserDelete, request_id, timeout, name=name)

    def set_user_enabled(
        self, caller: Caller, token: str, name: str, enabled: bool, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.UserSetEnabled, request_id, timeout, name=name, enabled=enabled)

    def set_user_password(
        self, caller: Caller, token: str, name: str, password: str, request_id: str, timeout: float | None
    ) -> None:
        rules.check_password(password)
        self._write(
            caller,
            token,
            c.UserSetPassword,
            request_id,
            timeout,
            name=name,
            password_hash=crypto.hash_password(password),
        )

    def list_users(self, caller: Caller, token: str) -> list[ApplianceUser]:
        self._ctx.authorize_read(caller, token, "user.list")
        return self._ctx.read(lambda s: [copy.deepcopy(s.users[k]) for k in sorted(s.users)])

    def show_user(self, caller: Caller, token: str, name: str) -> ApplianceUser:
        self._ctx.authorize_read(caller, token, "user.show")
        user = self._ctx.read(lambda s: copy.deepcopy(s.users.get(name)))
        if user is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no user '{name}'")
        return user

    # --- roles ------------------------------------------------------------------

    def add_role(
        self,
        caller: Caller,
        token: str,
        name: str,
        commands: list[str],
        request_id: str,
        timeout: float | None,
    ) -> None:
        self._write(caller, token, c.RoleAdd, request_id, timeout, name=name, commands=tuple(commands))

    def delete_role(
        self, caller: Caller, token: str, name: str, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.RoleDelete, request_id, timeout, name=name)

    def list_roles(self, caller: Caller, token: str) -> list[CustomRole]:
        """Default roles (their commands from the permission table) and custom roles."""
        self._ctx.authorize_read(caller, token, "role.list")
        return [self._describe_default(r) for r in APPLIANCE_ROLES] + self._ctx.read(
            lambda s: [copy.deepcopy(s.roles[k]) for k in sorted(s.roles)]
        )

    def show_role(self, caller: Caller, token: str, name: str) -> CustomRole:
        self._ctx.authorize_read(caller, token, "role.show")
        if name in APPLIANCE_ROLES:
            return self._describe_default(name)
        role = self._ctx.read(lambda s: copy.deepcopy(s.roles.get(name)))
        if role is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no role '{name}'")
        return role

    @staticmethod
    def _describe_default(role: str) -> CustomRole:
        from hsmnode.domain import permissions as perm

        allowed = [
            op for op in sorted(set(perm.APPLIANCE) | set(perm.HSM)) if perm.appliance_allows(role, None, op)
        ]
        return CustomRole(role, tuple(allowed))

    @staticmethod
    def delegable_commands() -> list[str]:
        return sorted(CUSTOM_ROLE_COMMANDS)

    # --- NTLS clients -----------------------------------------------------------

    def register_client(
        self, caller: Caller, token: str, name: str, cert_pem: str, request_id: str, timeout: float | None
    ) -> str:
        pem, fingerprint = _certificate(cert_pem)
        if self._ctx.ca_pem and crypto.issued_by(pem.encode(), self._ctx.ca_pem):
            # DOMAIN.md §3 channels: administration certificates and NTLS client certificates never overlap
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"this certificate (CN '{crypto.certificate_common_name(pem.encode())}') was issued by the cluster CA "
                "for administration; an NTLS client registers a certificate of its own (hsmnode client register NAME --cert FILE)",
            )
        self._write(
            caller,
            token,
            c.ClientRegister,
            request_id,
            timeout,
            name=name,
            cert_pem=pem,
            fingerprint=fingerprint,
        )
        return fingerprint

    def assign_client(
        self, caller: Caller, token: str, name: str, partition: str, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.ClientAssign, request_id, timeout, name=name, partition=partition)

    def revoke_client(
        self, caller: Caller, token: str, name: str, partition: str, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.ClientRevoke, request_id, timeout, name=name, partition=partition)

    def list_clients(self, caller: Caller, token: str) -> list[Client]:
        self._ctx.authorize_read(caller, token, "client.list")
        return self._ctx.read(lambda s: [copy.deepcopy(s.clients[k]) for k in sorted(s.clients)])

    def show_client(self, caller: Caller, token: str, name: str) -> Client:
        self._ctx.authorize_read(caller, token, "client.show")
        client = self._ctx.read(lambda s: copy.deepcopy(s.clients.get(name)))
        if client is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no registered client '{name}'")
        return client

    # --- HSM and partitions -------------------------------------------------------

    def init_hsm(
        self, caller: Caller, token: str, label: str, so_password: str, request_id: str, timeout: float | None
    ) -> int:
        rules.check_password(so_password, "SO password")
        value = self._write(
            caller,
            token,
            c.HsmInit,
            request_id,
            timeout,
            label=label,
            so_password_hash=crypto.hash_password(so_password),
        )
        return int(value["destroyed"])

    def init_auditor(
        self, caller: Caller, token: str, password: str, request_id: str, timeout: float | None
    ) -> None:
        rules.check_password(password, "Auditor password")
        self._write(
            caller, token, c.AuditorInit, request_id, timeout, password_hash=crypto.hash_password(password)
        )

    def set_hsm_policy(
        self, caller: Caller, token: str, name: str, value: bool, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.HsmPolicySet, request_id, timeout, name=name, value=value)

    def show_hsm(self, caller: Caller, token: str) -> tuple[Hsm, int, dict[str, int]]:
        """(the HSM, its number of partitions, keyring label -> objects held: labels and counts only)."""
        self._ctx.authorize_read(caller, token, "hsm.show")
        return self._ctx.read(
            lambda s: (
                copy.deepcopy(s.hsm),
                len(s.partitions),
                {label: len(ring.objects) for label, ring in s.keyrings.items()},
            )
        )

    def create_partition(
        self,
        caller: Caller,
        token: str,
        name: str,
        cluster: bool,
        request_id: str,
        timeout: float | None,
        requires_authorization: bool = False,
    ) -> None:
        self._write(
            caller,
            token,
            c.PartitionCreate,
            request_id,
            timeout,
            name=name,
            cluster=cluster,
            requires_authorization=requires_authorization,
        )

    def delete_partition(
        self, caller: Caller, token: str, name: str, request_id: str, timeout: float | None
    ) -> None:
        self._write(caller, token, c.PartitionDelete, request_id, timeout, name=name)

    def list_partitions(self, caller: Caller, token: str) -> list[Partition]:
        self._ctx.authorize_read(caller, token, "partition.list")
        return self._ctx.read(lambda s: [copy.deepcopy(s.partitions[k]) for k in sorted(s.partitions)])

    def show_partition(self, caller: Caller, token: str, name: str) -> Partition:
        self._ctx.authorize_read(caller, token, "partition.show")
        part = self._ctx.read(lambda s: copy.deepcopy(s.partitions.get(name)))
        if part is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{name}'")
        return part

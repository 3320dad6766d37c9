"""The NTLS-style client handshake and partition administration over it (DOMAIN.md §3).

A registered client lists the partitions assigned to it (and nothing else), opens a
session on one with a role's password, and gets a cluster-wide session token.
Unregistered certificates are refused at the TLS handshake by the member's trust
list; a client whose registration was revoked on a live connection is refused here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hsmnode import crypto
from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import check_activated
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Client, Partition
from hsmnode.domain.principals import KEYRING_ROLES, PARTITION_ROLES
from hsmnode.domain.roles import PartitionRole
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call, Caller
from hsmnode.service.context import NodeContext
from hsmnode.service.login import LoginService, Session, issued_at
from hsmnode.sessions import PARTITION_TTL_MS, Claims, SessionKind


@dataclass(frozen=True)
class Slot:
    partition: str  # the partition name, or the keyring label
    label: str
    initialized: bool
    activation_required: bool
    activated: bool
    kind: str = SessionKind.PARTITION.value  # the kind of session the slot opens: partition | keyring


@dataclass(frozen=True)
class Slots:
    client: str  # the calling client's registered name
    slots: tuple[Slot, ...]


class NtlsService:
    def __init__(self, ctx: NodeContext, login: LoginService) -> None:
        self._ctx = ctx
        self._login = login

    def _client(self, caller: Caller) -> Client:
        client = self._ctx.read(lambda s: s.client_by_fingerprint(caller.fingerprint))
        if client is None:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED,
                f"client certificate {caller.fingerprint[:16]}... is not registered with this cluster: "
                "an admin must register it (hsmnode client register)",
            )
        return client

    def _client_actor(self, caller: Caller) -> tuple[Client, str]:
        client = self._client(caller)
        return client, f"client:{client.fingerprint}#{client.epoch}"

    def _assigned(
        self, caller: Caller, partition: str, kind: SessionKind = SessionKind.PARTITION
    ) -> tuple[Client, str]:
        """The calling client and its actor, if `partition` (a partition, or a keyring) is assigned to it;
        a missing and an unassigned one get the same answer, and the refusal is audited."""
        client, actor = self._client_actor(caller)
        if kind == SessionKind.KEYRING:
            exists = self._ctx.read(lambda s: partition in s.keyrings)
            held = partition in client.keyrings
        else:
            exists = self._ctx.read(lambda s: partition in s.partitions)
            held = partition in client.partitions
        if not held or not exists:
            self._ctx.audit_refusal(
                actor, "session.refused", f"client '{client.name}' asked for unassigned {kind} {partition!r}"
            )
            raise DomainError(ErrorCode.NOT_FOUND, f"no {kind} {partition!r} is assigned to this client")
        return client, actor

    def list_slots(self, call: Call) -> Slots:
        """The calling client's name and the partitions and keyrings assigned to it."""
        client = self._client(call.caller)
        started = self._ctx.started_ms

        def slots(s: HsmState) -> list[Slot]:
            found = [s.partitions[p] for p in sorted(client.partitions) if p in s.partitions]
            rings = [s.keyrings[r] for r in sorted(client.keyrings) if r in s.keyrings]
            return [
                Slot(
                    p.name, p.label, p.initialized, p.policy.activation_required, _activated_here(p, started)
                )
                for p in found
            ] + [Slot(r.label, r.id, True, False, False, SessionKind.KEYRING.value) for r in rings]

        return Slots(client.name, tuple(self._ctx.read(slots)))

    def open_session(self, call: Call, partition: str, role: str, password: str) -> Session:
        kind = _kind_of(role)
        caller, request_id = call.caller, call.request_id
        client, actor = self._client_actor(caller)
        if self._ctx.prior(request_id, c.RecordLogin, actor) is None:  # a repeat answers the first login
            self._assigned(caller, partition, kind)
            if kind == SessionKind.PARTITION and role in (PartitionRole.CO, PartitionRole.CU):
                # activation is held per member: one that restarted since has lost it (DOMAIN.md §3)
                started = self._ctx.started_ms
                self._ctx.read(lambda s: check_activated(s.partitions[partition], started))
        result = self._login.verify_and_record(
            actor, f"{kind}:{partition}:{role}", password, request_id, call.timeout
        )
        expires = issued_at(self._ctx, result) + PARTITION_TTL_MS
        claims = Claims(
            cluster_id=self._ctx.config.cluster_id,
            kind=kind.value,
            subject=partition,
            fingerprint=caller.fingerprint,
            expires_ms=expires,
            epoch=client.epoch,
            partition_role=role,
            role_epoch=int(result.value["epoch"]),
            session_epoch=int(result.value.get("session_epoch", 0)),
        )
        return Session(self._ctx.tokens.issue(claims, request_id), expires, partition, role)

    def session_info(self, call: Call) -> Claims:
        """The session's partition (or keyring) and role, if the session is still current in replicated state."""
        claims = self._ctx.claims(
            call, SessionKind.KEYRING if _keyring_token(self._ctx, call) else SessionKind.PARTITION
        )
        self._ctx.check_session(claims)
        return claims

    def close_session(self, call: Call) -> None:
        claims = self._ctx.claims(
            call, SessionKind.KEYRING if _keyring_token(self._ctx, call) else SessionKind.PARTITION
        )
        self._ctx.submit(
            c.Logout,
            claims.actor,
            call.request_id,
            call.timeout,
            target=f"{claims.container}:{claims.partition_role}",
        )

    def change_password(self, call: Call, partition: str, role: str, old: str, new: str) -> None:
        kind = _kind_of(role)
        _, actor = self._assigned(call.caller, partition, kind)
        self._login.change_password(
            actor, f"{kind}:{partition}:{role}", old, new, call.request_id, call.timeout
        )

    # --- partition administration ------------------------------------------------

    def init_partition(
        self, call: Call, partition: str, label: str, cloning_domain: str, po_password: str
    ) -> None:
        rules.check_password(po_password, "PO password")
        _, actor = self._assigned(call.caller, partition)
        self._ctx.submit(
            c.PartitionInit,
            actor,
            call.request_id,
            call.timeout,
            name=partition,
            label=label,
            cloning_domain=cloning_domain,
            po_password_hash=crypto.hash_password(po_password),
        )

    def init_role(self, call: Call, role: str, password: str) -> None:
        rules.check_password(password, f"{role} password")
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        self._ctx.submit(
            c.PartitionRoleInit,
            claims.actor,
            call.request_id,
            call.timeout,
            name=claims.subject,
            role=role,
            password_hash=crypto.hash_password(password),
        )

    def set_policy(self, call: Call, policy: str, value: int) -> None:
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        self._ctx.submit(
            c.PartitionPolicySet,
            claims.actor,
            call.request_id,
            call.timeout,
            name=claims.subject,
            policy=policy,
            value=value,
        )

    def activate(self, call: Call, partition: str, co_password: str, active: bool) -> None:
        """The CO activates (PED-style login) or deactivates the partition; a wrong password counts."""
        request_id, timeout = call.request_id, call.timeout
        _, actor = self._assigned(call.caller, partition)
        epoch = self._login.check_password(
            actor,
            f"partition:{partition}:CO",
            co_password,
            request_id,
            timeout,
            tag="verify",
            refusal="wrong CO password",
        )
        self._ctx.submit(
            c.PartitionActivate,
            actor,
            request_id,
            timeout,
            name=partition,
            active=active,
            verified_epoch=epoch,
        )


def _activated_here(part: Partition, started_ms: int) -> bool:
    """Is the partition's activation held on this member (it activated since this member started,
    or auto_activation keeps it)?"""
    try:
        check_activated(part, started_ms)
    except DomainError:
        return False
    return part.activated


def _kind_of(role: str) -> SessionKind:
    """Partition roles open partition sessions; KRSO and KRCO open keyring sessions."""
    if role in PARTITION_ROLES:
        return SessionKind.PARTITION
    if role in KEYRING_ROLES:
        return SessionKind.KEYRING
    known = ", ".join(PARTITION_ROLES + KEYRING_ROLES)
    raise DomainError(ErrorCode.INVALID_ARGUMENT, f"role must be one of {known}, got {role!r}")


def _keyring_token(ctx: NodeContext, call: Call) -> bool:
    if not call.token:
        return False
    try:
        return (
            ctx.tokens.verify(call.token, call.caller.fingerprint, ctx.clock_ms()).kind == SessionKind.KEYRING
        )
    except DomainError:
        return False

"""Keyrings: the cluster security officer (a PO session on the cluster partition) creates,
assigns, unlocks and deletes them; the KRSO sets the KRCO credential (DOMAIN.md §1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hsmnode import crypto
from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Keyring
from hsmnode.domain.principals import parse
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext
from hsmnode.sessions import SessionKind


@dataclass(frozen=True)
class KeyringView:
    label: str
    id: str
    krso_initialized: bool
    krco_set: bool
    locked: bool
    objects: int
    clients: tuple[str, ...]


class KeyringService:
    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def _so(self, call: Call) -> str:
        return self._ctx.claims(call, SessionKind.PARTITION).actor

    def create(self, call: Call, label: str, krso_password: str) -> str:
        rules.check_password(krso_password, "initial KRSO password")
        actor = self._so(call)
        result = self._ctx.submit(
            c.KeyringCreate,
            actor,
            call.request_id,
            call.timeout,
            label=label,
            keyring_id=uuid.uuid4().hex,
            krso_password_hash=crypto.hash_password(krso_password),
        )
        return str(result.value["keyring_id"])

    def delete(self, call: Call, label: str) -> None:
        self._ctx.submit(c.KeyringDelete, self._so(call), call.request_id, call.timeout, label=label)

    def assign(self, call: Call, label: str, client: str, assigned: bool) -> None:
        self._ctx.submit(
            c.KeyringAssign,
            self._so(call),
            call.request_id,
            call.timeout,
            label=label,
            client=client,
            assigned=assigned,
        )

    def unlock(self, call: Call, label: str) -> None:
        self._ctx.submit(c.KeyringUnlock, self._so(call), call.request_id, call.timeout, label=label)

    def set_krco(self, call: Call, password: str) -> None:
        rules.check_password(password, "KRCO password")
        claims = self._ctx.claims(call, SessionKind.KEYRING)
        self._ctx.submit(
            c.KeyringSetKrco,
            claims.actor,
            call.request_id,
            call.timeout,
            label=claims.subject,
            password_hash=crypto.hash_password(password),
        )

    def list(self, call: Call) -> list[KeyringView]:
        """The cluster SO's view: every keyring, its roles' state and its clients (its objects counted)."""
        actor = self._so(call)
        now = self._ctx.clock_ms()

        def views(s: HsmState) -> list[KeyringView]:
            authorize(s, actor, "keyring.manage", now)
            cluster = s.cluster_partition()
            if cluster is None or parse(actor).container != f"partition:{cluster.name}":
                raise DomainError(
                    ErrorCode.PERMISSION_DENIED,
                    "only the cluster security officer (PO of the cluster partition) lists keyrings",
                )
            rings: list[Keyring] = [s.keyrings[k] for k in sorted(s.keyrings)]  # read under the lock
            holders = {
                r.label: tuple(sorted(cl.name for cl in s.clients.values() if r.label in cl.keyrings))
                for r in rings
            }
            return [
                KeyringView(
                    r.label,
                    r.id,
                    "KRSO" in r.roles and not r.roles["KRSO"].must_change,
                    "KRCO" in r.roles,
                    any(cred.locked for cred in r.roles.values()),
                    len(r.objects),
                    holders[r.label],
                )
                for r in rings
            ]

        return self._ctx.read(views)

    def show(self, call: Call, label: str) -> KeyringView:
        for view in self.list(call):
            if view.label == label:
                return view
        raise DomainError(ErrorCode.NOT_FOUND, f"no keyring '{label}'")

"""Who a command acts for: the actor string the proposing member stamps into every command.

    node:<id>                                        a member (cluster bootstrap)
    console:<id>                                     a member's local console (its own host; DOMAIN.md §5)
    cert:<fp>                                        a TLS peer before any login (login attempts)
    user:<name>#<epoch>                              an appliance user's session
    user:<name>#<epoch>/hsm:<SO|AU>#<epoch>          ... that also holds an HSM role
    client:<fp>#<epoch>                              a registered NTLS client (handshake)
    client:<fp>#<epoch>/partition:<p>:<PO|CO|CU>#<cred epoch>#<session epoch>
    client:<fp>#<epoch>/keyring:<label>:<KRSO|KRCO>#<cred epoch>#<session epoch>

The epochs are the ones the session token was issued under; apply compares
them with replicated state, so a command proposed with a session that has since
been logged out, locked or revoked is refused on every member alike.
"""

from __future__ import annotations

import dataclasses
import re

from hsmnode.domain.errors import DomainError, ErrorCode

HSM_ROLES = ("SO", "AU")
PARTITION_ROLES = ("PO", "CO", "CU")
KEYRING_ROLES = ("KRSO", "KRCO")

_USER = re.compile(r"user:([^#/]+)#(\d+)(?:/hsm:(SO|AU)#(\d+))?")
_CLIENT = re.compile(
    r"client:([0-9a-f]{64})#(\d+)(?:/(partition|keyring):([^:#/]+):(PO|CO|CU|KRSO|KRCO)#(\d+)#(\d+))?"
)
_CERT = re.compile(r"cert:([0-9a-f]{64})")
_NODE = re.compile(r"node:([^#/]+)")
_CONSOLE = re.compile(r"console:([^#/]+)")


@dataclasses.dataclass(frozen=True)
class Principal:
    kind: str  # node | console | cert | user | client
    name: str  # node id, user name, or certificate fingerprint
    epoch: int = 0
    hsm_role: str = ""
    hsm_epoch: int = 0
    partition: str = ""  # the container's name: a partition name or a keyring label
    partition_role: str = ""
    role_epoch: int = 0
    session_epoch: int = 0
    container_kind: str = ""  # "partition" | "keyring" when the session is on a container

    @property
    def container(self) -> str:
        """The container reference ("partition:<name>" / "keyring:<label>"), or "" for no session."""
        return f"{self.container_kind}:{self.partition}" if self.partition else ""

    def __str__(self) -> str:
        if self.kind in ("node", "console", "cert"):
            return f"{self.kind}:{self.name}"
        if self.kind == "user":
            base = f"user:{self.name}#{self.epoch}"
            return base + (f"/hsm:{self.hsm_role}#{self.hsm_epoch}" if self.hsm_role else "")
        base = f"client:{self.name}#{self.epoch}"
        if self.partition:
            base += f"/{self.container}:{self.partition_role}#{self.role_epoch}#{self.session_epoch}"
        return base


def node(node_id: str) -> Principal:
    return Principal("node", node_id)


def console(node_id: str) -> Principal:
    return Principal("console", node_id)


def cert(fingerprint: str) -> Principal:
    return Principal("cert", fingerprint)


def parse(actor: str) -> Principal:
    if m := _USER.fullmatch(actor):
        name, epoch, role, role_epoch = m.groups()
        return Principal("user", name, int(epoch), role or "", int(role_epoch or 0))
    if m := _CLIENT.fullmatch(actor):
        fp, epoch, kind, name, role, repoch, sepoch = m.groups()
        if (kind == "partition" and role not in PARTITION_ROLES) or (
            kind == "keyring" and role not in KEYRING_ROLES
        ):
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"unrecognized actor {actor!r}")
        return Principal(
            "client",
            fp,
            int(epoch),
            "",
            0,
            name or "",
            role or "",
            int(repoch or 0),
            int(sepoch or 0),
            kind or "",
        )
    if m := _CERT.fullmatch(actor):
        return Principal("cert", m.group(1))
    if m := _NODE.fullmatch(actor):
        return Principal("node", m.group(1))
    if m := _CONSOLE.fullmatch(actor):
        return Principal("console", m.group(1))
    raise DomainError(ErrorCode.UNAUTHENTICATED, f"unrecognized actor {actor!r}")

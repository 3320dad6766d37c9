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
import enum
import functools
import re

from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.roles import HsmRole, KeyringRole, PartitionRole

# plain strings, for the callers that list them
HSM_ROLES = tuple(str(role) for role in HsmRole)
PARTITION_ROLES = tuple(str(role) for role in PartitionRole)
KEYRING_ROLES = tuple(str(role) for role in KeyringRole)


class PrincipalKind(enum.StrEnum):
    """Who an actor string stands for (the table above)."""

    NODE = "node"
    CONSOLE = "console"
    CERT = "cert"
    USER = "user"
    CLIENT = "client"


class ContainerKind(enum.StrEnum):
    """What a client session is on."""

    PARTITION = "partition"
    KEYRING = "keyring"


_USER = re.compile(r"user:([^#/]+)#(\d+)(?:/hsm:(SO|AU)#(\d+))?")
_CLIENT = re.compile(
    r"client:([0-9a-f]{64})#(\d+)(?:/(partition|keyring):([^:#/]+):(PO|CO|CU|KRSO|KRCO)#(\d+)#(\d+))?"
)
_CERT = re.compile(r"cert:([0-9a-f]{64})")
_NODE = re.compile(r"node:([^#/]+)")
_CONSOLE = re.compile(r"console:([^#/]+)")


@dataclasses.dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    name: str  # node id, user name, or certificate fingerprint
    epoch: int = 0
    hsm_role: HsmRole | str = ""  # "" when the user holds no HSM role
    hsm_epoch: int = 0
    partition: str = ""  # the container's name: a partition name or a keyring label
    partition_role: PartitionRole | KeyringRole | str = ""  # "" when not on a container
    role_epoch: int = 0
    session_epoch: int = 0
    container_kind: ContainerKind | str = ""  # "" when the session is on no container

    @property
    def container(self) -> str:
        """The container reference ("partition:<name>" / "keyring:<label>"), or "" for no session."""
        return f"{self.container_kind}:{self.partition}" if self.partition else ""

    def __str__(self) -> str:
        if self.kind in (PrincipalKind.NODE, PrincipalKind.CONSOLE, PrincipalKind.CERT):
            return f"{self.kind}:{self.name}"
        if self.kind == PrincipalKind.USER:
            base = f"user:{self.name}#{self.epoch}"
            return base + (f"/hsm:{self.hsm_role}#{self.hsm_epoch}" if self.hsm_role else "")
        base = f"client:{self.name}#{self.epoch}"
        if self.partition:
            base += f"/{self.container}:{self.partition_role}#{self.role_epoch}#{self.session_epoch}"
        return base


def node(node_id: str) -> Principal:
    return Principal(PrincipalKind.NODE, node_id)


def console(node_id: str) -> Principal:
    return Principal(PrincipalKind.CONSOLE, node_id)


def cert(fingerprint: str) -> Principal:
    return Principal(PrincipalKind.CERT, fingerprint)


@functools.lru_cache(maxsize=4096)  # a pure function of the string; every call of a session repeats it
@functools.lru_cache(maxsize=4096)
def parse(actor: str) -> Principal:
    """The Principal an actor string names (the table above). Raises DomainError UNAUTHENTICATED
    for a string that names none. Memoized: a pure function of the string, and a Principal is
    frozen (apply parses the actor of every command, every session repeats its own)."""
    if m := _USER.fullmatch(actor):
        name, epoch, role, role_epoch = m.groups()
        return Principal(
            PrincipalKind.USER, name, int(epoch), HsmRole(role) if role else "", int(role_epoch or 0)
        )
    if m := _CLIENT.fullmatch(actor):
        fp, epoch, kind, name, role, repoch, sepoch = m.groups()
        container_role: PartitionRole | KeyringRole | str = ""
        if kind == ContainerKind.PARTITION and role in PARTITION_ROLES:
            container_role = PartitionRole(role)
        elif kind == ContainerKind.KEYRING and role in KEYRING_ROLES:
            container_role = KeyringRole(role)
        elif kind:
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"unrecognized actor {actor!r}")
        return Principal(
            PrincipalKind.CLIENT,
            fp,
            int(epoch),
            "",
            0,
            name or "",
            container_role,
            int(repoch or 0),
            int(sepoch or 0),
            ContainerKind(kind) if kind else "",
        )
    if m := _CERT.fullmatch(actor):
        return Principal(PrincipalKind.CERT, m.group(1))
    if m := _NODE.fullmatch(actor):
        return Principal(PrincipalKind.NODE, m.group(1))
    if m := _CONSOLE.fullmatch(actor):
        return Principal(PrincipalKind.CONSOLE, m.group(1))
    raise DomainError(ErrorCode.UNAUTHENTICATED, f"unrecognized actor {actor!r}")

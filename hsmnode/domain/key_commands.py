"""Commands on what partitions and keyrings hold: keys (create, restore, destroy, block), keyrings,
M-of-N partition authorization (DOMAIN.md §5) and partition permissions between users (§4).

Wire names and encoding: commands.py (the envelope) and command_codec.py.
"""

from __future__ import annotations

import dataclasses

from hsmnode.domain.command_codec import Command, command, stored_as
from hsmnode.domain.model import EXTRACTABLE_STORED_AS

# --- keys ----------------------------------------------------------------------------
#
# A container names where an object lives: "partition:<name>" or "keyring:<label>".


@command("key.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyCreate(Command):
    """A key generated, imported or unwrapped by the proposing member.

    `wrapped` is the secret or private key material already wrapped under the
    cluster SMK (associated data: container and object id); never plaintext.
    """

    container: str
    object_id: str
    label: str
    key_type: str
    size: str
    object_class: str  # secret | private | public
    extractable: bool = stored_as(EXTRACTABLE_STORED_AS)  # CKA_EXTRACTABLE
    usage: tuple[str, ...]
    wrapped: bytes
    public_der: bytes
    origin: str  # generated | imported | unwrapped


@command("key.restore")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyRestore(Command):
    """Restore a partition backup into `container`: every object, or none (Luna semantics).

    Each of `objects` is canonical JSON of one object with new ids and its material
    re-wrapped under the SMK for this container by the proposer: {"id", "label",
    "key_type", "size", "object_class", "exportable", "usage", "wrapped", "public_der",
    "blocked"} (bytes as base64; "exportable" is the stored name of `extractable`).
    `cloning_domain` and `source` come from the backup's header.
    """

    container: str
    source: str
    cloning_domain: str
    objects: tuple[str, ...]


@command("key.destroy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyDestroy(Command):
    container: str
    object_id: str


# --- keyrings ----------------------------------------------------------------------------


@command("keyring.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringCreate(Command):
    """The cluster SO creates a keyring with the initial KRSO credential."""

    label: str
    keyring_id: str
    krso_password_hash: str


@command("keyring.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringDelete(Command):
    label: str


@command("keyring.assign")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringAssign(Command):
    label: str
    client: str
    assigned: bool


@command("keyring.unlock")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringUnlock(Command):
    label: str


@command("keyring.set_krco")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyringSetKrco(Command):
    """The KRSO sets the KRCO credential."""

    label: str
    password_hash: str


# --- M-of-N partition authorization (DOMAIN.md §5) --------------------------------------
#
# `challenge` is the exact bytes a member issued and the cards signed; apply parses
# it, checks freshness and replay, and re-verifies every card signature.


@command("auth.change")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthChange(Command):
    """A state transition (or, for SESSION_AUTHORIZED, the checked card presentation behind one)."""

    partition: str
    target: str
    challenge: bytes
    card_labels: tuple[str, ...]
    signatures: tuple[bytes, ...]
    verified_epoch: int  # the CO credential epoch the proposer checked the partition password against
    # associate only: the card set being bound
    set_id: str = ""
    threshold: int = 0
    set_labels: tuple[str, ...] = ()
    set_public_keys: tuple[bytes, ...] = ()
    # the SESSION_AUTHORIZED grant the proposing session's token carries, if any: while it holds
    # (same authorization epoch, not given back), the session's changes start from SESSION_AUTHORIZED
    session_grant: str = ""
    session_auth_epoch: int = 0
    session_expires: int = 0  # ms: until when a given-back grant must be remembered


@command("auth.permissions")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSetPermissions(Command):
    partition: str
    permissions: tuple[str, ...]
    challenge: bytes
    card_labels: tuple[str, ...]
    signatures: tuple[bytes, ...]
    verified_epoch: int


@command("auth.session_revoke")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSessionRevoke(Command):
    """SESSION_AUTHORIZED -> ASSOCIATED: the session gives back its grant `grant_id` (until `until` ms)."""

    partition: str
    grant_id: str
    until: int


@command("key.block")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyBlock(Command):
    container: str
    object_id: str
    blocked: bool


# --- partition permissions between users (DOMAIN.md §4) ---------------------------------


@command("grant.set")
@dataclasses.dataclass(frozen=True, kw_only=True)
class GrantSet(Command):
    """The owner (a CO session on `owner`) sets what `grantee`'s users may do on its objects; () revokes."""

    owner: str
    grantee: str
    permissions: tuple[str, ...]

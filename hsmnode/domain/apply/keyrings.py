"""Apply handlers for keyrings (DOMAIN.md §1 "Keyring level").

The cluster security officer — the PO of the cluster partition — creates keyrings
with an initial KRSO credential, assigns them to clients and unlocks them. The KRSO
must change that credential at first login (so the cluster SO no longer knows it),
then sets the KRCO credential. Separation: a client that holds the cluster
partition holds no keyring, and keyring objects are reachable only from keyring sessions.
"""

from __future__ import annotations

import re

from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Credential, Keyring
from hsmnode.domain.principals import Principal
from hsmnode.domain.result import Result, ok
from hsmnode.domain.roles import KeyringRole
from hsmnode.domain.state import HsmState

MAX_KEYRINGS = 3500  # Luna: up to 3500 keyrings per cluster
_KEYRING_ID = re.compile(r"[0-9a-f]{32}")


def _cluster_so(state: HsmState, actor: str, now: int) -> Principal:
    """The actor must be a PO session on the cluster partition."""
    principal = authorize(state, actor, "keyring.manage", now)
    cluster = state.cluster_partition()
    if cluster is None or principal.container != f"partition:{cluster.name}":
        where = (
            f"the cluster partition '{cluster.name}'"
            if cluster
            else "the cluster partition (none is designated)"
        )
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"only the cluster security officer, the PO of {where}, manages keyrings",
        )
    return principal


def _keyring(state: HsmState, label: str) -> Keyring:
    ring = state.keyrings.get(label)
    if ring is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no keyring '{label}'")
    return ring


def keyring_create(state: HsmState, cmd: c.KeyringCreate) -> Result:
    _cluster_so(state, cmd.actor, cmd.timestamp)
    rules.check_object_name("keyring", cmd.label)
    if cmd.label in state.keyrings:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"keyring '{cmd.label}' already exists")
    if not _KEYRING_ID.fullmatch(cmd.keyring_id) or not cmd.krso_password_hash:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, "a keyring needs a 32-hex-digit id and an initial KRSO credential"
        )
    if len(state.keyrings) >= MAX_KEYRINGS:
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, f"a cluster holds at most {MAX_KEYRINGS} keyrings")
    state.keyrings[cmd.label] = Keyring(
        label=cmd.label,
        id=cmd.keyring_id,
        created_at=cmd.timestamp,
        roles={KeyringRole.KRSO.value: Credential(cmd.krso_password_hash, must_change=True)},
    )
    return ok(keyring_id=cmd.keyring_id, audit=f"keyring '{cmd.label}' ({cmd.keyring_id}) created")


def keyring_delete(state: HsmState, cmd: c.KeyringDelete) -> Result:
    _cluster_so(state, cmd.actor, cmd.timestamp)
    ring = _keyring(state, cmd.label)
    if ring.objects:
        # DOMAIN.md §1 (our choice): deleting a keyring with keys would let the cluster SO destroy
        # keyring contents, which the separation between the cluster SO and the keyring roles forbids
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"keyring '{cmd.label}' holds {len(ring.objects)} object(s): its KRSO must empty it first "
            "(hsmnode key destroy ... in a KRSO session); the cluster security officer deletes only empty keyrings",
        )
    del state.keyrings[cmd.label]
    for client in state.clients.values():
        if cmd.label in client.keyrings:
            client.keyrings.remove(cmd.label)
            client.epoch += 1
    return ok(audit=f"keyring '{cmd.label}' deleted (it was empty)")


def keyring_assign(state: HsmState, cmd: c.KeyringAssign) -> Result:
    _cluster_so(state, cmd.actor, cmd.timestamp)
    _keyring(state, cmd.label)
    client = state.clients.get(cmd.client)
    if client is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no registered client '{cmd.client}'")
    if not cmd.assigned:
        if cmd.label not in client.keyrings:
            raise DomainError(
                ErrorCode.NOT_FOUND, f"keyring '{cmd.label}' is not assigned to client '{cmd.client}'"
            )
        client.keyrings.remove(cmd.label)
        client.epoch += 1
        return ok(audit=f"keyring '{cmd.label}' unassigned from client '{cmd.client}'")
    if cmd.label in client.keyrings:
        raise DomainError(
            ErrorCode.ALREADY_EXISTS, f"keyring '{cmd.label}' is already assigned to client '{cmd.client}'"
        )
    cluster = state.cluster_partition()
    if cluster is not None and cluster.name in client.partitions:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"client '{cmd.client}' holds the cluster partition '{cluster.name}': keyring roles are kept apart "
            "from the cluster security officer",
        )
    client.keyrings.append(cmd.label)
    client.keyrings.sort()
    return ok(audit=f"keyring '{cmd.label}' assigned to client '{cmd.client}'")


def keyring_unlock(state: HsmState, cmd: c.KeyringUnlock) -> Result:
    _cluster_so(state, cmd.actor, cmd.timestamp)
    ring = _keyring(state, cmd.label)
    for cred in ring.roles.values():
        cred.locked, cred.locked_until, cred.failed = False, 0, 0
    return ok(audit=f"keyring '{cmd.label}' unlocked")


def keyring_set_krco(state: HsmState, cmd: c.KeyringSetKrco) -> Result:
    authorize(state, cmd.actor, "keyring.role.krco", cmd.timestamp, f"keyring:{cmd.label}")
    ring = _keyring(state, cmd.label)
    if not cmd.password_hash:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "password hash must not be empty")
    old = ring.roles.get(KeyringRole.KRCO)
    ring.roles[KeyringRole.KRCO.value] = Credential(
        cmd.password_hash, must_change=False, epoch=(old.epoch + 1) if old else 1
    )
    return ok(audit=f"KRCO credential of keyring '{cmd.label}' set")

"""Apply handlers for M-of-N partition authorization: state changes, permissions, key blocking.

The service checked the challenge's MAC (it was issued by this cluster) and the
partition password; apply checks everything that must hold on every member alike:
the session, the transition, the challenge's freshness and single use, and each
card's signature (pure-Python Ed25519).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hsmnode.domain import authorization as az
from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize, is_locked, login_target
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Partition, PartitionAuthorization
from hsmnode.domain.principals import Principal, parse

if TYPE_CHECKING:
    from hsmnode.domain.state import Handler, HsmState, Result

MAX_CARDS = 16


def _ok(**value: object) -> Result:
    from hsmnode.domain.state import Result

    return Result.success(**value)


def _err(code: ErrorCode, message: str) -> DomainError:
    return DomainError(code, message)


def authorization_of(part: Partition) -> PartitionAuthorization:
    if part.authorization is None:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{part.name}' was not created to require authorization (partition create --requires-authorization)",
        )
    return part.authorization


def _may_change(state: HsmState, actor: str, now: int, partition: str) -> Principal:
    """A CO session on the partition (online), or the member's local console (DOMAIN.md §5)."""
    principal = parse(actor)
    if principal.kind == "console":
        return principal
    authorize(state, actor, "partition.authorize", now, f"partition:{partition}")
    return principal


def _checked_cards(
    state: HsmState,
    actor: str,
    now: int,
    partition: str,
    verified_epoch: int,
    challenge: bytes,
    action: str,
    card_labels: tuple[str, ...],
    signatures: tuple[bytes, ...],
    cards: tuple[az.Card, ...],
    threshold: int,
) -> tuple[Partition, PartitionAuthorization, az.Challenge, list[str]]:
    _may_change(state, actor, now, partition)
    part = state.partitions[partition]
    auth = authorization_of(part)
    co = login_target(state, f"partition:{partition}:CO")
    if is_locked(co.credential, now):
        raise _err(ErrorCode.RESOURCE_EXHAUSTED, co.lock_message(now))
    if verified_epoch != co.credential.epoch:
        raise _err(
            ErrorCode.UNAVAILABLE, f"the password of partition '{partition}' changed meanwhile: try again"
        )
    parsed = az.parse_challenge(challenge)
    az.check_challenge(parsed, partition, action, now, auth.used_challenges)
    if len(card_labels) != len(signatures):
        raise _err(ErrorCode.INVALID_ARGUMENT, "each presented card needs exactly one signature")
    used = az.check_threshold(
        cards, threshold, list(zip(card_labels, signatures, strict=True)), challenge, partition
    )
    return part, auth, parsed, used


def _consume(auth: PartitionAuthorization, challenge: az.Challenge, now: int) -> None:
    for nonce, expiry in list(auth.used_challenges.items()):
        if expiry < now:
            del auth.used_challenges[nonce]
    auth.used_challenges[challenge.nonce] = challenge.expires_ms


def _session_state(auth: PartitionAuthorization, cmd: c.AuthChange) -> az.AuthState:
    """Where this change starts: SESSION_AUTHORIZED for a session whose grant still holds,
    else the partition's replicated state."""
    holds = (
        bool(cmd.session_grant)
        and cmd.session_auth_epoch == auth.epoch
        and cmd.session_grant not in auth.revoked_sessions
    )
    return az.AuthState.SESSION_AUTHORIZED if holds else az.AuthState(auth.state)


def _forget_grant(auth: PartitionAuthorization, grant_id: str, until: int, now: int) -> None:
    """Revoke a SESSION_AUTHORIZED grant cluster-wide (every copy of its token stops working)."""
    for old, expiry in list(auth.revoked_sessions.items()):
        if expiry < now:
            del auth.revoked_sessions[old]
    auth.revoked_sessions[grant_id] = until


def auth_change(state: HsmState, cmd: c.AuthChange) -> Result:
    if cmd.partition not in state.partitions:
        raise _err(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    try:
        target = az.AuthState(cmd.target)
    except ValueError:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"unknown authorization state {cmd.target!r}") from None
    principal = _may_change(state, cmd.actor, cmd.timestamp, cmd.partition)
    console = principal.kind == "console"
    auth = authorization_of(state.partitions[cmd.partition])
    current = _session_state(auth, cmd)
    requested = az.parse_challenge(cmd.challenge).action
    action = az.check_transition(cmd.partition, current, target, requested)
    if console and target is az.AuthState.SESSION_AUTHORIZED:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{cmd.partition}': SESSION_AUTHORIZED belongs to one session and is set online only",
        )
    if action == "associate":
        cards, threshold = _new_set(cmd)
    else:
        cards = tuple(az.Card(label, key) for label, key in auth.cards)
        threshold = auth.threshold
    part, auth, challenge, used = _checked_cards(
        state,
        cmd.actor,
        cmd.timestamp,
        cmd.partition,
        cmd.verified_epoch,
        cmd.challenge,
        requested if action in az.REQUESTS.get(requested, ()) else action,
        cmd.card_labels,
        cmd.signatures,
        cards,
        threshold,
    )
    if action == "authorize" and not console and not part.policy.online_authorization:
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{cmd.partition}': AUTHORIZED may be set online only with the partition policy "
            "online_authorization (the PO sets it), or at a member's local console (hsmnode console authorize)",
        )
    _consume(auth, challenge, cmd.timestamp)
    if action == "associate":
        auth.set_id, auth.threshold = cmd.set_id, cmd.threshold
        auth.cards = [(card.label, card.public_key) for card in cards]
        auth.permissions = []
    elif action == "reset":
        auth.set_id, auth.threshold, auth.cards, auth.permissions = "", 0, [], []
    if action == "session-deauthorize":
        _forget_grant(auth, cmd.session_grant, cmd.session_expires, cmd.timestamp)
    elif target is not az.AuthState.SESSION_AUTHORIZED:
        auth.state = str(target)
        auth.epoch += 1
    verb = "session authorized" if target is az.AuthState.SESSION_AUTHORIZED else f"{current} -> {target}"
    where = f" at the local console of {principal.name}" if console else ""
    return _ok(
        state=auth.state,
        auth_epoch=auth.epoch,
        grant_id=challenge.nonce,
        cards=used,
        audit=f"partition '{cmd.partition}': {verb} ({action}){where} with cards {', '.join(used)}",
    )


def _new_set(cmd: c.AuthChange) -> tuple[tuple[az.Card, ...], int]:
    n = len(cmd.set_labels)
    if not cmd.set_id or n != len(cmd.set_public_keys) or not 1 <= n <= MAX_CARDS:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"a card set needs an id and 1-{MAX_CARDS} cards, each with a label and a key",
        )
    if not 1 <= cmd.threshold <= n:
        raise _err(
            ErrorCode.INVALID_ARGUMENT, f"the threshold M must be 1-{n} (N = {n}), got {cmd.threshold}"
        )
    if len(set(cmd.set_labels)) != n or len(set(cmd.set_public_keys)) != n:
        raise _err(ErrorCode.INVALID_ARGUMENT, "the cards of a set must have distinct labels and keys")
    if any(len(key) != 32 for key in cmd.set_public_keys):
        raise _err(ErrorCode.INVALID_ARGUMENT, "card public keys are 32-byte Ed25519 keys")
    return tuple(
        az.Card(label, key) for label, key in zip(cmd.set_labels, cmd.set_public_keys, strict=True)
    ), cmd.threshold


def auth_set_permissions(state: HsmState, cmd: c.AuthSetPermissions) -> Result:
    if cmd.partition not in state.partitions:
        raise _err(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    auth = authorization_of(state.partitions[cmd.partition])
    if auth.state not in (az.AuthState.ASSOCIATED, az.AuthState.AUTHORIZED):
        raise _err(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{cmd.partition}': permissions are set in ASSOCIATED or AUTHORIZED (now {auth.state})",
        )
    unknown = sorted(set(cmd.permissions) - set(az.PERMISSIONS))
    if unknown:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown permission(s) {', '.join(unknown)} (known: {', '.join(az.PERMISSIONS)}; Key Read is implicit)",
        )
    cards = tuple(az.Card(label, key) for label, key in auth.cards)
    _, auth, challenge, used = _checked_cards(
        state,
        cmd.actor,
        cmd.timestamp,
        cmd.partition,
        cmd.verified_epoch,
        cmd.challenge,
        "permissions",
        cmd.card_labels,
        cmd.signatures,
        cards,
        auth.threshold,
    )
    _consume(auth, challenge, cmd.timestamp)
    auth.permissions = sorted(set(cmd.permissions))
    auth.epoch += 1
    names = ", ".join(az.PERMISSION_NAMES[p] for p in auth.permissions) or "none"
    return _ok(
        permissions=auth.permissions,
        audit=f"partition '{cmd.partition}': permissions set to {names} with cards {', '.join(used)}",
    )


def auth_session_revoke(state: HsmState, cmd: c.AuthSessionRevoke) -> Result:
    authorize(state, cmd.actor, "partition.authorize", cmd.timestamp, f"partition:{cmd.partition}")
    auth = authorization_of(state.partitions[cmd.partition])
    if not cmd.grant_id or len(cmd.grant_id) > 64:
        raise _err(ErrorCode.INVALID_ARGUMENT, "a session authorization grant id is 1-64 characters")
    _forget_grant(auth, cmd.grant_id, cmd.until, cmd.timestamp)
    return _ok(
        state=auth.state,
        audit=f"partition '{cmd.partition}': a session gave back SESSION_AUTHORIZED ({cmd.grant_id[:8]}...)",
    )


def gate(state: HsmState, container: str, action: str) -> None:
    """Refuse `action` on an M-of-N partition in the wrong state or without the permission."""
    kind, _, name = container.partition(":")
    part = state.partitions.get(name) if kind == "partition" else None
    if part is None or part.authorization is None:
        return
    auth = part.authorization
    az.check_action(name, action, az.AuthState(auth.state), frozenset(auth.permissions))


def key_block(state: HsmState, cmd: c.KeyBlock) -> Result:
    authorize(state, cmd.actor, "object.modify", cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None or cmd.object_id not in holder.objects:
        raise _err(ErrorCode.NOT_FOUND, f"no key {cmd.object_id!r} in {cmd.container.replace(':', ' ', 1)}")
    gate(state, cmd.container, "block")
    key = holder.objects[cmd.object_id]
    key.blocked = cmd.blocked
    return _ok(
        audit=f"key '{key.label}' ({key.id}) in {cmd.container} {'blocked' if cmd.blocked else 'unblocked'}"
    )


HANDLERS: dict[type[c.Command], Handler] = {
    c.AuthChange: auth_change,
    c.AuthSetPermissions: auth_set_permissions,
    c.AuthSessionRevoke: auth_session_revoke,
    c.KeyBlock: key_block,
}

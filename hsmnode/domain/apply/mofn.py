"""Apply handlers for M-of-N partition authorization: state changes, permissions, session grants given back.

The state table, the action table and the gate are the rules module `domain/mofn.py`.

The service checked the challenge's MAC (it was issued by this cluster) and the
partition password; apply checks everything that must hold on every member alike:
the session, the transition, the challenge's freshness and single use, and each
card's signature (pure-Python Ed25519).
"""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain import mofn
from hsmnode.domain.access import authorize, is_locked, login_target
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Partition, PartitionAuthorization
from hsmnode.domain.principals import Principal, PrincipalKind, parse
from hsmnode.domain.result import Result, ok
from hsmnode.domain.state import HsmState


def authorization_of(part: Partition) -> PartitionAuthorization:
    if part.authorization is None:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{part.name}' was not created to require authorization (partition create --requires-authorization)",
        )
    return part.authorization


def _may_change(state: HsmState, actor: str, now: int, partition: str) -> Principal:
    """A CO session on the partition (online), or the member's local console (DOMAIN.md §5)."""
    principal = parse(actor)
    if principal.kind == PrincipalKind.CONSOLE:
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
    cards: tuple[mofn.Card, ...],
    threshold: int,
) -> tuple[Partition, PartitionAuthorization, mofn.Challenge, list[str]]:
    _may_change(state, actor, now, partition)
    part = state.partitions[partition]
    auth = authorization_of(part)
    co = login_target(state, f"partition:{partition}:CO")
    if is_locked(co.credential, now):
        raise DomainError(ErrorCode.RESOURCE_EXHAUSTED, co.lock_message(now))
    if verified_epoch != co.credential.epoch:
        raise DomainError(
            ErrorCode.UNAVAILABLE, f"the password of partition '{partition}' changed meanwhile: try again"
        )
    parsed = mofn.parse_challenge(challenge)
    mofn.check_challenge(parsed, partition, action, now, auth.used_challenges)
    if len(card_labels) != len(signatures):
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "each presented card needs exactly one signature")
    used = mofn.check_threshold(
        cards, threshold, list(zip(card_labels, signatures, strict=True)), challenge, partition
    )
    return part, auth, parsed, used


def _consume(auth: PartitionAuthorization, challenge: mofn.Challenge, now: int) -> None:
    for nonce, expiry in list(auth.used_challenges.items()):
        if expiry < now:
            del auth.used_challenges[nonce]
    auth.used_challenges[challenge.nonce] = challenge.expires_ms


def _session_state(auth: PartitionAuthorization, cmd: c.AuthChange) -> mofn.AuthState:
    """Where this change starts: SESSION_AUTHORIZED for a session whose grant still holds,
    else the partition's replicated state."""
    holds = mofn.grant_holds(auth, cmd.session_grant, cmd.session_auth_epoch)
    return mofn.AuthState.SESSION_AUTHORIZED if holds else mofn.AuthState(auth.state)


def _forget_grant(auth: PartitionAuthorization, grant_id: str, until: int, now: int) -> None:
    """Revoke a SESSION_AUTHORIZED grant cluster-wide (every copy of its token stops working)."""
    for old, expiry in list(auth.revoked_sessions.items()):
        if expiry < now:
            del auth.revoked_sessions[old]
    auth.revoked_sessions[grant_id] = until


def auth_change(state: HsmState, cmd: c.AuthChange) -> Result:
    if cmd.partition not in state.partitions:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    try:
        target = mofn.AuthState(cmd.target)
    except ValueError:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"unknown authorization state {cmd.target!r}") from None
    principal = _may_change(state, cmd.actor, cmd.timestamp, cmd.partition)
    console = principal.kind == PrincipalKind.CONSOLE
    auth = authorization_of(state.partitions[cmd.partition])
    current = _session_state(auth, cmd)
    requested = mofn.parse_challenge(cmd.challenge).action
    action = mofn.check_transition(cmd.partition, current, target, requested)
    if console and target is mofn.AuthState.SESSION_AUTHORIZED:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{cmd.partition}': SESSION_AUTHORIZED belongs to one session and is set online only",
        )
    if action == "associate":
        cards, threshold = _new_set(cmd)
    else:
        cards = tuple(mofn.Card(label, key) for label, key in auth.cards)
        threshold = auth.threshold
    part, auth, challenge, used = _checked_cards(
        state,
        cmd.actor,
        cmd.timestamp,
        cmd.partition,
        cmd.verified_epoch,
        cmd.challenge,
        requested if action in mofn.REQUESTS.get(requested, ()) else action,
        cmd.card_labels,
        cmd.signatures,
        cards,
        threshold,
    )
    if action == "authorize" and not console and not part.policy.online_authorization:
        raise DomainError(
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
    elif target is not mofn.AuthState.SESSION_AUTHORIZED:
        auth.state = str(target)
        auth.epoch += 1
    verb = "session authorized" if target is mofn.AuthState.SESSION_AUTHORIZED else f"{current} -> {target}"
    where = f" at the local console of {principal.name}" if console else ""
    return ok(
        state=auth.state,
        auth_epoch=auth.epoch,
        grant_id=challenge.nonce,
        cards=used,
        audit=f"partition '{cmd.partition}': {verb} ({action}){where} with cards {', '.join(used)}",
    )


def _new_set(cmd: c.AuthChange) -> tuple[tuple[mofn.Card, ...], int]:
    n = len(cmd.set_labels)
    if not cmd.set_id or n != len(cmd.set_public_keys) or not 1 <= n <= mofn.MAX_CARDS:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"a card set needs an id and 1-{mofn.MAX_CARDS} cards, each with a label and a key",
        )
    if not 1 <= cmd.threshold <= n:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"the threshold M must be 1-{n} (N = {n}), got {cmd.threshold}"
        )
    if len(set(cmd.set_labels)) != n or len(set(cmd.set_public_keys)) != n:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "the cards of a set must have distinct labels and keys")
    if any(len(key) != 32 for key in cmd.set_public_keys):
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "card public keys are 32-byte Ed25519 keys")
    return tuple(
        mofn.Card(label, key) for label, key in zip(cmd.set_labels, cmd.set_public_keys, strict=True)
    ), cmd.threshold


def auth_set_permissions(state: HsmState, cmd: c.AuthSetPermissions) -> Result:
    if cmd.partition not in state.partitions:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{cmd.partition}'")
    auth = authorization_of(state.partitions[cmd.partition])
    if auth.state not in (mofn.AuthState.ASSOCIATED, mofn.AuthState.AUTHORIZED):
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{cmd.partition}': permissions are set in ASSOCIATED or AUTHORIZED (now {auth.state})",
        )
    unknown = sorted(set(cmd.permissions) - set(mofn.PERMISSIONS))
    if unknown:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown permission(s) {', '.join(unknown)} (known: {', '.join(mofn.PERMISSIONS)}; Key Read is implicit)",
        )
    cards = tuple(mofn.Card(label, key) for label, key in auth.cards)
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
    names = ", ".join(mofn.PERMISSION_NAMES[p] for p in auth.permissions) or "none"
    return ok(
        permissions=auth.permissions,
        audit=f"partition '{cmd.partition}': permissions set to {names} with cards {', '.join(used)}",
    )


def auth_session_revoke(state: HsmState, cmd: c.AuthSessionRevoke) -> Result:
    authorize(state, cmd.actor, "partition.authorize", cmd.timestamp, f"partition:{cmd.partition}")
    auth = authorization_of(state.partitions[cmd.partition])
    if not cmd.grant_id or len(cmd.grant_id) > 64:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "a session authorization grant id is 1-64 characters")
    _forget_grant(auth, cmd.grant_id, cmd.until, cmd.timestamp)
    return ok(
        state=auth.state,
        audit=f"partition '{cmd.partition}': a session gave back SESSION_AUTHORIZED ({cmd.grant_id[:8]}...)",
    )

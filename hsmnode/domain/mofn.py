"""M-of-N partition authorization (DOMAIN.md §5; seeds 003, 004): the tables as data, small pure checks.

States and the transitions between them (seed 003's diagram); every other pair is refused:

    from \\ to           INITIAL    ASSOCIATED            AUTHORIZED   SESSION_AUTHORIZED
    INITIAL               .        associate               .             .
    ASSOCIATED          reset        .                   authorize     session-authorize
    AUTHORIZED          reset      deauthorize             .           session-authorize
    SESSION_AUTHORIZED  reset      session-deauthorize   authorize       .

SESSION_AUTHORIZED belongs to one session: it is carried by that session's token
and never enters replicated state (the partition keeps showing ASSOCIATED or
AUTHORIZED). For a session holding it, SESSION_AUTHORIZED is the state its changes
start from (so a second session-authorize is refused, and deauthorize gives the
grant back). Every change needs M distinct cards of the associated set (for
`associate`, of the set being bound) and the partition's password. The action a
caller asks for is the one its challenge was issued for, and the transition must be
that action (a deauthorize in INITIAL is refused, not taken for an associate).

What each action needs (Key Read is implicit; Partition Remove implies Key Destroy):

    action             required state                       required permission
    generate           INITIAL or ASSOCIATED                -
    block              ASSOCIATED                           Key Block
    destroy            ASSOCIATED                           Key Destroy
    remove_partition   ASSOCIATED                           Partition Remove
    export             AUTHORIZED                           Key Export (and the key is extractable)
    use                AUTHORIZED or SESSION_AUTHORIZED     -
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hsmnode.domain import ed25519
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import AuthState as AuthState  # the states live with the data; re-exported
from hsmnode.domain.model import PartitionAuthorization
from hsmnode.domain.state import HsmState

IN, AS, AU, SA = AuthState.INITIAL, AuthState.ASSOCIATED, AuthState.AUTHORIZED, AuthState.SESSION_AUTHORIZED

TRANSITIONS: dict[tuple[AuthState, AuthState], str] = {
    (IN, AS): "associate",
    (AS, AU): "authorize",
    (AS, IN): "reset",
    (AS, SA): "session-authorize",
    (AU, AS): "deauthorize",
    (AU, IN): "reset",
    (AU, SA): "session-authorize",
    (SA, AS): "session-deauthorize",
    (SA, AU): "authorize",
    (SA, IN): "reset",
}

PERMISSIONS = ("key_export", "key_destroy", "key_block", "partition_remove")
PERMISSION_NAMES = {
    "key_read": "Key Read",
    "key_export": "Key Export",
    "key_destroy": "Key Destroy",
    "key_block": "Key Block",
    "partition_remove": "Partition Remove",
}

ACTIONS: dict[str, tuple[frozenset[AuthState], str | None]] = {
    "generate": (frozenset({IN, AS}), None),
    "block": (frozenset({AS}), "key_block"),
    "destroy": (frozenset({AS}), "key_destroy"),
    "remove_partition": (frozenset({AS}), "partition_remove"),
    "export": (frozenset({AU}), "key_export"),
    "use": (frozenset({AU, SA}), None),
}
ACTION_WORDS = {
    "generate": "key generation",
    "block": "key blocking",
    "destroy": "key destruction",
    "remove_partition": "partition removal",
    "export": "key export",
    "use": "key use",
}

CHALLENGE_TTL_MS = 120_000
MAX_CARDS = 16  # cards in one set


# What a caller may ask for (the action its challenge was issued for) and the transitions it names:
# "deauthorize" covers both ways back to ASSOCIATED.
REQUESTS: dict[str, frozenset[str]] = {
    "associate": frozenset({"associate"}),
    "authorize": frozenset({"authorize"}),
    "deauthorize": frozenset({"deauthorize", "session-deauthorize"}),
    "session-deauthorize": frozenset({"session-deauthorize"}),
    "reset": frozenset({"reset"}),
    "session-authorize": frozenset({"session-authorize"}),
}


def check_transition(
    partition: str, current: AuthState, target: AuthState, requested: str | None = None
) -> str:
    """The transition's action name, or FAILED_PRECONDITION naming the current state.

    `requested` is the action the caller asked for (its challenge's): the transition from
    `current` to `target` must be that action, so e.g. a deauthorize in INITIAL is refused
    as a transition, not taken for an associate."""
    action = TRANSITIONS.get((current, target))
    if action is None:
        allowed = sorted(t for (f, t) in TRANSITIONS if f == current)
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{partition}': cannot go from {current} to {target} "
            f"(now {current}; from there: {', '.join(allowed)})",
        )
    named = REQUESTS.get(requested or "", frozenset())
    if (
        requested is not None
        and action not in named
        and not any(a in named for (f, _), a in TRANSITIONS.items() if f == current)
    ):
        # what was asked for goes nowhere from here (a challenge for another target is a bad argument,
        # refused by check_challenge)
        ways = [f"{f} -> {t}" for (f, t), a in TRANSITIONS.items() if a in named]
        possible = sorted({a for (f, _), a in TRANSITIONS.items() if f == current})
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{partition}': cannot {requested} (now {current}; {requested} goes "
            f"{', '.join(ways) or 'nowhere'}; from {current}: {', '.join(possible)})",
        )
    return action


def effective_permissions(permissions: frozenset[str]) -> frozenset[str]:
    granted = set(permissions) | {"key_read"}
    if "partition_remove" in granted:
        granted.add("key_destroy")
    return frozenset(granted)


def check_action(partition: str, action: str, state: AuthState, permissions: frozenset[str]) -> None:
    """Raise FAILED_PRECONDITION (wrong state) or PERMISSION_DENIED (permission missing)."""
    states, permission = ACTIONS[action]
    if state not in states:
        need = " or ".join(sorted(states))
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{partition}': {ACTION_WORDS[action]} requires state {need} (now {state})",
        )
    if permission and permission not in effective_permissions(permissions):
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"partition '{partition}': {ACTION_WORDS[action]} requires the permission {PERMISSION_NAMES[permission]} "
            f"(set it with M cards: hsmnode auth permissions)",
        )


def grant_holds(auth: PartitionAuthorization, grant_id: str, auth_epoch: int) -> bool:
    """Does a session's SESSION_AUTHORIZED grant (`grant_id`, issued under `auth_epoch`) still hold?

    It holds while the partition's authorization epoch is the one it was issued under (any
    state or permission change ends it) and it was not given back (revoked cluster-wide)."""
    return bool(grant_id) and auth_epoch == auth.epoch and grant_id not in auth.revoked_sessions


def gate(state: HsmState, container: str, action: str, *, session_authorized: bool = False) -> None:
    """Refuse `action` (a key of ACTIONS) on an M-of-N partition in the wrong state or without the permission.

    The one M-of-N gate, for apply and for the read path (key use and export run on one member).
    A container that is not an M-of-N partition passes. `session_authorized`: the caller's session
    holds a SESSION_AUTHORIZED grant on this very partition that still holds (`grant_holds`); it
    counts for "use" only. Raises DomainError FAILED_PRECONDITION or PERMISSION_DENIED (check_action)."""
    kind, _, name = container.partition(":")
    part = state.partitions.get(name) if kind == "partition" else None
    if part is None or part.authorization is None:
        return
    auth = part.authorization
    current = AuthState(auth.state)
    if action == "use" and session_authorized:
        current = AuthState.SESSION_AUTHORIZED
    check_action(part.name, action, current, frozenset(auth.permissions))


@dataclass(frozen=True)
class Card:
    label: str
    public_key: bytes  # Ed25519, 32 bytes


@dataclass(frozen=True)
class Challenge:
    partition: str
    action: str
    nonce: str
    issued_ms: int
    expires_ms: int


def parse_challenge(data: bytes) -> Challenge:
    try:
        raw = json.loads(data.decode("utf-8"))
        return Challenge(str(raw["p"]), str(raw["a"]), str(raw["n"]), int(raw["i"]), int(raw["x"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, "the challenge is malformed: ask a member for a fresh one"
        ) from None


def check_challenge(
    challenge: Challenge, partition: str, action: str, now_ms: int, used: dict[str, int]
) -> None:
    """A challenge is for this partition and action, unexpired, and never used before."""
    if challenge.partition != partition or challenge.action != action:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"the challenge was issued for {challenge.action} on '{challenge.partition}', not {action} on '{partition}'",
        )
    if now_ms > challenge.expires_ms:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, "the challenge is stale: ask a member for a fresh one"
        )
    if challenge.nonce in used:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, "the challenge was already used (replay): ask for a fresh one"
        )


def check_threshold(
    cards: tuple[Card, ...],
    threshold: int,
    presented: list[tuple[str, bytes]],
    challenge: bytes,
    partition: str,
) -> list[str]:
    """M distinct cards of the set, each with a valid signature over the challenge; returns their labels."""
    by_label = {card.label: card for card in cards}
    seen: list[str] = []
    for label, signature in presented:
        card = by_label.get(label)
        if card is None:
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                f"card '{label}' is not in the card set of partition '{partition}'",
            )
        if label in seen:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"card '{label}' was presented twice: the cards must be distinct"
            )
        if len(signature) != 64 or not ed25519.verify(card.public_key, challenge, signature):
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"card '{label}' did not sign this challenge")
        seen.append(label)
    if len(seen) < threshold:
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            f"partition '{partition}' needs {threshold} cards of its set; {len(seen)} presented",
        )
    return seen

"""M-of-N partition authorization over the API (DOMAIN.md §5).

A CO session asks a member for a challenge (MAC'd with a cluster key, so any member
accepts it back, and bound to the partition and the action); the cards sign it
off-line; the CO sends the signatures with the partition password; apply re-checks
everything. SESSION_AUTHORIZED is answered with a new token for that session alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from hsmnode.domain import commands as c
from hsmnode.domain import mofn
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import AuthState, Partition, PartitionAuthorization
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext, answer
from hsmnode.service.login import LoginService
from hsmnode.sessions import Claims, SessionKind

ACTIONS = ("associate", "authorize", "deauthorize", "reset", "session-authorize", "permissions")
CONSOLE_ACTIONS = ("associate", "authorize", "deauthorize", "reset")
MAX_CARDS = 16


@dataclass(frozen=True)
class Challenge:
    data: bytes
    mac: bytes
    expires_ms: int


@dataclass(frozen=True)
class CardSet:
    """The card set an associate binds: its id, the M of M-of-N, and each card's (label, Ed25519 public key)."""

    set_id: str
    threshold: int
    cards: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, order=True)
class GrantView:
    owner: str  # the granting partition
    grantee: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class AuthView:
    partition: str
    requires_authorization: bool
    state: str
    set_id: str
    threshold: int
    card_labels: tuple[str, ...]
    permissions: tuple[str, ...]
    online_authorization: bool
    session_authorized: bool

    @classmethod
    def of(cls, part: Partition, session_authorized: bool) -> AuthView:
        """The partition's M-of-N state; `session_authorized`: the asking session's grant holds."""
        auth = part.authorization
        online = part.policy.online_authorization
        if auth is None:
            return cls(part.name, False, "", "", 0, (), (), online, False)
        cards = tuple(label for label, _ in auth.cards)
        return cls(
            part.name,
            True,
            auth.state,
            auth.set_id,
            auth.threshold,
            cards,
            tuple(auth.permissions),
            online,
            session_authorized,
        )


class MofnService:
    def __init__(self, ctx: NodeContext, login: LoginService) -> None:
        self._ctx = ctx
        self._login = login

    def _co(self, call: Call) -> Claims:
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        self._authorize_co(claims)
        return claims

    def _authorize_co(self, claims: Claims) -> None:
        now = self._ctx.clock_ms()
        self._ctx.read(lambda s: authorize(s, claims.actor, "partition.authorize", now, claims.container))

    def challenge(self, call: Call, action: str) -> Challenge:
        if action not in ACTIONS:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"unknown authorization action {action!r} (known: {', '.join(ACTIONS)})",
            )
        claims = self._co(call)
        return self._issue(claims.subject, action)

    def _issue(self, partition: str, action: str) -> Challenge:
        now = self._ctx.clock_ms()
        expires = now + mofn.CHALLENGE_TTL_MS
        data = json.dumps(
            {"p": partition, "a": action, "n": os.urandom(16).hex(), "i": now, "x": expires},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return Challenge(data, self._ctx.tokens.mac(data), expires)

    def _verify_password(
        self, partition: str, actor: str, password: str, request_id: str, timeout: float | None
    ) -> int:
        """The partition password (the CO's): a wrong one counts as a failed CO login (of `actor`)."""
        return self._login.check_password(
            actor,
            f"partition:{partition}:CO",
            password,
            request_id,
            timeout,
            tag="password",
            refusal="wrong partition password",
        )

    def _check_mac(self, challenge: bytes, mac: bytes) -> None:
        if not self._ctx.tokens.check_mac(challenge, mac):
            raise DomainError(
                ErrorCode.UNAUTHENTICATED, "the challenge was not issued by this cluster (bad MAC)"
            )

    @staticmethod
    def _cards(signatures: list[tuple[str, bytes]]) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
        if not signatures or len(signatures) > MAX_CARDS:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"present 1-{MAX_CARDS} card signatures")
        for label, signature in signatures:
            if len(signature) != 64:
                raise DomainError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"card '{label}': an Ed25519 signature is 64 bytes, not {len(signature)}",
                )
        return tuple(label for label, _ in signatures), tuple(sig for _, sig in signatures)

    def change(
        self,
        call: Call,
        target: str,
        challenge: bytes,
        mac: bytes,
        signatures: list[tuple[str, bytes]],
        password: str,
        card_set: CardSet | None,
    ) -> tuple[str, str]:
        """(the partition's state, a new token when this session's own state changed, else "").

        A repeated request id gets its first answer, the same token included."""
        request_id, timeout = call.request_id, call.timeout
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        replayed = self._replayed_change(claims, target, request_id)
        if replayed is not None:
            return replayed
        try:
            self._authorize_co(claims)
            if (
                target == AuthState.ASSOCIATED
                and claims.session_authorized
                and not signatures
                and card_set is None
            ):
                return self._give_back(claims, request_id, timeout)
            self._check_mac(challenge, mac)
            labels, sigs = self._cards(signatures)
            epoch = self._verify_password(
                claims.subject, claims.actor.split("/", 1)[0], password, request_id, timeout
            )
        except DomainError:
            # the first attempt may have been applied while this one's checks ran
            replayed = self._replayed_change(claims, target, request_id)
            if replayed is None:
                raise
            return replayed
        extra: dict[str, object] = {}
        if claims.session_authorized:  # apply decides whether the grant still holds
            extra = {
                "session_grant": claims.authorization_grant,
                "session_auth_epoch": claims.auth_epoch,
                "session_expires": claims.expires_ms,
            }
        extra |= _set_fields(card_set)
        result = self._ctx.submit(
            c.AuthChange,
            claims.actor,
            request_id,
            timeout,
            partition=claims.subject,
            target=target,
            challenge=challenge,
            card_labels=labels,
            signatures=sigs,
            verified_epoch=epoch,
            **extra,
        )
        return self._change_answer(claims, target, result, request_id)

    def _replayed_change(self, claims: Claims, target: str, request_id: str) -> tuple[str, str] | None:
        first = self._ctx.prior(request_id, c.AuthChange, claims.actor)
        if first is not None:
            return self._change_answer(claims, target, answer(first), request_id)
        given_back = self._ctx.prior(request_id, c.AuthSessionRevoke, claims.actor)
        if given_back is not None:
            return str(answer(given_back).value["state"]), self._plain_token(claims, request_id)
        return None

    def _change_answer(self, claims: Claims, target: str, result: Result, request_id: str) -> tuple[str, str]:
        state = str(result.value["state"])
        if target == AuthState.SESSION_AUTHORIZED:
            elevated = dataclasses.replace(
                claims,
                session_authorized=True,
                auth_epoch=int(result.value["auth_epoch"]),
                authorization_grant=str(result.value["grant_id"]),
                nonce="",
            )
            return state, self._ctx.tokens.issue(elevated, request_id)
        if claims.session_authorized:  # the grant was given back, or the partition's change ended it
            return state, self._plain_token(claims, request_id)
        return state, ""

    def _plain_token(self, claims: Claims, request_id: str) -> str:
        plain = dataclasses.replace(
            claims, session_authorized=False, auth_epoch=0, authorization_grant="", nonce=""
        )
        return self._ctx.tokens.issue(plain, request_id)

    def _give_back(self, claims: Claims, request_id: str, timeout: float | None) -> tuple[str, str]:
        """SESSION_AUTHORIZED -> ASSOCIATED for this session: its grant is revoked on every member
        (any copy of the elevated token stops working) and a plain token is returned."""
        lapsed = self._ctx.read(
            lambda s: not _session_authorized(s.partitions[claims.subject].authorization, claims)
        )
        if lapsed:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"partition '{claims.subject}': this session is no longer SESSION_AUTHORIZED; "
                "to deauthorize the partition, present the cards",
            )
        result = self._ctx.submit(
            c.AuthSessionRevoke,
            claims.actor,
            request_id,
            timeout,
            partition=claims.subject,
            grant_id=claims.authorization_grant,
            until=claims.expires_ms,
        )
        return str(result.value["state"]), self._plain_token(claims, request_id)

    def set_permissions(
        self,
        call: Call,
        permissions: list[str],
        challenge: bytes,
        mac: bytes,
        signatures: list[tuple[str, bytes]],
        password: str,
    ) -> list[str]:
        request_id, timeout = call.request_id, call.timeout
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        first = self._ctx.prior(request_id, c.AuthSetPermissions, claims.actor)
        if first is not None:
            return list(answer(first).value["permissions"])
        self._authorize_co(claims)
        self._check_mac(challenge, mac)
        labels, sigs = self._cards(signatures)
        epoch = self._verify_password(
            claims.subject, claims.actor.split("/", 1)[0], password, request_id, timeout
        )
        result = self._ctx.submit(
            c.AuthSetPermissions,
            claims.actor,
            request_id,
            timeout,
            partition=claims.subject,
            permissions=tuple(permissions),
            challenge=challenge,
            card_labels=labels,
            signatures=sigs,
            verified_epoch=epoch,
        )
        return list(result.value["permissions"])

    def show(self, call: Call) -> AuthView:
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        now = self._ctx.clock_ms()

        def view(s: HsmState) -> AuthView:
            authorize(s, claims.actor, "object.list", now, claims.container)
            part = s.partitions[claims.subject]
            return AuthView.of(part, _session_authorized(part.authorization, claims))

        return self._ctx.read(view)

    # --- the member's local console (DOMAIN.md §5) ----------------------------------

    @property
    def console_actor(self) -> str:
        return f"console:{self._ctx.node_id}"

    @property
    def console_member(self) -> str:
        """The member whose console this is (its id)."""
        return self._ctx.node_id

    def _console_partition(self, partition: str) -> None:
        def check(s: HsmState) -> None:
            part = s.partitions.get(partition)
            if part is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{partition}'")
            if part.authorization is None:
                raise DomainError(
                    ErrorCode.FAILED_PRECONDITION,
                    f"partition '{partition}' was not created to require authorization "
                    "(partition create --requires-authorization)",
                )

        self._ctx.read(check)

    def console_challenge(self, partition: str, action: str) -> Challenge:
        if action not in CONSOLE_ACTIONS:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"the console changes state by {', '.join(CONSOLE_ACTIONS)}, not {action!r} "
                "(SESSION_AUTHORIZED belongs to a session: set it online)",
            )
        self._console_partition(partition)
        return self._issue(partition, action)

    def console_change(
        self,
        call: Call,
        partition: str,
        target: str,
        challenge: bytes,
        mac: bytes,
        signatures: list[tuple[str, bytes]],
        password: str,
        card_set: CardSet | None,
    ) -> str:
        """A state change at this member's console: cards and password, no online_authorization needed.

        A repeated request id gets its first answer (DESIGN.md §3.5)."""
        request_id, timeout = call.request_id, call.timeout
        first = self._ctx.prior(request_id, c.AuthChange, self.console_actor)
        if first is None:
            try:
                self._console_partition(partition)
                self._check_mac(challenge, mac)
                labels, sigs = self._cards(signatures)
                epoch = self._verify_password(partition, self.console_actor, password, request_id, timeout)
            except DomainError:
                # the first attempt may have been applied while this one's checks ran
                first = self._ctx.prior(request_id, c.AuthChange, self.console_actor)
                if first is None:
                    raise
        if first is not None:
            return str(answer(first).value["state"])
        result = self._ctx.submit(
            c.AuthChange,
            self.console_actor,
            request_id,
            timeout,
            partition=partition,
            target=target,
            challenge=challenge,
            card_labels=labels,
            signatures=sigs,
            verified_epoch=epoch,
            **_set_fields(card_set),
        )
        return str(result.value["state"])

    def console_show(self, partition: str) -> AuthView:
        self._console_partition(partition)

        return self._ctx.read(lambda s: AuthView.of(s.partitions[partition], session_authorized=False))

    # --- grants (DOMAIN.md §4) --------------------------------------------------

    def set_grant(self, call: Call, grantee: str, permissions: list[str]) -> tuple[str, ...]:
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        result = self._ctx.submit(
            c.GrantSet,
            claims.actor,
            call.request_id,
            call.timeout,
            owner=claims.subject,
            grantee=grantee,
            permissions=tuple(permissions),
        )
        return tuple(result.value["permissions"])

    def list_grants(self, call: Call) -> list[GrantView]:
        claims = self._ctx.claims(call, SessionKind.PARTITION)
        now = self._ctx.clock_ms()

        def grants(s: HsmState) -> list[GrantView]:
            authorize(s, claims.actor, "object.list", now, claims.container)
            return _grants_of(s, claims.subject)

        return self._ctx.read(grants)


def _set_fields(card_set: CardSet | None) -> dict[str, object]:
    """The AuthChange fields of an associate: the card set being bound."""
    if card_set is None:
        return {}
    return {
        "set_id": card_set.set_id,
        "threshold": card_set.threshold,
        "set_labels": tuple(label for label, _ in card_set.cards),
        "set_public_keys": tuple(key for _, key in card_set.cards),
    }


def _session_authorized(auth: PartitionAuthorization | None, claims: Claims) -> bool:
    """Does this session's token carry a SESSION_AUTHORIZED grant that still holds?"""
    return bool(
        auth is not None
        and claims.session_authorized
        and mofn.grant_holds(auth, claims.authorization_grant, claims.auth_epoch)
    )


def _grants_of(state: HsmState, partition: str) -> list[GrantView]:
    found = []
    for part in state.partitions.values():
        for grantee, permissions in part.grants.items():
            if partition in (part.name, grantee):
                found.append(GrantView(part.name, grantee, tuple(permissions)))
    return sorted(found)


def session_authorized(state: HsmState, claims: Claims, container: str) -> bool:
    """The flag `mofn.gate` takes: does this session hold SESSION_AUTHORIZED on `container`?

    It counts only for the session's own partition, while the partition's authorization epoch
    is the one the session was authorized under (under the state lock)."""
    kind, _, name = container.partition(":")
    part = state.partitions.get(name) if kind == "partition" else None
    own = claims.kind == SessionKind.PARTITION and claims.subject == name
    return own and part is not None and _session_authorized(part.authorization, claims)

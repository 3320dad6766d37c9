"""M-of-N authorization through a partition session (DOMAIN.md §5): a CO session on a partition
created to require it asks for a challenge, has M cards sign it, and moves the partition's
authorization state (or only its own session's, SESSION_AUTHORIZED)."""

from __future__ import annotations

from hsmnode.client import _convert as convert
from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._session import Session
from hsmnode.client._types import AuthChallenge, AuthInfo
from hsmnode.pb import authorization_pb2, authorization_pb2_grpc

# (set_id, threshold, [(card label, public key DER), ...]): the card set an ASSOCIATE change binds
CardSetSpec = tuple[str, int, list[tuple[str, bytes]]]


def card_signatures(signatures: list[tuple[str, bytes]]) -> list[authorization_pb2.CardSignature]:
    """(card label, signature over the challenge) pairs as the request's CardSignature messages."""
    return [authorization_pb2.CardSignature(label=label, signature=sig) for label, sig in signatures]


def card_set_message(card_set: CardSetSpec | None) -> authorization_pb2.CardSet | None:
    if card_set is None:
        return None
    set_id, threshold, cards = card_set
    return authorization_pb2.CardSet(
        set_id=set_id,
        threshold=threshold,
        cards=[authorization_pb2.Card(label=label, public_key=key) for label, key in cards],
    )


class MofnAuthorization(Session):
    """The M-of-N calls of `PartitionSession`."""

    def auth_challenge(self, action: str) -> AuthChallenge:
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub,
            "Challenge",
            authorization_pb2.ChallengeRequest(action=action),
        )
        return AuthChallenge(bytes(r.challenge), bytes(r.mac), r.expires_ms)

    def auth_change(
        self,
        target: str,
        challenge: AuthChallenge | None,
        signatures: list[tuple[str, bytes]],
        password: str,
        *,
        card_set: CardSetSpec | None = None,
        request_id: str | None = None,
    ) -> str:
        """Move the partition to `target` with M card signatures over `challenge` and the partition
        password; SESSION_AUTHORIZED (and back) changes only this session, whose token is replaced."""
        req = authorization_pb2.ChangeAuthorizationRequest(
            request_id=request_id_or_new(request_id),
            target=target,
            challenge=challenge.data if challenge else b"",
            mac=challenge.mac if challenge else b"",
            signatures=card_signatures(signatures),
            password=password,
            card_set=card_set_message(card_set),
        )
        r = self._call(authorization_pb2_grpc.AuthorizationStub, "Change", req, write=True)
        if r.token:
            self.token = r.token
        return str(r.state)

    def auth_set_permissions(
        self,
        permissions: list[str],
        challenge: AuthChallenge,
        signatures: list[tuple[str, bytes]],
        password: str,
        *,
        request_id: str | None = None,
    ) -> list[str]:
        req = authorization_pb2.SetAuthPermissionsRequest(
            request_id=request_id_or_new(request_id),
            permissions=permissions,
            challenge=challenge.data,
            mac=challenge.mac,
            signatures=card_signatures(signatures),
            password=password,
        )
        return list(
            self._call(
                authorization_pb2_grpc.AuthorizationStub, "SetPermissions", req, write=True
            ).permissions
        )

    def auth_show(self) -> AuthInfo:
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub, "Show", authorization_pb2.ShowAuthorizationRequest()
        )
        return convert.auth_info(r)

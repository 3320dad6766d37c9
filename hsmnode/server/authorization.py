"""Authorization servicer (authorization.proto): M-of-N partition authorization and grants."""

from __future__ import annotations

from collections.abc import Iterable

from hsmnode.pb import authorization_pb2, authorization_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.mofn import AuthView, CardSet, Challenge, MofnService


def auth_info(v: AuthView) -> authorization_pb2.AuthorizationInfo:
    return authorization_pb2.AuthorizationInfo(
        partition=v.partition,
        requires_authorization=v.requires_authorization,
        state=v.state,
        set_id=v.set_id,
        threshold=v.threshold,
        card_labels=list(v.card_labels),
        permissions=list(v.permissions),
        online_authorization=v.online_authorization,
        session_authorized=v.session_authorized,
    )


def challenge_pb(ch: Challenge) -> authorization_pb2.ChallengeResponse:
    return authorization_pb2.ChallengeResponse(challenge=ch.data, mac=ch.mac, expires_ms=ch.expires_ms)


def card_set(found: bool, s: authorization_pb2.CardSet) -> CardSet | None:
    """The card set of a request, if it carries one (`found`: HasField("card_set"))."""
    if not found:
        return None
    return CardSet(s.set_id, s.threshold, tuple((x.label, x.public_key) for x in s.cards))


def signatures(found: Iterable[authorization_pb2.CardSignature]) -> list[tuple[str, bytes]]:
    return [(x.label, x.signature) for x in found]


class AuthorizationServicer(Servicer[MofnService], authorization_pb2_grpc.AuthorizationServicer):
    @rpc
    def Challenge(
        self, r: authorization_pb2.ChallengeRequest, call: Call
    ) -> authorization_pb2.ChallengeResponse:  # noqa: N802
        return challenge_pb(self._s.challenge(call, r.action))

    @rpc
    def Change(  # noqa: N802
        self, r: authorization_pb2.ChangeAuthorizationRequest, call: Call
    ) -> authorization_pb2.ChangeAuthorizationResponse:
        state, token = self._s.change(
            call,
            r.target,
            r.challenge,
            r.mac,
            signatures(r.signatures),
            r.password,
            card_set(r.HasField("card_set"), r.card_set),
        )
        return authorization_pb2.ChangeAuthorizationResponse(state=state, token=token)

    @rpc
    def SetPermissions(  # noqa: N802
        self, r: authorization_pb2.SetAuthPermissionsRequest, call: Call
    ) -> authorization_pb2.SetAuthPermissionsResponse:
        granted = self._s.set_permissions(
            call, list(r.permissions), r.challenge, r.mac, signatures(r.signatures), r.password
        )
        return authorization_pb2.SetAuthPermissionsResponse(permissions=granted)

    @rpc
    def Show(
        self, r: authorization_pb2.ShowAuthorizationRequest, call: Call
    ) -> authorization_pb2.AuthorizationInfo:  # noqa: N802
        return auth_info(self._s.show(call))

    @rpc
    def SetGrant(self, r: authorization_pb2.SetGrantRequest, call: Call) -> authorization_pb2.Grant:  # noqa: N802
        granted = self._s.set_grant(call, r.grantee, list(r.permissions))
        return authorization_pb2.Grant(grantee=r.grantee, permissions=list(granted))

    @rpc
    def ListGrants(self, r: authorization_pb2.ListGrantsRequest, call: Call) -> authorization_pb2.GrantList:  # noqa: N802
        return authorization_pb2.GrantList(
            grants=[
                authorization_pb2.Grant(owner=g.owner, grantee=g.grantee, permissions=list(g.permissions))
                for g in self._s.list_grants(call)
            ]
        )

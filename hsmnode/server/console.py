"""Console servicer (console.proto): the member's local console, served on its unix socket only
(channels.py): M-of-N state changes at the appliance, without a session."""

from __future__ import annotations

from hsmnode.pb import authorization_pb2, console_pb2, console_pb2_grpc
from hsmnode.server.authorization import auth_info, card_set, challenge_pb, signatures
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.mofn import MofnService


class ConsoleServicer(Servicer[MofnService], console_pb2_grpc.ConsoleServicer):
    @rpc
    def Challenge(
        self, r: console_pb2.ConsoleChallengeRequest, call: Call
    ) -> authorization_pb2.ChallengeResponse:  # noqa: N802
        return challenge_pb(self._s.console_challenge(r.partition, r.action))

    @rpc
    def Change(self, r: console_pb2.ConsoleChangeRequest, call: Call) -> console_pb2.ConsoleChangeResponse:  # noqa: N802
        state = self._s.console_change(
            call,
            r.partition,
            r.target,
            r.challenge,
            r.mac,
            signatures(r.signatures),
            r.password,
            card_set(r.HasField("card_set"), r.card_set),
        )
        return console_pb2.ConsoleChangeResponse(state=state, member=self._s.console_member)

    @rpc
    def Show(self, r: console_pb2.ConsoleShowRequest, call: Call) -> authorization_pb2.AuthorizationInfo:  # noqa: N802
        return auth_info(self._s.console_show(r.partition))

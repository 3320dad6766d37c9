"""Auth servicer (auth.proto): appliance logins and HSM role logins."""

from __future__ import annotations

from hsmnode.pb import auth_pb2, auth_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.login import LoginService, Session


def session_pb(s: Session) -> auth_pb2.SessionResponse:
    return auth_pb2.SessionResponse(token=s.token, expires_ms=s.expires_ms, subject=s.subject, role=s.role)


class AuthServicer(Servicer[LoginService], auth_pb2_grpc.AuthServicer):
    @rpc
    def Login(self, r: auth_pb2.LoginRequest, call: Call) -> auth_pb2.SessionResponse:  # noqa: N802
        return session_pb(self._s.login(call, r.user, r.password, r.new_password))

    @rpc
    def Logout(self, r: auth_pb2.LogoutRequest, call: Call) -> auth_pb2.LogoutResponse:  # noqa: N802
        self._s.logout(call)
        return auth_pb2.LogoutResponse()

    @rpc
    def ChangePassword(
        self, r: auth_pb2.ChangePasswordRequest, call: Call
    ) -> auth_pb2.ChangePasswordResponse:  # noqa: N802
        self._s.change_own_password(call, r.user, r.old_password, r.new_password)
        return auth_pb2.ChangePasswordResponse()

    @rpc
    def HsmLogin(self, r: auth_pb2.HsmLoginRequest, call: Call) -> auth_pb2.SessionResponse:  # noqa: N802
        return session_pb(self._s.hsm_login(call, r.role, r.password))

    @rpc
    def HsmLogout(self, r: auth_pb2.LogoutRequest, call: Call) -> auth_pb2.SessionResponse:  # noqa: N802
        return session_pb(self._s.hsm_logout(call))

"""Appliance logins and HSM role logins: verify a password here, let apply count and lock,
then mint a session token with the epochs apply returned."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from hsmnode import crypto
from hsmnode.domain import command_limits, rules
from hsmnode.domain import commands as c
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext, answer, sub_request_id
from hsmnode.sessions import APPLIANCE_TTL_MS, Claims, SessionKind

# Compared against when the user does not exist, so both cases cost one scrypt.
_DUMMY_HASH = crypto.hash_password("hsmnode-no-such-user")


def verify(password: str, encoded: str, timeout: float | None) -> bool:
    """crypto.verify_password within the call's `timeout` (s): a member busy deriving other logins'
    passwords for the first half of it answers UNAVAILABLE (nothing judged, nothing counted; the
    SDK tries another member) instead of deriving a password no one waits for any more. The other
    half is for the derivation, the proposal and the answer: refused at the very deadline, the
    answer came after the client's deadline, which the SDK must read as an unknown outcome."""
    try:
        return crypto.verify_password(password, encoded, wait=None if timeout is None else timeout / 2)
    except TimeoutError:
        raise DomainError(
            ErrorCode.UNAVAILABLE,
            "this member is busy checking other logins' passwords: try again, or another member",
        ) from None


@dataclass(frozen=True)
class Session:
    token: str
    expires_ms: int
    subject: str
    role: str


def _check_new_password(password: str) -> None:
    rules.check_password(password, "new password")


def issued_at(ctx: NodeContext, result: Result) -> int:
    """When the login the result records was stamped (ms): sessions expire counted from it."""
    return int(result.value.get("issued_at") or ctx.clock_ms())


def _same_target(first: Result, target: str, request_id: str) -> None:
    if first.value.get("target", target) != target:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"request_id {request_id!r} was already used for another login target; "
            "use a fresh request_id for a new request",
        )


class LoginService:
    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def credential(self, target: str) -> tuple[str, int] | None:
        """(password hash, epoch) of a credential target in local state, or None."""

        def find(s: HsmState) -> tuple[str, int] | None:
            kind, _, rest = target.partition(":")
            cred = None
            if kind == "user" and rest in s.users:
                cred = s.users[rest].credential
            elif target == "hsm:SO":
                cred = s.hsm.so
            elif target == "hsm:AU":
                cred = s.hsm.auditor
            elif kind in ("partition", "keyring"):
                name, _, role = rest.rpartition(":")
                holder = s.partitions.get(name) if kind == "partition" else s.keyrings.get(name)
                cred = holder.roles.get(role) if holder else None
            return (cred.password_hash, cred.epoch) if cred else None

        return self._ctx.read(find)

    def check_password(
        self,
        actor: str,
        target: str,
        password: str,
        request_id: str,
        timeout: float | None,
        *,
        tag: str,
        refusal: str,
    ) -> int:
        """Verify `password` for `target` against this member's state once it has applied everything
        committed; a wrong one counts as a failed login of `actor` (RecordLogin under request id
        `request_id/tag`: apply may lock the credential) and is refused UNAUTHENTICATED with `refusal`.
        Returns the credential's epoch, for the command the password authorizes."""
        command_limits.check_target(target)  # an oversize name is refused by its rule, nothing counted
        self._ctx.caught_up(timeout)
        found = self.credential(target)
        if found is None or not password or not verify(password, found[0], timeout):
            self._ctx.submit(
                c.RecordLogin,
                actor,
                sub_request_id(request_id, tag),
                timeout,
                target=target,
                success=False,
                verified_epoch=found[1] if found else 0,
            )
            raise DomainError(ErrorCode.UNAUTHENTICATED, refusal)
        return found[1]

    def verify_and_record(
        self, actor: str, target: str, password: str, request_id: str, timeout: float | None
    ) -> Result:
        """Verify `password` for `target` and propose the verdict; the RecordLogin result (epoch,
        session_epoch, issued_at, role).

        A repeated request id: a first refusal is answered again, nothing counted, whatever the
        password; a first success is answered again while the password still verifies, and
        otherwise counts as a new failed login (a request id is no password).
        """
        command_limits.check_target(target)  # an oversize name is refused by its rule, nothing counted
        if not password:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, "password must not be empty")
        if len(password) > rules.PASSWORD_MAX:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"password must be at most {rules.PASSWORD_MAX} characters"
            )
        first = self._ctx.prior(request_id, c.RecordLogin, actor)
        if first is not None:
            answer(first)
            _same_target(first, target, request_id)
        # A login is a security-relevant read: apply everything committed before it first,
        # so a member that is behind does not judge the password against an old credential.
        self._ctx.caught_up(timeout)
        found = self.credential(target)
        digest, epoch = found if found else (_DUMMY_HASH, 0)
        success = verify(password, digest, timeout) and found is not None
        if first is not None:
            if success:
                return first
            request_id = sub_request_id(request_id, f"again-{uuid.uuid4().hex[:12]}")
        return self._ctx.submit(
            c.RecordLogin, actor, request_id, timeout, target=target, success=success, verified_epoch=epoch
        )

    def change_password(
        self, actor: str, target: str, old: str, new: str, request_id: str, timeout: float | None
    ) -> int:
        """Verify the old password (a wrong one counts as a failed login), then set the new one.

        A repeated request id is answered with the first result while the credential still
        holds the password this request set."""
        command_limits.check_target(target)
        _check_new_password(new)
        if old == new:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, "the new password must differ from the old one")
        first = self._ctx.prior(request_id, c.ChangePassword, actor)
        if first is not None:
            answer(first)
            _same_target(first, target, request_id)
        self._ctx.caught_up(timeout)
        found = self.credential(target)
        if first is not None:
            if found is not None and verify(new, found[0], timeout):
                return int(first.value["epoch"])
            request_id = sub_request_id(request_id, f"again-{uuid.uuid4().hex[:12]}")
        if found is None or not verify(old, found[0], timeout):
            self._ctx.submit(
                c.RecordLogin,
                actor,
                sub_request_id(request_id, "verify"),
                timeout,
                target=target,
                success=False,
                verified_epoch=found[1] if found else 0,
            )
            raise DomainError(ErrorCode.UNAUTHENTICATED, "wrong password")  # unreachable: apply refuses first
        result = self._ctx.submit(
            c.ChangePassword,
            actor,
            request_id,
            timeout,
            target=target,
            password_hash=crypto.hash_password(new),
            verified_epoch=found[1],
        )
        return int(result.value["epoch"])

    # --- appliance users --------------------------------------------------

    def login(self, call: Call, user: str, password: str, new_password: str) -> Session:
        caller, request_id, timeout = call.caller, call.request_id, call.timeout
        target = f"user:{user}"
        if new_password:
            self.change_password(
                caller.cert_actor, target, password, new_password, sub_request_id(request_id, "chpw"), timeout
            )
            password = new_password
        result = self.verify_and_record(
            caller.cert_actor, target, password, sub_request_id(request_id, "login"), timeout
        )
        expires = issued_at(self._ctx, result) + APPLIANCE_TTL_MS
        claims = Claims(
            cluster_id=self._ctx.config.cluster_id,
            kind=SessionKind.APPLIANCE.value,
            subject=user,
            fingerprint=caller.fingerprint,
            expires_ms=expires,
            epoch=int(result.value["epoch"]),
        )
        role = str(result.value.get("role") or self._ctx.read(lambda s: s.users[user].role))
        return Session(self._ctx.tokens.issue(claims, request_id), expires, user, role)

    def logout(self, call: Call) -> None:
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        target = f"hsm:{claims.hsm_role}" if claims.hsm_role else f"user:{claims.subject}"
        self._ctx.submit(c.Logout, claims.actor, call.request_id, call.timeout, target=target)

    def change_own_password(self, call: Call, user: str, old: str, new: str) -> None:
        self.change_password(call.caller.cert_actor, f"user:{user}", old, new, call.request_id, call.timeout)

    # --- HSM roles ----------------------------------------------------------

    def hsm_login(self, call: Call, role: str, password: str) -> Session:
        if role not in ("SO", "AU"):
            raise DomainError(ErrorCode.INVALID_ARGUMENT, "HSM role must be SO or AU")
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        request_id = call.request_id
        base = dataclasses.replace(claims, hsm_role="", hsm_epoch=0, nonce="")
        result = self.verify_and_record(base.actor, f"hsm:{role}", password, request_id, call.timeout)
        elevated = dataclasses.replace(base, hsm_role=role, hsm_epoch=int(result.value["epoch"]))
        user_role = str(result.value.get("role") or self._user_role(claims.subject))
        return Session(
            self._ctx.tokens.issue(elevated, request_id), elevated.expires_ms, claims.subject, user_role
        )

    def _user_role(self, user: str) -> str:
        return self._ctx.read(lambda s: s.users[user].role if user in s.users else "")

    def hsm_logout(self, call: Call) -> Session:
        """End the HSM role; the appliance session goes on (a token without the role is returned)."""
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        if not claims.hsm_role:
            raise DomainError(ErrorCode.FAILED_PRECONDITION, "this session holds no HSM role")
        request_id = call.request_id
        result = self._ctx.submit(
            c.Logout, claims.actor, request_id, call.timeout, target=f"hsm:{claims.hsm_role}"
        )
        plain = dataclasses.replace(claims, hsm_role="", hsm_epoch=0, nonce="")
        user_role = str(result.value.get("role") or self._user_role(claims.subject))
        return Session(self._ctx.tokens.issue(plain, request_id), plain.expires_ms, claims.subject, user_role)

"""Session tokens: cluster-wide capabilities that any member verifies (DESIGN.md §3.8).

    hsm1.<base64url(canonical JSON claims)>.<base64url(HMAC-SHA256)>

The MAC key is derived (HKDF) from the cluster's Raft secret, which every member
holds and which never enters the Raft log; a token from another cluster fails
the MAC. Claims bind the subject, the client certificate fingerprint, an expiry
and the epochs of the credentials it was issued under: logout, password change,
lockout and revocation bump those epochs in replicated state, and apply refuses
a command whose actor carries a stale epoch, on every member alike.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import functools
import hmac
import json
import secrets
from hashlib import sha256
from typing import Any

from hsmnode.crypto import derive_key
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.principals import Principal, PrincipalKind

TOKEN_PREFIX = "hsm1"
APPLIANCE_TTL_MS = 60 * 60 * 1000  # one hour
PARTITION_TTL_MS = 8 * 60 * 60 * 1000  # a working day
VERIFIED_CACHE = 4096  # tokens whose verified claims a member keeps (TokenAuthority.verified_claims)


class SessionKind(enum.StrEnum):
    """What a session is on: the appliance (a user's login), a partition or a keyring (NTLS)."""

    APPLIANCE = "appliance"
    PARTITION = "partition"
    KEYRING = "keyring"


@dataclasses.dataclass(frozen=True)
class Claims:
    cluster_id: str
    kind: str  # a SessionKind value
    subject: str  # user name | partition name | keyring label
    fingerprint: str
    expires_ms: int
    epoch: int  # the user's credential epoch | the client's registration epoch
    hsm_role: str = ""
    hsm_epoch: int = 0
    partition_role: str = ""
    role_epoch: int = 0
    session_epoch: int = 0
    nonce: str = ""
    # SESSION_AUTHORIZED (DOMAIN.md §5): carried by this one session's token, never replicated;
    # valid while the partition's authorization epoch is still `auth_epoch`
    session_authorized: bool = False
    auth_epoch: int = 0
    authorization_grant: str = (
        ""  # which SESSION_AUTHORIZED grant; given back grants are revoked cluster-wide
    )

    def principal(self) -> Principal:
        if self.kind == SessionKind.APPLIANCE:
            return Principal(PrincipalKind.USER, self.subject, self.epoch, self.hsm_role, self.hsm_epoch)
        return Principal(
            PrincipalKind.CLIENT,
            self.fingerprint,
            self.epoch,
            "",
            0,
            self.subject,
            self.partition_role,
            self.role_epoch,
            self.session_epoch,
            self.kind,
        )

    @functools.cached_property
    def actor(self) -> str:
        """The principal as the commands' `actor` string (computed once per Claims)."""
        return str(self.principal())

    @property
    def container(self) -> str:
        return (
            f"{self.kind}:{self.subject}" if self.kind in (SessionKind.PARTITION, SessionKind.KEYRING) else ""
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unauth(message: str) -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, message)


class TokenAuthority:
    """Issues and verifies this cluster's session tokens."""

    def __init__(self, cluster_id: str, cluster_secret: bytes) -> None:
        self.cluster_id = cluster_id
        self._key = derive_key(cluster_secret, salt=b"hsmnode-session-v1", info=cluster_id.encode())
        # token -> its verified claims (verified_claims): dict reads and writes are atomic under the GIL
        self._verified: dict[str, Claims] = {}

    def issue(self, claims: Claims, request_id: str = "") -> str:
        """A token for `claims`. Issued for a request id, the nonce derives from it, so a repeat of the
        request (claims from the same replicated result) gets the very same token."""
        if not claims.nonce:
            nonce = (
                hmac.new(self._key, b"hsmnode-nonce:" + request_id.encode(), sha256).hexdigest()[:16]
                if request_id
                else secrets.token_hex(8)
            )
            claims = dataclasses.replace(claims, nonce=nonce)
        body = _b64(json.dumps(dataclasses.asdict(claims), sort_keys=True, separators=(",", ":")).encode())
        signed = f"{TOKEN_PREFIX}.{body}"
        return f"{signed}.{_b64(hmac.new(self._key, signed.encode(), sha256).digest())}"

    def mac(self, data: bytes) -> bytes:
        """A cluster-wide MAC: what one member issues (e.g. an authorization challenge), any member checks."""
        return hmac.new(self._key, b"hsmnode-mac:" + data, sha256).digest()

    def check_mac(self, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(mac, self.mac(data))

    def verify(self, token: str, fingerprint: str, now_ms: int) -> Claims:
        """The claims of `token`, presented over a connection with certificate `fingerprint` at
        `now_ms`. Raises DomainError UNAUTHENTICATED for a malformed, forged, foreign, expired
        token or one issued to another certificate.

        The token's signature and claims are checked once per token (`verified_claims`, cached);
        expiry and the certificate binding on every call. What a token cannot know by itself
        (logout, password change, lockout, revocation, role change: the epochs it carries) is
        decided against replicated state on every call (domain/access.py), never cached here."""
        claims = self.verified_claims(token)
        if now_ms >= claims.expires_ms:
            raise _unauth("session expired: log in or open a session again")
        if not hmac.compare_digest(claims.fingerprint, fingerprint):
            raise _unauth("session token was issued to another client certificate")
        return claims

    def verified_claims(self, token: str) -> Claims:
        """The claims of a well-formed token of this cluster with a valid MAC: a pure function of the
        token, so kept in a bounded cache (VERIFIED_CACHE tokens; a refusal is never cached).
        Raises DomainError UNAUTHENTICATED otherwise."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check(token)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()  # a working set of live sessions refills it at once
            self._verified[token] = claims
        return claims

    def _check(self, token: str) -> Claims:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise _unauth("malformed session token: log in or open a session again")
        signed = f"{parts[0]}.{parts[1]}"
        try:
            mac = _unb64(parts[2])
            raw: Any = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            raise _unauth("malformed session token: log in or open a session again") from None
        if not hmac.compare_digest(mac, hmac.new(self._key, signed.encode(), sha256).digest()):
            raise _unauth("session token signature is invalid (forged, or issued by another cluster)")
        try:
            claims = Claims(**raw)
        except TypeError:
            raise _unauth("malformed session token claims") from None
        if claims.cluster_id != self.cluster_id:
            raise _unauth(f"session token belongs to cluster {claims.cluster_id}, not {self.cluster_id}")
        return claims

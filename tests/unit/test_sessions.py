"""Session tokens: any member of the cluster verifies them; forged, expired, foreign or stolen ones fail."""

from __future__ import annotations

import dataclasses

import pytest

from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.sessions import Claims, TokenAuthority

FP = "f" * 64
NOW = 1_700_000_000_000


def claims(**overrides: object) -> Claims:
    base = Claims(
        cluster_id="c-1", kind="appliance", subject="admin", fingerprint=FP, expires_ms=NOW + 60_000, epoch=3
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_a_token_issued_by_one_member_verifies_on_another() -> None:
    one, two = (
        TokenAuthority("c-1", b"shared raft secret 123"),
        TokenAuthority("c-1", b"shared raft secret 123"),
    )
    token = one.issue(claims())
    got = two.verify(token, FP, NOW)
    assert got.subject == "admin" and got.epoch == 3 and got.actor == "user:admin#3"


def test_partition_claims_become_a_client_actor_with_every_epoch() -> None:
    c = claims(kind="partition", subject="pay", epoch=2, partition_role="CU", role_epoch=5, session_epoch=1)
    assert c.actor == f"client:{FP}#2/partition:pay:CU#5#1"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"), "signature is invalid"),
        (lambda t: "garbage", "malformed session token"),
        (lambda t: "hsm1.!!!.???", "malformed session token"),
        (lambda t: "hsm2" + t[4:], "malformed session token"),
    ],
)
def test_forged_or_malformed_tokens_are_refused(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    authority = TokenAuthority("c-1", b"shared raft secret 123")
    with pytest.raises(DomainError) as info:
        authority.verify(mangle(authority.issue(claims())), FP, NOW)
    assert info.value.code is ErrorCode.UNAUTHENTICATED and message in info.value.message


def test_token_from_another_cluster_is_refused() -> None:
    other = TokenAuthority("c-2", b"another cluster's secret")
    with pytest.raises(DomainError, match="signature is invalid .*another cluster"):
        TokenAuthority("c-1", b"shared raft secret 123").verify(
            other.issue(claims(cluster_id="c-2")), FP, NOW
        )


def test_expired_token_is_refused() -> None:
    authority = TokenAuthority("c-1", b"shared raft secret 123")
    with pytest.raises(DomainError, match="session expired"):
        authority.verify(authority.issue(claims(expires_ms=NOW)), FP, NOW)


def test_token_is_bound_to_the_client_certificate() -> None:
    authority = TokenAuthority("c-1", b"shared raft secret 123")
    with pytest.raises(DomainError, match="issued to another client certificate"):
        authority.verify(authority.issue(claims()), "e" * 64, NOW)


def test_a_verified_token_is_kept_but_expiry_and_the_certificate_are_checked_on_every_call() -> None:
    authority = TokenAuthority("c-1", b"shared raft secret 123")
    token = authority.issue(claims())
    assert authority.verify(token, FP, NOW) is authority.verify(token, FP, NOW)  # verified once, kept
    with pytest.raises(DomainError, match="session expired"):
        authority.verify(token, FP, NOW + 60_000)
    with pytest.raises(DomainError, match="another client certificate"):
        authority.verify(token, "e" * 64, NOW)


def test_a_refused_token_is_never_kept() -> None:
    authority = TokenAuthority("c-1", b"shared raft secret 123")
    body, signature = authority.issue(claims()).rsplit(".", 1)
    forged = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for _ in range(2):
        with pytest.raises(DomainError, match="signature is invalid"):
            authority.verify(forged, FP, NOW)
    assert forged not in authority._verified

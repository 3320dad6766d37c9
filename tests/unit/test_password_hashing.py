"""Passwords are stored as scrypt hashes at the production cost (RFC 7914; N=2^14, r=8, p=1, a
random 16-byte salt): the cost a member process uses, whatever the test suite's in-process members
use (tests/common/cluster.py)."""

from __future__ import annotations

import base64

import pytest

from hsmnode import crypto
from hsmnode.domain.errors import DomainError, ErrorCode


def test_a_password_hash_is_scrypt_at_the_production_cost_with_a_fresh_salt() -> None:
    first, second = crypto.hash_password("correct horse"), crypto.hash_password("correct horse")
    algo, n, r, p, salt, digest = first.split("$")
    assert (algo, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert first != second  # salted
    assert crypto.verify_password("correct horse", first)
    assert not crypto.verify_password("correct horse!", first)
    assert not crypto.verify_password("correct horse", "bcrypt$12$x$y")


def test_hashes_made_by_earlier_releases_still_verify() -> None:
    # earlier releases derived with cryptography's Scrypt (it holds the GIL ~100 ms per login);
    # hashlib.scrypt is OpenSSL's same function, so stored credentials and backups keep working
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt = bytes(range(16))
    digest = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(b"Earlier-pw-1")
    b64 = base64.b64encode
    encoded = f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"
    assert crypto.verify_password("Earlier-pw-1", encoded)
    assert not crypto.verify_password("Earlier-pw-2", encoded)


def test_a_malformed_hash_verifies_nothing() -> None:
    good = crypto.hash_password("pw")
    algo, n, r, p, salt, digest = good.split("$")
    for bad in (
        f"{algo}$1000${r}${p}${salt}${digest}",  # n not a power of 2
        f"{algo}${n}${r}${p}$not*base64${digest}",
        f"{algo}$x${r}${p}${salt}${digest}",
        f"{algo}${n}${r}${p}${salt}",
        "",
    ):
        assert not crypto.verify_password("pw", bad), bad


def test_a_login_waits_for_a_free_derivation_slot_no_longer_than_its_call() -> None:
    # derivations at once are bounded by the CPUs; a password check that finds none free within
    # its call's time derives nothing (the service answers UNAVAILABLE: service/login.py verify)
    from hsmnode.crypto import _SCRYPT_SLOTS
    from hsmnode.service.login import verify

    encoded = crypto.hash_password("pw")
    taken = 0
    while _SCRYPT_SLOTS.acquire(blocking=False):
        taken += 1
    try:
        assert taken >= 1
        with pytest.raises(TimeoutError, match="no scrypt slot free within 0.01 s"):
            crypto.verify_password("pw", encoded, wait=0.01)
        with pytest.raises(DomainError, match="busy checking other logins' passwords") as refused:
            verify("pw", encoded, 0.01)
        assert refused.value.code is ErrorCode.UNAVAILABLE
    finally:
        for _ in range(taken):
            _SCRYPT_SLOTS.release()
    assert crypto.verify_password("pw", encoded, wait=0.01)

"""Passwords are stored as scrypt hashes at the production cost (RFC 7914; N=2^14, r=8, p=1, a
random 16-byte salt): the cost a member process uses, whatever the test suite's in-process members
use (tests/common/cluster.py)."""

from __future__ import annotations

import base64

from hsmnode import crypto


def test_a_password_hash_is_scrypt_at_the_production_cost_with_a_fresh_salt() -> None:
    first, second = crypto.hash_password("correct horse"), crypto.hash_password("correct horse")
    algo, n, r, p, salt, digest = first.split("$")
    assert (algo, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert first != second  # salted
    assert crypto.verify_password("correct horse", first)
    assert not crypto.verify_password("correct horse!", first)
    assert not crypto.verify_password("correct horse", "bcrypt$12$x$y")

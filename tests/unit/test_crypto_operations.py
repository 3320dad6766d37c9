"""crypto/operations.py: one key loaded once, many operations through the function it returns
(a CryptoStream batch's group), for every mechanism; bad input shapes raise KeyMaterialError."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import serialization

from hsmnode.crypto import keys as kc
from hsmnode.crypto import operations as ops

KEYS = {
    key_type: kc.generate(key_type, size)
    for key_type, size in (("RSA", "2048"), ("EC", "P-256"), ("Ed25519", "255"))
}
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


def _input(mechanism: str, message: bytes) -> bytes:
    """What `mechanism` signs for `message`: the message, or the digest / DigestInfo the caller made."""
    if mechanism == "ECDSA-DIGEST":
        return hashlib.sha256(message).digest()
    if mechanism == "RSA-PKCS1-DIGESTINFO":
        return DIGEST_INFO_SHA256 + hashlib.sha256(message).digest()
    if mechanism.endswith("-DIGEST"):
        return hashlib.new(mechanism.split("-")[2].lower(), message).digest()
    return message


@pytest.mark.parametrize("mechanism", list(ops.SIGN_MECHANISMS))
def test_one_signer_signs_many_and_the_verifier_checks_each(mechanism: str) -> None:
    key = KEYS[ops.SIGN_MECHANISMS[mechanism][0]]
    sign, verify = ops.signer(mechanism, key.secret), ops.verifier(mechanism, key.public_der)
    inputs = [_input(mechanism, f"m{i}".encode()) for i in range(3)]
    signatures = [sign(data) for data in inputs]
    assert [verify(d, s) for d, s in zip(inputs, signatures, strict=True)] == [True] * 3
    assert verify(inputs[0], signatures[1]) is False


@pytest.mark.parametrize("mechanism", ["ECDSA-DIGEST", "RSA-PKCS1-DIGESTINFO", "RSA-PSS-SHA256-DIGEST"])
def test_a_pre_hashed_input_of_the_wrong_shape_is_a_key_material_error(mechanism: str) -> None:
    key = KEYS[ops.SIGN_MECHANISMS[mechanism][0]]
    with pytest.raises(kc.KeyMaterialError):
        ops.signer(mechanism, key.secret)(b"x" * 65)
    with pytest.raises(kc.KeyMaterialError):
        ops.verifier(mechanism, key.public_der)(b"x" * 65, b"sig")


def test_one_aes_gcm_key_encrypts_and_decrypts_many_and_refuses_bad_ivs_and_tampering() -> None:
    secret = os.urandom(32)
    seal, open_ = ops.encryptor("AES-GCM", secret), ops.decryptor("AES-GCM", secret)
    sealed = [seal(f"p{i}".encode(), b"aad", b"") for i in range(3)]
    assert len({iv for _, iv in sealed}) == 3  # a fresh IV each
    assert [open_(ct, iv, b"aad") for ct, iv in sealed] == [b"p0", b"p1", b"p2"]
    given = b"\x01" * 12
    assert seal(b"p", b"", given)[1] == given
    with pytest.raises(kc.KeyMaterialError, match="12 bytes, not 5"):
        seal(b"p", b"", b"short")
    with pytest.raises(kc.KeyMaterialError, match="authentication check"):
        open_(sealed[0][0], sealed[0][1], b"other aad")
    with pytest.raises(kc.KeyMaterialError, match="12-byte IV"):
        open_(sealed[0][0], b"", b"aad")


def test_rsa_oaep_encrypts_with_the_public_key_and_decrypts_with_the_private_one() -> None:
    key = KEYS["RSA"]
    ciphertext, iv = ops.encryptor("RSA-OAEP-SHA256", key.public_der)(b"secret", b"", b"")
    assert iv == b"" and ops.decryptor("RSA-OAEP-SHA256", key.secret)(ciphertext, b"", b"") == b"secret"
    bits = serialization.load_der_public_key(key.public_der).key_size  # type: ignore[union-attr]
    limit = bits // 8 - 66  # RFC 8017 §7.1.1 with SHA-256
    assert ops.encryptor("RSA-OAEP-SHA256", key.public_der)(b"x" * limit, b"", b"")[0]
    with pytest.raises(kc.KeyMaterialError, match=f"{limit + 1} bytes; .* at most {limit} bytes"):
        ops.encryptor("RSA-OAEP-SHA256", key.public_der)(b"x" * (limit + 1), b"", b"")
    with pytest.raises(kc.KeyMaterialError, match="decryption failed"):
        ops.decryptor("RSA-OAEP-SHA256", key.secret)(b"x" * 256, b"", b"")

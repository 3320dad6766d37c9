"""Key-wrapping mechanisms of the member (hsmnode.crypto.keys): AES-KWP (RFC 5649) and AES-GCM."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from hsmnode.crypto import keys as kc


def test_aes_gcm_wrapping_is_ciphertext_and_tag_under_the_callers_iv_and_aad() -> None:
    kek, target, iv = os.urandom(32), os.urandom(16), os.urandom(12)
    wrapped = kc.wrap_secret("AES-GCM", kek, target, iv, b"aad")
    assert len(wrapped) == 16 + 16 and AESGCM(kek).decrypt(iv, wrapped, b"aad") == target
    assert kc.unwrap_secret("AES-GCM", kek, wrapped, iv, b"aad") == target
    for bad_iv, bad_aad in ((iv, b""), (bytes(12), b"aad")):
        with pytest.raises(kc.KeyMaterialError, match="does not unwrap"):
            kc.unwrap_secret("AES-GCM", kek, wrapped, bad_iv, bad_aad)


def test_aes_kwp_stays_rfc_5649_and_takes_no_parameters() -> None:
    kek, target = os.urandom(16), os.urandom(32)
    wrapped = kc.wrap_secret("AES-KWP", kek, target, b"", b"")
    assert aes_key_unwrap_with_padding(kek, wrapped) == target
    assert kc.unwrap_secret("AES-KWP", kek, wrapped, b"", b"") == target
    with pytest.raises(kc.KeyMaterialError, match="takes no IV"):
        kc.wrap_secret("AES-KWP", kek, target, os.urandom(12), b"")


@pytest.mark.parametrize(
    ("mechanism", "iv", "message"),
    [("AES-GCM", b"short", "12-byte IV, not 5"), ("AES-CBC", b"", "'AES-CBC' is not supported")],
)
def test_wrap_parameters_that_do_not_fit_are_refused(mechanism: str, iv: bytes, message: str) -> None:
    with pytest.raises(kc.KeyMaterialError, match=message):
        kc.wrap_secret(mechanism, os.urandom(32), os.urandom(32), iv, b"")
    with pytest.raises(kc.KeyMaterialError, match=message):
        kc.unwrap_secret(mechanism, os.urandom(32), os.urandom(48), iv, b"")

"""Key material: generation, wrapping under the cluster SMK, key wrapping (crypto/operations.py has
the operations with a key: sign, verify, encrypt, decrypt).

Everything here works on raw bytes: a secret key's value (AES) or a private key's
PKCS#8 DER, and public keys as SubjectPublicKeyInfo DER. Only the service layer
calls it; the domain never sees plaintext key material.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

SMK_BYTES = 32
GCM_IV_BYTES = 12  # NIST SP 800-38D: the IV AES-GCM takes here
GCM_TAG_BYTES = 16  # the 128-bit tag that ends every AES-GCM ciphertext

# (key type, size or curve) the HSM generates
KEY_KINDS: dict[str, tuple[str, ...]] = {
    "AES": ("128", "256"),
    "RSA": ("2048", "3072", "4096"),
    "EC": ("P-256", "P-384"),
    "Ed25519": ("255",),
}
_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
WRAP_MECHANISM = "AES-KWP"
# key-wrapping mechanisms (the wrapping key is AES): AES-KWP (RFC 5649, the default) and AES-GCM
# (PKCS#11 CKM_AES_GCM used for C_WrapKey: the caller's 12-byte IV, 128-bit tag, optional AAD),
# the one a p11-kit client forwards (none forwards CKM_AES_KEY_WRAP or _KWP)
WRAP_MECHANISMS = ("AES-KWP", "AES-GCM")


class KeyMaterialError(ValueError):
    """Key material, a signature or a ciphertext that does not check out (message says which)."""


class Generated(NamedTuple):
    """A new key (a NamedTuple: one per key generated, GenerateBatch makes them in runs)."""

    key_type: str
    size: str
    object_class: str  # "secret" | "private"
    secret: bytes  # AES value, or PKCS#8 DER of the private key
    public_der: bytes  # SPKI DER; empty for secret keys


def generate(key_type: str, size: str) -> Generated:
    if size not in KEY_KINDS.get(key_type, ()):
        raise KeyMaterialError(f"cannot generate {key_type} {size}")
    if key_type == "AES":
        return Generated("AES", size, "secret", os.urandom(int(size) // 8), b"")
    if key_type == "RSA":
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            rsa.generate_private_key(65537, int(size))
        )
    elif key_type == "EC":
        private = ec.generate_private_key(_CURVES[size]())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Generated(key_type, size, "private", der, _spki(private.public_key()))


def _spki(public: object) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]


def public_from_pem(pem: bytes) -> tuple[str, str, bytes]:
    """(key type, size or curve, SPKI DER) of a PEM public key the HSM can hold."""
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"not a PEM public key ({exc})") from None
    return _describe_public(public) + (_spki(public),)


def _describe_public(public: object) -> tuple[str, str]:
    if isinstance(public, rsa.RSAPublicKey):
        if str(public.key_size) not in KEY_KINDS["RSA"]:
            raise KeyMaterialError(
                f"RSA keys must be {', '.join(KEY_KINDS['RSA'])} bits, not {public.key_size}"
            )
        return "RSA", str(public.key_size)
    if isinstance(public, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384"}
        if public.curve.name not in names:
            raise KeyMaterialError(f"EC keys must be on P-256 or P-384, not {public.curve.name}")
        return "EC", names[public.curve.name]
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "Ed25519", "255"
    raise KeyMaterialError(f"unsupported public key type {type(public).__name__}")


def public_pem(public_der: bytes) -> bytes:
    public = serialization.load_der_public_key(public_der)
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_der(material: bytes) -> bytes:
    """PKCS#8 DER of a private key given as DER or PEM (PKCS#8, or traditional RSA/EC PEM)."""
    try:
        key = (
            serialization.load_pem_private_key(material, password=None)
            if material.lstrip().startswith(b"-----BEGIN")
            else serialization.load_der_private_key(material, password=None)
        )
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"not an unencrypted private key in DER or PEM ({exc})") from None
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def describe_private(der: bytes) -> tuple[str, str, bytes]:
    """(key type, size, SPKI DER) of a PKCS#8 private key (e.g. after unwrapping)."""
    try:
        private = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"not a PKCS#8 private key ({exc})") from None
    public = private.public_key()
    return _describe_public(public) + (_spki(public),)


# --- the SMK --------------------------------------------------------------------


class Smk:
    """The cluster's security master key: wraps every key's material before it enters a command.

    AES-256-GCM with a fresh 96-bit nonce; the associated data binds the wrapped
    bytes to one object in one container, so they cannot be moved to another object.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != SMK_BYTES:
            raise ValueError(f"the SMK must be {SMK_BYTES} bytes, not {len(key)}")
        self._key = key
        self._aead = AESGCM(key)
        self._check = hmac.new(key, b"hsmnode SMK check value", hashlib.sha256).hexdigest()[:16]

    @property
    def check_value(self) -> str:
        """A key check value: equal on members holding the same SMK, reveals nothing of it."""
        return self._check

    def derive(self, salt: bytes, info: bytes) -> bytes:
        """A purpose-bound 256-bit key (HKDF-SHA256, RFC 5869) from the SMK, e.g. a backup file's key."""
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(self._key)

    def wrap(self, aad: bytes, secret: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret, aad)

    def unwrap(self, aad: bytes, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], aad)
        except (InvalidTag, ValueError):
            raise KeyMaterialError(
                "wrapped key material failed its integrity check (tampered, or another SMK)"
            ) from None


def new_smk() -> bytes:
    return os.urandom(SMK_BYTES)


def kwp_wrap(wrapping_secret: bytes, target_secret: bytes) -> bytes:
    return aes_key_wrap_with_padding(wrapping_secret, target_secret)


def _wrap_parameters(mechanism: str, iv: bytes, aad: bytes) -> None:
    """KeyMaterialError unless (iv, aad) fit `mechanism`, one of WRAP_MECHANISMS."""
    if mechanism == "AES-KWP":
        if iv or aad:
            raise KeyMaterialError("AES-KWP takes no IV or AAD")
    elif mechanism != "AES-GCM":
        raise KeyMaterialError(
            f"wrap mechanism {mechanism!r} is not supported ({', '.join(WRAP_MECHANISMS)})"
        )
    elif len(iv) != 12:
        raise KeyMaterialError(f"AES-GCM wrapping takes a 12-byte IV, not {len(iv)} bytes")


def wrap_secret(mechanism: str, wrapping_secret: bytes, target_secret: bytes, iv: bytes, aad: bytes) -> bytes:
    """`target_secret` wrapped under an AES key by one of WRAP_MECHANISMS (AES-GCM: ciphertext || tag,
    with the caller's IV). Raises KeyMaterialError for an unknown mechanism or parameters that do not fit."""
    _wrap_parameters(mechanism, iv, aad)
    if mechanism == "AES-KWP":
        return kwp_wrap(wrapping_secret, target_secret)
    return AESGCM(wrapping_secret).encrypt(iv, target_secret, aad or None)


def unwrap_secret(mechanism: str, wrapping_secret: bytes, wrapped: bytes, iv: bytes, aad: bytes) -> bytes:
    """The key material inside `wrapped` (see wrap_secret; AES-GCM needs the IV and AAD it was wrapped
    with); KeyMaterialError when it does not unwrap."""
    _wrap_parameters(mechanism, iv, aad)
    if mechanism == "AES-KWP":
        return kwp_unwrap(wrapping_secret, wrapped)
    try:
        return AESGCM(wrapping_secret).decrypt(iv, wrapped, aad or None)
    except InvalidTag:
        raise KeyMaterialError(
            "the wrapped key does not unwrap under this key (wrong key, IV or AAD, or tampered)"
        ) from None


def kwp_unwrap(wrapping_secret: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap_with_padding(wrapping_secret, wrapped)
    except (InvalidUnwrap, ValueError):
        raise KeyMaterialError(
            "the wrapped key does not unwrap under this key (wrong key or tampered)"
        ) from None

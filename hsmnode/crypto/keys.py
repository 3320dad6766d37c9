"""Key material: generation, wrapping under the cluster SMK, and the cryptographic operations.

Everything here works on raw bytes: a secret key's value (AES) or a private key's
PKCS#8 DER, and public keys as SubjectPublicKeyInfo DER. Only the service layer
calls it; the domain never sees plaintext key material.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
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
_HASHES = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}
# digest length -> hash, for a digest signed as it is (ECDSA-DIGEST)
_BY_DIGEST_LENGTH: dict[int, type[hashes.HashAlgorithm]] = {
    20: hashes.SHA1,
    28: hashes.SHA224,
    32: hashes.SHA256,
    48: hashes.SHA384,
    64: hashes.SHA512,
}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): prefix + digest is what RSA-PKCS1-DIGESTINFO signs
_DIGEST_INFO: dict[bytes, type[hashes.HashAlgorithm]] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1,
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224,
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256,
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384,
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512,
}

# mechanism -> (key type it works with, hash name)
SIGN_MECHANISMS: dict[str, tuple[str, str]] = {
    "RSA-PKCS1-SHA256": ("RSA", "SHA256"),
    "RSA-PKCS1-SHA384": ("RSA", "SHA384"),
    "RSA-PKCS1-SHA512": ("RSA", "SHA512"),
    "RSA-PSS-SHA256": ("RSA", "SHA256"),
    "RSA-PSS-SHA384": ("RSA", "SHA384"),
    "RSA-PSS-SHA512": ("RSA", "SHA512"),
    "ECDSA-SHA256": ("EC", "SHA256"),
    "ECDSA-SHA384": ("EC", "SHA384"),
    "ECDSA-SHA512": ("EC", "SHA512"),
    "Ed25519": ("Ed25519", ""),
    # pre-hashed: the caller hashed the message (PKCS#11 CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS)
    "ECDSA-DIGEST": ("EC", ""),  # data: the digest (any length up to 64 bytes, used as X9.62 says)
    "RSA-PKCS1-DIGESTINFO": ("RSA", ""),  # data: a DER DigestInfo, PKCS#1 v1.5 padded and signed
    "RSA-PSS-SHA256-DIGEST": ("RSA", "SHA256"),  # data: the SHA-256 digest; MGF1-SHA256, salt 32
    "RSA-PSS-SHA384-DIGEST": ("RSA", "SHA384"),
    "RSA-PSS-SHA512-DIGEST": ("RSA", "SHA512"),
}
CIPHER_MECHANISMS: dict[str, tuple[str, str]] = {
    "AES-GCM": ("AES", ""),
    "RSA-OAEP-SHA256": ("RSA", "SHA256"),
}
DIGEST_MECHANISMS = ("SHA256", "SHA384", "SHA512")
WRAP_MECHANISM = "AES-KWP"
# key-wrapping mechanisms (the wrapping key is AES): AES-KWP (RFC 5649, the default) and AES-GCM
# (PKCS#11 CKM_AES_GCM used for C_WrapKey: the caller's 12-byte IV, 128-bit tag, optional AAD),
# the one a p11-kit client forwards (none forwards CKM_AES_KEY_WRAP or _KWP)
WRAP_MECHANISMS = ("AES-KWP", "AES-GCM")


class KeyMaterialError(ValueError):
    """Key material, a signature or a ciphertext that does not check out (message says which)."""


@dataclass(frozen=True)
class Generated:
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


# --- operations ------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _private(der: bytes):  # type: ignore[no-untyped-def]
    """Parsed private keys, kept in memory only: parsing (RSA above all) costs more than signing."""
    return serialization.load_der_private_key(der, password=None)


@functools.lru_cache(maxsize=1024)
def _public(der: bytes):  # type: ignore[no-untyped-def]
    return serialization.load_der_public_key(der)


def _prehashed(digest: bytes, hash_name: str = "") -> utils.Prehashed:
    """The signature hash for a caller-supplied digest: named, or found from its length."""
    algorithm = _HASHES[hash_name]() if hash_name else None
    if algorithm is None:
        found = _BY_DIGEST_LENGTH.get(len(digest))
        if found is None:
            raise KeyMaterialError(
                f"a digest of {len(digest)} bytes matches no hash (SHA-1/224/256/384/512: 20/28/32/48/64 bytes)"
            )
        algorithm = found()
    if len(digest) != algorithm.digest_size:
        raise KeyMaterialError(
            f"a {algorithm.name} digest is {algorithm.digest_size} bytes, not {len(digest)}"
        )
    return utils.Prehashed(algorithm)


def _ecdsa_digest(data: bytes, curve_bits: int) -> tuple[bytes, utils.Prehashed]:
    """A caller's ECDSA input fitted to the curve as ANSI X9.62 uses it: the leftmost curve-size
    bits of a longer input; a shorter one is the same integer, so it is left-padded with zeros."""
    if not 1 <= len(data) <= 64:
        raise KeyMaterialError(f"an ECDSA digest is 1-64 bytes, not {len(data)}")
    size = (curve_bits + 7) // 8
    fitted = data[:size].rjust(size, b"\x00")
    return fitted, _prehashed(fitted)


def _digest_info(data: bytes) -> tuple[bytes, utils.Prehashed]:
    """(digest, its hash) of a DER DigestInfo of SHA-1/224/256/384/512."""
    for prefix, algorithm in _DIGEST_INFO.items():
        if data.startswith(prefix) and len(data) == len(prefix) + algorithm.digest_size:
            return data[len(prefix) :], utils.Prehashed(algorithm())
    raise KeyMaterialError(
        "RSA-PKCS1-DIGESTINFO signs a DER DigestInfo of a SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 "
        f"digest; these {len(data)} bytes are none"
    )


def _pss(hash_name: str, digest_salt: bool) -> padding.PSS:
    salt = padding.PSS.DIGEST_LENGTH if digest_salt else padding.PSS.AUTO
    return padding.PSS(mgf=padding.MGF1(_HASHES[hash_name]()), salt_length=salt)


def sign(mechanism: str, private_der: bytes, data: bytes) -> bytes:
    """Sign `data` (the message, or for the -DIGEST/-DIGESTINFO mechanisms what the caller hashed).
    Raises KeyMaterialError when a pre-hashed input has the wrong shape."""
    _, hash_name = SIGN_MECHANISMS[mechanism]
    key = _private(private_der)
    if mechanism == "ECDSA-DIGEST":
        digest, prehashed = _ecdsa_digest(data, key.curve.key_size)
        return key.sign(digest, ec.ECDSA(prehashed))  # type: ignore[no-any-return]
    if mechanism == "RSA-PKCS1-DIGESTINFO":
        digest, algorithm = _digest_info(data)
        return key.sign(digest, padding.PKCS1v15(), algorithm)  # type: ignore[no-any-return]
    if mechanism.endswith("-DIGEST"):  # RSA-PSS over a digest
        return key.sign(data, _pss(hash_name, True), _prehashed(data, hash_name))  # type: ignore[no-any-return]
    if mechanism.startswith("RSA-PKCS1"):
        return key.sign(data, padding.PKCS1v15(), _HASHES[hash_name]())  # type: ignore[no-any-return]
    if mechanism.startswith("RSA-PSS"):
        return key.sign(data, _pss(hash_name, True), _HASHES[hash_name]())  # type: ignore[no-any-return]
    if mechanism.startswith("ECDSA"):
        return key.sign(data, ec.ECDSA(_HASHES[hash_name]()))  # type: ignore[no-any-return]
    return key.sign(data)  # type: ignore[no-any-return]


def verify(mechanism: str, public_der: bytes, data: bytes, signature: bytes) -> bool:
    """True if `signature` is valid; KeyMaterialError when a pre-hashed input has the wrong shape."""
    _, hash_name = SIGN_MECHANISMS[mechanism]
    key = _public(public_der)
    try:
        if mechanism == "ECDSA-DIGEST":
            digest, prehashed = _ecdsa_digest(data, key.curve.key_size)
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif mechanism == "RSA-PKCS1-DIGESTINFO":
            digest, algorithm = _digest_info(data)
            key.verify(signature, digest, padding.PKCS1v15(), algorithm)
        elif mechanism.endswith("-DIGEST"):
            key.verify(signature, data, _pss(hash_name, False), _prehashed(data, hash_name))
        elif mechanism.startswith("RSA-PKCS1"):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[hash_name]())
        elif mechanism.startswith("RSA-PSS"):
            key.verify(signature, data, _pss(hash_name, False), _HASHES[hash_name]())
        elif mechanism.startswith("ECDSA"):
            key.verify(signature, data, ec.ECDSA(_HASHES[hash_name]()))
        else:
            key.verify(signature, data)
    except KeyMaterialError:
        raise
    except (InvalidSignature, ValueError):
        return False
    return True


def encrypt(
    mechanism: str, secret_or_public: bytes, data: bytes, aad: bytes, iv: bytes = b""
) -> tuple[bytes, bytes]:
    """(ciphertext, iv); AES-GCM uses the caller's 96-bit IV or draws a fresh one, RSA-OAEP has none."""
    if mechanism == "AES-GCM":
        if iv and len(iv) != 12:
            raise KeyMaterialError(f"an AES-GCM IV is 12 bytes, not {len(iv)}")
        iv = iv or os.urandom(12)
        return AESGCM(secret_or_public).encrypt(iv, data, aad or None), iv
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    try:
        return _public(secret_or_public).encrypt(data, oaep), b""
    except ValueError as exc:
        raise KeyMaterialError(f"RSA-OAEP cannot encrypt this much data ({exc})") from None


def decrypt(mechanism: str, secret_or_private: bytes, data: bytes, iv: bytes, aad: bytes) -> bytes:
    if mechanism == "AES-GCM":
        if len(iv) != 12:
            raise KeyMaterialError("AES-GCM needs the 12-byte IV returned by encrypt")
        try:
            return AESGCM(secret_or_private).decrypt(iv, data, aad or None)
        except InvalidTag:
            raise KeyMaterialError(
                "ciphertext failed its authentication check (wrong key, IV, AAD, or tampered)"
            ) from None
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    try:
        return _private(secret_or_private).decrypt(data, oaep)  # type: ignore[no-any-return]
    except ValueError:
        raise KeyMaterialError("RSA-OAEP decryption failed (wrong key or malformed ciphertext)") from None


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


def digest(mechanism: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[mechanism]())
    h.update(data)
    return h.finalize()

"""The cryptographic operations with a key: sign, verify, encrypt, decrypt, digest, and their mechanisms.

Works on raw bytes like crypto/keys.py: a secret key's value (AES), a private key's PKCS#8 DER, a
public key's SubjectPublicKeyInfo DER. Each operation comes as a factory (`signer`, `verifier`,
`encryptor`, `decryptor`) that parses the key and builds the padding and hash objects once and returns
the function running one operation, so a batch of operations with one key (a CryptoStream batch) pays
that once, and a single operation (a unary RPC) builds one and runs it once. Only the service
layer calls it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hsmnode.crypto.keys import GCM_IV_BYTES, KeyMaterialError

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
# digest length -> hash, for a digest signed as it is (ECDSA-DIGEST)
_BY_DIGEST_LENGTH: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(),
    28: hashes.SHA224(),
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): prefix + digest is what RSA-PKCS1-DIGESTINFO signs
_DIGEST_INFO: dict[bytes, hashes.HashAlgorithm] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1(),
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224(),
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256(),
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384(),
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512(),
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
        algorithm = found
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
            return data[len(prefix) :], utils.Prehashed(algorithm)
    raise KeyMaterialError(
        "RSA-PKCS1-DIGESTINFO signs a DER DigestInfo of a SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 "
        f"digest; these {len(data)} bytes are none"
    )


def _pss(hash_name: str, digest_salt: bool) -> padding.PSS:
    salt = padding.PSS.DIGEST_LENGTH if digest_salt else padding.PSS.AUTO
    return padding.PSS(mgf=padding.MGF1(_HASHES[hash_name]()), salt_length=salt)


# One key, one mechanism, many operations: the factories below parse the key and build the padding
# and hash objects once and return the function that runs one operation (a CryptoStream batch runs
# a key's operations through one of them; the unary RPCs through one each). The functions hold the
# plaintext key object: the caller keeps them no longer than the operations it runs (one batch).
Signer = Callable[[bytes], bytes]  # data -> signature
Verifier = Callable[[bytes, bytes], bool]  # (data, signature) -> valid
Encryptor = Callable[[bytes, bytes, bytes], tuple[bytes, bytes]]  # (data, aad, iv) -> (ciphertext, iv)
Decryptor = Callable[[bytes, bytes, bytes], bytes]  # (ciphertext, iv, aad) -> plaintext


def signer(mechanism: str, private_der: bytes) -> Signer:
    """The function that signs data (the message, or for the -DIGEST/-DIGESTINFO mechanisms what the
    caller hashed) with this key (PKCS#8 DER) by `mechanism` (a SIGN_MECHANISMS name, checked by the
    caller). The function raises KeyMaterialError when a pre-hashed input has the wrong shape."""
    _, hash_name = SIGN_MECHANISMS[mechanism]
    key = _private(private_der)
    sign = key.sign
    if mechanism == "ECDSA-DIGEST":
        bits = key.curve.key_size

        def sign_digest(data: bytes) -> bytes:
            digest, prehashed = _ecdsa_digest(data, bits)
            return sign(digest, ec.ECDSA(prehashed))  # type: ignore[no-any-return]

        return sign_digest
    if mechanism == "RSA-PKCS1-DIGESTINFO":
        pkcs1 = padding.PKCS1v15()

        def sign_digest_info(data: bytes) -> bytes:
            digest, algorithm = _digest_info(data)
            return sign(digest, pkcs1, algorithm)  # type: ignore[no-any-return]

        return sign_digest_info
    if mechanism.endswith("-DIGEST"):  # RSA-PSS over a digest
        pss = _pss(hash_name, True)
        return lambda data: sign(data, pss, _prehashed(data, hash_name))
    if mechanism.startswith("RSA-PKCS1"):
        pkcs1, algorithm = padding.PKCS1v15(), _HASHES[hash_name]()
        return lambda data: sign(data, pkcs1, algorithm)
    if mechanism.startswith("RSA-PSS"):
        pss, algorithm = _pss(hash_name, True), _HASHES[hash_name]()
        return lambda data: sign(data, pss, algorithm)
    if mechanism.startswith("ECDSA"):
        ecdsa = ec.ECDSA(_HASHES[hash_name]())
        return lambda data: sign(data, ecdsa)
    return sign  # type: ignore[no-any-return]  # Ed25519


def verifier(mechanism: str, public_der: bytes) -> Verifier:
    """The function that checks (data, signature) against this public key (SPKI DER) by `mechanism`:
    True if valid; KeyMaterialError when a pre-hashed input has the wrong shape."""
    _, hash_name = SIGN_MECHANISMS[mechanism]
    key = _public(public_der)
    if mechanism == "ECDSA-DIGEST":
        bits = key.curve.key_size

        def check(data: bytes, signature: bytes) -> None:
            digest, prehashed = _ecdsa_digest(data, bits)
            key.verify(signature, digest, ec.ECDSA(prehashed))

    elif mechanism == "RSA-PKCS1-DIGESTINFO":
        pkcs1 = padding.PKCS1v15()

        def check(data: bytes, signature: bytes) -> None:
            digest, algorithm = _digest_info(data)
            key.verify(signature, digest, pkcs1, algorithm)

    elif mechanism.endswith("-DIGEST"):
        pss = _pss(hash_name, False)

        def check(data: bytes, signature: bytes) -> None:
            key.verify(signature, data, pss, _prehashed(data, hash_name))

    else:
        if mechanism.startswith("RSA-PKCS1"):
            parameters: tuple[object, ...] = (padding.PKCS1v15(), _HASHES[hash_name]())
        elif mechanism.startswith("RSA-PSS"):
            parameters = (_pss(hash_name, False), _HASHES[hash_name]())
        elif mechanism.startswith("ECDSA"):
            parameters = (ec.ECDSA(_HASHES[hash_name]()),)
        else:  # Ed25519
            parameters = ()

        def check(data: bytes, signature: bytes) -> None:
            key.verify(signature, data, *parameters)

    def verify(data: bytes, signature: bytes) -> bool:
        try:
            check(data, signature)
        except KeyMaterialError:
            raise
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def encryptor(mechanism: str, secret_or_public: bytes) -> Encryptor:
    """The function that encrypts (data, aad, iv) with this key by `mechanism` (CIPHER_MECHANISMS):
    AES-GCM (the AES value) uses the caller's 96-bit IV or draws a fresh one; RSA-OAEP (SPKI DER)
    takes no IV or AAD and answers an empty IV. KeyMaterialError for a bad IV or too much data."""
    if mechanism == "AES-GCM":
        seal = AESGCM(secret_or_public).encrypt

        def gcm(data: bytes, aad: bytes, iv: bytes) -> tuple[bytes, bytes]:
            if not iv:
                iv = os.urandom(GCM_IV_BYTES)
            elif len(iv) != GCM_IV_BYTES:
                raise KeyMaterialError(f"an AES-GCM IV is 12 bytes, not {len(iv)}")
            return seal(iv, data, aad or None), iv

        return gcm
    public = _public(secret_or_public)

    # RFC 8017 §7.1.1: at most k - 2*hLen - 2 bytes (SHA-256, hLen 32: k - 66; 190 bytes for RSA-2048)
    limit = public.key_size // 8 - 66

    def oaep(data: bytes, aad: bytes, iv: bytes) -> tuple[bytes, bytes]:
        if len(data) > limit:
            raise KeyMaterialError(
                f"RSA-OAEP cannot encrypt this much data: {len(data)} bytes; with SHA-256 and this "
                f"{public.key_size}-bit key it takes at most {limit} bytes (RFC 8017 §7.1.1): encrypt a "
                "data key with it and the data under AES-GCM"
            )
        return public.encrypt(data, _OAEP), b""

    return oaep


def decryptor(mechanism: str, secret_or_private: bytes) -> Decryptor:
    """The function that decrypts (ciphertext, iv, aad) with this key by `mechanism`
    (CIPHER_MECHANISMS: the AES value, or the private key's PKCS#8 DER); KeyMaterialError for a
    missing IV or a ciphertext that does not check out."""
    if mechanism == "AES-GCM":
        open_ = AESGCM(secret_or_private).decrypt

        def gcm(data: bytes, iv: bytes, aad: bytes) -> bytes:
            if len(iv) != GCM_IV_BYTES:
                raise KeyMaterialError("AES-GCM needs the 12-byte IV returned by encrypt")
            try:
                return open_(iv, data, aad or None)
            except InvalidTag:
                raise KeyMaterialError(
                    "ciphertext failed its authentication check (wrong key, IV, AAD, or tampered)"
                ) from None

        return gcm
    private = _private(secret_or_private)

    def oaep(data: bytes, iv: bytes, aad: bytes) -> bytes:
        try:
            return private.decrypt(data, _OAEP)  # type: ignore[no-any-return]
        except ValueError:
            raise KeyMaterialError("RSA-OAEP decryption failed (wrong key or malformed ciphertext)") from None

    return oaep


def digest(mechanism: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[mechanism]())
    h.update(data)
    return h.finalize()

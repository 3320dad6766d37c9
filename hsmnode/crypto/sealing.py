"""Sealing a secret for one node certificate (ECIES: ephemeral ECDH P-256, HKDF-SHA256, AES-256-GCM).

The cluster seals its Raft secret and SMK for a joining member's node certificate,
after checking that the cluster CA issued it; only the holder of that node's
private key can open the bundle, so neither the admin's CLI nor the wire learns them.
"""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"hsmnode join bundle v1"


class SealError(ValueError):
    pass


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Did this CA sign this certificate (and is it an EC node certificate)?"""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def _key(shared: bytes, ephemeral: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral, info=_INFO).derive(shared)


def seal(cert_pem: bytes, plaintext: bytes) -> bytes:
    public = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise SealError("the node certificate does not carry an EC key")
    ephemeral = ec.generate_private_key(public.curve)
    point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    key = _key(ephemeral.exchange(ec.ECDH(), public), point)
    nonce = os.urandom(12)
    return len(point).to_bytes(2, "big") + point + nonce + AESGCM(key).encrypt(nonce, plaintext, _INFO)


def open_sealed(key_pem: bytes, sealed: bytes) -> bytes:
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise SealError("the node key is not an EC key")
        n = int.from_bytes(sealed[:2], "big")
        point, nonce, body = sealed[2 : 2 + n], sealed[2 + n : 14 + n], sealed[14 + n :]
        peer = ec.EllipticCurvePublicKey.from_encoded_point(private.curve, point)
        return AESGCM(_key(private.exchange(ec.ECDH(), peer), point)).decrypt(nonce, body, _INFO)
    except (ValueError, InvalidTag) as exc:
        raise SealError(f"the join bundle does not open with this node's key ({exc})") from None

"""The only module that uses `cryptography`: X.509 material for mutual TLS, fingerprints, secrets.

Key generation and wrapping under the cluster SMK, signing and password hashing
join this module with the issues that need them.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class PemPair:
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str, org: str = "hsmnode") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def create_ca(common_name: str) -> PemPair:
    """A self-signed cluster CA (EC P-256) that issues node and admin certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return PemPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_certificate(
    ca: PemPair, common_name: str, *, hosts: list[str] | None = None, server: bool = False
) -> PemPair:
    """A leaf certificate signed by `ca`: client auth always, server auth (with SANs) for nodes."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return PemPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def certificate_common_name(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode()


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Did the CA `ca_pem` sign `cert_pem` directly? (the signature is checked, not just the issuer name)"""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def certificate_fingerprint(cert_pem: bytes) -> str:
    """sha256 over the DER certificate, lowercase hex: how members name a client certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def check_certificate_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Raise ValueError with a readable reason if the PEMs do not load or do not belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key ({exc})") from None
    pub = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != pub
    ):
        raise ValueError("the private key does not match the certificate")


def random_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def random_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


# --- passwords -----------------------------------------------------------------------
#
# scrypt (RFC 7914) with a per-credential random salt, encoded as
# "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>". The proposing member hashes; only
# the encoded hash enters a command, the Raft log and snapshots.
#
# Computed by hashlib.scrypt (OpenSSL's EVP_PBE_scrypt, the same bytes as cryptography's Scrypt),
# which releases the GIL whatever cryptography's release: its Scrypt holds it in some (48, the
# Debian package: a 122 ms gap in a 1 ms sleeper thread per derivation, against 9 ms with hashlib;
# 50.0.2 releases it), and a derivation holding it stalls the member's Raft and gRPC threads.
# Derivations at once are bounded by the CPUs: 24 logins all deriving together (16 MiB each) share
# the cores and finish together, late, so all time out; bounded, the first are answered first
# (12 opens at once at load 15-22: 67 of 72 answered in time, against 15 of 72 unbounded).

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # bytes; N=2^14, r=8 needs 16 MiB (128 * r * N)
_SCRYPT_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))  # derivations at once


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, wait: float | None = None) -> bytes:
    """The 32-byte scrypt key of `password` (UTF-8), once one of the CPU-bounded slots is free
    within `wait` s (None: however long it takes). Raises TimeoutError when none was, ValueError
    for parameters OpenSSL refuses (n not a power of 2, memory above 64 MiB)."""
    if not _SCRYPT_SLOTS.acquire(timeout=wait):
        raise TimeoutError(f"no scrypt slot free within {wait:.2f} s")
    try:
        return hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
        )
    finally:
        _SCRYPT_SLOTS.release()


def hash_password(password: str) -> str:
    """A fresh encoded scrypt hash of `password` (random 16-byte salt), the format above."""
    import base64

    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str, *, wait: float | None = None) -> bool:
    """True when `password` matches the encoded scrypt hash (compared in constant time); False for
    a wrong password or a hash that is not in the format above. `wait` (s): how long to wait for
    a derivation slot (other logins on this member); TimeoutError past it, nothing derived."""
    import base64

    try:
        algo, n, r, p, salt, digest = encoded.split("$")
        if algo != "scrypt":
            return False
        derived = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), wait)
        return hmac.compare_digest(derived, base64.b64decode(digest))
    except (ValueError, OverflowError):  # binascii.Error is a ValueError
        return False


def derive_key(secret: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256: a purpose-bound key from a cluster secret."""
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def self_signed_client_certificate(common_name: str) -> PemPair:
    """A client's own self-signed certificate, as an NTLS client generates it before registration."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name, org="hsmnode client")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return PemPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def normalize_certificate(cert_pem: bytes) -> bytes:
    """Parse a PEM certificate (ValueError with a reason if it is not one) and re-encode it canonically."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM X.509 certificate ({exc})") from None
    return cert.public_bytes(serialization.Encoding.PEM)

"""Just enough DER (X.690) for PKCS#11 key attributes: SubjectPublicKeyInfo in and out, EC
parameters, and private keys built from their PKCS#11 components for import.

The bridge takes no `cryptography` dependency (only `hsmnode.crypto` may): these are
structure conversions, no cryptography. Shapes (RFC 5280, RFC 8017, RFC 5915, RFC 8410):

    SubjectPublicKeyInfo  SEQUENCE { SEQUENCE { OID algorithm, parameters }, BIT STRING key }
    RSA public key        SEQUENCE { INTEGER n, INTEGER e }   (inside the BIT STRING)
    EC public key         parameters = OID of the curve; the BIT STRING holds the point
    CKA_EC_PARAMS         DER of the curve OID; CKA_EC_POINT: DER OCTET STRING of the point
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

RSA_OID = "1.2.840.113549.1.1.1"
EC_OID = "1.2.840.10045.2.1"
ED25519_OID = "1.3.101.112"
CURVES = {"1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384"}
CURVE_OIDS = {name: oid for oid, name in CURVES.items()}


class DerError(ValueError):
    """DER that does not parse as the expected structure."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def integer(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")  # room for the sign bit
    return tlv(0x02, raw)


def unsigned(raw: bytes) -> bytes:
    """An INTEGER from a PKCS#11 big-endian unsigned value (CKA_MODULUS and friends)."""
    return integer(int.from_bytes(raw, "big"))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def octet_string(data: bytes) -> bytes:
    return tlv(0x04, data)


def bit_string(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def next(self, tag: int | None = None) -> tuple[int, bytes]:
        if self.pos + 2 > len(self.data):
            raise DerError("truncated DER")
        t = self.data[self.pos]
        n = self.data[self.pos + 1]
        self.pos += 2
        if n & 0x80:
            k = n & 0x7F
            if not 1 <= k <= 4 or self.pos + k > len(self.data):
                raise DerError("bad DER length")
            n = int.from_bytes(self.data[self.pos : self.pos + k], "big")
            self.pos += k
        if self.pos + n > len(self.data):
            raise DerError("truncated DER value")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        if tag is not None and t != tag:
            raise DerError(f"expected DER tag {tag:#x}, found {t:#x}")
        return t, value


def decode_oid(body: bytes) -> str:
    if not body:
        raise DerError("empty OID")
    parts = [body[0] // 40, body[0] % 40]
    value = 0
    for b in body[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


@dataclass(frozen=True)
class PublicKey:
    """What PKCS#11 shows of a public key: RSA modulus and exponent, or curve and point."""

    algorithm: str  # RSA | EC | Ed25519
    modulus: bytes = b""
    exponent: bytes = b""
    curve_oid: str = ""
    point: bytes = b""  # EC: uncompressed point 04||X||Y; Ed25519: the 32-byte key

    @property
    def ec_params(self) -> bytes:
        """CKA_EC_PARAMS: the curve's OID (Ed25519: the id-Ed25519 OID, PKCS#11 v3.0 §2.3.5)."""
        return oid(self.curve_oid or ED25519_OID)

    @property
    def ec_point(self) -> bytes:
        return octet_string(self.point)


def parse_spki(der: bytes) -> PublicKey:
    outer = _Reader(_Reader(der).next(0x30)[1])
    alg = _Reader(outer.next(0x30)[1])
    algorithm = decode_oid(alg.next(0x06)[1])
    _, key_bits = outer.next(0x03)
    key = key_bits[1:]  # unused-bits byte
    if algorithm == RSA_OID:
        numbers = _Reader(_Reader(key).next(0x30)[1])
        n = numbers.next(0x02)[1].lstrip(b"\x00")
        e = numbers.next(0x02)[1].lstrip(b"\x00")
        return PublicKey("RSA", modulus=n, exponent=e)
    if algorithm == EC_OID:
        return PublicKey("EC", curve_oid=decode_oid(alg.next(0x06)[1]), point=key)
    if algorithm == ED25519_OID:
        return PublicKey("Ed25519", point=key)
    raise DerError(f"unsupported public key algorithm {algorithm}")


def curve_of(ec_params: bytes) -> str:
    """ "P-256" / "P-384" / "Ed25519" for a CKA_EC_PARAMS value (DER OID, or the printable curve name)."""
    t, body = _Reader(ec_params).next()
    if t == 0x13 and body in (b"edwards25519", b"Ed25519"):  # PrintableString form (PKCS#11 v3.0)
        return "Ed25519"
    if t != 0x06:
        raise DerError("CKA_EC_PARAMS must hold a named curve (an OID)")
    dotted = decode_oid(body)
    if dotted == ED25519_OID:
        return "Ed25519"
    if dotted not in CURVES:
        raise DerError(f"curve {dotted} is not supported (P-256, P-384, Ed25519)")
    return CURVES[dotted]


def spki_pem(public: PublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo for a public key given by its PKCS#11 attributes."""
    if public.algorithm == "RSA":
        alg = sequence(oid(RSA_OID), b"\x05\x00")
        key = sequence(unsigned(public.modulus), unsigned(public.exponent))
    elif public.algorithm == "EC":
        alg = sequence(oid(EC_OID), oid(public.curve_oid))
        key = public.point
    else:
        alg = sequence(oid(ED25519_OID))
        key = public.point
    der = sequence(alg, bit_string(key))
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN PUBLIC KEY-----\n" + b"\n".join(lines) + b"\n-----END PUBLIC KEY-----\n"


def point_of(ec_point: bytes) -> bytes:
    """The raw point inside CKA_EC_POINT (a DER OCTET STRING; a bare point is accepted too)."""
    if ec_point[:1] == b"\x04" and len(ec_point) > 2:
        try:
            _, inner = _Reader(ec_point).next(0x04)
            if inner[:1] in (b"\x04",) or len(inner) == 32:
                return inner
        except DerError:
            pass
    return ec_point


def rsa_private(parts: dict[str, bytes]) -> bytes:
    """RSAPrivateKey DER (RFC 8017 A.1.2) from n, e, d, p, q, dP, dQ, qInv (PKCS#11 attribute values)."""
    order: tuple[str, ...] = ("modulus", "public_exponent", "private_exponent", "prime_1", "prime_2")
    order += ("exponent_1", "exponent_2", "coefficient")
    return sequence(integer(0), *(unsigned(parts[name]) for name in order))


def ec_private(curve: str, scalar: bytes) -> bytes:
    """ECPrivateKey DER (RFC 5915) for a NIST curve, or a PKCS#8 Ed25519 key (RFC 8410)."""
    if curve == "Ed25519":
        return sequence(integer(0), sequence(oid(ED25519_OID)), octet_string(octet_string(scalar)))
    return sequence(integer(1), octet_string(scalar), tlv(0xA0, oid(CURVE_OIDS[curve])))


def ecdsa_raw(signature: bytes, size: int) -> bytes:
    """PKCS#11's ECDSA signature r || s (each `size` bytes) from the cluster's DER Ecdsa-Sig-Value."""
    seq = _Reader(_Reader(signature).next(0x30)[1])
    r = int.from_bytes(seq.next(0x02)[1], "big")
    s = int.from_bytes(seq.next(0x02)[1], "big")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_der(raw: bytes) -> bytes:
    """The DER Ecdsa-Sig-Value of a PKCS#11 r || s signature."""
    half = len(raw) // 2
    if len(raw) % 2 or not half:
        raise DerError(f"an ECDSA signature r || s has an even, non-zero length, not {len(raw)}")
    return sequence(unsigned(raw[:half]), unsigned(raw[half:]))


CURVE_BYTES = {"P-256": 32, "P-384": 48}

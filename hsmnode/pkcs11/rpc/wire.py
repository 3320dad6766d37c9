"""The p11-kit RPC value encoding: integers, byte arrays, attributes and mechanisms.

Source of truth: p11-kit `p11-kit/rpc-message.c` (0.24.1, the version Debian bookworm ships).
All integers are big-endian. A CK_ULONG travels as 8 bytes whatever the platform.

    byte array     u32 length, then the bytes; length 0xffffffff means NULL
    attribute      u32 type, u8 validity (0: CK_UNAVAILABLE_INFORMATION, nothing follows),
                   u32 length (the caller's ulValueLen), then the value by the type's kind:
                     bool kinds      1 byte
                     ulong kinds     u64
                     date            byte array of 8 or 0 bytes
                     template kinds  u32 count, then attributes (WRAP_TEMPLATE...)
                     mechanism list  u32 count, then u64 each (ALLOWED_MECHANISMS)
                     anything else   byte array
    mechanism      u32 type, then the parameter: RSA-PSS (u64 hashAlg, u64 mgf, u64 sLen),
                   RSA-OAEP (u64 hashAlg, u64 mgf, u64 source, byte array source data),
                   AES-GCM as p11-kit >= 0.25 sends it (byte array IV, u64 IV bits,
                   byte array AAD, u64 tag bits); every other mechanism: a byte array.

Decoding never trusts a length: a short buffer raises `WireError`, which the dispatcher
answers with CKR_DEVICE_ERROR (p11-kit's PARSE_ERROR), never an exception that escapes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hsmnode.pkcs11.rpc.constants import ARRAY_ATTRIBUTE, CKA, CKM

NULL_LENGTH = 0xFFFFFFFF
MAX_ARRAY = 0x7FFFFFFF
MAX_ITEMS = 4096  # attributes in a template, ulongs in a list: far above any real call


class WireError(ValueError):
    """A malformed or truncated message (the text says what and where)."""


# p11-kit rpc-message.c map_attribute_to_value_type
BOOL_ATTRIBUTES = frozenset(
    {
        CKA.TOKEN,
        CKA.PRIVATE,
        CKA.TRUSTED,
        CKA.SENSITIVE,
        CKA.ENCRYPT,
        CKA.DECRYPT,
        CKA.WRAP,
        CKA.UNWRAP,
        CKA.SIGN,
        CKA.SIGN_RECOVER,
        CKA.VERIFY,
        CKA.VERIFY_RECOVER,
        CKA.DERIVE,
        CKA.EXTRACTABLE,
        CKA.LOCAL,
        CKA.NEVER_EXTRACTABLE,
        CKA.ALWAYS_SENSITIVE,
        CKA.MODIFIABLE,
        CKA.COPYABLE,
        CKA.ALWAYS_AUTHENTICATE,
        CKA.WRAP_WITH_TRUSTED,
        0x190,  # CKA_SECONDARY_AUTH (deprecated)
        0x301,  # CKA_RESET_ON_INIT
        0x302,  # CKA_HAS_RESET
        0x405,  # CKA_COLOR
    }
)
ULONG_ATTRIBUTES = frozenset(
    {
        CKA.CLASS,
        CKA.CERTIFICATE_TYPE,
        0x87,  # CKA_CERTIFICATE_CATEGORY
        0x88,  # CKA_JAVA_MIDP_SECURITY_DOMAIN
        CKA.KEY_TYPE,
        CKA.MODULUS_BITS,
        0x133,  # CKA_PRIME_BITS
        0x134,  # CKA_SUB_PRIME_BITS
        CKA.VALUE_BITS,
        CKA.VALUE_LEN,
        CKA.KEY_GEN_MECHANISM,
        0x201,  # CKA_AUTH_PIN_FLAGS (deprecated)
        0x300,  # CKA_HW_FEATURE_TYPE
        0x400,  # CKA_PIXEL_X
        0x401,  # CKA_PIXEL_Y
        0x402,  # CKA_RESOLUTION
        0x403,  # CKA_CHAR_ROWS
        0x404,  # CKA_CHAR_COLUMNS
        0x406,  # CKA_BITS_PER_PIXEL
        0x500,  # CKA_MECHANISM_TYPE
    }
)
TEMPLATE_ATTRIBUTES = frozenset({CKA.WRAP_TEMPLATE, CKA.UNWRAP_TEMPLATE})
DATE_ATTRIBUTES = frozenset({CKA.START_DATE, CKA.END_DATE})
ULONG_BYTES = 8  # sizeof(CK_ULONG) on the 64-bit clients p11-kit serves


@dataclass(frozen=True)
class Attribute:
    """One attribute as it travels: `value` is None for CK_UNAVAILABLE_INFORMATION (validity 0).

    `value` is an int (bool and ulong kinds), bytes (byte arrays, dates), a tuple of Attribute
    (template kinds) or a tuple of int (mechanism lists). `length` is the ulValueLen the
    sender declared (for ulong kinds it tells a 4-byte CK_ULONG from an 8-byte one)."""

    type: int
    value: int | bytes | tuple[Attribute, ...] | tuple[int, ...] | None
    length: int = 0


@dataclass(frozen=True)
class Mechanism:
    """A mechanism and its decoded parameter: None, bytes, or a tuple (PSS, OAEP, GCM)."""

    type: int
    parameter: bytes | tuple[int | bytes | None, ...] | None = None


class Reader:
    """Reads values from one message body; every read checks the remaining length."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def _take(self, n: int, what: str) -> bytes:
        end = self.offset + n
        if n < 0 or end > len(self.data):
            raise WireError(
                f"truncated message: {what} needs {n} byte(s) at offset {self.offset}, "
                f"{len(self.data) - self.offset} left"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def byte(self) -> int:
        return self._take(1, "a byte")[0]

    def u32(self) -> int:
        return int(struct.unpack(">I", self._take(4, "a 32-bit integer"))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self._take(8, "a CK_ULONG"))[0])

    def byte_array(self) -> bytes | None:
        """A length-prefixed byte array; None for the NULL marker."""
        n = self.u32()
        if n == NULL_LENGTH:
            return None
        if n >= MAX_ARRAY:
            raise WireError(f"byte array length {n:#x} is out of range")
        return self._take(n, "a byte array")

    def count(self, what: str) -> int:
        n = self.u32()
        if n > MAX_ITEMS:
            raise WireError(f"{what}: {n} items is more than the {MAX_ITEMS} the bridge accepts")
        return n

    def attribute(self, depth: int = 0) -> Attribute:
        kind = self.u32()
        if not self.byte():
            return Attribute(kind, None)
        length = self.u32()
        value: int | bytes | tuple[Attribute, ...] | tuple[int, ...] | None
        if kind in BOOL_ATTRIBUTES:
            value = self.byte()
        elif kind in ULONG_ATTRIBUTES:
            value = self.u64()
        elif kind in TEMPLATE_ATTRIBUTES:
            if depth:
                raise WireError("a template inside a template attribute is not supported (p11-kit neither)")
            value = tuple(self.attribute(depth + 1) for _ in range(self.count("template attribute")))
        elif kind == CKA.ALLOWED_MECHANISMS:
            value = tuple(self.u64() for _ in range(self.count("mechanism list")))
        elif kind in DATE_ATTRIBUTES:
            value = self.byte_array() or b""
            if len(value) not in (0, 8):
                raise WireError(f"a CK_DATE is 8 bytes, not {len(value)}")
        else:
            value = self.byte_array()
            if value is None:
                value = b""
        return Attribute(kind, value, length)

    def mechanism(self) -> Mechanism:
        kind = self.u32()
        if kind in PSS_MECHANISMS:
            return Mechanism(kind, (self.u64(), self.u64(), self.u64()))
        if kind == CKM.RSA_PKCS_OAEP:
            return Mechanism(kind, (self.u64(), self.u64(), self.u64(), self.byte_array()))
        if kind == CKM.AES_GCM:
            return Mechanism(kind, (self.byte_array(), self.u64(), self.byte_array(), self.u64()))
        return Mechanism(kind, self.byte_array())

    def at_end(self) -> bool:
        return self.offset == len(self.data)


# p11-kit >= 0.25 serializes the hashed PSS variants with the PSS parameter too
PSS_MECHANISMS = frozenset(
    {CKM.RSA_PKCS_PSS, CKM.SHA256_RSA_PKCS_PSS, CKM.SHA384_RSA_PKCS_PSS, CKM.SHA512_RSA_PKCS_PSS}
)


class Writer:
    """Builds one message body."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def byte(self, value: int) -> None:
        self.parts.append(bytes([value & 0xFF]))

    def u32(self, value: int) -> None:
        self.parts.append(struct.pack(">I", value & 0xFFFFFFFF))

    def u64(self, value: int) -> None:
        self.parts.append(struct.pack(">Q", value & 0xFFFFFFFFFFFFFFFF))

    def byte_array(self, data: bytes | None) -> None:
        if data is None:
            self.u32(NULL_LENGTH)
            return
        self.u32(len(data))
        self.parts.append(bytes(data))

    def space_string(self, text: str, width: int) -> None:
        """A blank-padded, not NUL-terminated CK_UTF8CHAR field (e.g. a 32-byte token label)."""
        raw = text.encode()[:width]
        self.byte_array(raw + b" " * (width - len(raw)))

    def attribute(self, attr: Attribute) -> None:
        self.u32(attr.type)
        if attr.value is None:
            self.byte(0)
            return
        self.byte(1)
        value = attr.value
        if attr.type in BOOL_ATTRIBUTES:
            self.u32(attr.length or 1)
            self.byte(int(bool(value)))
        elif attr.type in ULONG_ATTRIBUTES:
            self.u32(attr.length or ULONG_BYTES)
            self.u64(int(value))  # type: ignore[arg-type]
        elif attr.type in TEMPLATE_ATTRIBUTES:
            items = tuple(value)  # type: ignore[arg-type]
            self.u32(len(items) * 24)  # sizeof(CK_ATTRIBUTE) on LP64
            self.u32(len(items))
            for item in items:
                self.attribute(item)  # type: ignore[arg-type]
        elif attr.type == CKA.ALLOWED_MECHANISMS:
            mechs = tuple(value)  # type: ignore[arg-type]
            self.u32(len(mechs) * ULONG_BYTES)
            self.u32(len(mechs))
            for m in mechs:
                self.u64(int(m))  # type: ignore[call-overload]
        else:
            data = bytes(value)  # type: ignore[arg-type]
            self.u32(len(data))
            self.byte_array(data)

    def mechanism(self, mech: Mechanism) -> None:
        """The client side of `Reader.mechanism` (tests and fuzzers build requests with it)."""
        self.u32(mech.type)
        p = mech.parameter
        if isinstance(p, tuple):
            for item in p:
                if isinstance(item, int):
                    self.u64(item)
                else:
                    self.byte_array(item)
        else:
            self.byte_array(p)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def is_array_attribute(kind: int) -> bool:
    return bool(kind & ARRAY_ATTRIBUTE)

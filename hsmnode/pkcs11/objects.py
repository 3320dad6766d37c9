"""Keys as PKCS#11 objects: their attributes, template matching, and templates read for creation.

One cluster key is one or two PKCS#11 objects:

    cluster key            PKCS#11 objects (sharing CKA_ID and CKA_LABEL)
    secret (AES)           CKO_SECRET_KEY
    private (RSA, EC, Ed)  CKO_PRIVATE_KEY + CKO_PUBLIC_KEY (its public half)
    public (imported)      CKO_PUBLIC_KEY

CKA_ID is the cluster object id (16 bytes), so it is equal on every member and bridge.
Every private and secret object is sensitive: CKA_VALUE and the private RSA components
answer CKR_ATTRIBUTE_SENSITIVE whatever the template asked for. Usage flags map one to
one (CKA_SIGN <-> "sign"...); CKA_EXTRACTABLE is the cluster's `extractable` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hsmnode.client import KeyInfo
from hsmnode.pkcs11 import der
from hsmnode.pkcs11.rpc.constants import CKA, CKK, CKM, CKO, CKR
from hsmnode.pkcs11.rpc.dispatch import CkError
from hsmnode.pkcs11.rpc.wire import BOOL_ATTRIBUTES, ULONG_ATTRIBUTES, ULONG_BYTES, Attribute

SENSITIVE = object()  # marker: the attribute exists but its value never leaves the HSM

KEY_TYPES = {"RSA": CKK.RSA, "EC": CKK.EC, "AES": CKK.AES, "Ed25519": CKK.EC_EDWARDS}
CLASSES = {"secret": CKO.SECRET_KEY, "private": CKO.PRIVATE_KEY, "public": CKO.PUBLIC_KEY}
GEN_MECHANISM = {
    CKK.RSA: CKM.RSA_PKCS_KEY_PAIR_GEN,
    CKK.EC: CKM.EC_KEY_PAIR_GEN,
    CKK.EC_EDWARDS: CKM.EC_EDWARDS_KEY_PAIR_GEN,
    CKK.AES: CKM.AES_KEY_GEN,
}
# usage flag -> the object classes that carry it
USAGE_ATTRIBUTES: dict[int, tuple[str, frozenset[int]]] = {
    CKA.SIGN: ("sign", frozenset({CKO.PRIVATE_KEY})),
    CKA.VERIFY: ("verify", frozenset({CKO.PUBLIC_KEY})),
    CKA.ENCRYPT: ("encrypt", frozenset({CKO.PUBLIC_KEY, CKO.SECRET_KEY})),
    CKA.DECRYPT: ("decrypt", frozenset({CKO.PRIVATE_KEY, CKO.SECRET_KEY})),
    CKA.WRAP: ("wrap", frozenset({CKO.PUBLIC_KEY, CKO.SECRET_KEY})),
    CKA.UNWRAP: ("unwrap", frozenset({CKO.PRIVATE_KEY, CKO.SECRET_KEY})),
}
_PRIVATE_RSA = (
    CKA.PRIVATE_EXPONENT,
    CKA.PRIME_1,
    CKA.PRIME_2,
    CKA.EXPONENT_1,
    CKA.EXPONENT_2,
    CKA.COEFFICIENT,
)


@dataclass(frozen=True)
class P11Object:
    """One PKCS#11 object: a cluster key seen as one object class."""

    key: KeyInfo
    object_class: int  # CKO

    @property
    def ref(self) -> tuple[str, str, int]:
        return (self.key.container, self.key.id, self.object_class)

    def attributes(self, session_object: bool = False) -> dict[int, Any]:
        return attributes_of(self.key, self.object_class, session_object)


def objects_of(key: KeyInfo) -> list[P11Object]:
    if key.object_class == "private":
        return [P11Object(key, CKO.PRIVATE_KEY), P11Object(key, CKO.PUBLIC_KEY)]
    return [P11Object(key, CLASSES[key.object_class])]


def attributes_of(key: KeyInfo, cls: int, session_object: bool = False) -> dict[int, Any]:
    """Every attribute of the object, values as they travel (bool as 0/1, bytes, ints) or SENSITIVE."""
    key_type = KEY_TYPES[key.key_type]
    a: dict[int, Any] = {
        CKA.CLASS: int(cls),
        CKA.KEY_TYPE: int(key_type),
        CKA.TOKEN: int(not session_object),
        CKA.PRIVATE: int(cls != CKO.PUBLIC_KEY),
        CKA.LABEL: key.label.encode(),
        CKA.ID: bytes.fromhex(key.id),
        CKA.MODIFIABLE: 0,
        CKA.COPYABLE: 0,
        CKA.DESTROYABLE: 1,
        CKA.DERIVE: 0,
        CKA.LOCAL: int(key.origin == "generated"),
        CKA.KEY_GEN_MECHANISM: int(GEN_MECHANISM[key_type])
        if key.origin == "generated"
        else 0xFFFFFFFFFFFFFFFF,
        CKA.START_DATE: b"",
        CKA.END_DATE: b"",
    }
    for attr, (usage, classes) in USAGE_ATTRIBUTES.items():
        a[attr] = int(usage in key.usage and cls in classes)
    a[CKA.SIGN_RECOVER] = 0
    a[CKA.VERIFY_RECOVER] = 0
    if cls in (CKO.PRIVATE_KEY, CKO.SECRET_KEY):
        a.update(
            {
                CKA.SENSITIVE: 1,
                CKA.ALWAYS_SENSITIVE: 1,
                CKA.EXTRACTABLE: int(key.extractable),
                CKA.NEVER_EXTRACTABLE: int(not key.extractable),
                CKA.ALWAYS_AUTHENTICATE: 0,
                CKA.WRAP_WITH_TRUSTED: 0,
                CKA.VALUE: SENSITIVE,
            }
        )
    else:
        a[CKA.TRUSTED] = 0
    if cls == CKO.SECRET_KEY:
        a[CKA.VALUE_LEN] = int(key.size) // 8
        return a
    public = der.parse_spki(key.public_der)
    a[CKA.PUBLIC_KEY_INFO] = key.public_der
    if key.key_type == "RSA":
        a[CKA.MODULUS] = public.modulus
        a[CKA.PUBLIC_EXPONENT] = public.exponent
        a[CKA.MODULUS_BITS] = int(key.size)
        if cls == CKO.PRIVATE_KEY:
            a.update(dict.fromkeys(_PRIVATE_RSA, SENSITIVE))
    else:
        a[CKA.EC_PARAMS] = public.ec_params
        if cls == CKO.PUBLIC_KEY:
            a[CKA.EC_POINT] = public.ec_point
    return a


def value_of(attr: Attribute) -> Any:
    """A template attribute's value, type-checked: CKR_ATTRIBUTE_VALUE_INVALID when the caller's
    length does not fit the attribute's kind (e.g. a 1-byte CKA_CLASS)."""
    if attr.value is None:
        raise CkError(CKR.ATTRIBUTE_VALUE_INVALID, f"attribute {attr.type:#x} has no value")
    if attr.type in ULONG_ATTRIBUTES and attr.length not in (ULONG_BYTES, 4):
        raise CkError(
            CKR.ATTRIBUTE_VALUE_INVALID, f"attribute {attr.type:#x} is a CK_ULONG, not {attr.length} bytes"
        )
    if attr.type in BOOL_ATTRIBUTES and attr.length != 1:
        raise CkError(
            CKR.ATTRIBUTE_VALUE_INVALID, f"attribute {attr.type:#x} is a CK_BBOOL, not {attr.length} bytes"
        )
    return attr.value


def matches(attributes: dict[int, Any], template: list[Attribute]) -> bool:
    """C_FindObjectsInit: every template attribute present with an equal value (sensitive ones never match)."""
    for t in template:
        have = attributes.get(t.type)
        if have is None or have is SENSITIVE:
            return False
        want = value_of(t)
        if t.type in BOOL_ATTRIBUTES:
            if bool(want) != bool(have):
                return False
        elif want != have:
            return False
    return True


@dataclass
class Template:
    """The attributes of a creation template, by type (value checked), with helpers."""

    items: dict[int, Any]

    @classmethod
    def of(cls, attrs: list[Attribute]) -> Template:
        items: dict[int, Any] = {}
        for attr in attrs:
            items[attr.type] = value_of(attr)
        return cls(items)

    def flag(self, kind: int, default: bool = False) -> bool:
        return bool(self.items.get(kind, default))

    def usage(self, classes: tuple[int, ...]) -> list[str]:
        """The usage flags this template sets true, for objects of `classes`."""
        return [
            usage
            for attr, (usage, carriers) in USAGE_ATTRIBUTES.items()
            if self.items.get(attr) and any(c in carriers for c in classes)
        ]

    def label(self) -> str:
        raw = self.items.get(CKA.LABEL, b"")
        try:
            return bytes(raw).decode()
        except UnicodeDecodeError:
            raise CkError(CKR.ATTRIBUTE_VALUE_INVALID, "CKA_LABEL must be UTF-8") from None

    def check_class(self, *allowed: int) -> None:
        if CKA.CLASS in self.items and self.items[CKA.CLASS] not in allowed:
            raise CkError(
                CKR.TEMPLATE_INCONSISTENT, f"CKA_CLASS {self.items[CKA.CLASS]:#x} does not fit here"
            )

    def check_key_type(self, *allowed: int) -> None:
        if CKA.KEY_TYPE in self.items and self.items[CKA.KEY_TYPE] not in allowed:
            raise CkError(
                CKR.TEMPLATE_INCONSISTENT,
                f"CKA_KEY_TYPE {self.items[CKA.KEY_TYPE]:#x} does not fit the mechanism",
            )

    def bytes_of(self, kind: int, what: str) -> bytes:
        value = self.items.get(kind)
        if not isinstance(value, bytes) or not value:
            raise CkError(CKR.TEMPLATE_INCOMPLETE, f"{what} is missing")
        return value

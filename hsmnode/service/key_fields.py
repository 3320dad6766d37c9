"""What a key creation hands to Raft, and the input checks of the key use cases.

The fields of a KeyCreate carry a fresh object id and the key's secret already wrapped under the
SMK (bound to its container and object id, key_views.aad_for): plaintext never reaches the log.
"""

from __future__ import annotations

import os
from typing import Any

from hsmnode.crypto import keys as kc
from hsmnode.domain import rules
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import ObjectClass
from hsmnode.service.key_views import aad_for

MAX_DATA = 64 * 1024


def invalid(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_ARGUMENT, message)


def check_key_type(key_type: str) -> None:
    """INVALID_ARGUMENT naming the known key types (domain/rules.KEY_TYPES) unless `key_type` is
    one of them or empty (a filter or an expectation left open)."""
    if key_type and key_type not in rules.KEY_TYPES:
        raise invalid(f"unknown key type {key_type!r}: use one of {', '.join(rules.KEY_TYPES)}")


def check_ciphertext(mechanism: str, data: bytes) -> None:
    """INVALID_ARGUMENT for a ciphertext that cannot be one of `mechanism`: empty, or for AES-GCM
    shorter than its 16-byte tag, or longer than the largest plaintext (MAX_DATA) and its tag: what
    this HSM encrypts, it decrypts."""
    gcm = mechanism == "AES-GCM"
    check_data(data, "ciphertext", limit=MAX_DATA + (kc.GCM_TAG_BYTES if gcm else 0))
    if gcm and len(data) < kc.GCM_TAG_BYTES:
        raise invalid(
            f"ciphertext is {len(data)} bytes, shorter than AES-GCM's {kc.GCM_TAG_BYTES}-byte tag (it ends every ciphertext)"
        )


SIGN_HINT = (
    "to sign more, hash it first and sign the digest "
    "(ECDSA-DIGEST, RSA-PSS-SHA256-DIGEST or RSA-PKCS1-DIGESTINFO)"
)


def check_data(data: bytes, what: str = "data", *, limit: int = MAX_DATA, hint: str = "") -> None:
    """INVALID_ARGUMENT for empty input or input above `limit` bytes (MAX_DATA, 64 KiB, per
    operation); `hint` (e.g. SIGN_HINT) follows the size refusal."""
    if not data:
        raise invalid(f"{what} must not be empty")
    if len(data) > limit:
        raise invalid(
            f"{what} is {len(data)} bytes; the limit is {limit} per operation" + (f": {hint}" if hint else "")
        )


def secret_fields(
    smk: kc.Smk,
    container: str,
    secret: bytes,
    label: str,
    key_type: str,
    usage: list[str],
    extractable: bool,
    origin: str,
) -> dict[str, Any]:
    """The fields of a KeyCreate for plaintext secret material (imported or unwrapped): an AES
    value of 16 or 32 bytes, or a private key (PKCS#8 DER or PEM) whose type must be `key_type`.

    Raises DomainError INVALID_ARGUMENT naming what does not fit."""
    if key_type == "AES":
        if len(secret) not in (16, 32):
            raise invalid(f"an AES key is 128 or 256 bits, not {len(secret) * 8}")
        size, object_class, public = str(len(secret) * 8), ObjectClass.SECRET.value, b""
    else:
        try:
            secret = kc.private_der(secret)
            found_type, size, public = kc.describe_private(secret)
        except kc.KeyMaterialError as exc:
            raise invalid(f"key material: {exc}") from None
        if found_type != key_type:
            raise invalid(f"the key material is {found_type}, not {key_type}")
        object_class = ObjectClass.PRIVATE.value
    return fields(
        smk, container, label, key_type, size, object_class, extractable, usage, secret, public, origin
    )


def new_object_id() -> str:
    """A fresh object id: 32 hex characters, a random (version 4) UUID as `uuid.uuid4().hex` gives,
    at a third of its cost (uuid.UUID's constructor checks and converts; this runs per key created)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def fields(
    smk: kc.Smk,
    container: str,
    label: str,
    key_type: str,
    size: str,
    object_class: str,
    extractable: bool,
    usage: list[str],
    secret: bytes,
    public_der: bytes,
    origin: str,
) -> dict[str, Any]:
    """The fields of a KeyCreate: a fresh object id, the secret wrapped under the SMK at once."""
    rules.check_key_label(label)  # by the label rule, before the command grows past its size limit
    object_id = new_object_id()
    return dict(
        object_id=object_id,
        label=label,
        key_type=key_type,
        size=size,
        object_class=object_class,
        extractable=extractable,
        usage=tuple(usage),
        container=container,
        wrapped=smk.wrap(aad_for(container, object_id), secret) if secret else b"",
        public_der=public_der,
        origin=origin,
    )

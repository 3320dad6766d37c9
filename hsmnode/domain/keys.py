"""Apply handlers for key objects in partitions and keyrings (create, destroy).

Key material arrives already wrapped under the cluster SMK by the proposing member;
apply checks who may create what (the CU creates public objects only) and that the
object's attributes are coherent, then stores it.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.authorize_handlers import gate
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import USAGES, KeyObject

if TYPE_CHECKING:
    from hsmnode.domain.state import Handler, HsmState, Result

MAX_OBJECTS = 10_000
_OBJECT_ID = re.compile(r"[0-9a-f]{32}")

# key type -> (sizes, the usage flags it can carry)
KEY_TYPES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "AES": (("128", "256"), frozenset({"encrypt", "decrypt", "wrap", "unwrap"})),
    "RSA": (("2048", "3072", "4096"), frozenset({"sign", "verify", "encrypt", "decrypt"})),
    "EC": (("P-256", "P-384"), frozenset({"sign", "verify"})),
    "Ed25519": (("255",), frozenset({"sign", "verify"})),
}
PUBLIC_USAGES = frozenset({"verify", "encrypt"})


def _ok(**value: object) -> Result:
    from hsmnode.domain.state import Result

    return Result.success(**value)


def _err(code: ErrorCode, message: str) -> DomainError:
    return DomainError(code, message)


def check_attributes(
    key_type: str, size: str, object_class: str, usage: tuple[str, ...], has_secret: bool, has_public: bool
) -> None:
    """Raise INVALID_ARGUMENT naming the attribute that does not fit the key."""
    if key_type not in KEY_TYPES:
        raise _err(
            ErrorCode.INVALID_ARGUMENT, f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})"
        )
    sizes, usable = KEY_TYPES[key_type]
    if size not in sizes:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"{key_type} keys come in {', '.join(sizes)}, not {size!r}")
    expected = "secret" if key_type == "AES" else ("private", "public")
    if object_class not in expected:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"a {key_type} key cannot be a {object_class!r} object")
    unknown = sorted(set(usage) - set(USAGES))
    if unknown:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown usage flag(s) {', '.join(unknown)} (known: {', '.join(USAGES)})",
        )
    if object_class == "public":
        usable = usable & PUBLIC_USAGES
    wrong = sorted(set(usage) - usable)
    if wrong:
        raise _err(
            ErrorCode.INVALID_ARGUMENT,
            f"a {object_class} {key_type} key cannot carry usage {', '.join(wrong)} (possible: {', '.join(sorted(usable))})",
        )
    if has_secret != (object_class in ("secret", "private")) or has_public != (
        object_class in ("private", "public")
    ):
        raise _err(ErrorCode.INVALID_ARGUMENT, f"key material does not match a {object_class} object")


def key_create(state: HsmState, cmd: c.KeyCreate) -> Result:
    operation = "object.create.public" if cmd.object_class == "public" else "object.create"
    authorize(state, cmd.actor, operation, cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None:
        raise _err(ErrorCode.NOT_FOUND, f"no {cmd.container.replace(':', ' ', 1)}")
    if not _OBJECT_ID.fullmatch(cmd.object_id) or cmd.object_id in holder.objects:
        raise _err(ErrorCode.INVALID_ARGUMENT, f"object id {cmd.object_id!r} is malformed or taken")
    if not cmd.label or len(cmd.label) > 64 or not cmd.label.isprintable():
        raise _err(ErrorCode.INVALID_ARGUMENT, "key label must be 1-64 printable characters")
    if any(o.label == cmd.label for o in holder.objects.values()):
        raise _err(
            ErrorCode.ALREADY_EXISTS,
            f"{cmd.container.replace(':', ' ', 1)} already holds a key labelled '{cmd.label}'",
        )
    if cmd.origin not in ("generated", "imported", "unwrapped"):
        raise _err(ErrorCode.INVALID_ARGUMENT, f"unknown key origin {cmd.origin!r}")
    check_attributes(
        cmd.key_type, cmd.size, cmd.object_class, cmd.usage, bool(cmd.wrapped), bool(cmd.public_der)
    )
    gate(state, cmd.container, "generate")  # M-of-N: no key is created while AUTHORIZED
    if len(holder.objects) >= MAX_OBJECTS:
        raise _err(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"{cmd.container.replace(':', ' ', 1)} holds its maximum of {MAX_OBJECTS} objects",
        )
    holder.objects[cmd.object_id] = KeyObject(
        id=cmd.object_id,
        label=cmd.label,
        key_type=cmd.key_type,
        size=cmd.size,
        object_class=cmd.object_class,
        exportable=cmd.exportable and cmd.object_class != "public",
        usage=tuple(sorted(set(cmd.usage))),
        wrapped=cmd.wrapped,
        public_der=cmd.public_der,
        origin=cmd.origin,
        created_at=cmd.timestamp,
        created_by=cmd.actor,
    )
    key = holder.objects[cmd.object_id]
    # the answer to the request, also to a repeat of it after the key is gone: the key as created
    return _ok(
        object_id=cmd.object_id,
        key={
            "label": key.label,
            "key_type": key.key_type,
            "size": key.size,
            "object_class": key.object_class,
            "exportable": key.exportable,
            "usage": list(key.usage),
            "public_der": base64.b64encode(key.public_der).decode("ascii"),
            "origin": key.origin,
            "created_at": key.created_at,
            "container": cmd.container,
        },
        audit=f"{cmd.origin} {cmd.object_class} {cmd.key_type}-{cmd.size} key '{cmd.label}' ({cmd.object_id}) in {cmd.container}",
    )


def key_destroy(state: HsmState, cmd: c.KeyDestroy) -> Result:
    authorize(state, cmd.actor, "object.destroy", cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None or cmd.object_id not in holder.objects:
        raise _err(ErrorCode.NOT_FOUND, f"no key {cmd.object_id!r} in {cmd.container.replace(':', ' ', 1)}")
    gate(state, cmd.container, "destroy")
    key = holder.objects.pop(cmd.object_id)
    return _ok(audit=f"key '{key.label}' ({key.id}) destroyed in {cmd.container}")


HANDLERS: dict[type[c.Command], Handler] = {
    c.KeyCreate: key_create,
    c.KeyDestroy: key_destroy,
}

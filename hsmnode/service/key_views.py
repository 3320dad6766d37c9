"""What the key use cases hand out and pass around: the client's view of a key, a key located in its
container, and the associated data that binds wrapped material to one object of one container."""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import EXTRACTABLE_STORED_AS, KeyObject


class KeyView(NamedTuple):
    """A key as clients see it: attributes and public part, never the wrapped material. A NamedTuple,
    not a frozen dataclass: one per key of every GenerateBatch answer, built at a tenth of the cost
    (bench/prep_cost.py)."""

    id: str
    label: str
    key_type: str
    size: str
    object_class: str
    extractable: bool
    usage: tuple[str, ...]
    public_der: bytes
    origin: str
    created_at: int
    container: str
    blocked: bool

    @classmethod
    def of(cls, key: KeyObject, container: str) -> KeyView:
        return cls(
            key.id,
            key.label,
            key.key_type,
            key.size,
            key.object_class,
            key.extractable,
            key.usage,
            key.public_der,
            key.origin,
            key.created_at,
            container,
            key.blocked,
        )


class LocatedKey:
    """A key together with the container it lives in (the session's, or a granting owner's).

    `key` is the replicated state's own object, not a copy: apply replaces a key to change it and
    never changes one in place (domain/objects.py), so it may be read after the state lock is
    released. Its attributes read through (`located.label` is `located.key.label`)."""

    __slots__ = ("key", "container")

    def __init__(self, key: KeyObject, container: str) -> None:
        self.key = key
        self.container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self.key, name)


def aad_for(container: str, object_id: str) -> bytes:
    """The associated data that binds SMK-wrapped material to one object of one container."""
    return f"hsmnode-key/{container}/{object_id}".encode()


def described_view(object_id: str, key: object) -> KeyView:
    """The KeyView of a key a result describes (domain/keys.py `described`)."""
    if not isinstance(key, dict):  # a result recorded before results described the key
        raise DomainError(ErrorCode.FAILED_PRECONDITION, f"key {object_id} was created; list it to see it")
    return KeyView(
        object_id,
        key["label"],
        key["key_type"],
        key["size"],
        key["object_class"],
        key[EXTRACTABLE_STORED_AS],
        tuple(key["usage"]),
        base64.b64decode(key["public_der"]),
        key["origin"],
        key["created_at"],
        key["container"],
        bool(key.get("blocked", False)),
    )

"""What the bridge remembers: connections (one per application), PKCS#11 sessions, logins,
active operations, and the handle tables that keep slot and object numbers stable for the
life of the bridge process.

PKCS#11 (v2.40 §5.5, §6.7): the login state belongs to the application, so every session
an application has on a slot shares one cluster session (the SDK's PartitionSession,
whose token any member honours, so failover needs no new login). Closing the last
session on a slot logs the application out of it.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from hsmnode.client import KeyInfo, PartitionSession
from hsmnode.pkcs11.mechanisms import SignMechanism
from hsmnode.pkcs11.objects import P11Object


@dataclass
class Login:
    user_type: int  # CKU_*
    role: str  # PO, CO, CU, KRSO, KRCO
    session: PartitionSession


@dataclass
class Connection:
    """One application (one p11-kit-client connection)."""

    id: int
    initialized: bool = False
    logins: dict[int, Login] = field(default_factory=dict)  # slot id -> login


@dataclass
class Operation:
    """An active sign, verify, encrypt, decrypt, digest or wrap (PKCS#11 allows one of each kind)."""

    kind: str
    key: KeyInfo | None = None
    sdk_mechanism: str = ""
    spec: SignMechanism | None = None
    buffer: bytearray = field(default_factory=bytearray)
    hasher: Any = None  # hashlib object for multi-part hashed signing and digests
    multipart: bool = False
    aad: bytes = b""
    iv: bytes = b""
    answer: tuple[bytes, bytes] | None = None  # (input, output) kept for a caller's length query

    def hash_update(self, data: bytes) -> None:
        if self.hasher is None and self.spec is not None:
            self.hasher = hashlib.new(self.spec.hash_name.lower())
        self.hasher.update(data)


@dataclass
class Session:
    handle: int
    conn: Connection
    slot: int
    name: str  # partition name or keyring label
    kind: str  # "partition" | "keyring"
    rw: bool
    found: list[int] | None = None  # C_FindObjects results still to hand out
    ops: dict[str, Operation] = field(default_factory=dict)

    @property
    def container(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def login(self) -> Login | None:
        return self.conn.logins.get(self.slot)


class Handles:
    """Stable numbers for slots and objects, valid for the life of the bridge process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._slot_ids: dict[str, int] = {}
        self._object_ids: dict[tuple[str, str, int], int] = {}
        self._objects: dict[int, P11Object] = {}

    def slot(self, name: str, kind: str) -> int:
        with self._lock:
            key = f"{kind}:{name}"
            if key not in self._slot_ids:
                self._slot_ids[key] = len(self._slot_ids) + 1
            return self._slot_ids[key]

    def slot_name(self, slot_id: int) -> tuple[str, str] | None:
        """(kind, name) of a slot id seen before."""
        with self._lock:
            for key, number in self._slot_ids.items():
                if number == slot_id:
                    kind, _, name = key.partition(":")
                    return kind, name
        return None

    def object(self, obj: P11Object) -> int:
        with self._lock:
            number = self._object_ids.get(obj.ref)
            if number is None:
                number = next(self._numbers)
                self._object_ids[obj.ref] = number
            self._objects[number] = obj  # the newest view of the key
            return number

    def lookup(self, number: int) -> P11Object | None:
        with self._lock:
            return self._objects.get(number)

    def forget_key(self, container: str, key_id: str) -> None:
        with self._lock:
            for ref in [r for r in self._object_ids if r[0] == container and r[1] == key_id]:
                self._objects.pop(self._object_ids.pop(ref), None)

"""A container's keys: the dict by object id, with two derived views kept up to date by it.

    ObjectTable (a dict: object id -> KeyObject)
      label index    label -> object ids with that label     `by_label(label)`: O(1)
      content digest sum of sha256(JSON list of each key's fields) mod 2**256

Both views are derived state: rebuilt from the objects whenever a table is built (a snapshot
load, `Partition.from_data`), maintained by the dict's own mutators, never written to a
snapshot. Apply replaces a key to change it (`table[id] = dataclasses.replace(key, ...)`): a
KeyObject changed in place would escape both views, so nothing in `domain/apply` does that.

The content digest is a sum, not a chained hash: it does not depend on insertion order, so a
member that loaded a snapshot and one that applied the log reach the same value, and adding or
removing one key costs one hash (a few µs, in apply). A table built from a snapshot hashes its
keys when the digest is first asked for: a restart does not pay for it, the first status does.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, TypeVar

from hsmnode.domain.jsonform import compact_encoder


class Labelled(Protocol):
    """What a table holds (model.KeyObject; named structurally: model.py imports this module)."""

    @property
    def label(self) -> str: ...

    def digest_fields(self) -> list[Any]: ...


K = TypeVar("K", bound=Labelled)

_MODULUS = 1 << 256
_ENCODER = compact_encoder(sort_keys=False)  # built once, not per key (jsonform.py)


def object_hash(key: Labelled) -> int:
    """sha256 of the JSON list of the key's fields (model.KeyObject.digest_fields), as an integer."""
    encoded = _ENCODER(key.digest_fields()).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest(), "big")


class ObjectTable(dict[str, K]):
    """The keys of one partition or keyring by object id, with a label index and a content digest.

    Every dict mutator is overridden, so the views cannot drift from the dict's contents."""

    __slots__ = ("_labels", "_hashes", "_pending", "_sum")

    def __init__(self, items: Any = (), /) -> None:
        super().__init__()
        self._labels: dict[str, list[str]] = {}
        self._hashes: dict[str, int] = {}  # object id -> object_hash, for the keys already hashed
        self._pending: set[str] = set()  # keys of a table built from a snapshot, not hashed yet
        self._sum = 0
        pairs = items.items() if isinstance(items, dict) else items
        for object_id, key in pairs:  # a table being built (a snapshot load): hashed when first asked
            self._put(object_id, key)
            self._pending.add(object_id)

    # --- the views ------------------------------------------------------------------------------

    def by_label(self, label: str) -> list[K]:
        """The keys labelled `label` (apply keeps labels unique within a container; an old snapshot may
        hold duplicates, which callers refuse as ambiguous)."""
        return [dict.__getitem__(self, i) for i in self._labels.get(label, ())]

    def has_label(self, label: str) -> bool:
        return label in self._labels

    def content_digest(self) -> str:
        """Hex of the sum of every key's hash (mod 2**256) and the key count; "" for no keys."""
        for object_id in self._pending:
            value = object_hash(dict.__getitem__(self, object_id))
            self._hashes[object_id] = value
            self._sum = (self._sum + value) % _MODULUS
        self._pending.clear()
        return f"{len(self)}:{self._sum:064x}" if len(self) else ""

    # --- the mutators ---------------------------------------------------------------------------

    def _forget(self, object_id: str, key: K) -> None:
        ids = self._labels.get(key.label)
        if ids is not None:
            ids.remove(object_id)
            if not ids:
                del self._labels[key.label]
        if object_id in self._pending:
            self._pending.discard(object_id)
        else:
            self._sum = (self._sum - self._hashes.pop(object_id)) % _MODULUS

    def _put(self, object_id: str, key: K) -> None:
        old = dict.get(self, object_id)
        if old is not None:
            self._forget(object_id, old)
        dict.__setitem__(self, object_id, key)
        self._labels.setdefault(key.label, []).append(object_id)

    def __setitem__(self, object_id: str, key: K) -> None:
        """Add or replace a key (apply): hashed now, so a status call never pays for a burst of writes."""
        self._put(object_id, key)
        value = object_hash(key)
        self._hashes[object_id] = value
        self._sum = (self._sum + value) % _MODULUS

    def __delitem__(self, object_id: str) -> None:
        key = dict.__getitem__(self, object_id)
        dict.__delitem__(self, object_id)
        self._forget(object_id, key)

    _MISSING: Any = object()

    def pop(self, object_id: str, default: Any = _MISSING) -> Any:
        if object_id not in self:
            if default is ObjectTable._MISSING:
                raise KeyError(object_id)
            return default
        key = dict.__getitem__(self, object_id)
        del self[object_id]
        return key

    def popitem(self) -> tuple[str, K]:
        object_id = next(reversed(self))
        return object_id, self.pop(object_id)

    def clear(self) -> None:
        dict.clear(self)
        self._labels.clear()
        self._hashes.clear()
        self._pending.clear()
        self._sum = 0

    def update(self, *others: Any, **more: K) -> None:
        for other in others:
            for object_id, key in other.items() if isinstance(other, dict) else other:
                self[object_id] = key
        for object_id, key in more.items():
            self[object_id] = key

    def setdefault(self, object_id: str, key: K) -> K:
        if object_id not in self:
            self[object_id] = key
        return dict.__getitem__(self, object_id)

    def copy(self) -> ObjectTable[K]:
        return ObjectTable(self)

    def __reduce__(self) -> Any:  # pickles (and deep-copies) as its items; the views are rebuilt
        return (ObjectTable, (list(self.items()),))

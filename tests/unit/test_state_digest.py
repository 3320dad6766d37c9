"""The state digest (DIGEST_VERSION 2, domain/state.py) and the label index (domain/objects.py):
derived views that must always equal what a rebuild from the contents gives."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from hsmnode.domain import commands as c
from hsmnode.domain.model import KeyObject
from hsmnode.domain.objects import ObjectTable
from hsmnode.domain.state import HsmState
from tests.unit.test_keys_domain import OID, key_fields
from tests.unit.world import with_partition


def key(n: int, label: str = "", blocked: bool = False) -> KeyObject:
    return KeyObject(
        f"{OID}{n}",
        label or f"k{n}",
        "AES",
        "256",
        "secret",
        False,
        ("encrypt",),
        b"w",
        b"",
        "generated",
        1,
        "a",
        blocked,
    )


def test_a_keys_digest_fields_are_all_its_fields_in_definition_order() -> None:
    """digest_fields is written out for speed: a field added to KeyObject must be added there too."""
    k = key(1, blocked=True)
    generic = [
        v.hex() if isinstance(v, bytes) else list(v) if isinstance(v, tuple) else v
        for v in (getattr(k, f.name) for f in dataclasses.fields(KeyObject))
    ]
    assert k.digest_fields() == generic


def rebuilt(table: ObjectTable) -> ObjectTable:
    return ObjectTable(list(table.items()))


def test_the_digest_follows_every_key_change_and_equals_a_loaded_snapshots() -> None:
    w = with_partition()
    co = w.partition_session("pay", "CO")
    seen = {w.state.digest()}
    for n in (1, 2, 3):
        w.ok(c.KeyCreate, co, **key_fields(n))
        seen.add(w.state.digest())
    w.ok(c.KeyBlock, co, container="partition:pay", object_id=f"{OID}2", blocked=True)
    seen.add(w.state.digest())
    w.ok(c.KeyDestroy, co, container="partition:pay", object_id=f"{OID}1")
    seen.add(w.state.digest())
    assert len(seen) == 6  # every change shows
    assert HsmState.from_data(w.state.to_data()).digest() == w.state.digest()


def test_a_key_changed_the_same_way_on_two_paths_gives_one_digest() -> None:
    """Blocking then unblocking a key leaves the state, and so the digest, as before."""
    w = with_partition()
    co = w.partition_session("pay", "CO")
    w.ok(c.KeyCreate, co, **key_fields(1))
    objects = w.state.partitions["pay"].objects
    before = objects.content_digest()
    w.ok(c.KeyBlock, co, container="partition:pay", object_id=f"{OID}1", blocked=True)
    assert objects.content_digest() != before
    w.ok(c.KeyBlock, co, container="partition:pay", object_id=f"{OID}1", blocked=False)
    assert objects.content_digest() == before == rebuilt(objects).content_digest()


def test_the_digest_does_not_depend_on_the_order_keys_arrived_in() -> None:
    one = ObjectTable([(k.id, k) for k in (key(1), key(2), key(3))])
    two = ObjectTable([(k.id, k) for k in (key(3), key(1), key(2))])
    assert one.content_digest() == two.content_digest() != ObjectTable().content_digest()


def test_the_request_id_memory_is_in_the_digest() -> None:
    w = with_partition()
    a, b = w.state, HsmState.from_data(w.state.to_data())
    assert a.digest() == b.digest()
    seen = a.seen.popitem(last=False)
    a._digest = (-1, "")  # the audit count alone would not show this change (no apply made it)
    assert a.digest() != b.digest()
    a.seen[seen[0]] = seen[1]
    a.seen.move_to_end(seen[0], last=False)
    a._digest = (-1, "")
    assert a.digest() == b.digest()


def test_the_label_index_finds_keys_by_label_after_each_change() -> None:
    w = with_partition()
    co = w.partition_session("pay", "CO")
    w.ok(c.KeyCreate, co, **key_fields(1))
    w.ok(c.KeyCreate, co, **key_fields(2))
    objects = w.state.partitions["pay"].objects
    assert [k.id for k in objects.by_label("k2")] == [f"{OID}2"]
    w.ok(c.KeyBlock, co, container="partition:pay", object_id=f"{OID}2", blocked=True)
    assert objects.by_label("k2")[0].blocked
    w.ok(c.KeyDestroy, co, container="partition:pay", object_id=f"{OID}2")
    assert objects.by_label("k2") == [] and not objects.has_label("k2")
    loaded = HsmState.from_data(w.state.to_data()).partitions["pay"].objects
    assert [k.id for k in loaded.by_label("k1")] == [f"{OID}1"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "del", "pop", "replace"]), st.integers(1, 6), st.sampled_from("abc")
        ),
        max_size=30,
    )
)
def test_the_views_equal_a_rebuild_after_any_sequence_of_changes(ops: list[tuple[str, int, str]]) -> None:
    table = ObjectTable()
    for op, n, label in ops:
        object_id = f"{OID}{n}"
        if op == "set":
            table[object_id] = key(n, label)
        elif op == "del" and object_id in table:
            del table[object_id]
        elif op == "pop":
            table.pop(object_id, None)
        elif op == "replace" and object_id in table:
            table[object_id] = dataclasses.replace(table[object_id], blocked=not table[object_id].blocked)
        if n % 2:  # hash some keys early, leave others pending
            table.content_digest()
    fresh = rebuilt(table)
    assert table.content_digest() == fresh.content_digest()
    for label in "abc":
        assert sorted(k.id for k in table.by_label(label)) == sorted(k.id for k in fresh.by_label(label))

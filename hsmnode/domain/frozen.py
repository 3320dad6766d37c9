"""`maker(cls)`: a constructor for a frozen dataclass that is five times cheaper than its `__init__`.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__` (its own
`__setattr__` refuses): ~0.3 µs a field. apply builds several per command on every member (the
decoded command, its Result, the request id's memory entry, the audit record: 3-17 fields each),
which was a tenth of its cost. `maker(cls)(**values)` builds the same object (same fields, same
values, the instance dict in the same order, so equality, hashing, repr and pickling are those of
`cls(**values)`) by filling the instance dict at once, when `values` names every field in
definition order; otherwise it calls `cls(**values)`, which fills defaults and raises TypeError for a
wrong or missing field as usual.

A class with `__post_init__`, `__slots__` or a field outside `__init__` gets `cls` itself (nothing skipped).
tests/unit/test_frozen.py compares the two ways.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A callable taking `cls`'s fields as keywords that returns what `cls(**values)` returns."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        return cls
    fields = dataclasses.fields(cls)
    if not all(f.init for f in fields):
        return cls
    names = tuple(f.name for f in fields)
    new = object.__new__

    def make(**values: Any) -> T:
        if tuple(values) != names:  # a default to fill or a wrong field: the generated __init__
            return cls(**values)
        obj = new(cls)
        obj.__dict__.update(values)
        return obj

    return make

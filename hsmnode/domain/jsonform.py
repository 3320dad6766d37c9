"""Compact JSON encoders built once (sorted keys or not, no spaces, non-ASCII kept as is).

`json.JSONEncoder.encode` builds a new C encoder (and a dict for its circular-reference check) on
every call: for the small objects apply hashes on every member (a key's digest fields, an audit
record's body, a request id's first result) that set-up was a third of the encoding's cost. These
encoders build the C encoder once and call it directly, so their output is byte for byte what
`json.JSONEncoder(sort_keys=..., separators=(",", ":"), ensure_ascii=False).encode(data)` gives,
which the state digest and the audit chain depend on (tests/unit/test_jsonform.py).

`json_string` is the function those encoders write every string (and key) with, for the few fixed
shapes apply writes by hand (an audit record's hashed body, a request id's memory entry, a key's
digest fields): the same text as the encoders, at a third to a half of their cost for small
objects (each writer has a fallback to the encoder for a value of another type, and a test that
compares it with the encoder).

One difference: without the circular-reference check (one encoder is shared by every thread, and
its check would be shared state), a structure that contains itself raises RecursionError instead
of ValueError. Replicated data is plain acyclic data (dict, list, str, int, bool, None).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

Encoder = Callable[[Any], str]

# str -> its JSON string literal with the quotes, non-ASCII kept (json's C function; TypeError for a
# value that is not a str): what the C encoder of `compact_encoder` calls for every string and key
json_string: Callable[[str], str] = _encoder.encode_basestring


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_encoder(sort_keys: bool) -> Encoder:
    """data -> its compact JSON text (str), as `json.JSONEncoder(sort_keys=sort_keys,
    separators=(",", ":"), ensure_ascii=False).encode(data)`. Raises TypeError for a value JSON
    cannot hold; RecursionError for a structure that contains itself."""
    make = getattr(_encoder, "c_make_encoder", None)  # json's C accelerator (not in typeshed)
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
    encode = make(None, _not_serializable, _encoder.encode_basestring, None, ":", ",", sort_keys, False, True)
    join = "".join

    def encoded(data: Any) -> str:
        return join(encode(data, 0))

    return encoded

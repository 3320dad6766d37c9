"""The encoders built once (domain/jsonform.py) write exactly what json.JSONEncoder writes: the state
digest, the audit chain and the command bytes depend on it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hsmnode.domain.commands import canonical_json
from hsmnode.domain.jsonform import compact_encoder

SAMPLES: list[Any] = [
    {"b": 1, "a": [True, False, None], "c": {"z": "ü\u2603\U0001f600", "y": '\x00\x1f"\\/\n\t'}},
    ["req-1", "key.create", "client:aa#1/partition:pay:CO#2#0", {"ok": True, "code": None, "value": {}}],
    [1.5, -0.0, 1e300, 2**80, -7, 0, "", [], {}],
    {"label": "clé 🔑", "usage": ["encrypt", "decrypt"], "size": "256", "n": 12345678901234567890},
    "a lone string with \u00e9",
    42,
]


@pytest.mark.parametrize("sort_keys", [True, False])
@pytest.mark.parametrize("data", SAMPLES)
def test_same_text_as_json_encoder(data: Any, sort_keys: bool) -> None:
    expected = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode(data)
    assert compact_encoder(sort_keys)(data) == expected


def test_canonical_json_is_sorted_compact_utf8() -> None:
    data = {"b": "é", "a": [1, {"d": None, "c": False}]}
    assert canonical_json(data) == '{"a":[1,{"c":false,"d":null}],"b":"é"}'.encode()


def test_a_value_json_cannot_hold_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bytes is not JSON serializable"):
        compact_encoder(True)({"wrapped": b"raw"})

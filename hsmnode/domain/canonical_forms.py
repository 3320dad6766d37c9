"""The canonical JSON of the few fixed shapes apply hashes for every command, written out by hand.

Every applied command, on every member, hashes two or three small objects: its audit record's body (the
chain, audit.py), its request id's memory entry (the state digest's sum, state.py) and, for a key
it stores, the key's digest fields (objects.py). Through the C encoder of jsonform.py each costs a
few µs, most of it the encoder's own set-up per call; written out here with the encoder's own
string function (`json_string`) and the keys in sorted order, the same text costs about half of
the encoder's for an audit body and 10-20% less for a request id's entry (the encoder sorts the
keys of every dict it writes, and sets itself up per call).

The bytes must be the encoder's exactly (members of the old and new version compare digests; the
audit chain is verified by `hsmnode audit verify`): each writer raises TypeError for a value of
another type than its shape's (a bool where an int is, a str subclass is fine: json writes its
text), and its caller then uses the encoder. tests/unit/test_canonical_forms.py compares each
writer with the encoder on generated values; tests/unit/test_apply_golden.py pins main's bytes.

    cluster_body(...)        audit.hashed_body of a cluster chain record (the four later fields),
                             or of a member's key-usage record (and its count)
    result_text(result)      canonical JSON of Result.to_data(), the value of a KeyCreate by hand
    seen_text(rid, ...)      canonical JSON of [request id, command type, actor, Result.to_data()]

A key's digest fields (objects.py) are a list, which the C encoder writes without sorting anything:
written out by hand they cost more, so they stay with the encoder.
"""

from __future__ import annotations

from typing import Any

from hsmnode.domain.jsonform import compact_encoder, json_string
from hsmnode.domain.result import Result

_CANONICAL = compact_encoder(sort_keys=True)
_DESCRIBED = frozenset(
    ("blocked", "container", "created_at", "exportable", "key_type", "label")
    + ("object_class", "origin", "public_der", "size", "usage")
)
_KEY_CREATED = frozenset(("audit", "key", "object_id"))


def _int(value: Any) -> str:
    if type(value) is not int:  # a bool is json's true/false, an int subclass its own repr
        raise TypeError(f"expected int, got {type(value).__name__}")
    return int.__repr__(value)


def _bool(value: Any) -> str:
    if type(value) is not bool:
        raise TypeError(f"expected bool, got {type(value).__name__}")
    return "true" if value else "false"


def _strings(values: Any) -> str:
    """A JSON array of strings from a list or tuple of str."""
    if type(values) is not list and type(values) is not tuple:
        raise TypeError(f"expected a list of str, got {type(values).__name__}")
    s = json_string
    return "[" + ",".join([s(v) for v in values]) + "]"


_BODY = '{"actor":%s%s,"command":%s%s%s,"detail":%s%s%s,"outcome":%s,"request_id":%s,"seq":%s,"timestamp":%s}'


def cluster_body(
    seq: int,
    timestamp: int,
    actor: str,
    request_id: str,
    command: str,
    outcome: str,
    detail: str,
    category: str,
    container: str,
    key: str,
    member: str,
    count: int = 0,
) -> bytes:
    """audit.hashed_body(seq=..., ..., category=..., container=..., key=..., member=..., count=...):
    sorted keys, the later five only when set (`count`: a key-usage record's, usage_audit.py).
    TypeError for another type (fall back to hashed_body)."""
    if type(seq) is not int or type(timestamp) is not int:  # a bool is json's true, an int subclass its repr
        raise TypeError("seq and timestamp must be int")
    s = json_string
    return (
        _BODY
        % (
            s(actor),
            ',"category":' + s(category) if category else "",
            s(command),
            ',"container":' + s(container) if container else "",
            ',"count":' + _int(count) if count else "",
            s(detail),
            ',"key":' + s(key) if key else "",
            ',"member":' + s(member) if member else "",
            s(outcome),
            s(request_id),
            int.__repr__(seq),
            int.__repr__(timestamp),
        )
    ).encode("utf-8")


_DESCRIBED_TEXT = (
    '{"blocked":%s,"container":%s,"created_at":%s,"exportable":%s,"key_type":%s,"label":%s,'
    '"object_class":%s,"origin":%s,"public_der":%s,"size":%s,"usage":[%s]}'
)
_JSON_BOOL = {True: "true", False: "false"}


def _described_text(key: dict[str, Any]) -> str:
    """A key as apply/keys.py `described` gives it (its eleven fields), sorted."""
    blocked, created_at, exportable, usage = (
        key["blocked"],
        key["created_at"],
        key["exportable"],
        key["usage"],
    )
    if (
        key.keys() != _DESCRIBED
        or type(blocked) is not bool
        or type(created_at) is not int
        or type(exportable) is not bool
        or type(usage) is not list
    ):
        raise TypeError("not a described key")
    s = json_string
    return _DESCRIBED_TEXT % (
        _JSON_BOOL[blocked],
        s(key["container"]),
        int.__repr__(created_at),
        _JSON_BOOL[exportable],
        s(key["key_type"]),
        s(key["label"]),
        s(key["object_class"]),
        s(key["origin"]),
        s(key["public_der"]),
        s(key["size"]),
        ",".join([s(u) for u in usage]),
    )


def _value_text(value: dict[str, Any]) -> str:
    """A Result's value: a KeyCreate's (audit, key, object_id) by hand, any other by the encoder."""
    if value.keys() == _KEY_CREATED:
        key = value["key"]
        if type(key) is dict and key.keys() == _DESCRIBED:
            s = json_string
            return f'{{"audit":{s(value["audit"])},"key":{_described_text(key)},"object_id":{s(value["object_id"])}}}'
    return _CANONICAL(value)


def result_text(result: Result) -> str:
    """The canonical JSON (str) of `result.to_data()`: audit_detail only when set."""
    s = json_string
    code, value, ok = result.code, result.value, result.ok
    if type(value) is not dict or type(ok) is not bool:
        raise TypeError("a Result's value is a dict, its ok a bool")
    detail = '"audit_detail":' + s(result.audit_detail) + "," if result.audit_detail else ""
    code_text = s(code.value) if code else "null"
    return f'{{{detail}"code":{code_text},"message":{s(result.message)},"ok":{_JSON_BOOL[ok]},"value":{_value_text(value)}}}'


def seen_text(request_id: str, command_type: str, actor: str, result: Result) -> bytes:
    """canonical_json([request_id, command_type, actor, result.to_data()]) (state.py `_seen_hash`)."""
    s = json_string
    return f"[{s(request_id)},{s(command_type)},{s(actor)},{result_text(result)}]".encode()

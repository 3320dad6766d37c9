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

    cluster_body(...)        audit.hashed_body of a cluster chain record (the four later fields)
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
) -> bytes:
    """audit.hashed_body(seq=..., ..., category=..., container=..., key=..., member=...): sorted
    keys, the later four only when set. TypeError for another type (fall back to hashed_body)."""
    s = json_string
    return (
        '{"actor":'
        + s(actor)
        + (',"category":' + s(category) if category else "")
        + ',"command":'
        + s(command)
        + (',"container":' + s(container) if container else "")
        + ',"detail":'
        + s(detail)
        + (',"key":' + s(key) if key else "")
        + (',"member":' + s(member) if member else "")
        + ',"outcome":'
        + s(outcome)
        + ',"request_id":'
        + s(request_id)
        + ',"seq":'
        + _int(seq)
        + ',"timestamp":'
        + _int(timestamp)
        + "}"
    ).encode("utf-8")


def _described_text(key: dict[str, Any]) -> str:
    """A key as apply/keys.py `described` gives it (its eleven fields), sorted."""
    if key.keys() != _DESCRIBED or type(key["usage"]) is not list:
        raise TypeError("not a described key")
    s = json_string
    return (
        '{"blocked":'
        + _bool(key["blocked"])
        + ',"container":'
        + s(key["container"])
        + ',"created_at":'
        + _int(key["created_at"])
        + ',"exportable":'
        + _bool(key["exportable"])
        + ',"key_type":'
        + s(key["key_type"])
        + ',"label":'
        + s(key["label"])
        + ',"object_class":'
        + s(key["object_class"])
        + ',"origin":'
        + s(key["origin"])
        + ',"public_der":'
        + s(key["public_der"])
        + ',"size":'
        + s(key["size"])
        + ',"usage":'
        + _strings(key["usage"])
        + "}"
    )


def _value_text(value: dict[str, Any]) -> str:
    """A Result's value: a KeyCreate's (audit, key, object_id) by hand, any other by the encoder."""
    if value.keys() == _KEY_CREATED:
        key = value["key"]
        if type(key) is dict:
            s = json_string
            return (
                '{"audit":'
                + s(value["audit"])
                + ',"key":'
                + _described_text(key)
                + ',"object_id":'
                + s(value["object_id"])
                + "}"
            )
    return _CANONICAL(value)


def result_text(result: Result) -> str:
    """The canonical JSON (str) of `result.to_data()`: audit_detail only when set."""
    s = json_string
    code = result.code
    value = result.value
    if type(value) is not dict:
        raise TypeError("a Result's value is a dict")
    return (
        "{"
        + ('"audit_detail":' + s(result.audit_detail) + "," if result.audit_detail else "")
        + '"code":'
        + (s(code.value) if code else "null")
        + ',"message":'
        + s(result.message)
        + ',"ok":'
        + _bool(result.ok)
        + ',"value":'
        + _value_text(value)
        + "}"
    )


def seen_text(request_id: str, command_type: str, actor: str, result: Result) -> bytes:
    """canonical_json([request_id, command_type, actor, result.to_data()]) (state.py `_seen_hash`)."""
    s = json_string
    return (
        "[" + s(request_id) + "," + s(command_type) + "," + s(actor) + "," + result_text(result) + "]"
    ).encode("utf-8")

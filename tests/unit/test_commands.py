"""Canonical command encoding: round trip, stability, and strict decoding of bad bytes."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsmnode.domain import commands as c
from hsmnode.domain.errors import CommandDecodeError, ErrorCode


@c.command("test.bytes-and-lists")
@dataclasses.dataclass(frozen=True, kw_only=True)
class _BytesCommand(c.Command):
    blob: bytes
    names: tuple[str, ...]
    count: int
    flag: bool
    label: str | None


def note(**overrides: object) -> c.AuditNote:
    fields: dict[str, object] = {
        "actor": "client:admin",
        "request_id": "r-1",
        "timestamp": 1_700_000_000_000,
        "text": "hi",
    }
    fields.update(overrides)
    return c.AuditNote(**fields)  # type: ignore[arg-type]


@given(
    text=st.text(max_size=200),
    actor=st.text(min_size=1, max_size=40),
    timestamp=st.integers(min_value=0, max_value=2**53),
)
def test_encoding_round_trip_is_identity(text: str, actor: str, timestamp: int) -> None:
    cmd = note(text=text, actor=actor, timestamp=timestamp)
    assert c.decode(cmd.encode()) == cmd


@given(
    blob=st.binary(max_size=64),
    names=st.lists(st.text(max_size=10), max_size=4),
    count=st.integers(min_value=-(2**40), max_value=2**40),
    flag=st.booleans(),
    label=st.none() | st.text(max_size=10),
)
def test_round_trip_of_bytes_lists_and_optionals(
    blob: bytes, names: list[str], count: int, flag: bool, label: str | None
) -> None:
    cmd = _BytesCommand(
        actor="a",
        request_id="r",
        timestamp=1,
        blob=blob,
        names=tuple(names),
        count=count,
        flag=flag,
        label=label,
    )
    assert c.decode(cmd.encode()) == cmd


def test_encoding_is_canonical_sorted_compact_json() -> None:
    raw = note().encode()
    assert raw == (
        b'{"actor":"client:admin","body":{"text":"hi"},"request_id":"r-1",'
        b'"timestamp":1700000000000,"type":"audit.note","v":1}'
    )


def test_bytes_travel_as_base64() -> None:
    cmd = _BytesCommand(
        actor="a", request_id="r", timestamp=1, blob=b"\x00\xff", names=(), count=0, flag=False, label=None
    )
    assert json.loads(cmd.encode())["body"]["blob"] == base64.b64encode(b"\x00\xff").decode()


def _envelope(**overrides: object) -> bytes:
    data = json.loads(note().encode())
    data.update(overrides)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[1,2]", "must be a JSON object"),
        (_envelope(v=2), "unsupported command encoding version 2"),
        (_envelope(v=True), "unsupported command encoding version"),
        (_envelope(type="user.frobnicate"), "unknown command type 'user.frobnicate'"),
        (_envelope(extra=1), "unknown command field(s): extra"),
        (_envelope(body={"text": "x", "colour": "red"}), "audit.note: unknown field(s): colour"),
        (_envelope(body={}), "audit.note: missing field(s): text"),
        (_envelope(body={"text": 5}), "audit.note.text must be str, got int"),
        (_envelope(body=[]), "body must be a JSON object"),
        (_envelope(timestamp="now"), "timestamp must be int"),
        (_envelope(timestamp=True), "timestamp must be an integer, got a boolean"),
        (_envelope(actor=None), "actor must be str"),
        (_envelope(request_id=""), "request_id must be 1-128 printable characters"),
        (_envelope(request_id="x" * 129), "request_id must be 1-128 printable characters"),
    ],
)
def test_malformed_commands_are_refused_with_a_reason(payload: bytes, message: str) -> None:
    with pytest.raises(CommandDecodeError) as info:
        c.decode(payload)
    assert message in info.value.message
    assert info.value.code is ErrorCode.INVALID_ARGUMENT


def test_missing_envelope_field_is_named() -> None:
    data = json.loads(note().encode())
    del data["actor"]
    with pytest.raises(CommandDecodeError, match="lacks field"):
        c.decode(json.dumps(data).encode())


def test_invalid_base64_is_refused() -> None:
    cmd = _BytesCommand(
        actor="a", request_id="r", timestamp=1, blob=b"x", names=(), count=0, flag=False, label=None
    )
    data = json.loads(cmd.encode())
    data["body"]["blob"] = "***"
    with pytest.raises(CommandDecodeError, match="blob is not valid base64"):
        c.decode(json.dumps(data).encode())


def test_oversize_command_is_refused() -> None:
    with pytest.raises(CommandDecodeError, match="limit"):
        c.decode(b" " * (c.MAX_COMMAND_BYTES + 1))


def test_non_bytes_payload_is_refused() -> None:
    with pytest.raises(CommandDecodeError, match="must be bytes"):
        c.decode("text")  # type: ignore[arg-type]

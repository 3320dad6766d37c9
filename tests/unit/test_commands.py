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


def _reference(cmd: c.Command) -> bytes:
    """The canonical form by its definition: canonical_json of the envelope and the body as a dict."""
    body = {c.logged_name(f): getattr(cmd, f.name) for f in dataclasses.fields(cmd)}
    for name in ("actor", "request_id", "timestamp"):
        del body[name]

    def plain(value: object) -> object:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return c.canonical_json(
        {
            "v": c.ENCODING_VERSION,
            "type": cmd.TYPE,
            "actor": cmd.actor,
            "request_id": cmd.request_id,
            "timestamp": cmd.timestamp,
            "body": {k: plain(v) for k, v in body.items()},
        }
    )


@given(
    blob=st.binary(max_size=64),
    names=st.lists(st.text(max_size=10), max_size=4),
    count=st.integers(min_value=-(2**70), max_value=2**70),
    flag=st.booleans(),
    label=st.none() | st.text(max_size=20),
    actor=st.text(min_size=1, max_size=40),
)
def test_encode_writes_what_canonical_json_of_the_command_writes(
    blob: bytes, names: list[str], count: int, flag: bool, label: str | None, actor: str
) -> None:
    """Field by field (command_codec._json_text), the bytes are those of the sorted-key C encoder,
    for any text (quotes, control characters, non-ASCII, lone surrogates) and any integer; the
    payload a proposer builds without the command (encode_fields) is the same."""
    fields = {"blob": blob, "names": tuple(names), "count": count, "flag": flag, "label": label}
    cmd = _BytesCommand(actor=actor, request_id='r"\\\n', timestamp=count, **fields)  # type: ignore[arg-type]
    assert cmd.encode() == _reference(cmd)
    assert c.encode_fields(_BytesCommand, actor, 'r"\\\n', count, fields) == cmd.encode()


def test_encode_of_every_registered_command_matches_its_definition() -> None:
    """Every command the code defines, with the values of the old log (test_wire_compat) and
    each of its fields at its default."""
    from tests.unit.test_wire_compat import old_commands

    for payload in old_commands():
        cmd = c.decode(payload)
        assert cmd.encode() == _reference(cmd) == payload
        fields = {f.name: getattr(cmd, f.name) for f in dataclasses.fields(cmd)}
        actor, request_id, timestamp = fields.pop("actor"), fields.pop("request_id"), fields.pop("timestamp")
        assert c.encode_fields(type(cmd), actor, request_id, timestamp, fields) == payload


def test_encode_fields_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(TypeError, match="unexpected field"):
        c.encode_fields(c.AuditNote, "a", "r", 1, {"text": "hi", "colour": "red"})
    with pytest.raises(TypeError, match="missing field: text"):
        c.encode_fields(c.AuditNote, "a", "r", 1, {})
    assert (
        c.encode_fields(c.KeyCreate, "a", "r", 1, _key_fields())
        == c.KeyCreate(actor="a", request_id="r", timestamp=1, **_key_fields()).encode()
    )


def _key_fields() -> dict[str, object]:
    return {
        "container": "partition:pay",
        "object_id": "0" * 32,
        "label": "k",
        "key_type": "AES",
        "size": "256",
        "object_class": "secret",
        "extractable": False,
        "usage": ("encrypt",),
        "wrapped": b"\x00" * 60,
        "public_der": b"",
        "origin": "generated",
    }


@c.command("test.defaults")
@dataclasses.dataclass(frozen=True, kw_only=True)
class _DefaultsCommand(c.Command):
    name: str
    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)
    count: int = 3


def test_encode_fields_fills_in_defaults_as_the_constructor_does() -> None:
    for fields in ({"name": "n"}, {"name": "n", "count": 4}, {"name": "n", "tags": ("a", "b")}):
        expected = _DefaultsCommand(actor="a", request_id="r", timestamp=1, **fields).encode()  # type: ignore[arg-type]
        assert c.encode_fields(_DefaultsCommand, "a", "r", 1, fields) == expected

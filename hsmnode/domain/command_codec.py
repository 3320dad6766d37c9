"""The codec of commands: their base class, the registry of wire names, and the canonical,
versioned encoding a command has in the Raft log (the envelope is drawn in commands.py).

Every member decodes exactly the same command from the same bytes, and the bytes never depend on
Python class layout or pickle: sorted-key compact JSON (UTF-8), `bytes` fields as standard base64
strings, a field renamed in code under the name it was logged under (`stored_as`). Decoding is
strict: an unknown version, type, envelope key or body field, a missing field or a wrong type is a
`CommandDecodeError` naming the problem. The Raft log, snapshots and the audit hash chain depend
on these bytes (tests/unit/test_commands.py, test_wire_compat.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from hsmnode.domain.errors import CommandDecodeError
from hsmnode.domain.frozen import maker
from hsmnode.domain.jsonform import compact_encoder

ENCODING_VERSION = 1
MAX_COMMAND_BYTES = 1 << 20
_ENVELOPE_KEYS = frozenset({"v", "type", "actor", "request_id", "timestamp", "body"})
_REQUEST_ID_MAX = 128


@dataclasses.dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every replicated mutation.

    `actor` is who asks (authorization is decided in apply from it), `request_id`
    is the client's idempotency key, `timestamp` is milliseconds since the epoch
    as stamped by the proposing member (apply never reads a clock).
    """

    TYPE: ClassVar[str] = ""

    actor: str
    request_id: str
    timestamp: int

    def encode(self) -> bytes:
        return encode(self)

    def body(self) -> dict[str, Any]:
        return {logged: _to_json(getattr(self, name)) for name, logged, _, _ in _plan(type(self)).fields}


def stored_as(name: str) -> Any:
    """A field renamed in code that keeps `name` in the log: `extractable: bool = stored_as("exportable")`.

    The command bytes, and so the log and every member's digest, stay what the code before the
    rename wrote (members of both versions agree during a rolling upgrade)."""
    return dataclasses.field(metadata={"stored_as": name})


def logged_name(f: dataclasses.Field[Any]) -> str:
    """The name a command field carries in the log."""
    return str(f.metadata.get("stored_as", f.name))


CommandT = TypeVar("CommandT", bound=type[Command])
_REGISTRY: dict[str, type[Command]] = {}


def command(type_name: str) -> Callable[[CommandT], CommandT]:
    """Register a command class under its stable wire name."""

    def register(cls: CommandT) -> CommandT:
        if type_name in _REGISTRY:
            raise ValueError(f"command type {type_name!r} registered twice")
        cls.TYPE = type_name
        _REGISTRY[type_name] = cls
        return cls

    return register


def command_types() -> dict[str, type[Command]]:
    return dict(_REGISTRY)


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


_CANONICAL = compact_encoder(sort_keys=True)


def canonical_json(data: Any) -> bytes:
    """The one canonical JSON form used for commands, audit records and digests (json.dumps with
    sorted keys, no spaces, UTF-8; one C encoder built once: json.dumps builds one per call,
    jsonform.py)."""
    return _CANONICAL(data).encode("utf-8")


def encode(cmd: Command) -> bytes:
    if not cmd.TYPE:
        raise TypeError(f"{type(cmd).__name__} is not a registered command")
    return canonical_json(
        {
            "v": ENCODING_VERSION,
            "type": cmd.TYPE,
            "actor": cmd.actor,
            "request_id": cmd.request_id,
            "timestamp": cmd.timestamp,
            "body": cmd.body(),
        }
    )


def decode(payload: bytes) -> Command:
    """Bytes → command, or `CommandDecodeError` naming exactly what is wrong. Knows the types
    registered so far: import hsmnode.domain.commands (it imports every command module)."""
    if not isinstance(payload, (bytes, bytearray)):  # noqa: UP038 (a tuple: the union is built per call)
        raise CommandDecodeError(f"command payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandDecodeError(f"command is {len(payload)} bytes; the limit is {MAX_COMMAND_BYTES}")
    try:
        text = payload.decode("utf-8")
        data = _whole_object(text)
        if data is None:  # not one JSON object from the first byte to the last: json.loads says why
            data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandDecodeError(f"command bytes are not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandDecodeError("command must be a JSON object")
    if data.keys() != _ENVELOPE_KEYS:  # one comparison on the way every entry takes
        unknown = sorted(set(data) - _ENVELOPE_KEYS)
        if unknown:
            raise CommandDecodeError(f"unknown command field(s): {', '.join(unknown)}")
        missing = sorted(_ENVELOPE_KEYS - set(data))
        raise CommandDecodeError(f"command lacks field(s): {', '.join(missing)}")
    if data["v"] != ENCODING_VERSION or isinstance(data["v"], bool):
        raise CommandDecodeError(
            f"unsupported command encoding version {data['v']!r} (this member reads version {ENCODING_VERSION})"
        )
    type_name = data["type"]
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise CommandDecodeError(f"unknown command type {type_name!r}")
    actor, request_id, timestamp = data["actor"], data["request_id"], data["timestamp"]
    if type(actor) is not str or type(request_id) is not str or type(timestamp) is not int:
        actor = _check("actor", actor, str)  # the usual case skips these calls; they name the problem
        request_id = _check("request_id", request_id, str)
        timestamp = _check("timestamp", timestamp, int)
    validate_request_id(request_id)
    body = data["body"]
    if not isinstance(body, dict):
        raise CommandDecodeError(f"{type_name}: body must be a JSON object")
    plan = _plan(cls)
    if not plan.expected.issuperset(body):
        unknown = sorted(set(body) - plan.expected)
        raise CommandDecodeError(f"{type_name}: unknown field(s): {', '.join(unknown)}")
    # A field added later carries a default: entries written before it decode with the default.
    if len(body) != len(plan.fields) and not plan.required.issubset(body):  # equal: every field is there
        missing = sorted(plan.required - set(body))
        raise CommandDecodeError(f"{type_name}: missing field(s): {', '.join(missing)}")
    values: dict[str, Any] = {"actor": actor, "request_id": request_id, "timestamp": timestamp}
    if len(body) == len(plan.fields):  # every field present (the usual case): no membership tests
        for name, logged, convert, label in plan.fields:
            value = body[logged]
            # a str field holding a str (most fields of most commands): no converter call
            values[name] = value if convert is _str and type(value) is str else convert(label, value)
    else:
        for name, logged, convert, label in plan.fields:
            if logged in body:
                values[name] = convert(label, body[logged])
    make = _MAKERS.get(cls)
    if make is None:
        make = _MAKERS[cls] = maker(cls)
    return make(**values)


# json.loads's own scanner (C), without its wrappers' checks (not in typeshed)
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def _whole_object(text: str) -> Any:
    """The JSON object `text` is when it starts with "{" and the object ends at its last character
    (what every encoded command is): what json.loads(text) returns for it. None for anything else,
    which json.loads then parses or refuses with its own message."""
    if text[:1] != "{":
        return None
    try:
        data, end = _SCAN(text, 0)
    except (StopIteration, ValueError):
        return None
    return data if end == len(text) else None


def validate_request_id(request_id: str) -> None:
    if not request_id or len(request_id) > _REQUEST_ID_MAX or not request_id.isprintable():
        raise CommandDecodeError(
            f"request_id must be 1-{_REQUEST_ID_MAX} printable characters, got {request_id!r}"
        )


Converter = Callable[[str, Any], Any]  # (the field's name in messages, its JSON value) -> the value


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How a command class's body is encoded and decoded, worked out once per class (apply decodes
    every entry on every member: the dataclass fields and type hints are not looked up per entry).
    `fields`: (field name, logged name, converter, "<type>.<logged name>" for messages) of the body;
    `expected`: every logged name; `required`: those without a default."""

    fields: tuple[tuple[str, str, Converter, str], ...]
    expected: frozenset[str]
    required: frozenset[str]


_PLANS: dict[type, _Plan] = {}
# a command class's constructor for decode, without the frozen __init__'s per-field cost (frozen.py)
_MAKERS: dict[type, Callable[..., Command]] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        body = [f for f in dataclasses.fields(cls) if f.name not in ("actor", "request_id", "timestamp")]
        plan = _PLANS[cls] = _Plan(
            fields=tuple(
                (
                    f.name,
                    logged_name(f),
                    _converter(hints[f.name]),
                    f"{getattr(cls, 'TYPE', '')}.{logged_name(f)}",
                )
                for f in body
            ),
            expected=frozenset(logged_name(f) for f in body),
            required=frozenset(
                logged_name(f)
                for f in body
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
        )
    return plan


def _check(name: str, value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, bool):
        raise CommandDecodeError(f"{name} must be an integer, got a boolean")
    if not isinstance(value, kind):
        raise CommandDecodeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _converter(hint: Any) -> Converter:
    """The function that checks and converts a JSON value to a field of type `hint`: str, int, bool,
    bytes (base64 text), `X | None`, `tuple[X, ...]`. Raises TypeError for another type (a
    programming error, found when the class is first encoded or decoded)."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        options = typing.get_args(hint)
        (inner,) = [o for o in options if o is not type(None)]
        convert_inner = _converter(inner)
        nullable = type(None) in options

        def optional(name: str, value: Any) -> Any:
            return None if value is None and nullable else convert_inner(name, value)

        return optional
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(hint)
        convert_item = _converter(inner)

        def items(name: str, value: Any) -> Any:
            if not isinstance(value, list):
                raise CommandDecodeError(f"{name} must be a list, got {type(value).__name__}")
            if inner is str and all(type(v) is str for v in value):  # the common case: no names built
                return tuple(value)
            return tuple(convert_item(f"{name}[{i}]", v) for i, v in enumerate(value))

        return items
    if hint is bytes:
        return _from_base64
    if hint is str:
        return _str
    if hint in (int, bool):
        return lambda name, value: _check(name, value, hint)
    raise TypeError(f"unsupported command field type {hint!r}")


def _str(name: str, value: Any) -> Any:
    if type(value) is str:  # the common case, without _check's two isinstance calls
        return value
    return _check(name, value, str)


def _from_base64(name: str, value: Any) -> bytes:
    if value == "" and type(value) is str:  # a secret key's public_der, a public key's wrapped value
        return b""
    if not isinstance(value, str):
        raise CommandDecodeError(f"{name} must be base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CommandDecodeError(f"{name} is not valid base64") from None

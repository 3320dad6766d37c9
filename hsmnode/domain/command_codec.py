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
import operator
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
    """`cmd`'s canonical bytes: `canonical_json` of {"v", "type", "actor", "request_id", "timestamp",
    "body": the fields by logged name}, written field by field (`_json_text`) in the key order
    sort_keys gives, byte for byte what canonical_json of that dict gives (tests/unit/test_commands.py
    compares the two): a proposal is encoded on the request's thread, and the generic walk
    (a dict of the body, then the C encoder) was a quarter of a key creation's CPU there (bench/prep_cost.py)."""
    if not cmd.TYPE:
        raise TypeError(f"{type(cmd).__name__} is not a registered command")
    plan = _plan(type(cmd))
    return _envelope(cmd.TYPE, cmd.actor, cmd.request_id, cmd.timestamp, plan, plan.values(cmd))


def encode_fields(
    cls: type[Command], actor: str, request_id: str, timestamp: int, fields: dict[str, Any]
) -> bytes:
    """`cls(actor=..., request_id=..., timestamp=..., **fields).encode()` without building the command:
    the same bytes, the same TypeError for a field `cls` does not have or a required one left out.
    For a proposer that only needs the payload (GenerateBatch: one per key created)."""
    if not cls.TYPE:
        raise TypeError(f"{cls.__name__} is not a registered command")
    plan = _plan(cls)
    if not plan.names.issuperset(fields):
        raise TypeError(
            f"{cls.__name__} got unexpected field(s): {', '.join(sorted(set(fields) - plan.names))}"
        )
    if len(fields) == len(plan.names):  # every field given (KeyCreate's prepare): one C call
        return _envelope(cls.TYPE, actor, request_id, timestamp, plan, plan.items(fields))
    values = []
    for name, default in plan.defaults:
        if name in fields:
            values.append(fields[name])
        elif default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__} missing field: {name}")
        else:
            values.append(default() if name in plan.factories else default)
    return _envelope(cls.TYPE, actor, request_id, timestamp, plan, values)


def _envelope(
    type_name: str, actor: Any, request_id: Any, timestamp: Any, plan: _Plan, values: typing.Iterable[Any]
) -> bytes:
    quoted, text = _quoted, _json_text  # a str (most fields) without the call to _json_text
    body = ",".join(
        [
            key + (quoted(value) if type(value) is str else text(value))
            for key, value in zip(plan.keys, values, strict=True)
        ]
    )
    return (
        f'{{"actor":{quoted(actor) if type(actor) is str else text(actor)},"body":{{{body}}},'
        f'"request_id":{quoted(request_id) if type(request_id) is str else text(request_id)},'
        f'"timestamp":{text(timestamp)},"type":{quoted(type_name)},"v":{ENCODING_VERSION}}}'
    ).encode()


_quoted = json.encoder.encode_basestring  # the C encoder's own string form (ensure_ascii off)


def _json_text(value: Any) -> str:
    """`value` as canonical_json writes it inside a command (after `_to_json`): the common types
    directly, anything else through the C encoder itself."""
    kind = type(value)
    if kind is str:
        return _quoted(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is bytes:
        return f'"{base64.b64encode(value).decode("ascii")}"'
    if value is None:
        return "null"
    if kind is tuple and all(type(v) is str for v in value):
        return f"[{','.join([_quoted(v) for v in value])}]"
    return _CANONICAL(_to_json(value))


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
    # encoding: the body's fields sorted by logged name (canonical key order), each key as written
    # ('"label":'), a getter of their values in that order, (field name, default or MISSING) in that
    # order, the names of the fields whose default is a factory, and every field name
    keys: tuple[str, ...] = ()
    values: Callable[[Any], typing.Sequence[Any]] = lambda _: ()
    items: Callable[[Any], typing.Sequence[Any]] = lambda _: ()
    defaults: tuple[tuple[str, Any], ...] = ()
    factories: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()


_PLANS: dict[type, _Plan] = {}
# a command class's constructor for decode, without the frozen __init__'s per-field cost (frozen.py)
_MAKERS: dict[type, Callable[..., Command]] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        body = [f for f in dataclasses.fields(cls) if f.name not in ("actor", "request_id", "timestamp")]
        ordered = sorted(body, key=logged_name)
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
            keys=tuple(f"{_json_text(logged_name(f))}:" for f in ordered),
            values=_getter(tuple(f.name for f in ordered), getattr, operator.attrgetter),
            items=_getter(tuple(f.name for f in ordered), operator.getitem, operator.itemgetter),
            defaults=tuple(
                (f.name, f.default if f.default_factory is dataclasses.MISSING else f.default_factory)
                for f in ordered
            ),
            factories=frozenset(f.name for f in ordered if f.default_factory is not dataclasses.MISSING),
            names=frozenset(f.name for f in body),
        )
    return plan


def _getter(
    names: tuple[str, ...], one: Callable[[Any, str], Any], many: Callable[..., Callable[[Any], Any]]
) -> Callable[[Any], typing.Sequence[Any]]:
    """obj -> its values `names` (attributes: getattr, attrgetter; or keys: getitem, itemgetter), in
    order, as a tuple (one C call)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        (name,) = names
        return lambda obj: (one(obj, name),)
    return many(*names)


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

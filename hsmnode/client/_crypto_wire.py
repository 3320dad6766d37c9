"""CryptoBatch messages written as bytes, without a protobuf object per operation (crypto_stream.proto).

The coalescer keeps each operation as its request's wire form (a serialized SignRequest, ...: its
*body*) and writes a batch by joining bytes: building CryptoOp messages and copying requests into
them cost ~5 µs per operation in Python, joining bytes ~1.5 µs. Protobuf's wire format
(protobuf.dev/programming-guides/encoding) is a sequence of (tag, value) records in any order; a
message field is a length-delimited record holding the message's own records, so

    CryptoBatch = batch_id | session | min_index | ops...     ops = [tag 3, length, CryptoOp]
    CryptoOp    = id | [tag sign/verify/encrypt/decrypt, length, body] | timeout_ms

Field numbers and wire types are read from the generated descriptors at import: a renumbered
field follows, a field whose type changed fails the import loudly (tests/unit/test_crypto_wire.py
compares these bytes with what the protobuf library writes and parses).

    bodies(template, **per_item)   the bodies of many requests alike but for their bytes fields
    batch_head(batch_id, session, min_index)   a batch's fields before its operations
    op_record(op_id, field, body, timeout)     one CryptoOp record of the `ops` field, as pieces
    REQUESTS / FIELDS                          Keys RPC -> request class / CryptoOp field name
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hsmnode.pb import crypto_stream_pb2, keys_pb2

# the Keys RPCs a batch carries: their request class and their field in CryptoOp / CryptoResult
REQUESTS: dict[str, Any] = {
    "Sign": keys_pb2.SignRequest,
    "Verify": keys_pb2.VerifyRequest,
    "Encrypt": keys_pb2.EncryptRequest,
    "Decrypt": keys_pb2.DecryptRequest,
}
FIELDS = {"Sign": "sign", "Verify": "verify", "Encrypt": "encrypt", "Decrypt": "decrypt"}

_VARINT, _LENGTH = 0, 2  # wire types
# descriptor.proto's FieldDescriptorProto.Type values -> their wire type
_WIRE_TYPE = {
    4: _VARINT,
    13: _VARINT,
    9: _LENGTH,
    12: _LENGTH,
    11: _LENGTH,
}  # uint64 uint32 string bytes message
_SMALL = [bytes((n,)) for n in range(128)]


def varint(n: int) -> bytes:
    """`n` (≥ 0) as a protobuf base-128 varint."""
    if n < 128:
        return _SMALL[n]
    if n < 16384:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(message: Any, name: str, wire_type: int) -> bytes:
    """The tag of field `name` of `message`; RuntimeError if its type is not of `wire_type`."""
    field = message.DESCRIPTOR.fields_by_name[name]
    if _WIRE_TYPE.get(field.type) != wire_type or field.is_repeated:
        raise RuntimeError(f"{message.DESCRIPTOR.full_name}.{name} changed type: update {__name__}")
    return varint(field.number << 3 | wire_type)


_BATCH, _OP = crypto_stream_pb2.CryptoBatch, crypto_stream_pb2.CryptoOp
_BATCH_ID = _tag(_BATCH, "batch_id", _VARINT)
_SESSION = _tag(_BATCH, "session", _LENGTH)
_MIN_INDEX = _tag(_BATCH, "min_index", _VARINT)
_OPS = crypto_stream_pb2.CryptoBatch.DESCRIPTOR.fields_by_name["ops"].number << 3 | _LENGTH
OPS_TAG = varint(_OPS)
_OP_ID = _tag(_OP, "id", _VARINT)
_TIMEOUT = _tag(_OP, "timeout_ms", _VARINT)
OP_TAGS = {method: _tag(_OP, field, _LENGTH) for method, field in FIELDS.items()}


def bodies(template: Any, **per_item: Sequence[bytes]) -> list[bytes]:
    """The wire form of one request per item: `template`'s fields, and item i's value of each
    bytes field named in `per_item` (all sequences as long as the first; an empty value is left
    out, as protobuf leaves out a field at its default). E.g. the bodies of SignRequests for a
    list of data: bodies(SignRequest(key=k, mechanism=m), data=items)."""
    common = template.SerializeToString()
    columns = [(_tag(type(template), name, _LENGTH), values) for name, values in per_item.items()]
    if len(columns) == 1:  # the usual case (sign_many, encrypt_many): one column, items often of one size
        tag, values = columns[0]
        heads: dict[int, bytes] = {}  # value length -> the body up to the value
        bodies = []
        for v in values:
            n = len(v)
            head = heads.get(n)
            if head is None:
                head = heads[n] = common + tag + varint(n) if n else common
            bodies.append(head + v)
        return bodies
    count = len(columns[0][1])
    out = []
    for i in range(count):
        pieces = [common]
        for tag, values in columns:
            v = values[i]
            if v:
                pieces += (tag, varint(len(v)), v)
        out.append(b"".join(pieces))
    return out


def batch_head(batch_id: int, session: str, min_index: int) -> list[bytes]:
    """A CryptoBatch's fields but its operations, as pieces to join."""
    token = session.encode()
    head = [_BATCH_ID, varint(batch_id)]
    if token:
        head += (_SESSION, varint(len(token)), token)
    if min_index:
        head += (_MIN_INDEX, varint(min_index))
    return head


def timeout_field(timeout_ms: int) -> bytes:
    """CryptoOp.timeout_ms's record (shared by the operations of one caller in a batch)."""
    return _TIMEOUT + varint(timeout_ms)


def op_record(op_id: int, op_tag: bytes, body: bytes, timeout: bytes) -> tuple[bytes, ...]:
    """One element of CryptoBatch.ops as pieces to join: the CryptoOp with `op_id`, the request
    `body` under `op_tag` (OP_TAGS[method]) and its `timeout` (timeout_field)."""
    op_id_bytes = varint(op_id)
    body_length = varint(len(body))
    size = len(_OP_ID) + len(op_id_bytes) + len(op_tag) + len(body_length) + len(body) + len(timeout)
    return (OPS_TAG, varint(size), _OP_ID, op_id_bytes, op_tag, body_length, body, timeout)


def request(method: str, body: bytes) -> Any:
    """The request message a body is the wire form of (for the unary RPC)."""
    return REQUESTS[method].FromString(body)

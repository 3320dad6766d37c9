"""A CryptoStream batch's answer (crypto_stream.proto CryptoResults) written as bytes, without a
protobuf object per operation: the member's side of what the SDK does for its batches
(client/_crypto_wire.py). Building a CryptoResult and setting its answer cost ~3.5 µs per operation
in Python, joining its wire form ~2.4 µs, and the message then needs no serializing: at 256
AES-GCM operations per batch that is ~10% of the member's CPU per operation.

Protobuf's wire format (protobuf.dev/programming-guides/encoding) is (tag, value) records in any
order; a message field is a length-delimited record holding the message's records, so

    CryptoResults = batch_id | results... | applied_index     results = [tag 4, length, CryptoResult]
    CryptoResult  = id | [tag sign/verify/encrypt/decrypt, length, SignResponse...]

An answered operation is written here; an operation's error (rare) is a CryptoResult message
serialized by the protobuf library and joined as it is. Field numbers and wire types are read from
the generated descriptors at import: a field whose type changed fails the import
(tests/unit/test_crypto_results.py parses these bytes with the protobuf library).

    Results(batch_id)             the answer being written: .answered(name, op_id, answer),
                                  .result(CryptoResult message), .done(applied_index) -> WireResults
    serialize(answer)             gRPC's response serializer for CryptoStream/Batch: WireResults'
                                  bytes, or a CryptoResults message (a refused batch) serialized
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from hsmnode.pb import crypto_stream_pb2, keys_pb2

_VARINT, _LENGTH = 0, 2  # wire types
# descriptor.proto's FieldDescriptorProto.Type -> wire type: uint64 uint32 bool / string bytes message
_WIRE_TYPE = {4: _VARINT, 13: _VARINT, 8: _VARINT, 9: _LENGTH, 12: _LENGTH, 11: _LENGTH}
_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    """`n` (≥ 0) as a protobuf base-128 varint."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(message: Any, name: str, wire_type: int) -> bytes:
    """The tag of field `name` of `message`; RuntimeError if its type is not of `wire_type`."""
    field = message.DESCRIPTOR.fields_by_name[name]
    if _WIRE_TYPE.get(field.type) != wire_type:
        raise RuntimeError(f"{message.DESCRIPTOR.full_name}.{name} changed type: update {__name__}")
    return _varint(field.number << 3 | wire_type)


_RESULTS, _RESULT = crypto_stream_pb2.CryptoResults, crypto_stream_pb2.CryptoResult
_BATCH_ID = _tag(_RESULTS, "batch_id", _VARINT)
_APPLIED = _tag(_RESULTS, "applied_index", _VARINT)
_RESULTS_TAG = _varint(_RESULTS.DESCRIPTOR.fields_by_name["results"].number << 3 | _LENGTH)
_ID = _tag(_RESULT, "id", _VARINT)
_ONEOF = {name: _tag(_RESULT, name, _LENGTH) for name in ("sign", "verify", "encrypt", "decrypt")}
_SIGNATURE = _tag(keys_pb2.SignResponse, "signature", _LENGTH)
_VALID = _tag(keys_pb2.VerifyResponse, "valid", _VARINT) + b"\x01"
_CIPHERTEXT = _tag(keys_pb2.EncryptResponse, "ciphertext", _LENGTH)
_IV = _tag(keys_pb2.EncryptResponse, "iv", _LENGTH)
_PLAINTEXT = _tag(keys_pb2.DecryptResponse, "plaintext", _LENGTH)


def _bytes_field(tag: bytes, value: bytes) -> bytes:
    return tag + _varint(len(value)) + value if value else b""  # proto3 leaves out an empty value


# an answer (key_use.BatchAnswers) -> its response message's body, by CryptoOp oneof name
_BODY: dict[str, Callable[[Any], bytes]] = {
    "sign": lambda signature: _bytes_field(_SIGNATURE, signature),
    "verify": lambda valid: _VALID if valid else b"",
    "encrypt": lambda sealed: _bytes_field(_CIPHERTEXT, sealed[0]) + _bytes_field(_IV, sealed[1]),
    "decrypt": lambda plaintext: _bytes_field(_PLAINTEXT, plaintext),
}


class WireResults(NamedTuple):
    """A written CryptoResults: `code` and `message` as the message's (the request log reads them;
    an answered batch's are 0 and ""), `data` its wire form."""

    code: int
    message: str
    data: bytes


class Results:
    """One batch's CryptoResults being written, operation by operation, in order."""

    def __init__(self, batch_id: int) -> None:
        self._pieces = [_BATCH_ID, _varint(batch_id)] if batch_id else []

    def answered(self, name: str, op_id: int, answer: Any) -> None:
        """Operation `op_id`'s answer (a signature, a bool, (ciphertext, iv), a plaintext) under its
        CryptoOp oneof `name`."""
        body = _BODY[name](answer)
        result = _ID + _varint(op_id) + _ONEOF[name] + _varint(len(body)) + body
        self._pieces += (_RESULTS_TAG, _varint(len(result)), result)

    def result(self, message: Any) -> None:
        """A CryptoResult message (an operation's error), as it is."""
        result = message.SerializeToString()
        self._pieces += (_RESULTS_TAG, _varint(len(result)), result)

    def done(self, applied_index: int) -> WireResults:
        if applied_index:
            self._pieces += (_APPLIED, _varint(applied_index))
        return WireResults(0, "", b"".join(self._pieces))


def serialize(answer: Any) -> bytes:
    """CryptoStream/Batch's response serializer: a WireResults' bytes, else the message's."""
    if type(answer) is WireResults:
        return answer.data
    return answer.SerializeToString()  # type: ignore[no-any-return]

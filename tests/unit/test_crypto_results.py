"""A CryptoStream batch's answer written as bytes (hsmnode/server/crypto_results.py) is the protobuf
library's own CryptoResults: parsed back, it equals the message built field by field."""

from __future__ import annotations

from hsmnode.pb import crypto_stream_pb2, keys_pb2
from hsmnode.server.crypto_results import Results, WireResults, serialize


def built(batch_id: int, applied: int, results: list[crypto_stream_pb2.CryptoResult]) -> bytes:
    return crypto_stream_pb2.CryptoResults(
        batch_id=batch_id, applied_index=applied, results=results
    ).SerializeToString()


def test_answers_written_as_bytes_parse_as_the_messages_the_library_builds() -> None:
    r = Results(7)
    r.answered("sign", 0, b"\x30" * 71)
    r.answered("verify", 1, True)
    r.answered("verify", 2, False)  # an empty VerifyResponse: the oneof is still set
    r.answered("encrypt", 3 << 16 | 200, (b"c" * 1040, b"i" * 12))
    r.answered("decrypt", 4, b"p" * 300)
    r.answered("decrypt", 5, b"")
    error = crypto_stream_pb2.CryptoResult(id=6, code=3, message="bad input", refusal="why")
    r.result(error)
    answer = r.done(123456789)
    assert isinstance(answer, WireResults) and answer.code == 0 and answer.message == ""

    parsed = crypto_stream_pb2.CryptoResults.FromString(serialize(answer))
    expected = crypto_stream_pb2.CryptoResults.FromString(
        built(
            7,
            123456789,
            [
                crypto_stream_pb2.CryptoResult(id=0, sign=keys_pb2.SignResponse(signature=b"\x30" * 71)),
                crypto_stream_pb2.CryptoResult(id=1, verify=keys_pb2.VerifyResponse(valid=True)),
                crypto_stream_pb2.CryptoResult(id=2, verify=keys_pb2.VerifyResponse(valid=False)),
                crypto_stream_pb2.CryptoResult(
                    id=3 << 16 | 200, encrypt=keys_pb2.EncryptResponse(ciphertext=b"c" * 1040, iv=b"i" * 12)
                ),
                crypto_stream_pb2.CryptoResult(id=4, decrypt=keys_pb2.DecryptResponse(plaintext=b"p" * 300)),
                crypto_stream_pb2.CryptoResult(id=5, decrypt=keys_pb2.DecryptResponse()),
                error,
            ],
        )
    )
    assert parsed == expected
    assert [x.WhichOneof("answer") for x in parsed.results] == [
        "sign",
        "verify",
        "verify",
        "encrypt",
        "decrypt",
        "decrypt",
        None,
    ]


def test_an_empty_batch_and_a_refusal_message_serialize_as_the_library_does() -> None:
    assert serialize(Results(0).done(0)) == b""
    refused = crypto_stream_pb2.CryptoResults(batch_id=3, code=3, message="split it")
    assert serialize(refused) == refused.SerializeToString()

"""The CryptoStream (many crypto operations per message) and the SDK's coalescing transport:
each operation answered with its own status, exactly as its unary RPC, and audited as one record
per key and outcome (issue 16). Batches above the limits, clients that stop reading and members
that refuse streams or sit on a batch: test_crypto_stream_limits.py."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from hsmnode.client import (
    BatchError,
    HsmError,
    InvalidArgument,
    NotFound,
    PartitionSession,
    PermissionDenied,
    Unauthenticated,
)
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import crypto_stream_pb2, keys_pb2, keys_pb2_grpc
from hsmnode.service.usage_audit import UsageLog
from tests.integration.crypto_stream_support import GCM, KNOWN_AES, SIG, crypto_stream_keys, one_batch
from tests.integration.helpers import as_auditor

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def keys(single: DevCluster) -> Iterator[tuple[PartitionSession, PartitionSession]]:
    """crypto_stream_support.crypto_stream_keys: (coalescing CO session, the same session unary-only)."""
    with crypto_stream_keys(single) as sessions:
        yield sessions


def test_sign_from_16_threads_is_coalesced_into_batches_with_unary_answers(
    keys: tuple[PartitionSession, PartitionSession],
) -> None:
    session, plain = keys
    coalescer = session.transport.coalescer
    streamed, batches = coalescer.streamed, coalescer.batches
    messages = [f"m{i}".encode() for i in range(16 * 25)]
    with ThreadPoolExecutor(16) as pool:
        signatures = list(pool.map(lambda m: session.sign("s-ec", m, mechanism=SIG), messages))
    assert all(plain.verify("s-ec", m, s, mechanism=SIG) for m, s in zip(messages, signatures, strict=True))
    assert coalescer.streamed - streamed > len(messages) // 2  # most went through the stream
    assert coalescer.batches - batches < coalescer.streamed - streamed  # several per batch
    # a bad operation among them raises what the unary RPC raises
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(session.sign, "s-ec", b"x", mechanism=SIG) for _ in range(20)]
        bad = pool.submit(session.sign, "no-such-key", b"x", mechanism=SIG)
        assert all(f.result() for f in futures)
        with pytest.raises(NotFound) as streamed_error:
            bad.result()
    with pytest.raises(NotFound) as unary_error:
        plain.sign("no-such-key", b"x", mechanism=SIG)
    assert streamed_error.value.message == unary_error.value.message
    # closing the client's channels and streams: the next calls open them again
    session.transport.close()
    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(lambda m: session.sign("s-ec", m, mechanism=SIG), messages[:64]))


def test_each_operation_of_a_batch_answers_its_own_status_the_unary_one(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    ops = [
        crypto_stream_pb2.CryptoOp(id=1, sign=keys_pb2.SignRequest(key="s-ec", mechanism=SIG, data=b"ok")),
        crypto_stream_pb2.CryptoOp(id=2, sign=keys_pb2.SignRequest(key="nope", mechanism=SIG, data=b"x")),
        crypto_stream_pb2.CryptoOp(
            id=3, sign=keys_pb2.SignRequest(key="s-ec", mechanism="MD5-RSA", data=b"x")
        ),
        crypto_stream_pb2.CryptoOp(
            id=4, sign=keys_pb2.SignRequest(key="s-ec", mechanism=SIG, data=b"x" * (64 * 1024 + 1))
        ),
        crypto_stream_pb2.CryptoOp(
            id=5, sign=keys_pb2.SignRequest(key="s-verify-only", mechanism=SIG, data=b"x")
        ),
        crypto_stream_pb2.CryptoOp(id=6),  # no operation at all
        crypto_stream_pb2.CryptoOp(  # another key in the same batch (mixed keys)
            id=7, encrypt=keys_pb2.EncryptRequest(key="s-aes", mechanism="AES-GCM", data=b"secret")
        ),
    ]
    answer = one_batch(
        single, session, crypto_stream_pb2.CryptoBatch(batch_id=9, session=session.token, ops=ops)
    )
    assert answer.batch_id == 9 and answer.code == 0 and answer.applied_index > 0
    assert answer.busy_us > 0  # the member's CPU for the batch, which the SDK's pipelining weighs
    by_id = {r.id: r for r in answer.results}
    assert sorted(by_id) == [1, 2, 3, 4, 5, 6, 7]
    assert by_id[1].code == 0 and plain.verify("s-ec", b"ok", by_id[1].sign.signature, mechanism=SIG)
    assert by_id[7].code == 0
    assert plain.decrypt(
        "s-aes", by_id[7].encrypt.ciphertext, mechanism="AES-GCM", iv=by_id[7].encrypt.iv
    ) == (b"secret")
    assert "carries no sign, verify, encrypt or decrypt" in by_id[6].message
    assert by_id[6].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    for op_id, (key, mechanism, data, error) in {
        2: ("nope", SIG, b"x", NotFound),
        3: ("s-ec", "MD5-RSA", b"x", InvalidArgument),
        4: ("s-ec", SIG, b"x" * (64 * 1024 + 1), InvalidArgument),
        5: ("s-verify-only", SIG, b"x", PermissionDenied),
    }.items():
        with pytest.raises(error) as unary:
            plain.sign(key, data, mechanism=mechanism)
        assert (by_id[op_id].code, by_id[op_id].message) == (unary.value.code.value[0], unary.value.message)


def test_operations_without_a_session_are_refused_as_the_unary_rpc_refuses_them(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    op = crypto_stream_pb2.CryptoOp(id=1, sign=keys_pb2.SignRequest(key="s-ec", mechanism=SIG, data=b"x"))
    for token in ("", session.token[:-4] + "AAAA"):
        answer = one_batch(
            single, session, crypto_stream_pb2.CryptoBatch(batch_id=1, session=token, ops=[op])
        )
        with pytest.raises(Unauthenticated) as unary:
            PartitionSession(plain.client, token, "", "", 0).sign("s-ec", b"x", mechanism=SIG)
        assert (answer.results[0].code, answer.results[0].message) == (
            grpc.StatusCode.UNAUTHENTICATED.value[0],
            unary.value.message,
        )


def test_sign_many_and_encrypt_many_answer_per_item_and_raise_a_batch_error(
    keys: tuple[PartitionSession, PartitionSession],
) -> None:
    session, plain = keys
    data = [f"item {i}".encode() for i in range(600)]  # more than one batch
    signatures = session.sign_many("s-ec", data, mechanism=SIG)
    assert (
        session.verify_many("s-ec", list(zip(data, signatures, strict=True)), mechanism=SIG) == [True] * 600
    )
    assert plain.verify("s-ec", data[599], signatures[599], mechanism=SIG)
    sealed = session.encrypt_many("s-aes", data, mechanism="AES-GCM", aad=b"ctx")
    assert len({e.iv for e in sealed}) == 600
    assert session.decrypt_many("s-aes", sealed, mechanism="AES-GCM", aad=b"ctx") == data
    with pytest.raises(BatchError) as info:
        session.sign_many("s-ec", [b"a", b"", b"c"], mechanism=SIG)
    error = info.value
    assert list(error.errors) == [1] and isinstance(error.errors[1], InvalidArgument)
    assert isinstance(error, HsmError) and error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "1 of 3 operations failed; item 1: data must not be empty" in str(error)
    assert plain.verify("s-ec", b"c", error.results[2], mechanism=SIG)


def _op(op_id: int, **request: Any) -> Any:
    return crypto_stream_pb2.CryptoOp(id=op_id, **request)


def _sign(key: str, data: bytes, mechanism: str = SIG) -> dict[str, Any]:
    return {"sign": keys_pb2.SignRequest(key=key, mechanism=mechanism, data=data)}


def _unary(plain: PartitionSession, op: Any) -> tuple[int, str, Any]:
    """(code, message, answer) of the operation sent as its unary RPC."""
    kind = op.WhichOneof("op")
    r = getattr(op, kind)
    try:
        if kind == "sign":
            answer: Any = plain.sign(r.key, r.data, mechanism=r.mechanism)
        elif kind == "verify":
            answer = plain.verify(r.key, r.data, r.signature, mechanism=r.mechanism)
        elif kind == "encrypt":
            answer = plain.encrypt(r.key, r.data, mechanism=r.mechanism, aad=r.aad, iv=r.iv)
        else:
            answer = plain.decrypt(r.key, r.ciphertext, mechanism=r.mechanism, iv=r.iv, aad=r.aad)
    except HsmError as exc:
        return exc.code.value[0], exc.message, None
    return 0, "", answer


def _assert_as_unary(plain: PartitionSession, ops: list[Any], answer: Any) -> dict[int, Any]:
    """Each result answers its operation, in the batch's order, with the unary RPC's code and message."""
    assert answer.code == 0, answer.message
    assert [r.id for r in answer.results] == [op.id for op in ops]
    by_id = {r.id: r for r in answer.results}
    for op in ops:
        code, message, _ = _unary(plain, op)
        assert (by_id[op.id].code, by_id[op.id].message) == (code, message), op
    return by_id


def test_a_batch_mixing_keys_and_bad_operations_answers_each_operation_as_its_unary_rpc(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    sealed = plain.encrypt("s-aes", b"sealed", mechanism=GCM, aad=b"ctx")
    good_sig = plain.sign("s-ec", b"signed", mechanism=SIG)
    ops = [  # two keys interleaved, each with operations that fail on their own input
        _op(31, **_sign("s-ec", b"a")),
        _op(5, encrypt=keys_pb2.EncryptRequest(key="s-aes", mechanism=GCM, data=b"p", aad=b"ctx")),
        _op(17, **_sign("s-ec", b"")),  # empty data
        _op(2, encrypt=keys_pb2.EncryptRequest(key="s-aes", mechanism=GCM, data=b"p", iv=b"short")),  # bad IV
        _op(40, **_sign("s-ec", b"b")),
        _op(
            8,
            decrypt=keys_pb2.DecryptRequest(
                key="s-aes", mechanism=GCM, ciphertext=sealed.ciphertext, iv=sealed.iv, aad=b"ctx"
            ),
        ),
        _op(
            9, decrypt=keys_pb2.DecryptRequest(key="s-aes", mechanism=GCM, ciphertext=b"x" * 20, iv=b"i" * 12)
        ),
        _op(10, decrypt=keys_pb2.DecryptRequest(key="s-aes", mechanism=GCM, ciphertext=b"abc", iv=b"i" * 12)),
        _op(11, verify=keys_pb2.VerifyRequest(key="s-ec", mechanism=SIG, data=b"signed", signature=good_sig)),
        _op(12, verify=keys_pb2.VerifyRequest(key="s-ec", mechanism=SIG, data=b"other", signature=good_sig)),
        _op(13, **_sign("s-ec", b"c", mechanism="ECDSA-DIGEST")),  # a 1-byte digest: signed as X9.62 says
        _op(14, **_sign("s-ec", b"d" * 65, mechanism="ECDSA-DIGEST")),  # too long a digest: its own error
    ]
    answer = one_batch(
        single, session, crypto_stream_pb2.CryptoBatch(batch_id=3, session=session.token, ops=ops)
    )
    by_id = _assert_as_unary(plain, ops, answer)
    failed = {i for i, r in by_id.items() if r.code}
    assert failed == {17, 2, 9, 10, 14}
    for op_id, data in ((31, b"a"), (40, b"b")):
        assert plain.verify("s-ec", data, by_id[op_id].sign.signature, mechanism=SIG)
    assert plain.verify("s-ec", b"c", by_id[13].sign.signature, mechanism="ECDSA-DIGEST")
    e = by_id[5].encrypt
    assert plain.decrypt("s-aes", e.ciphertext, mechanism=GCM, iv=e.iv, aad=b"ctx") == b"p"
    assert by_id[8].decrypt.plaintext == b"sealed"
    assert by_id[11].verify.valid is True and by_id[12].verify.valid is False


def test_a_refusal_of_the_key_answers_every_operation_of_its_group_with_the_unary_message(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    ops = [
        _op(1, **_sign("s-verify-only", b"x")),  # no usage flag 'sign'
        _op(2, **_sign("s-blocked", b"x")),  # blocked
        _op(3, **_sign("no-such-key", b"x")),  # unknown
        _op(4, **_sign("s-ec", b"x")),
        _op(5, **_sign("s-verify-only", b"y")),
        _op(6, **_sign("s-ec", b"x", mechanism="MD5-RSA")),  # unknown mechanism for a known key
        _op(7, **_sign("s-blocked", b"y")),
        _op(8, **_sign("no-such-key", b"y")),
        _op(9, **_sign("s-verify-only", b"")),  # its own input error comes first, as in the unary RPC
        _op(10, **_sign("s-ec", b"x", mechanism="MD5-RSA")),
        _op(11, **_sign("s-verify-only", b"z")),
    ]
    answer = one_batch(
        single, session, crypto_stream_pb2.CryptoBatch(batch_id=4, session=session.token, ops=ops)
    )
    by_id = _assert_as_unary(plain, ops, answer)
    denied = grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert {by_id[i].code for i in (1, 5, 11)} == {denied}
    assert "lacks the usage flag 'sign'" in by_id[1].message
    assert by_id[2].code == by_id[7].code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "is blocked" in by_id[7].message
    assert by_id[3].code == by_id[8].code == grpc.StatusCode.NOT_FOUND.value[0]
    assert by_id[6].message == by_id[10].message and "unknown mechanism 'MD5-RSA'" in by_id[6].message
    assert by_id[9].message == "data must not be empty"
    assert by_id[4].code == 0


def _member_chain_length(single: DevCluster) -> int:
    auditor = as_auditor(single)
    with auditor.client:
        return auditor.audit_list(limit=1, chain="member").total


def _member_records(single: DevCluster, after_seq: int) -> list[Any]:
    auditor = as_auditor(single)
    with auditor.client:
        return auditor.audit_list(after_seq=after_seq, limit=1000, chain="member").records


def test_a_batch_is_audited_as_one_record_per_key_and_outcome_with_its_count_and_the_chain_verifies(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    start = _member_chain_length(single)
    ops = [_op(i, **_sign("s-ec", f"m{i}".encode())) for i in range(5)]
    ops += [_op(10 + i, **_sign("s-ec", b"")) for i in range(2)]
    ops += [_op(20 + i, **_sign("s-blocked", b"x")) for i in range(3)]
    ops += [_op(30, **_sign("s-verify-only", b"x"))]
    one_batch(single, session, crypto_stream_pb2.CryptoBatch(batch_id=5, session=session.token, ops=ops))
    plain.sign("s-ec", b"one", mechanism=SIG)  # a unary use: one record, as before
    records = _member_records(single, start)
    assert [(r.command, r.outcome, r.count) for r in records] == [
        ("key.sign", "ok", 5),
        ("key.sign", "INVALID_ARGUMENT", 2),
        ("key.sign", "FAILED_PRECONDITION", 3),
        ("key.sign", "PERMISSION_DENIED", 1),
        ("key.sign", "ok", 1),
    ]
    ok, empty, blocked, no_flag, unary = records
    assert ok.detail == f"sign ×5 with key 's-ec' ({SIG})"
    assert empty.detail == f"sign ×2 with key 's-ec' ({SIG}): data must not be empty"
    assert blocked.detail.startswith(f"sign ×3 with key 's-blocked' ({SIG}): key 's-blocked' is blocked")
    assert no_flag.detail.startswith(f"sign with key 's-verify-only' ({SIG}): key 's-verify-only' lacks")
    assert unary.detail == f"sign with key 's-ec' ({SIG})"
    assert ok.key == unary.key == plain.show_key("s-ec").id
    assert empty.key == "s-ec"  # refused before the key was looked up: named as given, as the unary RPC does
    assert ok.container == "partition:demo" and ok.member == "node1" and ok.actor == unary.actor
    auditor = as_auditor(single)
    with auditor.client:
        check = auditor.audit_verify()
    assert check.ok and check.member_ok and check.member_length == start + 5


def test_no_answer_or_audit_record_of_a_batch_holds_plaintext_key_material(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, plain = keys
    start = _member_chain_length(single)
    sealed = plain.encrypt("s-known", b"payload", mechanism=GCM)
    ops = [
        _op(1, encrypt=keys_pb2.EncryptRequest(key="s-known", mechanism=GCM, data=b"payload")),
        _op(
            2,
            decrypt=keys_pb2.DecryptRequest(
                key="s-known", mechanism=GCM, ciphertext=sealed.ciphertext, iv=sealed.iv
            ),
        ),
        _op(
            3,
            decrypt=keys_pb2.DecryptRequest(key="s-known", mechanism=GCM, ciphertext=b"y" * 32, iv=b"i" * 12),
        ),
        _op(4, **_sign("s-known", b"x")),  # an AES key has no usage flag 'sign'
    ]
    answer = one_batch(
        single, session, crypto_stream_pb2.CryptoBatch(batch_id=6, session=session.token, ops=ops)
    )
    assert [r.code for r in answer.results][:2] == [0, 0] and answer.results[
        1
    ].decrypt.plaintext == b"payload"
    wire = answer.SerializeToString()
    records = _member_records(single, start)
    written = "".join(f"{r.detail}{r.key}{r.container}{r.hash}" for r in records)
    for form in (KNOWN_AES, KNOWN_AES.hex().encode(), KNOWN_AES.hex().upper().encode()):
        assert form not in wire and form.decode(errors="replace") not in written


def test_a_batch_whose_key_usage_records_cannot_be_written_answers_no_operation(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, plain = keys

    def disk_full(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(UsageLog, "append_many", disk_full)
    ops = [_op(1, **_sign("s-ec", b"a")), _op(2, **_sign("s-ec", b"")), _op(3, **_sign("no-such-key", b"x"))]
    answer = one_batch(
        single, session, crypto_stream_pb2.CryptoBatch(batch_id=7, session=session.token, ops=ops)
    )
    unavailable = grpc.StatusCode.UNAVAILABLE.value[0]
    assert [(r.id, r.code) for r in answer.results] == [(1, unavailable), (2, unavailable), (3, unavailable)]
    assert not answer.results[0].HasField("sign")  # no signature leaves unaudited
    refused = "this member cannot write its key-usage audit log (No space left on device); try another member"
    assert {r.message for r in answer.results} == {refused}
    stub = keys_pb2_grpc.KeysStub(session.transport.channel(single.members[0].grpc))
    with pytest.raises(grpc.RpcError) as unary:  # the unary RPC itself, without the SDK's retries
        stub.Sign(ops[0].sign, metadata=[("x-hsm-session", session.token)], timeout=10)
    assert (unary.value.code(), unary.value.details()) == (grpc.StatusCode.UNAVAILABLE, refused)
    monkeypatch.undo()
    assert (
        one_batch(
            single, session, crypto_stream_pb2.CryptoBatch(batch_id=8, session=session.token, ops=ops[:1])
        )
        .results[0]
        .sign.signature
    )

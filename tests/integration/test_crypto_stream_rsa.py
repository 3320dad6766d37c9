"""A CryptoStream batch's RSA private-key operations, which a member runs on several threads at once
(service/key_use.py, HELPERS): each operation still answers its own status and answer, exactly as
its unary RPC, and the batch's key-usage records count them as one thread would (issue 16)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from hsmnode.client import HsmClient, HsmError, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import crypto_stream_pb2, crypto_stream_pb2_grpc, keys_pb2
from tests.integration.helpers import as_auditor

pytestmark = pytest.mark.cluster

PKCS1 = "RSA-PKCS1-SHA256"
OAEP = "RSA-OAEP-SHA256"
# a DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2): with a 32-byte digest, what RSA-PKCS1-DIGESTINFO signs
SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


@pytest.fixture(scope="module")
def rsa(single: DevCluster) -> Iterator[PartitionSession]:
    """A CO session (unary calls only) on the demo partition with an RSA-2048 key `r-2048` (sign,
    verify, encrypt, decrypt)."""
    demo = single.demo()
    assert demo is not None
    client = HsmClient([m.grpc for m in single.members], single.client_tls(), coalesce=False)
    session = client.open_session("demo", demo["partition"]["co_password"], role="CO")
    session.generate_key("r-2048", "RSA", 2048, usage=["sign", "verify", "encrypt", "decrypt"])
    try:
        yield session
    finally:
        session.logout()
        client.close()


def _sign(op_id: int, data: bytes, mechanism: str = PKCS1) -> Any:
    return crypto_stream_pb2.CryptoOp(
        id=op_id, sign=keys_pb2.SignRequest(key="r-2048", mechanism=mechanism, data=data)
    )


def _decrypt(op_id: int, ciphertext: bytes) -> Any:
    return crypto_stream_pb2.CryptoOp(
        id=op_id, decrypt=keys_pb2.DecryptRequest(key="r-2048", mechanism=OAEP, ciphertext=ciphertext)
    )


def _unary(session: PartitionSession, op: Any) -> tuple[int, str]:
    """(code, message) of the operation sent as its unary RPC."""
    kind = op.WhichOneof("op")
    r = getattr(op, kind)
    try:
        if kind == "sign":
            session.sign(r.key, r.data, mechanism=r.mechanism)
        else:
            session.decrypt(r.key, r.ciphertext, mechanism=r.mechanism)
    except HsmError as exc:
        return exc.code.value[0], exc.message
    return 0, ""


def _records(single: DevCluster, after_seq: int) -> list[Any]:
    auditor = as_auditor(single)
    with auditor.client:
        return auditor.audit_list(after_seq=after_seq, limit=1000, chain="member").records


def _chain_length(single: DevCluster) -> int:
    auditor = as_auditor(single)
    with auditor.client:
        return auditor.audit_list(limit=1, chain="member").total


def test_a_batch_of_rsa_operations_answers_each_as_its_unary_rpc_and_is_audited_by_outcome(
    single: DevCluster, rsa: PartitionSession
) -> None:
    sealed = rsa.encrypt("r-2048", b"data key", mechanism=OAEP).ciphertext
    digest = hashlib.sha256(b"pre-hashed").digest()
    ops = [_sign(i, f"message {i}".encode()) for i in range(8)]  # several per thread
    ops += [
        _sign(20, b"x" * 40, mechanism="RSA-PKCS1-DIGESTINFO"),  # not a DigestInfo: its own crypto error
        _sign(21, b""),  # empty data: its own input error, before the key
        _sign(22, SHA256_INFO + digest, mechanism="RSA-PKCS1-DIGESTINFO"),
        _decrypt(30, sealed),
        _decrypt(31, b"\x01" * 256),  # does not decrypt: its own crypto error
        _sign(9, b"message 9"),
    ]
    start = _chain_length(single)
    stub = crypto_stream_pb2_grpc.CryptoStreamStub(rsa.transport.channel(single.members[0].grpc))
    batch = crypto_stream_pb2.CryptoBatch(batch_id=7, session=rsa.token, ops=ops)
    (answer,) = list(stub.Batch(iter([batch]), timeout=30))

    assert answer.code == 0, answer.message
    assert [r.id for r in answer.results] == [op.id for op in ops]
    by_id = {r.id: r for r in answer.results}
    records = _records(single, start)  # before the unary calls below add theirs
    for op in ops:
        assert (by_id[op.id].code, by_id[op.id].message) == _unary(rsa, op), op
    assert {i for i, r in by_id.items() if r.code} == {20, 21, 31}
    for i in (*range(8), 9):
        # PKCS#1 v1.5 is deterministic: the batch's signature is the unary one
        assert by_id[i].sign.signature == rsa.sign("r-2048", f"message {i}".encode(), mechanism=PKCS1)
    assert by_id[22].sign.signature == rsa.sign(
        "r-2048", SHA256_INFO + digest, mechanism="RSA-PKCS1-DIGESTINFO"
    )
    assert by_id[30].decrypt.plaintext == b"data key"

    # one record per (operation, mechanism, outcome, message), whichever thread ran the operations
    tally = sorted((r.command, r.outcome, r.count, r.detail.split(":")[0]) for r in records)
    assert tally == sorted(
        [
            ("key.sign", "ok", 9, f"sign ×9 with key 'r-2048' ({PKCS1})"),
            ("key.sign", "INVALID_ARGUMENT", 1, f"sign with key 'r-2048' ({PKCS1})"),  # the empty data
            ("key.sign", "ok", 1, "sign with key 'r-2048' (RSA-PKCS1-DIGESTINFO)"),
            ("key.sign", "INVALID_ARGUMENT", 1, "sign with key 'r-2048' (RSA-PKCS1-DIGESTINFO)"),
            ("key.decrypt", "ok", 1, f"decrypt with key 'r-2048' ({OAEP})"),
            ("key.decrypt", "INVALID_ARGUMENT", 1, f"decrypt with key 'r-2048' ({OAEP})"),
        ]
    )

"""The CryptoStream at its limits (issue 16): a batch above MAX_BATCH_OPS or MAX_BATCH_BYTES refused
whole while the stream goes on; a client that stops reading cut off without stalling the member; a
member that refuses streams (MAX_STREAMS) answered unary; a batch a member sits on sent again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from hsmnode.client import BatchError, HsmClient, InvalidArgument, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import crypto_stream_pb2, keys_pb2
from hsmnode.server import crypto_stream
from tests.integration.crypto_stream_support import SIG, batch_stub, crypto_stream_keys
from tests.integration.helpers import eventually

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def keys(single: DevCluster) -> Iterator[tuple[PartitionSession, PartitionSession]]:
    """crypto_stream_support.crypto_stream_keys: (coalescing CO session, the same session unary-only)."""
    with crypto_stream_keys(single) as sessions:
        yield sessions


def test_a_batch_above_a_limit_is_refused_whole_and_the_stream_goes_on(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession]
) -> None:
    session, _ = keys

    def sign(i: int, size: int = 1) -> Any:
        return crypto_stream_pb2.CryptoOp(
            id=i, sign=keys_pb2.SignRequest(key="s-ec", mechanism=SIG, data=b"x" * size)
        )

    batches = [
        crypto_stream_pb2.CryptoBatch(batch_id=1, session=session.token, ops=[sign(i) for i in range(1025)]),
        crypto_stream_pb2.CryptoBatch(
            batch_id=2, session=session.token, ops=[sign(i, 60 * 1024) for i in range(40)]
        ),
        crypto_stream_pb2.CryptoBatch(batch_id=3, session=session.token, ops=[sign(1)]),
    ]
    answers = list(batch_stub(single, session).Batch(iter(batches), timeout=20))
    assert [a.batch_id for a in answers] == [1, 2, 3]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert answers[0].code == invalid and not answers[0].results
    assert "holds 1025 operations; a batch holds at most 1024 (MAX_BATCH_OPS)" in answers[0].message
    assert answers[1].code == invalid and not answers[1].results
    assert (
        f"a batch holds at most {crypto_stream.MAX_BATCH_BYTES} bytes (MAX_BATCH_BYTES)" in answers[1].message
    )
    assert answers[2].code == 0 and answers[2].results[0].code == 0


def test_a_client_that_stops_reading_is_cut_off_and_the_member_keeps_serving(
    single: DevCluster,
    keys: tuple[PartitionSession, PartitionSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, plain = keys
    monkeypatch.setattr(crypto_stream, "SEND_STALL", 1.0)
    big = keys_pb2.EncryptRequest(key="s-aes", mechanism="AES-GCM", data=b"z" * 60 * 1024)
    batch = crypto_stream_pb2.CryptoBatch(
        session=session.token, ops=[crypto_stream_pb2.CryptoOp(id=i, encrypt=big) for i in range(16)]
    )
    stop = threading.Event()

    def forever() -> Iterator[Any]:
        while not stop.is_set():
            yield batch

    caplog.set_level(logging.WARNING, logger=crypto_stream.__name__)
    call = batch_stub(single, session).Batch(forever(), timeout=60)  # its answers are not read
    try:
        # while it is stuck, the member serves others
        assert plain.sign("s-ec", b"still serving", mechanism=SIG)
        eventually(
            lambda: any("the client read no answer for 1s" in r.getMessage() for r in caplog.records),
            what="the member cutting off the stream that stopped reading",
        )
        # the client learns it when it reads: the answers sent before, then CANCELLED
        with pytest.raises(grpc.RpcError) as cut:
            for _ in call:
                pass
        assert cut.value.code() is grpc.StatusCode.CANCELLED
    finally:
        stop.set()
        call.cancel()
    assert plain.sign("s-ec", b"after", mechanism=SIG)
    assert session.sign_many("s-ec", [b"a", b"b"], mechanism=SIG)


def test_a_member_that_refuses_streams_gets_the_operations_unary(
    keys: tuple[PartitionSession, PartitionSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, plain = keys
    monkeypatch.setattr(crypto_stream, "MAX_STREAMS", 0)
    session.transport.close()  # a stream opened before the limit would still be served
    # (the last test of the module: the client now sends this member unary calls for STREAMLESS_FOR)
    signatures = session.sign_many("s-ec", [b"a", b"b", b"c"], mechanism=SIG)
    assert all(
        plain.verify("s-ec", m, s, mechanism=SIG) for m, s in zip([b"a", b"b", b"c"], signatures, strict=True)
    )
    with pytest.raises(BatchError) as info:
        session.sign_many("s-ec", [b"a", b""], mechanism=SIG)
    assert isinstance(info.value.errors[1], InvalidArgument)


def test_a_batch_a_member_sits_on_is_sent_again_after_a_unary_attempts_wait(
    single: DevCluster, keys: tuple[PartitionSession, PartitionSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, plain = keys
    held = threading.Event()
    release = threading.Event()
    answer = crypto_stream.CryptoStreamServicer._answer

    def sit_on_the_first(self: Any, *args: Any) -> Any:
        if not held.is_set():
            held.set()
            release.wait(10)  # a hung member, for this batch
        return answer(self, *args)

    monkeypatch.setattr(crypto_stream.CryptoStreamServicer, "_answer", sit_on_the_first)
    with HsmClient([m.grpc for m in single.members], single.client_tls(), timeout=3.0) as client:
        fresh = client.resume_partition(session.token, "demo", "CO")
        try:
            signatures = fresh.sign_many("s-ec", [b"p", b"q"], mechanism=SIG)
        finally:
            release.set()
        assert held.is_set() and client.transport.coalescer.resent == 2
    assert all(
        plain.verify("s-ec", m, s, mechanism=SIG) for m, s in zip([b"p", b"q"], signatures, strict=True)
    )

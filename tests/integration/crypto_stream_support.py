"""What the CryptoStream tests (test_crypto_stream.py, test_crypto_stream_limits.py) share: the CO
sessions and keys behind their module-scoped `keys` fixture (one set per module's `single` cluster),
and the raw CryptoStream stub that sends batches as the SDK would not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hsmnode.client import HsmClient, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import crypto_stream_pb2_grpc

SIG = "ECDSA-SHA256"
GCM = "AES-GCM"
# an AES key whose value the test knows (imported), to look for it where it must never be
KNOWN_AES = bytes(range(100, 132))


@contextmanager
def crypto_stream_keys(single: DevCluster) -> Iterator[tuple[PartitionSession, PartitionSession]]:
    """A CO session on the demo partition with an EC key `s-ec` (sign, verify), an AES key `s-aes`
    (encrypt, decrypt), an EC key `s-verify-only`, a blocked EC key `s-blocked` (sign) and the
    imported AES key `s-known` (KNOWN_AES); the same session through a unary-only client."""
    demo = single.demo()
    assert demo is not None
    endpoints = [m.grpc for m in single.members]
    client = HsmClient(endpoints, single.client_tls(), coalesce=True)
    unary = HsmClient(endpoints, single.client_tls(), coalesce=False)
    session = client.open_session("demo", demo["partition"]["co_password"], role="CO")
    session.generate_key("s-ec", "EC", "P-256", usage=["sign", "verify"])
    session.generate_key("s-aes", "AES", 256, usage=["encrypt", "decrypt"])
    session.generate_key("s-verify-only", "EC", "P-256", usage=["verify"])
    session.generate_key("s-blocked", "EC", "P-256", usage=["sign"])
    session.block_key("s-blocked")
    session.import_key("s-known", "AES", KNOWN_AES, usage=["encrypt", "decrypt"])
    plain = PartitionSession(unary, session.token, session.subject, session.role, session.expires_ms)
    plain.keep = True
    try:
        yield session, plain
    finally:
        session.logout()
        client.close()
        unary.close()


def batch_stub(single: DevCluster, session: PartitionSession) -> Any:
    channel = session.transport.channel(single.members[0].grpc)
    return crypto_stream_pb2_grpc.CryptoStreamStub(channel)


def one_batch(single: DevCluster, session: PartitionSession, batch: Any) -> Any:
    call = batch_stub(single, session).Batch(iter([batch]), timeout=10)
    (answer,) = list(call)
    return answer

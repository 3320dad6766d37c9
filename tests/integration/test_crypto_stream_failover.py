"""The coalescing transport through a member's death (issue 16): 16 threads sign through ordinary
`session.sign` while the leader, with batches of theirs in flight, is SIGKILLed; every call is
answered exactly once, with a valid signature, and the operations in flight there went to the
other members."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hsmnode.client import HsmClient, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import answered_more, eventually, leader_of, stop_workers, stopped

pytestmark = [pytest.mark.cluster, pytest.mark.processes]

THREADS = 16


@pytest.fixture(scope="module")
def session(trio: DevCluster) -> Iterator[PartitionSession]:
    demo = trio.demo()
    assert demo is not None
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0, coalesce=True) as client:
        s = client.open_session("demo", demo["partition"]["co_password"], role="CO")
        s.keep = True
        s.generate_key("failover-ec", "EC", "P-256", usage=["sign"])
        yield s


def test_operations_in_flight_on_a_killed_member_are_answered_exactly_once_elsewhere(
    trio: DevCluster, session: PartitionSession
) -> None:
    public = serialization.load_pem_public_key(session.export_public_key("failover-ec"))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    coalescer = session.transport.coalescer
    victim = trio.member(leader_of(trio))
    stop = threading.Event()
    issued = [0] * THREADS
    answers: list[list[tuple[bytes, bytes | BaseException]]] = [[] for _ in range(THREADS)]

    def signer(i: int) -> None:
        n = 0
        while not stop.is_set() or n < 20:
            message = f"{i}:{n}".encode()
            issued[i] += 1
            try:
                answers[i].append((message, session.sign("failover-ec", message, mechanism="ECDSA-SHA256")))
            except BaseException as exc:
                answers[i].append((message, exc))
            n += 1

    threads = [threading.Thread(target=signer, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    try:
        eventually(lambda: coalescer.in_flight(victim.grpc) > 0, what="a batch sent to the leader")
        resent_at_kill = coalescer.resent
        # stopped before it is killed, the leader answers nothing more. A batch in flight there at
        # the stop may still be answered: its answer was on the wire (CI once saw nothing left to
        # send again). So wait for a batch that cannot be answered: one sent after the stop, or one
        # still open after 30 batches were answered elsewhere (its answer would have come first)
        pid = trio.pid_of(victim.id)
        assert pid is not None
        stopped_at = stopped(pid)
        batches_at_stop = coalescer.batches

        def stuck() -> bool:
            with coalescer.lock:
                stream = coalescer.streams.get(victim.grpc)
                sent = [at for _, _, at in stream.inflight.values()] if stream is not None else []
            return (
                any(at > stopped_at for at in sent)
                or bool(sent and coalescer.batches >= batches_at_stop + 30)
                or coalescer.resent > resent_at_kill
            )

        # or its operations already sent elsewhere: a batch open on the hung member past its attempt
        # time fails over, and the member stays out of the rotation (no later batch goes there)
        eventually(stuck, what="a batch in flight on the stopped leader that it cannot have answered")
        trio.kill(victim.id)
        answered_more(answers, 10 * THREADS, 30.0, "signatures through the surviving members")
    finally:
        ended = stop_workers(stop, threads, 30)
    assert ended
    failed = [(m, a) for per in answers for m, a in per if isinstance(a, BaseException)]
    assert failed == []
    assert [len(a) for a in answers] == issued  # each call answered once
    for per in answers:
        for message, signature in per:
            assert isinstance(signature, bytes)
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert coalescer.resent > resent_at_kill  # the killed member's operations were sent again
    assert coalescer.streamed > sum(issued) // 2
    assert coalescer.in_flight() == 0

"""A coalesced write batch travels as batch entries (several commands in one Raft log entry,
hsmnode/domain/batch.py): each request answers its own result, every member (a restarted one
replaying its journal or loading a snapshot included) reaches the same state."""

from __future__ import annotations

import uuid

import pytest

from hsmnode.client import HsmClient
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import keys_pb2, keys_pb2_grpc
from hsmnode.server.rpc import SESSION_KEY
from tests.integration.helpers import co_session, converged, leader_of, node_status

pytestmark = pytest.mark.cluster

KEYS = 24


def _requests(prefix: str, count: int) -> list[keys_pb2.GenerateKeyRequest]:
    return [
        keys_pb2.GenerateKeyRequest(
            request_id=uuid.uuid4().hex, label=f"{prefix}-{i}", key_type="AES", size="256", usage=["encrypt"]
        )
        for i in range(count)
    ]


@pytest.mark.processes
def test_a_batch_takes_fewer_entries_than_keys_and_every_member_replays_it_to_the_same_state(
    cluster: DevCluster,
) -> None:
    leader = leader_of(cluster)
    address = cluster.member(leader).grpc
    with HsmClient([address], cluster.client_tls(), coalesce=False) as client:
        session = co_session(cluster, client)
        stub = keys_pb2_grpc.KeysStub(session.transport.channel(address))
        metadata = [(SESSION_KEY, session.token)]
        taken = session.generate_key("entries-taken", "AES", 256, usage=["encrypt"])
        requests = _requests("entries", KEYS)
        requests[5].label = "entries-taken"  # refused inside apply (ALREADY_EXISTS), the others unaffected
        before = node_status(cluster, leader).applied_index
        answer = stub.GenerateBatch(
            keys_pb2.GenerateKeyBatch(requests=requests), timeout=15, metadata=metadata
        )
        after = node_status(cluster, leader).applied_index
        results = list(answer.results)
        assert [r.request_id for r in results] == [r.request_id for r in requests]
        assert results[5].code != 0 and not results[5].HasField("key")
        assert all(
            r.code == 0 and r.key.label == q.label
            for r, q in zip(results, requests, strict=True)
            if q.label != taken.label
        )
        assert after - before < KEYS  # several commands per Raft entry
        # a resent batch answers each request's first result (the refusal too), creating nothing
        again = stub.GenerateBatch(
            keys_pb2.GenerateKeyBatch(requests=requests), timeout=15, metadata=metadata
        )
        assert [(r.code, r.key.id) for r in again.results] == [(r.code, r.key.id) for r in results]
        labels = [k.label for k in session.list_keys() if k.label.startswith("entries-")]
        assert sorted(labels) == sorted(q.label for q in requests)  # each key once, the taken label once
    members = [m.id for m in cluster.members]
    digest = converged(cluster, members)
    victim = next(m for m in members if m != leader)
    cluster.kill(victim)
    with HsmClient([address], cluster.client_tls(), coalesce=False) as client:
        session = co_session(cluster, client)
        stub = keys_pb2_grpc.KeysStub(session.transport.channel(address))
        for round_ in range(3):  # past the compaction threshold (40 commands): the others snapshot
            stub.GenerateBatch(
                keys_pb2.GenerateKeyBatch(requests=_requests(f"down-{round_}", KEYS)),
                timeout=15,
                metadata=[(SESSION_KEY, session.token)],
            )
    cluster.start(victim)
    digest = converged(cluster, members, timeout=30.0)
    assert node_status(cluster, victim).state_digest == digest

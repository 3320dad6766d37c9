"""Writes go to the leader first: every answer to a write names the leader's client address
(`x-hsm-leader`, server/rpc.py), and the SDK sends its next writes there (client/_hints.py), so a
write is neither forwarded by a follower nor waits for the leader's commit index to reach it. A
stale hint costs one attempt; the outcome contract is unchanged."""

from __future__ import annotations

import pytest

from hsmnode.client import HsmClient, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import co_session, leader_of

pytestmark = pytest.mark.cluster


def _writes_answered_by(app: HsmClient, session: PartitionSession, prefix: str, n: int) -> dict[str, int]:
    before = dict(app.transport.answered)
    for i in range(n):
        session.generate_key(f"{prefix}-{i}", "AES", 256, usage=["encrypt"])
    return {e: c - before.get(e, 0) for e, c in app.transport.answered.items() if c != before.get(e, 0)}


def test_writes_go_to_the_leader_the_answers_name(cluster: DevCluster) -> None:
    leader = leader_of(cluster)
    followers = [m.id for m in cluster.members if m.id != leader]
    # the leader listed last: a client without the hint would write to a follower
    endpoints = [cluster.member(i).grpc for i in [*followers, leader]]
    # without discovery: its background cluster status, answered by any member, counts as an answer
    with HsmClient(endpoints, cluster.client_tls(), discover=False) as app:
        session = co_session(cluster, app)  # a write: its answer names the leader
        assert app.transport.leader.endpoint == cluster.member(leader).grpc
        assert _writes_answered_by(app, session, "to-leader", 5) == {cluster.member(leader).grpc: 5}


def test_a_stale_hint_costs_nothing_but_is_corrected(cluster: DevCluster) -> None:
    leader = leader_of(cluster)
    follower = next(m.id for m in cluster.members if m.id != leader)
    with HsmClient([m.grpc for m in cluster.members], cluster.client_tls()) as app:
        session = co_session(cluster, app)
        app.transport.leader.endpoint = cluster.member(follower).grpc  # as if the leader had moved
        key = session.generate_key("stale-hint", "AES", 256, usage=["encrypt"])
        assert app.transport.leader.endpoint == cluster.member(leader).grpc
        assert [k.id for k in session.list_keys(label="stale-hint")] == [key.id]
        assert _writes_answered_by(app, session, "after-stale", 3) == {cluster.member(leader).grpc: 3}


@pytest.mark.processes
def test_after_the_leader_dies_the_hint_moves_to_the_new_leader(cluster: DevCluster) -> None:
    first = leader_of(cluster)
    with HsmClient([m.grpc for m in cluster.members], cluster.client_tls(), timeout=10.0) as app:
        session = co_session(cluster, app)
        session.generate_key("before", "AES", 256, usage=["encrypt"])
        assert app.transport.leader.endpoint == cluster.member(first).grpc
        cluster.kill(first)
        survivors = [m.id for m in cluster.members if m.id != first]
        new = leader_of(cluster, survivors)
        key = session.generate_key(
            "after", "AES", 256, usage=["encrypt"]
        )  # the dead leader first: fails over
        assert app.transport.leader.endpoint == cluster.member(new).grpc
        assert [k.id for k in session.list_keys(label="after")] == [key.id]
        assert _writes_answered_by(app, session, "new-leader", 3) == {cluster.member(new).grpc: 3}

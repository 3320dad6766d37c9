"""The SDK's outcome contract and membership following (issue 10), through real members.

OutcomeUnknown, carrying the request id, when an attempt may have executed and no answer came;
Unavailable only when nothing can have been applied; a member of another cluster refused and
dropped; read-your-writes shared between clients.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hsmnode.client import (
    FailedPrecondition,
    FaultInjector,
    HsmClient,
    IndexTracker,
    InvalidArgument,
    OutcomeUnknown,
    Unavailable,
)
from hsmnode.ops.devcluster import DevCluster, DevMember
from tests.integration.conftest import free_base_port
from tests.integration.helpers import co_session

pytestmark = pytest.mark.cluster


def test_a_write_whose_every_answer_is_lost_raises_outcome_unknown_with_its_request_id(
    single: DevCluster,
) -> None:
    endpoints = [m.grpc for m in single.members]
    lose_all = FaultInjector(unknown_ratio=1.0, methods=("/Generate",))
    with HsmClient(endpoints, single.client_tls(), interceptors=[lose_all], timeout=2.0) as app:
        session = co_session(single, app)
        with pytest.raises(OutcomeUnknown) as unknown:
            session.generate_key("lost-answers", "EC", "P-256", usage=["sign"], request_id="lost-answers-1")
        assert unknown.value.request_id == "lost-answers-1"
        assert "call again with request_id 'lost-answers-1'" in unknown.value.message
        assert lose_all.lost >= 2  # retried, with that request id, until the deadline
    with HsmClient(endpoints, single.client_tls()) as app:
        session = co_session(single, app)
        key = session.generate_key("lost-answers", "EC", "P-256", usage=["sign"], request_id="lost-answers-1")
        assert [k.id for k in session.list_keys(label="lost-answers")] == [key.id]


def test_a_write_never_sent_raises_unavailable_and_applies_nothing(single: DevCluster) -> None:
    endpoints = [m.grpc for m in single.members]
    never_sent = FaultInjector(fail_ratio=1.0, methods=("/Generate",))
    with HsmClient(endpoints, single.client_tls(), interceptors=[never_sent], timeout=1.5) as app:
        session = co_session(single, app)
        with pytest.raises(Unavailable):
            session.generate_key("never-sent", "EC", "P-256", usage=["sign"])
        assert never_sent.failed >= 2
        assert session.list_keys(label="never-sent") == []


@pytest.fixture
def foreign(single: DevCluster) -> Iterator[DevMember]:
    base = free_base_port(1)
    member = single.make_standalone("other", base, base + 100)
    try:
        yield member
    finally:
        single.stop_process(member)


def test_a_member_of_another_cluster_is_refused_and_dropped(single: DevCluster, foreign: DevMember) -> None:
    demo = single.demo()
    assert demo is not None
    own = single.members[0].grpc
    with HsmClient([foreign.grpc, own], single.tls(), cluster_id=single.cluster_id, discover=False) as client:
        client.login(
            "admin", demo["users"]["admin"]
        ).keep = True  # the foreign member refuses, the own answers
        assert client.endpoints == (own,) and foreign.grpc in client.dropped
    with (
        HsmClient([foreign.grpc], single.tls(), cluster_id=single.cluster_id) as only_foreign,
        pytest.raises(FailedPrecondition, match="belongs to cluster .* check the endpoints") as refused,
    ):
        only_foreign.login("admin", "PASSWORD")
    assert refused.value.reason == "foreign-cluster"


def test_clients_sharing_an_index_tracker_read_each_others_writes(single: DevCluster) -> None:
    demo = single.demo()
    assert demo is not None
    endpoints = [m.grpc for m in single.members]
    tracker = IndexTracker()
    with (
        HsmClient(endpoints, single.tls(), index_from=tracker) as admin_client,
        HsmClient(endpoints, single.client_tls(), index_from=admin_client) as app,
    ):
        assert app.index_tracker is tracker
        admin = admin_client.login("admin", demo["users"]["admin"])
        admin.keep = True
        admin.audit_note("a write the other client must not read behind")
        assert app.seen_index == admin_client.seen_index > 0


def test_a_command_over_the_size_limit_is_refused_before_it_reaches_any_journal(single: DevCluster) -> None:
    demo = single.demo()
    assert demo is not None
    endpoints = [m.grpc for m in single.members]
    with HsmClient(endpoints, single.tls()) as client:
        admin = client.login("admin", demo["users"]["admin"])
        admin.keep = True
        before = client.node_status().commit_index
        with pytest.raises(
            InvalidArgument, match=r"audit.note command would be \d+ bytes; .* at most 1048576"
        ):
            admin.audit_note("x" * 1_100_000)
        assert client.node_status().commit_index == before  # nothing was proposed

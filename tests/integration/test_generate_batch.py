"""Keys/GenerateBatch, the batched key generation (issue 16): each request of a batch answers
exactly what the unary Keys/Generate answers for it (status, message, KeyInfo, the first result
of a repeated request id), the others unaffected; a batch above MAX_BATCH is refused whole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from hsmnode.client import HsmClient, PartitionSession
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import keys_pb2, keys_pb2_grpc
from hsmnode.server.rpc import LEADER_KEY, SESSION_KEY
from hsmnode.service.key_batch import MAX_BATCH
from tests.integration.helpers import co_session

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def session(single: DevCluster) -> Iterator[PartitionSession]:
    with HsmClient([m.grpc for m in single.members], single.client_tls(), coalesce=False) as client:
        yield co_session(single, client)


def _stub(single: DevCluster, session: PartitionSession) -> Any:
    return keys_pb2_grpc.KeysStub(session.transport.channel(single.members[0].grpc))


def _request(label: str, key_type: str = "AES", size: str = "256", **kw: Any) -> Any:
    return keys_pb2.GenerateKeyRequest(
        request_id=kw.pop("request_id", uuid.uuid4().hex),
        label=label,
        key_type=key_type,
        size=size,
        usage=kw.pop("usage", ["encrypt", "decrypt"]),
        **kw,
    )


def _batch(stub: Any, token: str, *requests: Any, timeout_ms: list[int] | None = None) -> Any:
    batch = keys_pb2.GenerateKeyBatch(requests=requests, timeout_ms=timeout_ms or [])
    return stub.GenerateBatch.with_call(batch, timeout=10, metadata=[(SESSION_KEY, token)])


def _unary(stub: Any, token: str, request: Any) -> tuple[int, str]:
    """(status code value, message) of Keys/Generate for `request` (0, "" for a success)."""
    try:
        stub.Generate(request, timeout=10, metadata=[(SESSION_KEY, token)])
    except grpc.RpcError as exc:
        return exc.code().value[0], exc.details() or ""
    return 0, ""


def test_each_request_answers_what_generate_answers(single: DevCluster, session: PartitionSession) -> None:
    stub = _stub(single, session)
    session.generate_key("b-taken", "AES", 256, usage=["encrypt"])
    good = [_request("b-good-1"), _request("b-good-2", "EC", "P-256", usage=["sign", "verify"])]
    bad = [
        _request("b-taken"),  # the label exists: ALREADY_EXISTS
        _request("b-odd-size", size="100"),  # no such AES size: INVALID_ARGUMENT
        _request("b-elsewhere", partition="nobody-granted-this"),  # not granted: refused in apply
        _request("b-both", exportable=True, extractable=False),  # contradictory fields
        _request("b-bad-id", request_id="x" * 300),  # an invalid request id
    ]
    answer, call = _batch(stub, session.token, good[0], *bad, good[1])
    results = list(answer.results)
    assert [r.request_id for r in results] == [r.request_id for r in [good[0], *bad, good[1]]]
    for request, result in zip(good, [results[0], results[-1]], strict=True):
        assert (result.code, result.message) == (0, "")
        assert result.key.label == request.label and result.key.id
        assert [k.id for k in session.list_keys(label=request.label)] == [result.key.id]
    for request, result in zip(bad, results[1:-1], strict=True):
        unary = _unary(stub, session.token, _request(request.label, **_same(request)))
        assert unary[0] != 0, request.label
        assert (result.code, result.message) == unary, request.label
        assert not result.HasField("key")
    assert dict(call.trailing_metadata()).get(LEADER_KEY) == single.members[0].grpc


def _same(request: Any) -> dict[str, Any]:
    """The fields of `request` but its label, for the same request under a fresh request id (the
    invalid request id kept: that is what is refused)."""
    fields: dict[str, Any] = {
        "key_type": request.key_type,
        "size": request.size,
        "usage": list(request.usage),
        "partition": request.partition,
        "exportable": request.exportable,
    }
    if request.HasField("extractable"):
        fields["extractable"] = request.extractable
    if len(request.request_id) > 128:
        fields["request_id"] = request.request_id
    return fields


def test_without_a_session_each_request_answers_unauthenticated(
    single: DevCluster, session: PartitionSession
) -> None:
    stub = _stub(single, session)
    answer, _ = _batch(stub, "", _request("b-no-session-1"), _request("b-no-session-2"))
    unary = _unary(stub, "", _request("b-no-session-3"))
    assert unary[0] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert [(r.code, r.message) for r in answer.results] == [unary, unary]
    assert session.list_keys(label="b-no-session-1") == []


def test_a_repeated_request_id_answers_its_first_result(
    single: DevCluster, session: PartitionSession
) -> None:
    stub = _stub(single, session)
    first = _request("b-once")
    answer, _ = _batch(stub, session.token, first, _request("b-once", request_id=first.request_id))
    a, b = answer.results
    assert a.code == b.code == 0 and a.key.id == b.key.id
    # in a later batch, and through the unary RPC: the same key, not a second one nor ALREADY_EXISTS
    again, _ = _batch(stub, session.token, _request("b-once", request_id=first.request_id), _request("b-new"))
    assert again.results[0].code == 0 and again.results[0].key.id == a.key.id
    assert again.results[1].code == 0
    unary = stub.Generate(first, timeout=10, metadata=[(SESSION_KEY, session.token)])
    assert unary.id == a.key.id
    assert [k.id for k in session.list_keys(label="b-once")] == [a.key.id]


def test_a_batch_above_the_limit_is_refused_whole(single: DevCluster, session: PartitionSession) -> None:
    stub = _stub(single, session)
    requests = [_request(f"b-many-{i}") for i in range(MAX_BATCH + 1)]
    with pytest.raises(grpc.RpcError) as caught:
        _batch(stub, session.token, *requests)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert str(MAX_BATCH) in (caught.value.details() or "")
    assert session.list_keys(label="b-many-0") == []
    # at the limit it is served
    answer, _ = _batch(stub, session.token, *requests[:MAX_BATCH])
    assert all(r.code == 0 for r in answer.results) and len(answer.results) == MAX_BATCH


def test_a_request_whose_time_ran_out_before_its_turn_is_not_run(
    single: DevCluster, session: PartitionSession
) -> None:
    stub = _stub(single, session)
    # the first request (an RSA-4096 key) takes longer than the second's 1 ms
    slow, late = _request("b-slow", "RSA", "4096", usage=["sign"]), _request("b-late")
    answer, _ = _batch(stub, session.token, slow, late, timeout_ms=[0, 1])
    first, second = answer.results
    assert first.code == 0
    assert second.code == grpc.StatusCode.UNAVAILABLE.value[0] and "not applied" in second.message
    assert session.list_keys(label="b-late") == []

"""Bad client input gets the right status and a message a person can act on; the member stays up."""

from __future__ import annotations

import grpc
import pytest

from hsmnode import crypto
from hsmnode.client import HsmClient, InvalidArgument, PermissionDenied, Tls, Unavailable
from hsmnode.devcluster import DevCluster
from hsmnode.pb import audit_pb2, audit_pb2_grpc

pytestmark = pytest.mark.cluster


def still_up(single: DevCluster) -> None:
    with single.client() as client:
        assert client.node_status().role == "leader"


def test_empty_or_oversize_request_id_is_invalid(single: DevCluster) -> None:
    with (
        single.client() as client,
        pytest.raises(InvalidArgument, match="request_id must be 1-128 printable"),
    ):
        client.audit_note("x", request_id="x" * 200)
    with single.client() as client:
        channel = client._channel(single.members[0].grpc)
        with pytest.raises(grpc.RpcError) as info:
            audit_pb2_grpc.AuditStub(channel).Note(
                audit_pb2.AuditNoteRequest(request_id="", text="x"), timeout=5
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    still_up(single)


def test_oversize_note_is_invalid(single: DevCluster) -> None:
    with (
        single.client() as client,
        pytest.raises(InvalidArgument, match="audit note must be 1-1000 characters"),
    ):
        client.audit_note("x" * 5000)
    still_up(single)


def test_list_limit_out_of_range_is_invalid(single: DevCluster) -> None:
    with single.client() as client, pytest.raises(InvalidArgument, match="limit must be 0-1000"):
        client.audit_list(limit=5000)


def test_fault_injection_is_refused_when_disabled(single: DevCluster) -> None:
    with (
        single.client() as client,
        pytest.raises(PermissionDenied, match=r"fault injection is disabled .*fault_injection = true"),
    ):
        client.debug_fail_apply("nope")
    still_up(single)


def test_min_index_beyond_the_log_answers_unavailable_and_malformed_is_invalid(single: DevCluster) -> None:
    with single.client() as client:
        channel = client._channel(single.members[0].grpc)
        stub = audit_pb2_grpc.AuditStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.List(audit_pb2.AuditListRequest(), metadata=(("x-hsm-min-index", "999999999"),), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "behind the requested 999999999" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.List(audit_pb2.AuditListRequest(), metadata=(("x-hsm-min-index", "soon"),), timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    still_up(single)


def test_every_answer_carries_the_applied_index(single: DevCluster) -> None:
    with single.client() as client:
        client.audit_note("index please")
        assert client.seen_index >= 2


def test_client_certificate_from_another_ca_cannot_connect(single: DevCluster) -> None:
    stranger_ca = crypto.create_ca("stranger")
    stranger = crypto.issue_certificate(stranger_ca, "admin")
    tls = Tls(
        ca_pem=(single.root / "ca.pem").read_bytes(), cert_pem=stranger.cert_pem, key_pem=stranger.key_pem
    )
    with HsmClient([single.members[0].grpc], tls, timeout=2.0) as client, pytest.raises(Unavailable):
        client.cluster_status()
    still_up(single)

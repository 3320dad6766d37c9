"""Bad client input gets the right status and a message a person can act on; the member stays up."""

from __future__ import annotations

import grpc
import pytest

from hsmnode import crypto
from hsmnode.client import (
    FailedPrecondition,
    HsmClient,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Tls,
    Unauthenticated,
    remove_member,
)
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import audit_pb2, audit_pb2_grpc
from tests.integration.helpers import as_admin, as_auditor, audit_records, token

pytestmark = pytest.mark.cluster


def still_up(single: DevCluster) -> None:
    with single.client() as client:
        assert client.node_status().role == "leader"


def test_empty_or_oversize_request_id_is_invalid(single: DevCluster) -> None:
    admin = as_admin(single)
    with admin.client, pytest.raises(InvalidArgument, match="request_id must be 1-128 printable"):
        admin.audit_note("x", request_id="x" * 200)
    with single.client() as client:
        stub = audit_pb2_grpc.AuditStub(client._channel(single.members[0].grpc))
        with pytest.raises(grpc.RpcError) as info:
            stub.Note(
                audit_pb2.AuditNoteRequest(request_id="", text="x"),
                metadata=(("x-hsm-session", token(single, "admin")),),
                timeout=5,
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    still_up(single)


def test_oversize_note_is_invalid(single: DevCluster) -> None:
    admin = as_admin(single)
    with admin.client, pytest.raises(InvalidArgument, match="audit note must be 1-1000 characters"):
        admin.audit_note("x" * 5000)
    still_up(single)


def test_list_limit_out_of_range_is_invalid(single: DevCluster) -> None:
    auditor = as_auditor(single)
    with auditor.client, pytest.raises(InvalidArgument, match="limit must be 0-1000"):
        auditor.audit_list(limit=5000)


def test_fault_injection_is_refused_when_disabled(single: DevCluster) -> None:
    with (
        single.client() as client,
        pytest.raises(PermissionDenied, match=r"fault injection is disabled .*fault_injection = true"),
    ):
        client.debug_fail_apply("nope")
    still_up(single)


def test_min_index_beyond_the_log_answers_unavailable_and_malformed_is_invalid(single: DevCluster) -> None:
    with single.client() as client:
        stub = audit_pb2_grpc.AuditStub(client._channel(single.members[0].grpc))
        with pytest.raises(grpc.RpcError) as info:
            stub.List(audit_pb2.AuditListRequest(), metadata=(("x-hsm-min-index", "999999999"),), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "behind the requested 999999999" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.List(audit_pb2.AuditListRequest(), metadata=(("x-hsm-min-index", "soon"),), timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    still_up(single)


def test_every_answer_carries_the_applied_index(single: DevCluster) -> None:
    admin = as_admin(single)
    with admin.client:
        admin.audit_note("index please")
        assert admin.client.seen_index >= 2


def test_client_certificate_from_another_ca_is_refused_with_a_clear_error(single: DevCluster) -> None:
    stranger = crypto.issue_certificate(crypto.create_ca("stranger"), "admin")
    tls = Tls(
        ca_pem=(single.root / "ca.pem").read_bytes(), cert_pem=stranger.cert_pem, key_pem=stranger.key_pem
    )
    with (
        HsmClient([single.members[0].grpc], tls, timeout=2.0) as client,
        pytest.raises(Unauthenticated) as info,
    ):
        client.cluster_status()
    assert (
        "refused this client certificate" in info.value.message and "is it registered" in info.value.message
    )
    still_up(single)


def test_requests_without_a_session_are_told_to_log_in(single: DevCluster) -> None:
    with single.client() as client, pytest.raises(Unauthenticated, match="log in first"):
        client.resume("").list_users()


def test_new_user_with_bad_input_is_refused_and_not_created(single: DevCluster) -> None:
    admin = as_admin(single)
    with admin.client:
        with pytest.raises(InvalidArgument, match="at least 3 of"):
            admin.add_user("weakling", role="monitor", password="password")
        with pytest.raises(InvalidArgument, match="not starting with a dot"):
            admin.add_user("-x", role="monitor", password="Good-pass-1")
        with pytest.raises(NotFound, match="no role 'wizard'"):
            admin.add_user("wiz", role="wizard", password="Good-pass-1")
        with pytest.raises(InvalidArgument, match="password must not be empty"):
            admin.add_user("empty", role="monitor", password="")
        names = [u.name for u in admin.list_users()]
        assert not {"weakling", "-x", "wiz", "empty"} & set(names)
    still_up(single)


def test_unknown_partition_role_and_oversize_password_are_invalid(single: DevCluster) -> None:
    with single.app_client() as app:
        with pytest.raises(InvalidArgument, match="role must be one of PO, CO, CU"):
            app.open_session("demo", "whatever", role="KING")
        with pytest.raises(InvalidArgument, match="at most 255 characters"):
            app.open_session("demo", "x" * 300, role="CU")
    still_up(single)


def test_a_huge_name_is_refused_with_its_message_cut_not_a_transport_error(single: DevCluster) -> None:
    """A refusal echoing a 10,000-character name once overflowed gRPC's 8 KiB header limit
    ("received metadata size exceeds soft limit"): the status message is cut, the refusal stays."""
    with single.app_client() as app:
        demo = single.demo()
        assert demo is not None
        co = app.open_session("demo", demo["partition"]["co_password"], role="CO")
        with pytest.raises(NotFound) as refused:
            co.sign("k" * 10_000, b"data", mechanism="ECDSA-SHA256")
        assert "characters, cut)" in refused.value.message and len(refused.value.message) <= 1024
    still_up(single)


def test_a_megabyte_name_is_refused_by_its_rule_before_any_command_is_built(single: DevCluster) -> None:
    """A 1 MB user name was told "the login.record command would be 1048826 bytes": every name a
    command would carry is refused by its own rule (command_limits), nothing logged or counted."""
    huge = "u" * (1 << 20)
    cut = f"'{'u' * 40}'... ({1 << 20} characters) is too long"
    with single.client() as client, pytest.raises(InvalidArgument) as refused:
        client.login(huge, "Whatever-pass-1")
    assert refused.value.message.startswith(f"user name {cut}: a user name is 1-32 characters from A-Z")
    admin = as_admin(single)
    with admin.client:
        for attempt, rule in (
            (lambda: admin.delete_user(huge), "user name"),
            (lambda: admin.add_user("bob", role=huge, password="Good-pass-1"), "role name"),
            (lambda: admin.assign_client("demo", huge), "partition name"),
            (lambda: admin.add_role(huge, ["user.list"]), "role name"),
        ):
            with pytest.raises(InvalidArgument) as refused:
                attempt()
            assert refused.value.message.startswith(f"{rule} {cut}: a {rule} is 1-")
    with single.app_client() as app:
        demo = single.demo()
        assert demo is not None
        co = app.open_session("demo", demo["partition"]["co_password"], role="CO")
        with pytest.raises(InvalidArgument, match=r"partition name .* is too long: a partition name is 1-64"):
            co.grant(huge, ["sign"])
    assert not [r for r in audit_records(single, single.members[0].id) if "u" * 33 in r.detail]
    still_up(single)


def test_a_lowercase_role_and_a_single_usage_flag_as_a_string_are_taken(single: DevCluster) -> None:
    """The CLI spells roles in lower case; the SDK takes them so too. `usage="encrypt"` once read as
    the flags e, n, c, r, y, p, t."""
    with single.app_client() as app:
        demo = single.demo()
        assert demo is not None
        co = app.open_session("demo", demo["partition"]["co_password"], role="co")
        assert co.role == "CO"
        key = co.generate_key("one-usage-flag", "AES", 256, usage="encrypt")
        assert key.usage == ("encrypt",)
        # a new user: an unknown type without a size was told it needed a size; a negative random
        # length gave protobuf's "Value out of range"
        with pytest.raises(InvalidArgument, match="unknown key type 'Bogus'"):
            co.generate_key("bogus", "Bogus", usage="encrypt")
        with pytest.raises(InvalidArgument, match="random length must be at least 1 byte, got -1"):
            co.random(-1)
    still_up(single)


def test_the_last_member_cannot_be_removed(single: DevCluster) -> None:
    demo = single.demo()
    assert demo is not None
    only = single.members[0]
    with pytest.raises(FailedPrecondition, match="last member of the cluster.*add another member first"):
        remove_member([only.grpc], single.tls(), only.id, ("admin", demo["users"]["admin"]), timeout=10.0)
    still_up(single)

"""The SDK's outcome contract, decided per failed attempt (no sockets): which failures may have
applied a write (OutcomeUnknown, with the request id) and which provably did not (Unavailable)."""

from __future__ import annotations

import grpc
import pytest

from hsmnode.client import OutcomeUnknown, ResourceExhausted, Unavailable
from hsmnode.client._errors import error_from_rpc
from hsmnode.client._faults import InjectedError
from hsmnode.client._outcome import APPLIED_INDEX_KEY, Attempts, provably_not_applied


class Failed(grpc.RpcError):
    def __init__(
        self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


U = grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("failure", "not_applied"),
    [
        (Failed(U, "no leader", ((APPLIED_INDEX_KEY, "7"),)), True),  # a member said: not applied
        (Failed(U, "failed to connect to all addresses; last error: Connection refused"), True),
        (InjectedError(U, "injected fault: the call was not sent", sent=False), True),
        (Failed(U, "Socket closed"), False),  # the member died with the request in flight
        (Failed(U, "recvmsg:Connection reset by peer"), False),
        (Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), False),
        (InjectedError(grpc.StatusCode.DEADLINE_EXCEEDED, "the answer was lost", sent=True), False),
        (Failed(grpc.StatusCode.ABORTED, "the leader changed"), False),
    ],
)
def test_only_failures_that_prove_nothing_ran_count_as_not_applied(
    failure: Failed, not_applied: bool
) -> None:
    assert provably_not_applied(failure, failure.trailing_metadata()) is not_applied


def test_a_write_that_may_have_run_ends_in_outcome_unknown_carrying_its_request_id() -> None:
    attempts = Attempts("Generate", write=True, request_id="rid-7")
    attempts.maybe_applied = True
    attempts.last = Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    failure = attempts.failure(["h:1", "h:2"], 5.0)
    assert isinstance(failure, OutcomeUnknown) and failure.request_id == "rid-7"
    assert "call again with request_id 'rid-7'" in failure.message


def test_a_write_that_cannot_have_run_ends_in_unavailable() -> None:
    attempts = Attempts("Generate", write=True, request_id="rid-8")
    attempts.last = Failed(U, "failed to connect to all addresses")
    assert type(attempts.failure(["h:1"], 5.0)) is Unavailable


def test_a_members_refusal_reason_reaches_the_error() -> None:
    refused = Failed(grpc.StatusCode.FAILED_PRECONDITION, "removed", (("x-hsm-refusal", "removed"),))
    assert error_from_rpc(refused).reason == "removed"


def test_an_oversize_message_names_the_limit_signing_a_digest_and_envelope_encryption() -> None:
    raw = "SERVER: Received message larger than max (5000024 vs. 4194304)"
    error = error_from_rpc(Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, raw))
    assert isinstance(error, ResourceExhausted)
    assert error.message.startswith(
        "the message is 5000024 bytes, over the 4 MiB gRPC message limit (4194304 bytes)"
    )
    assert "hash it first and sign the digest" in error.message and "ECDSA-DIGEST" in error.message
    assert "to encrypt it, encrypt it locally with a data key" in error.message  # not only signing
    # another RESOURCE_EXHAUSTED (a lockout) keeps its own message
    locked = "the CO of partition 'pay' is locked after 3 failed logins"
    assert error_from_rpc(Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, locked)).message == locked

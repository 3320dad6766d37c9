"""Every domain error code and replication failure has a gRPC status (DESIGN.md §4)."""

from __future__ import annotations

import grpc

from hsmnode.domain.errors import ErrorCode
from hsmnode.replication import _translate
from hsmnode.server.errors import STATUS_FOR_CODE, status_for_replication


def test_every_domain_code_maps_to_the_same_named_status() -> None:
    assert set(STATUS_FOR_CODE) == set(ErrorCode)
    for code, status in STATUS_FOR_CODE.items():
        assert status.name == code.value


def test_unknown_write_outcomes_are_aborted_and_unapplied_ones_unavailable() -> None:
    from pysyncobj import FAIL_REASON

    assert status_for_replication(_translate("Timeout")) is grpc.StatusCode.ABORTED
    assert status_for_replication(_translate(FAIL_REASON.LEADER_CHANGED)) is grpc.StatusCode.ABORTED
    assert status_for_replication(_translate(FAIL_REASON.UNKNOWN_OUTCOME)) is grpc.StatusCode.ABORTED
    assert status_for_replication(_translate(FAIL_REASON.MISSING_LEADER)) is grpc.StatusCode.UNAVAILABLE
    assert status_for_replication(_translate(FAIL_REASON.NOT_LEADER)) is grpc.StatusCode.UNAVAILABLE
    assert status_for_replication(_translate(FAIL_REASON.DISCARDED)) is grpc.StatusCode.UNAVAILABLE
    assert status_for_replication(_translate(FAIL_REASON.QUEUE_FULL)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "same request_id" in _translate("Timeout").message

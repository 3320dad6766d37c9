"""`cluster join`'s adoption step: what it undoes and what it must not (hsmnode/ops/joining.py)."""

from __future__ import annotations

from typing import Any

import pytest

from hsmnode.client import FailedPrecondition, HsmError, OutcomeUnknown, Unavailable
from hsmnode.ops.joining import _adopt


class Node:
    def __init__(self, outcome: str | HsmError) -> None:
        self.outcome = outcome
        self.request_ids: list[str | None] = []

    def adopt_cluster(self, bundle: Any, *, request_id: str | None = None) -> str:
        self.request_ids.append(request_id)
        if isinstance(self.outcome, HsmError):
            raise self.outcome
        return self.outcome


class ClusterAdmin:
    def __init__(self) -> None:
        self.removed: list[str] = []

    def remove_member(self, member_id: str) -> list[str]:
        self.removed.append(member_id)
        return []


def test_an_adoption_carries_a_request_id_and_keeps_the_member() -> None:
    node, admin = Node("/data/archive-1.tar.gz"), ClusterAdmin()
    assert _adopt(node, object(), admin, "node4") == "/data/archive-1.tar.gz"  # type: ignore[arg-type]
    assert node.request_ids[0] and len(node.request_ids[0]) == 32
    assert admin.removed == []


@pytest.mark.parametrize("refusal", [FailedPrecondition("not added yet"), Unavailable("connection refused")])
def test_a_refused_or_unsent_adoption_takes_the_member_out_again(refusal: HsmError) -> None:
    node, admin = Node(refusal), ClusterAdmin()
    with pytest.raises(type(refusal)):
        _adopt(node, object(), admin, "node4")  # type: ignore[arg-type]
    assert admin.removed == ["node4"]


def test_an_unknown_outcome_is_not_undone_and_says_how_to_check() -> None:
    node, admin = Node(OutcomeUnknown("no member answered AdoptCluster", request_id="r1")), ClusterAdmin()
    with pytest.raises(OutcomeUnknown, match="remove-member node4") as raised:
        _adopt(node, object(), admin, "node4")  # type: ignore[arg-type]
    assert raised.value.request_id == "r1"
    assert admin.removed == []  # the node may have adopted: removing it would strand it

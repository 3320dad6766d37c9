"""The leader's membership reconciler (service/membership.py) judges only a directory of its own cluster:
a restored cluster's state carries the backup's directory until `cluster.restore` binds it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hsmnode.domain.state import HsmState
from hsmnode.service.membership import MembershipReconciler

SELF = "10.0.0.9:7500"


class Replicator:
    """A leader holding all it committed, whose Raft configuration is itself alone."""

    self_address = SELF

    def __init__(self) -> None:
        self.handed_over = False
        self.changes: list[tuple[bool, str]] = []

    def status(self) -> Any:
        return SimpleNamespace(role="leader", ready=True, applied_index=5, commit_index=5)

    def raft_configuration(self) -> frozenset[str]:
        return frozenset({SELF})

    def transfer_leadership(self, timeout: float) -> None:
        self.handed_over = True

    def change_membership(self, add: bool, raft: str, timeout: float) -> None:
        self.changes.append((add, raft))


def reconciler(state: HsmState, cluster_id: str) -> tuple[MembershipReconciler, Replicator]:
    replicator = Replicator()
    ctx = SimpleNamespace(
        replicator=replicator,
        read=lambda fn: fn(state),
        config=SimpleNamespace(cluster_id=cluster_id),
        node_id="node1",
        clock_ms=lambda: 1_700_000_000_000,
        propose=lambda cmd, timeout: None,
    )
    return MembershipReconciler(ctx), replicator  # type: ignore[arg-type]


def backup_state() -> HsmState:
    """The source cluster's state as a restored member starts from it: the source's directory."""
    state = HsmState()
    state.cluster_id = "c-source"
    state.members = {"node1": ("10.0.0.1:7500", "10.0.0.1:7400"), "node2": ("10.0.0.2:7500", "10.0.0.2:7400")}
    return state


def test_a_restored_state_not_yet_bound_to_this_cluster_is_left_alone() -> None:
    state = backup_state()
    reconcile, replicator = reconciler(state, "c-restored")
    assert reconcile.run_once() == ""
    assert not replicator.handed_over and not replicator.changes


def test_once_bound_the_directory_is_reconciled() -> None:
    state = backup_state()
    state.cluster_id = "c-restored"  # what cluster.restore does, with the new members
    state.members = {"node1": (SELF, "10.0.0.9:7400"), "node2": ("10.0.0.8:7500", "10.0.0.8:7400")}
    reconcile, replicator = reconciler(state, "c-restored")
    assert reconcile.run_once().startswith("completing the addition of node2")
    assert replicator.changes == [(True, "10.0.0.8:7500")]


def test_a_directory_of_this_cluster_without_the_leader_hands_leadership_over() -> None:
    state = backup_state()
    state.cluster_id = "c-restored"
    reconcile, replicator = reconciler(state, "c-restored")
    assert reconcile.run_once() == "handover" and replicator.handed_over

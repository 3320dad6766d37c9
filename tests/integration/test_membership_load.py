"""Five members under SDK write and sign load (issue 10): members removed and re-added, the leader
among them, and two of five killed with the leader, without one failed application call.

The short runs of the acceptance figures; `make drill-membership` runs the long ones (20 follower
and 5 leader cycles).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevCluster
from tests.integration.conftest import start_cluster
from tests.integration.helpers import drill

pytestmark = [pytest.mark.cluster, pytest.mark.processes]


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_cluster(Path(tmp_path_factory.mktemp("five")) / "cluster", nodes=5, fault_injection=False)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_remove_and_readd_a_follower_and_the_leader_under_load_fails_nothing(five: DevCluster) -> None:
    code, report = drill(
        five, "--scenario", "remove-readd", "--cycles", "1", "--leader-cycles", "1", "--at", "1", timeout=240
    )
    membership = report["membership"]
    assert [c["role"] for c in membership["cycles"]] == ["follower", "leader"]
    assert membership["directory_and_raft_agree"], membership["cycles"]
    assert report["operations"]["failed"] == 0, report["first_failures"]
    assert report["operations"]["by_kind"]["sign"] > 0 and report["operations"]["by_kind"]["key"] > 0
    assert report["verification"]["ok"], report["verification"]["problems"]
    assert report["leaders"]["leader_changes"] >= 1  # the leader's cycle hands leadership over
    # the workload goes on after the cycles (it stopped 1 s after them: "after" showed p50 0.0 ms)
    assert report["latency"]["after"]["operations"] > 0
    assert code == 0


def test_killing_two_of_five_members_with_the_leader_under_load_fails_nothing(five: DevCluster) -> None:
    five.wait_for_leader(timeout=30.0)
    code, report = drill(
        five, "--kill", "leader+follower", "--duration", "7", "--at", "2", "--restart-after", "3"
    )
    assert len(report["killed"].split("+")) == 2
    assert report["operations"]["failed"] == 0, report["first_failures"]
    assert report["verification"]["ok"], report["verification"]["problems"]
    assert code == 0

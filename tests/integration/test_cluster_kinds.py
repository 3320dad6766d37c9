"""The test clusters' two kinds (tests/common/cluster.py): what a test asks for is what it gets,
HSMNODE_TEST_CLUSTERS=processes turns every cluster into member processes, and an in-process member
refuses a SIGKILL with the fix named. (Every in-process test runs a real in-process cluster.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevClusterError
from tests.common.cluster import (
    ENV_KIND,
    IN_PROCESS,
    PROCESSES,
    InProcessCluster,
    ProcessCluster,
    cluster_kind,
    create_cluster,
)


def test_a_test_gets_the_kind_it_asks_for_unless_processes_are_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_KIND, raising=False)
    assert cluster_kind(IN_PROCESS) == IN_PROCESS
    assert cluster_kind(PROCESSES) == PROCESSES
    monkeypatch.setenv(ENV_KIND, PROCESSES)
    assert cluster_kind(IN_PROCESS) == PROCESSES
    assert cluster_kind(PROCESSES) == PROCESSES
    monkeypatch.setenv(ENV_KIND, "threads")
    with pytest.raises(ValueError, match="HSMNODE_TEST_CLUSTERS='threads': choose 'processes'"):
        cluster_kind(IN_PROCESS)
    with pytest.raises(ValueError, match="cluster kind 'forked'"):
        cluster_kind("forked")


def test_create_cluster_makes_the_kind_and_an_in_process_member_cannot_be_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KIND, raising=False)
    inproc = create_cluster(tmp_path / "a", kind=IN_PROCESS, nodes=1)
    assert isinstance(inproc, InProcessCluster)
    assert not inproc.running("node1") and inproc.exit_code("node1") is None
    with pytest.raises(DevClusterError, match="cannot SIGKILL in-process member node1: .* 'processes'"):
        inproc.kill("node1")
    procs = create_cluster(tmp_path / "b", kind=PROCESSES, nodes=1)
    assert type(procs) is ProcessCluster

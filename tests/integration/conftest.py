"""Cluster fixtures: real members on 127.0.0.1 with real gRPC over mTLS and real Raft, started by the
same launcher as `hsmnode dev` (tests/common/cluster.py).

Members run inside the test process unless the test (or its module, through `pytestmark`) is marked
`processes`: a test that kills, cuts off, joins or reads a member's log needs member processes.
`HSMNODE_TEST_CLUSTERS=processes` runs every cluster as processes. In-process members hash passwords
at a lighter scrypt cost (tests/common/cluster.py `light_password_hashing`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevCluster
from tests.common.cluster import IN_PROCESS, PROCESSES, free_base_port, light_password_hashing, start_cluster

__all__ = ["cluster_kind_for", "free_base_port", "start_cluster"]


def cluster_kind_for(request: pytest.FixtureRequest) -> str:
    """`processes` for a test or module marked so, else `in_process`."""
    return PROCESSES if request.node.get_closest_marker("processes") else IN_PROCESS


@pytest.fixture(scope="package", autouse=True)
def _light_password_hashing() -> Iterator[None]:
    with light_password_hashing():
        yield


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DevCluster]:
    """A fresh 3-member cluster with the dev demo set up and fault injection on; every member is stopped afterwards."""
    c = start_cluster(tmp_path / "cluster", kind=cluster_kind_for(request), compaction=40)
    try:
        yield c
    finally:
        c.stop()
        assert not any(c.running(m.id) for m in c.members)


@pytest.fixture(scope="module")
def single(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 1-member cluster, fault injection off, shared by the bad-input tests of one module."""
    c = start_cluster(
        tmp_path_factory.mktemp("single"), kind=cluster_kind_for(request), nodes=1, fault_injection=False
    )
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def trio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 3-member cluster, fault injection off, shared by the tests of one module."""
    c = start_cluster(
        tmp_path_factory.mktemp("trio"), kind=cluster_kind_for(request), nodes=3, fault_injection=False
    )
    try:
        yield c
    finally:
        c.stop()

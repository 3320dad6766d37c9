"""Cluster fixtures: real `hsmnode serve` processes on 127.0.0.1, started by the same launcher as `hsmnode dev`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import RAFT_PORT_OFFSET, DevCluster, DevTimings, ports_free


def free_base_port(nodes: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000 - RAFT_PORT_OFFSET - nodes)
        ports = [base + i for i in range(nodes)] + [base + RAFT_PORT_OFFSET + i for i in range(nodes)]
        if ports_free(ports):
            return base
    raise RuntimeError("no free port range on 127.0.0.1")


def start_cluster(
    root: Path, *, nodes: int = 3, fault_injection: bool = True, compaction: int = 5000
) -> DevCluster:
    cluster = DevCluster.create(
        root,
        nodes=nodes,
        base_port=free_base_port(nodes),
        timings=DevTimings(compaction_min_entries=compaction),
        fault_injection=fault_injection,
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout=30.0)
        cluster.bootstrap_demo()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A fresh 3-member cluster with the dev demo set up and fault injection on; every process is stopped afterwards."""
    c = start_cluster(tmp_path / "cluster", compaction=40)
    try:
        yield c
    finally:
        c.stop()
        assert not any(c.running(m.id) for m in c.members)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 1-member cluster, fault injection off, shared by the bad-input tests of one module."""
    c = start_cluster(tmp_path_factory.mktemp("single"), nodes=1, fault_injection=False)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 3-member cluster, fault injection off, shared by the tests of one module."""
    c = start_cluster(tmp_path_factory.mktemp("trio"), nodes=3, fault_injection=False)
    try:
        yield c
    finally:
        c.stop()

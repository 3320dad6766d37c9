"""The reliability suite: real member processes under floods, restarts, partitions, fuzzing and chaos.

Tests marked `chaos` are the long runs (`make chaos`); the rest is the short run inside `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.devcluster import DevCluster
from tests.integration.conftest import start_cluster


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (bytes), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 3-member cluster shared by one module's tests; every process is stopped afterwards."""
    c = start_cluster(tmp_path_factory.mktemp("trio"), nodes=3, fault_injection=True)
    try:
        yield c
    finally:
        c.stop()

"""The reliability suite: real member processes under floods, restarts, partitions, fuzzing and chaos.

Tests marked `chaos` are the long runs (`make chaos`); the rest is the short run inside `make test`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.client import HsmError
from hsmnode.ops.devcluster import DevCluster, DevClusterError
from tests.integration.conftest import start_cluster
from tests.integration.helpers import as_admin, converged, notes_on


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (bytes), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="package")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 3-member cluster shared by the fault suite (each test leaves three healthy members);
    every process is stopped afterwards.

    Snapshots every 200 entries: pysyncobj replays a restarted member's journal since its last
    snapshot in one tick, so restarts stay quick however much a test wrote (and catch-up from
    snapshots is exercised under the faults)."""
    c = start_cluster(tmp_path_factory.mktemp("trio"), nodes=3, fault_injection=True, compaction=200)
    try:
        yield c
    finally:
        c.stop()


class Watcher:
    """Samples every member's (term, leader) ten times a second in a thread: leader changes seen."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.samples: list[tuple[float, str, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for member in list(self.cluster.members):
                try:
                    with self.cluster.client(member.id, timeout=0.5) as client:
                        s = client.node_status()
                    if s.ready:  # a member still starting or catching up has not heard the term yet
                        self.samples.append((time.monotonic(), member.id, s.term, s.leader))
                except (HsmError, DevClusterError):  # down, or removed since the list was taken
                    pass
            self._stop.wait(0.1)

    def terms(self) -> list[int]:
        return sorted({term for _, _, term, _ in self.samples})

    def leaders(self) -> list[str]:
        return sorted({leader for _, _, _, leader in self.samples if leader})


class Writer:
    """Audit notes through the whole cluster (the HA SDK) from a thread; remembers what was acknowledged."""

    def __init__(self, cluster: DevCluster, prefix: str, rate: float = 20.0) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.period = 1.0 / rate
        self.acknowledged: list[str] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        admin = as_admin(self.cluster)
        with admin.client:
            i = 0
            while not self._stop.is_set():
                text = f"{self.prefix}-{i}"
                try:
                    admin.audit_note(text, request_id=text)
                    self.acknowledged.append(text)
                except HsmError as exc:
                    self.errors[exc.code.name] = self.errors.get(exc.code.name, 0) + 1
                i += 1
                self._stop.wait(self.period)

    def check_exactly_once_everywhere(self) -> None:
        ids = [m.id for m in self.cluster.members]
        converged(self.cluster, ids, timeout=30.0)
        for member in ids:
            notes = [n for n in notes_on(self.cluster, member) if n.startswith(self.prefix + "-")]
            missing = set(self.acknowledged) - set(notes)
            assert not missing, f"{member} lacks acknowledged writes {sorted(missing)[:5]}"
            assert len(notes) == len(set(notes)), f"{member} holds a write twice"

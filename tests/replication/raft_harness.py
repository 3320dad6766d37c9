"""In-process members of HsmSyncObj on 127.0.0.1: the real engine, real sockets, a tiny consumer.

For rules that are clearest observed inside the engine (fsync order, pre-vote counters); the
behaviour of whole `hsmnode serve` processes is tested in tests/integration and tests/fault.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pysyncobj import SyncObjConf, SyncObjConsumer, replicated

from hsmnode.raft.engine import EngineOptions, HsmSyncObj
from hsmnode.raft.transport import TransportLimits

log = logging.getLogger("hsmnode.test.harness")


class Register(SyncObjConsumer):  # type: ignore[misc]
    """A replicated dict; `put` answers the Raft index it was applied at."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}

    @replicated  # type: ignore[misc]
    def put(self, key: str, value: Any) -> int:
        self.data[key] = value
        return int(self._syncObj.raftLastApplied) + 1


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def harness_conf(**extra: Any) -> SyncObjConf:
    """The members' pysyncobj configuration (password, timings), plus `extra`."""
    return SyncObjConf(
        password="harness-password-0123456789",
        appendEntriesUseBatch=False,
        raftMinTimeout=0.15,
        raftMaxTimeout=0.3,
        appendEntriesPeriod=0.04,
        leaderFallbackTimeout=2.0,
        connectionTimeout=600.0,
        connectionRetryTime=0.04,
        **extra,
    )


class Member:
    def __init__(self, address: str, others: list[str], data: Path, durable: bool, **options: Any) -> None:
        self.address = address
        self.register = Register()
        conf = harness_conf(
            dynamicMembershipChange=True, journalFile=str(data / "journal"), fullDumpFile=str(data / "dump")
        )
        engine = EngineOptions(
            lease=options.pop("lease", 1.0),
            election_timeout_min=0.15,
            startup_wait=options.pop("startup_wait", 0.9),
            durable=durable,
            limits=options.pop("limits", TransportLimits()),
        )
        self.obj = HsmSyncObj(address, others, conf=conf, consumers=[self.register], options=engine)

    def status(self) -> dict[str, Any]:
        return dict(self.obj.getStatus())

    def is_leader(self) -> bool:
        return bool(self.obj.getStatus()["state"] == 2)

    def close(self) -> None:
        self.obj.destroy_synchronous()


class Cluster:
    def __init__(
        self, root: Path, n: int, durable: bool = False, addresses: list[str] | None = None, **options: Any
    ) -> None:
        self.root = root
        self.durable = durable
        self.options = options
        self.addresses = addresses or [f"127.0.0.1:{p}" for p in free_ports(n)]
        self.members: dict[str, Member] = {}
        for address in self.addresses:
            self.start(address)

    def data_dir(self, address: str) -> Path:
        return self.root / address.replace(":", "_")

    def start(self, address: str, others: list[str] | None = None) -> Member:
        """Start a member; `others` is its configuration (default: every address but its own)."""
        log.info("harness: starting %s", address)
        data = self.data_dir(address)
        data.mkdir(parents=True, exist_ok=True)
        if others is None:
            others = [a for a in self.addresses if a != address]
        member = Member(address, others, data, self.durable, **dict(self.options))
        self.members[address] = member
        return member

    def stop(self, address: str) -> None:
        log.info("harness: stopping %s", address)
        self.members.pop(address).close()
        log.info("harness: stopped %s", address)

    def leader(self, timeout: float = 10.0) -> Member:
        found = wait_for(lambda: next((m for m in self.members.values() if m.is_leader()), None), timeout)
        assert found is not None, "no leader elected"
        return found

    def close(self) -> None:
        for address in list(self.members):
            self.stop(address)


def wait_for(probe: Callable[[], Any], timeout: float, period: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(period)


@contextmanager
def cluster(root: Path, n: int = 3, durable: bool = False, **options: Any) -> Iterator[Cluster]:
    c = Cluster(root, n, durable, **options)
    try:
        yield c
    finally:
        c.close()


class EventLog:
    """A thread-safe, ordered record of what the members did."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[Any, ...]] = []

    def add(self, *event: Any) -> None:
        with self.lock:
            self.events.append(event)

"""Clusters for tests, as member processes or as members inside the test process (etcd's tests/common).

Both kinds are made by the launcher of `hsmnode dev` (the same CA, certificates, configs, profile and
demo) and run the same `Node`: real gRPC over mutual TLS on 127.0.0.1, real pysyncobj Raft between the
members, real `cryptography`. They differ only in where a member runs:

- `processes`: each member is an `hsmnode serve` process. Needed by every test that kills (SIGKILL),
  cuts off, restarts with changed files, joins (a join re-executes the process) or reads a member's
  log; and the kind every capability is also tested with.
- `in_process`: each member is a `Node` on a thread of the test process. No interpreter start and no
  imports per member, so an SDK-level test's cluster is up in about a second. Members can be stopped
  and started again (a clean shutdown), never killed.

`HSMNODE_TEST_CLUSTERS=processes` runs every cluster as processes (CI's second pass: each in-process
test is then also run against member processes).

Test members hash passwords with scrypt at N=2^10 instead of 2^14: the same scrypt through
`cryptography`, at a sixteenth of the cost. A bootstrap alone hashes or checks about 30 passwords
(about 2 s of a process cluster's set-up at N=2^14), and scrypt was over half of the CPU time of the
SDK-level tests. In-process members get it from `light_password_hashing` (on for tests/integration),
member processes from their command line (`ProcessCluster.serve_argv`: `hsmnode serve` with N set
before it starts). A hash records its N, so any member verifies any hash. The production cost stays
where a user meets it: `hsmnode dev` (tests/integration/test_cli.py), a member a drill restarts and a
joiner re-executed after its join run `hsmnode serve` as it is, and tests/unit pins N=2^14.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hsmnode.ops.devcluster import (
    METRICS_PORT_OFFSET,
    RAFT_PORT_OFFSET,
    DevCluster,
    DevClusterError,
    DevMember,
    DevTimings,
    ports_free,
)

ENV_KIND = "HSMNODE_TEST_CLUSTERS"
PROCESSES = "processes"
IN_PROCESS = "in_process"


LIGHT_SCRYPT_N = 2**10


@contextmanager
def light_password_hashing() -> Iterator[None]:
    """While active, passwords hashed in this process (by in-process members) use scrypt N=2^10;
    a hash records its N, so verifying stays right whatever N made it."""
    from hsmnode import crypto

    production = crypto.SCRYPT_N
    crypto.SCRYPT_N = LIGHT_SCRYPT_N
    try:
        yield
    finally:
        crypto.SCRYPT_N = production


def cluster_kind(requested: str) -> str:
    """The kind a test gets: what it asked for, unless HSMNODE_TEST_CLUSTERS=processes forces processes."""
    if requested not in (PROCESSES, IN_PROCESS):
        raise ValueError(f"cluster kind {requested!r}: choose {PROCESSES!r} or {IN_PROCESS!r}")
    forced = os.environ.get(ENV_KIND, "")
    if forced not in ("", PROCESSES, IN_PROCESS):
        raise ValueError(f"{ENV_KIND}={forced!r}: choose {PROCESSES!r} (or leave it unset)")
    return PROCESSES if forced == PROCESSES else requested


# The suite's ports: HSMNODE_TEST_BASE_PORT (default 10000) up to 73 stripes of 300 ports above it. A
# stripe holds 10 base ports, 10 apart: base + i is member i's gRPC port, base + 100 + i its Raft port,
# base + 200 + i its metrics port, i < 10 (add_member grows a cluster upwards from its base). The default
# range stays below Linux's ephemeral ports (32768-60999): there a client's source port could take a
# member's port between the check and the member's bind. Each pytest-xdist worker takes every n-th
# stripe, so two workers never hand out the same ports; within a worker the bases are handed out in
# turn from a random start (another run on this machine rarely starts where this one does), and a base
# whose ports are taken (by anything) is skipped.
ENV_BASE_PORT = "HSMNODE_TEST_BASE_PORT"
DEFAULT_TEST_BASE_PORT = 10000
_BASES_PER_STRIPE = 10
_STRIPE = METRICS_PORT_OFFSET + 100
_STRIPES = 73
_next_base: list[int] = []  # this process's candidates, in the order they are handed out


def xdist_worker() -> tuple[int, int]:
    """(this worker's index, the number of workers) under pytest-xdist; (0, 1) in a plain run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return (int(worker.removeprefix("gw")), count) if worker.startswith("gw") else (0, 1)


def _candidate_bases() -> list[int]:
    first = int(os.environ.get(ENV_BASE_PORT) or DEFAULT_TEST_BASE_PORT)
    index, count = xdist_worker()
    if not 1024 <= first <= 65535 - _STRIPES * _STRIPE:
        raise ValueError(f"{ENV_BASE_PORT}={first}: choose a port from 1024 to {65535 - _STRIPES * _STRIPE}")
    if count > _STRIPES:
        raise ValueError(f"{count} pytest-xdist workers: the port range has stripes for {_STRIPES}")
    bases = [
        first + stripe * _STRIPE + j * _BASES_PER_STRIPE
        for stripe in range(index, _STRIPES, count)
        for j in range(_BASES_PER_STRIPE)
    ]
    start = random.randrange(len(bases))
    return bases[start:] + bases[:start]


def free_base_port(nodes: int) -> int:
    """A base port with `nodes` free gRPC ports, `nodes` free Raft ports (base + 100) and `nodes` free
    metrics ports (base + 200: `hsmnode dev` serves /metrics there) on 127.0.0.1, from this worker's
    share of the suite's ports (see above); the next call hands out the next base.

    Raises ValueError for more than 10 members or a bad HSMNODE_TEST_BASE_PORT, RuntimeError when no
    base of this worker's share is free."""
    if not 1 <= nodes <= _BASES_PER_STRIPE:
        raise ValueError(f"{nodes} members: a test cluster's base port has room for 1 to {_BASES_PER_STRIPE}")
    if not _next_base:
        _next_base.extend(_candidate_bases())
    offsets = (0, RAFT_PORT_OFFSET, METRICS_PORT_OFFSET)
    for _ in range(len(_next_base)):
        base = _next_base.pop(0)
        _next_base.append(base)
        if ports_free([base + offset + i for offset in offsets for i in range(nodes)]):
            return base
    raise RuntimeError(f"no free base port among this worker's {len(_next_base)} on 127.0.0.1")


# `python -m hsmnode ARGS` with scrypt at LIGHT_SCRYPT_N: hsmnode/__main__.py run as `-m` runs it
_LIGHT_SERVE = (
    f"import runpy, hsmnode.crypto; hsmnode.crypto.SCRYPT_N = {LIGHT_SCRYPT_N}; "
    "runpy.run_module('hsmnode', run_name='__main__', alter_sys=True)"
)


class ProcessCluster(DevCluster):
    """A `DevCluster` whose member processes hash passwords at LIGHT_SCRYPT_N (module docstring)."""

    def serve_argv(self, m: DevMember) -> list[str]:
        return [sys.executable, "-c", _LIGHT_SERVE, "serve", "--config", str(m.config_path)]


class _MemberThread:
    """One member's `Node.run` on its own thread: the thread constructs the Raft engine and lives until
    the node has stopped, as pysyncobj's tick thread requires."""

    def __init__(self, member: DevMember) -> None:
        from hsmnode.config import ConfigError, load_config
        from hsmnode.membership import apply_override
        from hsmnode.node import Node

        try:
            config = apply_override(load_config(str(member.config_path)))
        except ConfigError as exc:
            raise DevClusterError(f"member {member.id}: {exc}") from None
        self.member = member
        self.node = Node(config)
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"member-{member.id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from hsmnode.node import StartupError

        try:
            code = self.node.run()
        except StartupError as exc:
            self.error, code = exc, 2
        except BaseException as exc:  # noqa: BLE001 - reported through exit_code and wait_for_leader
            self.error, code = exc, 1
        self.code = code

    def stop(self, timeout: float) -> None:
        self.node.stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise DevClusterError(f"in-process member {self.member.id} did not stop within {timeout}s")


class InProcessCluster(ProcessCluster):
    """A `DevCluster` whose members run as threads of this process (see the module docstring).

    A standalone node (`make_standalone`, a node about to join) runs as a process all the same: a
    join ends by re-executing the joiner's process."""

    def __init__(self, root: Path, cluster_id: str, members: list[DevMember]) -> None:
        super().__init__(root, cluster_id, members)
        self._threads: dict[str, _MemberThread] = {}
        self._processes: set[str] = set()  # member ids that run as processes (standalone joiners)

    def make_standalone(self, member_id: str, grpc_port: int, raft_port: int) -> DevMember:
        self._processes.add(member_id)
        return super().make_standalone(member_id, grpc_port, raft_port)

    def _start_one(self, m: DevMember) -> None:
        if m.id in self._processes:
            super()._start_one(m)
            return
        running = self._threads.get(m.id)
        if running is not None and running.thread.is_alive():
            return
        self._threads[m.id] = _MemberThread(m)

    def running(self, member_id: str) -> bool:
        if member_id in self._processes:
            return super().running(member_id)
        member = self._threads.get(member_id)
        return member is not None and member.thread.is_alive()

    def exit_code(self, member_id: str) -> int | None:
        if member_id in self._processes:
            return super().exit_code(member_id)
        member = self._threads.get(member_id)
        return None if member is None or member.thread.is_alive() else member.code

    def startup_error(self, member_id: str) -> BaseException | None:
        """Why a member's `Node.run` ended with an exception (a StartupError names the problem)."""
        member = self._threads.get(member_id)
        return None if member is None else member.error

    def pid_of(self, member_id: str) -> int | None:
        return super().pid_of(member_id) if member_id in self._processes else None

    def kill(self, member_id: str) -> None:
        if member_id in self._processes:
            super().kill(member_id)
            return
        raise DevClusterError(
            f"cannot SIGKILL in-process member {member_id}: a test that kills members needs the "
            f"{PROCESSES!r} cluster kind"
        )

    def stop(self, member_id: str | None = None, timeout: float = 10.0) -> None:
        ids = [member_id] if member_id else [*self._threads, *(m.id for m in self.members)]
        for mid in sorted(self._processes.intersection(ids)):
            super().stop(mid, timeout)
        stopping = [self._threads[i] for i in dict.fromkeys(ids) if i in self._threads]
        for member in stopping:
            member.node.stop()  # all at once: the members shut down in parallel
        deadline = time.monotonic() + timeout
        for member in stopping:
            member.stop(max(0.1, deadline - time.monotonic()))

    def stop_process(self, member: DevMember) -> None:
        if member.id in self._processes:
            super().stop_process(member)
            return
        thread = self._threads.pop(member.id, None)
        if thread is not None:
            thread.stop(10.0)

    def wait_for_leader(self, timeout: float = 20.0, members: list[str] | None = None):  # type: ignore[no-untyped-def]
        for mid in members or [m.id for m in self.members]:
            error = self.startup_error(mid)
            if error is not None and not self.running(mid):
                raise DevClusterError(f"member {mid} did not start: {error}")
        return super().wait_for_leader(timeout, members)


def create_cluster(
    root: Path,
    *,
    kind: str = PROCESSES,
    nodes: int = 3,
    fault_injection: bool = True,
    compaction: int = 5000,
) -> DevCluster:
    """A new cluster's files in `root` (not started), of the given kind (see `cluster_kind`)."""
    launcher = InProcessCluster if cluster_kind(kind) == IN_PROCESS else ProcessCluster
    return launcher.create(
        root,
        nodes=nodes,
        base_port=free_base_port(nodes),
        timings=DevTimings(compaction_min_entries=compaction),
        fault_injection=fault_injection,
    )


def start_cluster(
    root: Path,
    *,
    kind: str = PROCESSES,
    nodes: int = 3,
    fault_injection: bool = True,
    compaction: int = 5000,
) -> DevCluster:
    """A started cluster with one leader and the dev demo set up (`hsmnode dev`'s demo users, partition
    and keyring); stopped again if that fails. The caller stops it."""
    cluster = create_cluster(
        root, kind=kind, nodes=nodes, fault_injection=fault_injection, compaction=compaction
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout=30.0)
        cluster.bootstrap_demo()
    except BaseException:
        cluster.stop()
        raise
    return cluster

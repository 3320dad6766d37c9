"""Await conditions on a running cluster (never fixed sleeps)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from hsmnode.client import (
    ApplianceSession,
    AuditNote,
    HsmClient,
    HsmError,
    HsmRoleSession,
    NodeStatus,
    PartitionSession,
)
from hsmnode.ops.devcluster import DevCluster

T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll `fn` until it returns something truthy; SDK errors count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except HsmError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(0.05)


def stopped(pid: int) -> float:
    """SIGSTOP process `pid` and wait until the kernel has stopped it (state T in /proc/<pid>/stat):
    the time.monotonic() after which it answers nothing more. Raises AssertionError if it is not
    stopped within 15 s."""
    os.kill(pid, signal.SIGSTOP)

    def state() -> bool:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    eventually(state, what=f"process {pid} stopped")
    return time.monotonic()


@contextlib.contextmanager
def paused(cluster: DevCluster, member_id: str) -> Iterator[int]:
    """SIGSTOP member `member_id` (a hung member: its sockets stay open, it answers nothing) until
    the block ends, then SIGCONT it whatever happened; yields its pid."""
    pid = cluster.pid_of(member_id)
    assert pid is not None, f"{member_id} is not running"
    stopped(pid)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def answered_more(answers: Sequence[Sequence[Any]], more: int, timeout: float, what: str) -> None:
    """Wait until the worker threads' answer lists (one per thread, appended to) hold more than
    `more` answers beyond those they hold now. Raises AssertionError after `timeout` s."""
    now = sum(len(a) for a in answers)
    eventually(lambda: sum(len(a) for a in answers) > now + more, timeout, what)


def stop_workers(stop: threading.Event, threads: Sequence[threading.Thread], timeout: float) -> bool:
    """Set `stop`, join every thread for up to `timeout` s each: True when all have ended."""
    stop.set()
    for t in threads:
        t.join(timeout)
    return not any(t.is_alive() for t in threads)


def node_status(cluster: DevCluster, member_id: str) -> NodeStatus:
    with cluster.client(member_id, timeout=2.0) as client:
        return client.node_status()


def co_session(cluster: DevCluster, client: HsmClient) -> PartitionSession:
    """The demo partition's CO session through `client`, kept open (no logout when it is left)."""
    demo = cluster.demo()
    assert demo is not None
    session = client.open_session("demo", demo["partition"]["co_password"], role="CO")
    session.keep = True
    return session


def converged(cluster: DevCluster, member_ids: list[str], timeout: float = 20.0) -> str:
    """Wait until the members have applied the same index and hold identical state; return the digest."""

    def check() -> str | None:
        statuses = [node_status(cluster, m) for m in member_ids]
        applied = {s.applied_index for s in statuses}
        digests = {s.state_digest for s in statuses}
        if len(applied) == 1 and len(digests) == 1:
            return digests.pop()
        return None

    return eventually(check, timeout, f"identical state on {', '.join(member_ids)}")


def leader_of(cluster: DevCluster, among: list[str] | None = None) -> str:
    ids = among or [m.id for m in cluster.members]

    def find() -> str | None:
        leaders = [m for m in ids if node_status(cluster, m).role == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    return eventually(find, 20.0, "a single leader")


_TOKENS: dict[tuple[str, str], str] = {}


def token(cluster: DevCluster, who: str) -> str:
    """A session token per cluster and identity, obtained once: tokens are cluster-wide."""
    key = (str(cluster.root), who)
    if key not in _TOKENS:
        demo = cluster.demo()
        assert demo is not None
        with cluster.client() as client:
            if who == "admin":
                session = client.login("admin", demo["users"]["admin"])
            else:
                session = client.login("audit", demo["users"]["audit"]).hsm_login(
                    demo["hsm"]["auditor_password"], role="AU"
                )
            _TOKENS[key] = session.token
    return _TOKENS[key]


def as_admin(cluster: DevCluster, member_id: str | None = None) -> ApplianceSession:
    """The demo admin's appliance session, through one member or all (close its `.client` when done)."""
    session = cluster.client(member_id, timeout=5.0).resume(token(cluster, "admin"))
    session.keep = True
    return session


def as_auditor(cluster: DevCluster, member_id: str | None = None) -> HsmRoleSession:
    """The demo audit user holding the HSM Auditor role."""
    session = HsmRoleSession(
        cluster.client(member_id, timeout=5.0), token(cluster, "auditor"), "audit", "audit", 0
    )
    session.keep = True
    return session


def audit_records(cluster: DevCluster, member_id: str) -> list:  # type: ignore[type-arg]
    auditor = as_auditor(cluster, member_id)
    with auditor.client:
        found = []
        after = 0
        while True:
            records = auditor.audit_list(after_seq=after, limit=1000).records
            if not records:
                return found
            found += records
            after = records[-1].seq


def notes_on(cluster: DevCluster, member_id: str) -> list[str]:
    return [
        r.detail for r in audit_records(cluster, member_id) if r.command == "audit.note" and r.outcome == "ok"
    ]


def note(
    cluster: DevCluster, text: str, member_id: str | None = None, request_id: str | None = None
) -> AuditNote:
    admin = as_admin(cluster, member_id)
    with admin.client:
        return admin.audit_note(text, request_id=request_id)


def drill(cluster: DevCluster, *args: str, timeout: float = 120.0) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`hsmnode drill --json ARGS` against the cluster: (exit status, report)."""
    result = subprocess.run(
        [sys.executable, "-m", "hsmnode", "drill", "--profile", str(cluster.profile_path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def new_partition(
    cluster: DevCluster, name: str, *, domain: str = "d", cloning: bool = True, **create: bool
) -> dict[str, str]:
    """A partition created by the SO (`create`: e.g. requires_authorization=True), assigned to demo-client,
    initialized in cloning domain `domain`, with its CO and CU set: their passwords ("po", "co", "cu")."""
    from hsmnode.ops.demo import dev_password

    demo = cluster.demo()
    assert demo is not None
    pw = {r: dev_password() for r in ("po", "co0", "co", "cu0", "cu")}
    admin = as_admin(cluster)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition(name, **create)
        admin.assign_client("demo-client", name)
    with cluster.app_client() as app:
        eventually(lambda: name in {s.partition for s in app.list_slots().slots}, 5.0, f"{name} assigned")
        app.init_partition(name, label=name, cloning_domain=domain, po_password=pw["po"])
        with app.open_session(name, pw["po"], role="PO") as po:
            po.init_role("CO", pw["co0"])
            if not cloning:
                po.set_policy("private_key_cloning", 0)
        app.change_partition_password(name, "CO", pw["co0"], pw["co"])
        with app.open_session(name, pw["co"], role="CO") as co:
            co.init_role("CU", pw["cu0"])
        app.change_partition_password(name, "CU", pw["cu0"], pw["cu"])
    return pw

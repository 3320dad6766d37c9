"""The Raft port under a flood (issue 11 item 4): a member refuses an oversized frame at its header,
drops silent and garbage connections within the handshake deadline, and its memory stays flat."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from hsmnode.ops.devcluster import DevCluster
from tests.fault.conftest import rss_bytes
from tests.integration.helpers import as_admin, converged

pytestmark = [pytest.mark.cluster, pytest.mark.serial]

FLOOD = 100 * 1024 * 1024
HANDSHAKE_DEADLINE = 3.0  # the default [raft] handshake_deadline
SLACK = 1.0  # one watcher tick and scheduling on a busy machine


def raft_endpoint(cluster: DevCluster, member_id: str) -> tuple[str, int]:
    host, _, port = cluster.member(member_id).raft.rpartition(":")
    return host, int(port)


def flood(endpoint: tuple[str, int], header: bytes, total: int) -> tuple[int, float]:
    """Send `header` then up to `total` bytes; (bytes the member took, seconds until it hung up)."""
    chunk = b"\xa5" * (1024 * 1024)
    sent = 0
    started = time.monotonic()
    with socket.create_connection(endpoint, timeout=10) as sock:
        sock.sendall(header)
        try:
            while sent < total:
                sent += sock.send(chunk[: min(len(chunk), total - sent)])
            sock.settimeout(HANDSHAKE_DEADLINE + 5)
            sock.recv(1)  # wait for the member to hang up
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    return sent, time.monotonic() - started


def test_oversized_frame_header_is_refused_before_the_body_and_memory_stays_flat(trio: DevCluster) -> None:
    member = trio.members[0].id
    pid = trio.pid_of(member)
    assert pid is not None
    before = rss_bytes(pid)
    sent, took = flood(raft_endpoint(trio, member), struct.pack("i", 2**31 - 1), FLOOD)
    after = rss_bytes(pid)
    print(
        f"flood: header 2^31-1 then up to 100 MiB; the member took {sent / 2**20:.1f} MiB, hung up after "
        f"{took:.3f}s, RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB"
    )
    assert took < HANDSHAKE_DEADLINE + SLACK, f"the member kept the connection for {took:.1f}s"
    assert sent < FLOOD, "the member read the whole 100 MiB body of a frame it must refuse"
    assert after - before < 20 * 1024 * 1024, f"RSS grew by {(after - before) / 2**20:.1f} MiB"
    assert trio.running(member)
    assert trio.wait_for_leader(timeout=20).leader


def test_garbage_within_the_frame_limit_is_dropped_at_the_first_frame(trio: DevCluster) -> None:
    member = trio.members[1].id
    pid = trio.pid_of(member)
    assert pid is not None
    before = rss_bytes(pid)
    body = b"not a fernet token" * 1000
    sent, took = flood(raft_endpoint(trio, member), struct.pack("i", len(body)) + body, 10 * 1024 * 1024)
    assert took < HANDSHAKE_DEADLINE + SLACK
    assert rss_bytes(pid) - before < 20 * 1024 * 1024
    assert trio.running(member)


def test_silent_and_trickling_connections_are_dropped_at_the_handshake_deadline(trio: DevCluster) -> None:
    endpoint = raft_endpoint(trio, trio.members[2].id)
    started = time.monotonic()
    with (
        socket.create_connection(endpoint, timeout=HANDSHAKE_DEADLINE + 5) as silent,
        socket.create_connection(endpoint, timeout=HANDSHAKE_DEADLINE + 5) as trickle,
    ):
        trickle.sendall(b"\x10\x00")  # half a frame header, then nothing
        assert silent.recv(1) == b"" and trickle.recv(1) == b""  # the member hangs up on both
    took = time.monotonic() - started
    assert HANDSHAKE_DEADLINE - 0.2 <= took < HANDSHAKE_DEADLINE + SLACK, took


def test_the_cluster_still_replicates_after_the_floods(trio: DevCluster) -> None:
    admin = as_admin(trio)
    with admin.client:
        admin.audit_note("after the floods")
    converged(trio, [m.id for m in trio.members])
